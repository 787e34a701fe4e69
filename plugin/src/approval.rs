//! `approve NAME` and `deny NAME --reason TEXT`, and how approval shows in `list` and `status`.
//!
//! Approving is writing the request annotation `debugsession.dev/approve` (denying:
//! `debugsession.dev/deny`) with a JSON merge patch. The operator's mutating webhook consumes it and
//! records the signed decision in `debugsession.dev/approvals` (or `debugsession.dev/denial`),
//! which the patched object that comes back already carries; its validating webhook refuses
//! (HTTP 403) whoever may not decide, with a message for the user.

use std::collections::BTreeMap;

use debugsession_operator::api::{ApprovalStatus, DebugSession};
use debugsession_operator::session::approval::{self, APPROVE, DENY, Decision};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::explain::{self, Doing};
use crate::session;

/// What a refused precondition (409) becomes while approving.
const CHANGED_MARK: &str = "the session changed since it was read";

/// The comment an approval carries when `--comment` gives none.
pub const DEFAULT_COMMENT: &str = "approved";

/// The merge patch that asks to approve the session's current spec. With the resourceVersion
/// the approver looked at, the API server refuses it (409) when the session changed since: nobody
/// approves a spec they have not seen.
pub fn approve_patch(comment: Option<&str>, seen: Option<&DebugSession>) -> Value {
    let comment = comment
        .filter(|c| !c.trim().is_empty())
        .unwrap_or(DEFAULT_COMMENT);
    let mut patch = json!({"metadata": {"annotations": {APPROVE: comment}}});
    // The object the approver looked at: this very session (not one recreated under its name),
    // at this version.
    if let Some(s) = seen {
        if let Some(uid) = &s.metadata.uid {
            patch["metadata"]["uid"] = json!(uid);
        }
        if let Some(rv) = &s.metadata.resource_version {
            patch["metadata"]["resourceVersion"] = json!(rv);
        }
    }
    patch
}

/// What is being approved, in one line: `Deployment/web, mode Patch, profile general, TTL 15m,
/// image busybox:1.36, requested by alice`.
pub fn summary(s: &DebugSession) -> String {
    let spec = &s.spec;
    let shell = spec.shell.clone().unwrap_or_default();
    let mut parts = vec![
        format!("{}/{}", spec.target.kind, spec.target.name),
        format!("mode {}", s.mode()),
        format!(
            "profile {}",
            spec.profile
                .map(|p| p.to_string())
                .unwrap_or_else(|| "general".into())
        ),
        format!("TTL {}", spec.ttl.as_deref().unwrap_or("default")),
        format!(
            "image {}",
            shell.image.as_deref().unwrap_or("the operator's default")
        ),
    ];
    if let Some(pod) = &spec.target.pod {
        parts.insert(1, format!("pod {pod}"));
    }
    if let Some(c) = spec.target.container.as_deref() {
        parts.insert(1, format!("container {c}"));
    }
    if let Some(caps) = shell.capabilities.as_ref().filter(|c| !c.is_empty()) {
        parts.push(format!("adds capabilities {}", caps.join(",")));
    }
    let command: Vec<String> = shell
        .command
        .iter()
        .flatten()
        .chain(shell.args.iter().flatten())
        .cloned()
        .collect();
    if !command.is_empty() {
        parts.push(format!("command {command:?}"));
    }
    if let Some(images) = spec.copy.as_ref().and_then(|c| c.set_image.as_ref()) {
        parts.push(format!("sets images {images:?}"));
    }
    if shell.record == Some(true) {
        parts.push("recorded".into());
    }
    if let Some(r) = annotations(s).get(debugsession_operator::session::stamp::REQUESTER) {
        parts.push(format!("requested by {r}"));
    }
    parts.join(", ")
}

/// The merge patch that asks to deny the session.
pub fn deny_patch(reason: &str) -> Value {
    json!({"metadata": {"annotations": {DENY: reason}}})
}

/// `debugsession NAME approved by USER (1/2 approvals)`; without the number the session needs
/// (no status.approval yet): `(1 approval)`.
pub fn approved_line(name: &str, user: &str, count: usize, required: Option<u32>) -> String {
    let tally = match required {
        Some(r) => format!("{count}/{r} approvals"),
        None if count == 1 => "1 approval".to_string(),
        None => format!("{count} approvals"),
    };
    format!("debugsession {name} approved by {user} ({tally})")
}

/// `debugsession NAME denied by USER: REASON`.
pub fn denied_line(name: &str, user: &str, reason: &str) -> String {
    format!("debugsession {name} denied by {user}: {reason}")
}

/// The APPROVAL cell of `list`: `-` (no approval needed), `denied`, else `approved/required`.
pub fn column(s: &DebugSession) -> String {
    match s.status.as_ref().and_then(|st| st.approval.as_ref()) {
        None => "-".to_string(),
        Some(a) if a.denied_by.is_some() => "denied".to_string(),
        Some(a) => format!("{}/{}", a.approved_by.len(), a.required),
    }
}

/// Whether `list` shows the APPROVAL column: only when a listed session involves approval, so
/// that the table stays as it was where nobody uses approvals.
pub fn shows_column(list: &[DebugSession]) -> bool {
    list.iter()
        .any(|s| s.status.as_ref().is_some_and(|st| st.approval.is_some()))
}

/// The `Approval:` line of `status`: `1/2 approvals; approved by alice`, `0/1 approvals; denied
/// by carol`, `2/2 approvals; approved by alice, bob (complete at T)`.
pub fn status_line(a: &ApprovalStatus) -> String {
    let mut line = format!("{}/{} approvals", a.approved_by.len(), a.required);
    if !a.approved_by.is_empty() {
        line.push_str(&format!("; approved by {}", a.approved_by.join(", ")));
        if let Some(at) = &a.approved_at {
            line.push_str(&format!(" (complete at {})", at.0));
        }
    }
    if let Some(d) = &a.denied_by {
        line.push_str(&format!("; denied by {d}"));
    }
    line
}

/// The approval that `after` has and `before` had not (the webhook appends; the last one when
/// nothing tells them apart).
pub fn new_approval<'a>(before: &[Decision], after: &'a [Decision]) -> Option<&'a Decision> {
    after
        .iter()
        .rev()
        .find(|d| !before.contains(d))
        .or(after.last())
}

fn annotations(s: &DebugSession) -> BTreeMap<String, String> {
    s.metadata.annotations.clone().unwrap_or_default()
}

/// Sends the request annotation `key` and returns the session as the webhooks left it.
async fn request(
    api: &Api<DebugSession>,
    name: &str,
    namespace: &str,
    verb: &str,
    key: &str,
    patch: &Value,
) -> Result<DebugSession, String> {
    let doing = Doing::Decide {
        verb,
        name,
        namespace,
    };
    let after = api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|e| match &e {
            kube::Error::Api(s) if s.code == 409 => format!("{CHANGED_MARK}: {}", s.message),
            _ => explain::api(&e, doing),
        })?;
    if annotations(&after).contains_key(key) {
        // No webhook consumed the request: take it back rather than leave it lying around.
        let undo = json!({"metadata": {"annotations": {key: null}}});
        let _ = api
            .patch(name, &PatchParams::default(), &Patch::Merge(&undo))
            .await;
        return Err(format!(
            "no admission webhook recorded the decision on debugsession/{name} (annotation {key} was left as sent): is the operator's webhook installed and does it cover namespace {namespace}?"
        ));
    }
    Ok(after)
}

pub async fn approve(
    api: &Api<DebugSession>,
    name: &str,
    namespace: &str,
    comment: Option<&str>,
) -> Result<(), String> {
    let before = session::get(api, name, namespace).await?;
    let (had, _) = approval::read(&annotations(&before)).unwrap_or_default();
    eprintln!("approving debugsession {name}: {}", summary(&before));
    let seen = before.metadata.resource_version.clone();
    let mut attempt = before.clone();
    let mut tries = 0;
    let after = loop {
        tries += 1;
        let patch = approve_patch(comment, Some(&attempt));
        match request(api, name, namespace, "approve", APPROVE, &patch).await {
            Ok(after) => break after,
            Err(e) if e.contains(CHANGED_MARK) && tries < 5 => {
                // Something changed since we looked: go on only if the spec did not.
                attempt = session::get(api, name, namespace).await?;
                let same = attempt.metadata.uid == before.metadata.uid
                    && attempt.metadata.generation == before.metadata.generation
                    && attempt.spec == before.spec;
                if !same {
                    return Err(format!(
                        "debugsession/{name} changed while you approved it (generation {} is now {}; resourceVersion {} was seen): look at it again (kubectl debugsession status {name} -n {namespace}) and approve again",
                        before.metadata.generation.unwrap_or_default(),
                        attempt.metadata.generation.unwrap_or_default(),
                        seen.as_deref().unwrap_or("?"),
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    };
    let (now, _) =
        approval::read(&annotations(&after)).map_err(|e| format!("debugsession/{name}: {e}"))?;
    let d = new_approval(&had, &now).ok_or_else(|| {
        format!("debugsession/{name} carries no approval after the request: see kubectl debugsession status {name} -n {namespace}")
    })?;
    let required = after
        .status
        .as_ref()
        .and_then(|st| st.approval.as_ref())
        .map(|a| a.required);
    println!("{}", approved_line(name, &d.user, now.len(), required));
    Ok(())
}

pub async fn deny(
    api: &Api<DebugSession>,
    name: &str,
    namespace: &str,
    reason: &str,
) -> Result<(), String> {
    session::get(api, name, namespace).await?;
    let after = request(api, name, namespace, "deny", DENY, &deny_patch(reason)).await?;
    let (_, denial) =
        approval::read(&annotations(&after)).map_err(|e| format!("debugsession/{name}: {e}"))?;
    let d = denial.ok_or_else(|| {
        format!("debugsession/{name} carries no denial after the request: see kubectl debugsession status {name} -n {namespace}")
    })?;
    let why = if d.comment.is_empty() {
        reason
    } else {
        &d.comment
    };
    println!("{}", denied_line(name, &d.user, why));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use debugsession_operator::api::{DebugSessionSpec, DebugSessionStatus, TargetKind};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn decision(user: &str, sig: &str) -> Decision {
        Decision {
            user: user.into(),
            at: "2026-11-30T10:00:00Z".into(),
            digest: "d1".into(),
            signature: sig.into(),
            ..Default::default()
        }
    }

    fn with_approval(a: Option<ApprovalStatus>) -> DebugSession {
        let mut s = DebugSession::new(
            "dbg",
            DebugSessionSpec::new(TargetKind::Deployment, "nginx"),
        );
        s.status = Some(DebugSessionStatus {
            approval: a,
            ..Default::default()
        });
        s
    }

    #[test]
    fn the_summary_says_what_is_approved() {
        let mut s = DebugSession::new(
            "dbg",
            DebugSessionSpec {
                ttl: Some("15m".into()),
                ..DebugSessionSpec::new(TargetKind::Deployment, "web")
            },
        );
        s.metadata.annotations = Some(BTreeMap::from([(
            "debugsession.dev/requester".to_string(),
            "alice".to_string(),
        )]));
        assert_eq!(
            summary(&s),
            "Deployment/web, mode Patch, profile general, TTL 15m, image the operator's default, requested by alice"
        );
    }

    #[test]
    fn the_patch_bodies() {
        assert_eq!(
            approve_patch(Some("looks fine"), None),
            json!({"metadata": {"annotations": {"debugsession.dev/approve": "looks fine"}}})
        );
        for none in [None, Some(""), Some("  ")] {
            assert_eq!(
                approve_patch(none, None)["metadata"]["annotations"]["debugsession.dev/approve"],
                "approved"
            );
        }
        // The version the approver saw is a precondition.
        let mut seen =
            DebugSession::new("dbg", DebugSessionSpec::new(TargetKind::Deployment, "web"));
        seen.metadata.uid = Some("uid-1".into());
        seen.metadata.resource_version = Some("42".into());
        let p = approve_patch(None, Some(&seen));
        assert_eq!(
            (&p["metadata"]["uid"], &p["metadata"]["resourceVersion"]),
            (&json!("uid-1"), &json!("42"))
        );
        assert_eq!(
            deny_patch("not during the freeze"),
            json!({"metadata": {"annotations": {"debugsession.dev/deny": "not during the freeze"}}})
        );
    }

    #[test]
    fn the_lines_printed() {
        assert_eq!(
            approved_line("dbg", "alice", 1, Some(1)),
            "debugsession dbg approved by alice (1/1 approvals)"
        );
        assert_eq!(
            approved_line("dbg", "bob", 1, Some(2)),
            "debugsession dbg approved by bob (1/2 approvals)"
        );
        assert_eq!(
            approved_line("dbg", "bob", 1, None),
            "debugsession dbg approved by bob (1 approval)"
        );
        assert_eq!(
            denied_line("dbg", "carol", "not now"),
            "debugsession dbg denied by carol: not now"
        );
    }

    #[test]
    fn the_new_approval_is_the_one_added() {
        let a = decision("alice", "s1");
        let b = decision("bob", "s2");
        assert_eq!(
            new_approval(std::slice::from_ref(&a), &[b.clone(), a.clone()]),
            Some(&b)
        );
        assert_eq!(new_approval(&[], std::slice::from_ref(&a)), Some(&a));
        assert_eq!(new_approval(&[], &[]), None);
    }

    #[test]
    fn the_approval_column() {
        assert_eq!(column(&with_approval(None)), "-");
        let waiting = ApprovalStatus {
            required: 1,
            ..Default::default()
        };
        assert_eq!(column(&with_approval(Some(waiting.clone()))), "0/1");
        let half = ApprovalStatus {
            required: 2,
            approved_by: vec!["alice".into()],
            ..Default::default()
        };
        assert_eq!(column(&with_approval(Some(half))), "1/2");
        let denied = ApprovalStatus {
            denied_by: Some("carol".into()),
            ..waiting
        };
        assert_eq!(column(&with_approval(Some(denied.clone()))), "denied");
        assert!(!shows_column(&[with_approval(None)]));
        assert!(shows_column(&[
            with_approval(None),
            with_approval(Some(denied))
        ]));
    }

    #[test]
    fn the_status_line() {
        let mut a = ApprovalStatus {
            required: 2,
            ..Default::default()
        };
        assert_eq!(status_line(&a), "0/2 approvals");
        a.approved_by = vec!["alice".into(), "bob".into()];
        a.approved_at = Some(Time("2026-11-30T10:05:00Z".parse().unwrap()));
        assert_eq!(
            status_line(&a),
            "2/2 approvals; approved by alice, bob (complete at 2026-11-30T10:05:00Z)"
        );
        let denied = ApprovalStatus {
            required: 1,
            denied_by: Some("carol".into()),
            ..Default::default()
        };
        assert_eq!(status_line(&denied), "0/1 approvals; denied by carol");
    }
}
