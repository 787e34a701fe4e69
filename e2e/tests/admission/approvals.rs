//! Sessions that need a second person's approval (issue: approvals): a namespace of its own
//! that the operator runs with `--approval-namespaces` and `--approval-valid-for 20s`, and three
//! users there:
//!
//! | user | rights |
//! |---|---|
//! | `alice` | sessions, exec/attach, patch Deployments (the requester) |
//! | `carol` | read and annotate sessions, and the RBAC verb `approve` on them |
//! | `dave` | read and annotate sessions, no `approve` |
//!
//! The rows: a session that starts before approval, approvals by the requester and by someone
//! without the verb, an approval carried over a spec change or past its validity, a hand-written
//! approval, and a denial. Each must leave the workload as it was. The allowed path and the
//! audit trail are in [`crate::approvals_audit`].

use std::time::Duration;

use debugsession_e2e::*;

use crate::install::deployment_named;
use crate::rows::{DENIED, Row, has_words, row};
use crate::sessions::{create_as, delete_session, matches_snapshot, patch_session, snapshot};
use crate::sessions::{session_json, spec_for};
use crate::webhook::LABEL;
use crate::{Run, step};

/// Request annotations and the webhook's records (`debugsession_operator::session::approval`).
pub const APPROVE: &str = "debugsession.dev/approve";
pub const DENY: &str = "debugsession.dev/deny";
pub const APPROVALS: &str = "debugsession.dev/approvals";
pub const DENIAL: &str = "debugsession.dev/denial";
/// How long an approval counts (the operator's `--approval-valid-for`).
pub const VALID_FOR: &str = "20s";
const VALID_FOR_SECS: f64 = 20.0;

/// Deployment of the session that waits, is refused and denied: nothing may change it.
pub const FREE: &str = "appr-free";
/// Deployments held by an Active session of alice while another waits behind it.
const HELD_D: &str = "appr-held-d";
const HELD_E: &str = "appr-held-e";
/// Deployment of the allowed path.
pub const ALLOWED: &str = "appr-ok";

/// The session on FREE that rows a, b, c, f and g try to start.
const WAITING: &str = "appr-wait";
const HOLDER_D: &str = "appr-hold-d";
const HOLDER_E: &str = "appr-hold-e";
const CHANGED: &str = "appr-changed";
const EXPIRED: &str = "appr-expired";
/// How long a session that may not start is watched not starting.
const HOLD: Duration = Duration::from_secs(8);
const DENY_REASON: &str = "e2e: no shells during the freeze";

fn rbac_yaml(run: &Run) -> String {
    let ns = &run.appr_ns;
    let role = |name: &str, rules: &str| {
        format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {name}\n  namespace: {ns}\nrules:\n{rules}"
        )
    };
    let binding = |role: &str, user: &str| {
        format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {role}-{user}\n  namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {role}\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: {user}\n"
        )
    };
    let mut out = String::new();
    out += &role(
        "appr-sessions",
        "- apiGroups: [debugsession.dev]\n  resources: [debugsessions]\n  verbs: [create, get, list, watch, update, patch, delete]\n- apiGroups: [apps]\n  resources: [deployments]\n  verbs: [get, list, watch, patch]\n- apiGroups: [\"\"]\n  resources: [pods/exec, pods/attach]\n  verbs: [create]\n- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: [get, list]\n",
    );
    // Writing the request annotation is a patch of the session; approving takes the verb too.
    out += &role(
        "appr-annotate",
        "- apiGroups: [debugsession.dev]\n  resources: [debugsessions]\n  verbs: [get, list, watch, patch, update]\n",
    );
    out += &role(
        "appr-approver",
        "- apiGroups: [debugsession.dev]\n  resources: [debugsessions]\n  verbs: [approve]\n",
    );
    for (user, roles) in [
        ("alice", &["appr-sessions"][..]),
        ("carol", &["appr-annotate", "appr-approver"][..]),
        ("dave", &["appr-annotate"][..]),
    ] {
        for r in roles {
            out += &binding(r, &run.user(user));
        }
    }
    out
}

/// The approval namespace (labelled for the webhooks), its Deployments and users; FREE joins the
/// workloads no request may change.
pub fn install(run: &mut Run) -> R<()> {
    let ns = run.appr_ns.clone();
    k(&["create", "namespace", &ns])?;
    k(&["label", "namespace", &ns, &format!("{LABEL}={}", run.id)])?;
    k_in(&rbac_yaml(run), &["apply", "-f", "-"])?;
    let deployments = [FREE, HELD_D, HELD_E, ALLOWED];
    for name in deployments {
        k_in(&deployment_named(name)?, &["apply", "-n", &ns, "-f", "-"])?;
    }
    for name in deployments {
        rollout(&ns, &format!("deployment/{name}"))?;
        let snap = snapshot(&ns, name)?;
        if name == FREE {
            run.watched
                .push((ns.clone(), name.to_string(), snap.generation));
        }
        run.pre_session.insert(name.to_string(), snap);
    }
    Ok(())
}

/// `kubectl annotate` of session `name` in the approval namespace as `role`'s user.
pub fn annotate(run: &Run, role: &str, name: &str, key: &str, value: &str) -> Out {
    kubectl(&[
        "annotate",
        "-n",
        &run.appr_ns,
        "debugsession",
        name,
        &format!("{key}={value}"),
        "--as",
        &run.user(role),
    ])
}

/// Alice asks for a session `name` on Deployment `deploy`.
pub fn request(run: &Run, name: &str, deploy: &str, ttl: &str) -> R<()> {
    let manifest = session_json(name, spec_for(deploy, ttl), json!({}));
    create_as(&run.appr_ns, Some(&run.user("alice")), &manifest).map(|_| ())
}

/// Carol approves session `name`; the approval must be admitted.
pub fn approve_as_carol(run: &Run, name: &str) -> R<()> {
    let out = annotate(run, "carol", name, APPROVE, "looks fine");
    ensure(out.ok, || {
        format!("carol's approval of {name} was refused: {}", out.both())
    })
}

/// The recorded approvals of a session (an empty list when there are none).
pub fn approvals(v: &Value) -> R<Vec<Value>> {
    match v["metadata"]["annotations"][APPROVALS].as_str() {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| format!("{APPROVALS} is not a JSON list: {e}: {text}")),
    }
}

/// The approval recorded by `user`, if any.
pub fn approval_by(v: &Value, user: &str) -> R<Option<Value>> {
    Ok(approvals(v)?.into_iter().find(|a| a["user"] == user))
}

/// Whether the session waits for approval: Pending, Ready=False, and Approved=False with reason
/// `reason` (AwaitingApproval, or ApprovalExpired).
pub fn waits_for_approval(v: &Value, reason: &str) -> bool {
    phase_is(v, "Pending")
        && cond_is(v, "Approved", "False", Some(reason))
        && cond_is(v, "Ready", "False", None)
}

/// Waits until alice's session `name` waits for approval (Ready reason AwaitingApproval, unless
/// another session holds its target).
pub fn wait_awaiting(run: &Run, name: &str) -> R<Value> {
    WAIT.session(
        &run.appr_ns,
        name,
        "Pending, Ready=False and Approved=False reason AwaitingApproval",
        TIMEOUT,
        |v| {
            waits_for_approval(v, "AwaitingApproval")
                && matches!(ready_reason(v), "AwaitingApproval" | "HeldByOtherSession")
        },
    )
}

/// Calls `f` every POLL for `how_long`; fails at its first Err: what must stay true for a while.
pub fn holds_for(what: &str, how_long: Duration, mut f: impl FnMut() -> R<()>) -> R<()> {
    let start = std::time::Instant::now();
    while start.elapsed() < how_long {
        f().map_err(|e| {
            format!(
                "after {:.1}s, no longer {what}: {e}",
                start.elapsed().as_secs_f64()
            )
        })?;
        std::thread::sleep(POLL);
    }
    f()
}

/// Deployment `deploy` of the approval namespace is as before any session: its pod template
/// (and, with `same_generation`, its generation), and no session holds it. A change counts among
/// the suite's changed workloads.
pub fn workload_unchanged(run: &mut Run, deploy: &str, same_generation: bool) -> R<()> {
    let ns = run.appr_ns.clone();
    let mut r = matches_snapshot(&ns, deploy, &run.pre_session[deploy], same_generation);
    if r.is_ok() {
        let d = get_obj(&ns, "deployment", deploy)?;
        let holder = s(&d, HOLDER_PTR);
        if !holder.is_empty() {
            r = Err(format!(
                "deployment {ns}/{deploy} is held by session {holder}"
            ));
        }
    }
    if let Err(e) = &r {
        run.changed.push(e.clone());
    }
    r
}

/// Session `name` still waits for approval (Approved reason `reason`, Ready reason
/// AwaitingApproval or `reason`: nothing holds its target) and Deployment `deploy` stays as it
/// was, for HOLD.
fn stays_waiting(run: &mut Run, name: &str, reason: &str, deploy: &str, same_gen: bool) -> R<()> {
    let ns = run.appr_ns.clone();
    holds_for(
        &format!("{name} waiting ({reason}) with {deploy} untouched"),
        HOLD,
        || {
            let v = get_session(&ns, name)?;
            ensure(
                waits_for_approval(&v, reason)
                    && [reason, "AwaitingApproval"].contains(&ready_reason(&v)),
                || summary(&v),
            )?;
            workload_unchanged(run, deploy, same_gen)
        },
    )
}

/// Alice's session `name` on `deploy`, approved by carol, Active.
fn start_holder(run: &Run, name: &str, deploy: &str) -> R<()> {
    request(run, name, deploy, "10m")?;
    wait_awaiting(run, name)?;
    approve_as_carol(run, name)?;
    WAIT.session(&run.appr_ns, name, "Active", LONG, |v| {
        phase_is(v, "Active")
    })
    .map(|_| ())
}

/// The rows, after alice's two holders started and her session WAITING awaits approval.
pub fn scenario(run: &mut Run) -> R<()> {
    step("approvals: alice's sessions holding appr-held-d and appr-held-e, approved by carol");
    start_holder(run, HOLDER_D, HELD_D)?;
    start_holder(run, HOLDER_E, HELD_E)?;
    let r = crate::rows::attempt(run, rows());
    // The rows' sessions end here (and the holders, when a row failed before deleting them).
    for name in [WAITING, CHANGED, EXPIRED, HOLDER_D, HOLDER_E] {
        let _ = kubectl(&[
            "delete",
            "--ignore-not-found",
            "--wait=true",
            "--timeout=90s",
            "-n",
            &run.appr_ns,
            "debugsession",
            name,
        ]);
    }
    r
}

fn rows() -> Vec<Row> {
    vec![
        row("approval: starting before approval", before_approval),
        row(
            "approval: the requester approving her own session",
            |run: &mut Run| refused_decision(run, "alice", &["cannot approve"]),
        ),
        row(
            "approval: approving without the RBAC verb approve",
            |run: &mut Run| refused_decision(run, "dave", &["may not approve"]),
        ),
        row(
            "approval: a valid approval of another session written by hand",
            forged,
        ),
        row("approval: denied by carol", denied),
        row(
            "approval: carried over a spec change (spec.ttl)",
            spec_change,
        ),
        row(
            "approval: expired (older than --approval-valid-for 20s) when the target frees",
            expired,
        ),
    ]
}

/// a. Alice's session on FREE waits for approval and touches nothing.
fn before_approval(run: &mut Run) -> R<String> {
    request(run, WAITING, FREE, "10m")?;
    let v = wait_awaiting(run, WAITING)?;
    ensure(ready_reason(&v) == "AwaitingApproval", || {
        format!("Ready reason is not AwaitingApproval: {}", summary(&v))
    })?;
    let text = format!(
        "{} {}",
        s(&v, "/status/message"),
        condition(&v, "Approved").map_or("", |c| s(c, "/message"))
    );
    let command = format!("kubectl debugsession approve {WAITING}");
    ensure(text.contains(&command), || {
        format!(
            "the waiting session does not say {command:?}: {}",
            summary(&v)
        )
    })?;
    ensure(v["status"]["approval"]["required"] == 1, || {
        format!("status.approval: {}", v["status"]["approval"])
    })?;
    stays_waiting(run, WAITING, "AwaitingApproval", FREE, true)?;
    Ok(format!(
        "Pending for {}s, {}; {FREE} untouched",
        HOLD.as_secs(),
        cond_summary(&v, "Approved")
    ))
}

/// b, c. `role` approves WAITING: refused with `words`, no approval recorded, nothing starts.
fn refused_decision(run: &mut Run, role: &str, words: &[&str]) -> R<String> {
    let out = annotate(run, role, WAITING, APPROVE, "lgtm");
    let v = get_session(&run.appr_ns, WAITING)?;
    let stored = approvals(&v)?;
    ensure(!out.ok, || {
        format!(
            "was admitted: {}; approvals now {stored:?}",
            out.stdout.trim()
        )
    })?;
    let msg = out.stderr.trim().to_string();
    has_words(&msg, words)?;
    let anns = &v["metadata"]["annotations"];
    ensure(stored.is_empty() && anns[APPROVE].is_null(), || {
        format!(
            "refused, yet the session carries {APPROVE}={} / approvals {stored:?}",
            anns[APPROVE]
        )
    })?;
    stays_waiting(run, WAITING, "AwaitingApproval", FREE, true)?;
    Ok(msg)
}

/// f. Alice copies carol's valid approval of HOLDER_D onto WAITING.
fn forged(run: &mut Run) -> R<String> {
    let donor = get_session(&run.appr_ns, HOLDER_D)?;
    let value = donor["metadata"]["annotations"][APPROVALS]
        .as_str()
        .ok_or_else(|| format!("{HOLDER_D} carries no approvals: {}", summary(&donor)))?
        .to_string();
    ensure(value.contains(&run.user("carol")), || {
        format!("{HOLDER_D}'s approvals lack carol: {value}")
    })?;
    let patch = json!({"metadata": {"annotations": {APPROVALS: value}}}).to_string();
    let out = patch_session(
        &run.appr_ns,
        WAITING,
        Some(&run.user("alice")),
        "merge",
        &patch,
    );
    let v = get_session(&run.appr_ns, WAITING)?;
    ensure(!out.ok, || {
        format!(
            "was admitted: {}; approvals now {:?}",
            out.stdout.trim(),
            approvals(&v)
        )
    })?;
    let msg = out.stderr.trim().to_string();
    has_words(&msg, &[DENIED])?;
    ensure(approvals(&v)?.is_empty(), || {
        format!("refused, yet approvals stored: {:?}", approvals(&v))
    })?;
    stays_waiting(run, WAITING, "AwaitingApproval", FREE, true)?;
    Ok(msg)
}

/// g. Carol denies WAITING with a reason: Failed, reason Denied, the reason in the message.
fn denied(run: &mut Run) -> R<String> {
    let out = annotate(run, "carol", WAITING, DENY, DENY_REASON);
    ensure(out.ok, || {
        format!("carol's denial was refused: {}", out.both())
    })?;
    let ns = run.appr_ns.clone();
    let v = WAIT.session(
        &ns,
        WAITING,
        "Failed with Ready reason Denied",
        TIMEOUT,
        |v| phase_is(v, "Failed") && ready_reason(v) == "Denied",
    )?;
    let msg = format!(
        "{} | {}",
        s(&v, "/status/message"),
        condition(&v, "Ready").map_or("", |c| s(c, "/message"))
    );
    let by = format!("denied by {}", run.user("carol"));
    has_words(&msg, &[DENY_REASON, &by])?;
    ensure(v["metadata"]["annotations"][DENIAL].is_string(), || {
        format!("no {DENIAL} recorded: {}", v["metadata"]["annotations"])
    })?;
    // A denial is final: alice can neither remove it nor shake it off with a spec change.
    let (alice, ttl) = (run.user("alice"), r#"{"spec":{"ttl":"11m"}}"#);
    let drop = format!("{DENIAL}-");
    let out = kubectl(&[
        "annotate",
        "-n",
        &ns,
        "debugsession",
        WAITING,
        &drop,
        "--as",
        &alice,
    ]);
    ensure(
        !out.ok && out.both().contains("written only by the operator"),
        || format!("alice removing the denial: {}", out.both()),
    )?;
    let out = patch_session(&ns, WAITING, Some(&alice), "merge", ttl);
    ensure(out.ok, || format!("alice's TTL change: {}", out.both()))?;
    let generation = get_session(&ns, WAITING)?["metadata"]["generation"].clone();
    WAIT.session(&ns, WAITING, "the new spec denied too", TIMEOUT, |v| {
        v["status"]["observedGeneration"] == generation && ready_reason(v) == "Denied"
    })?;
    holds_for("Failed, with FREE untouched", HOLD, || {
        let v = get_session(&ns, WAITING)?;
        ensure(phase_is(&v, "Failed"), || summary(&v))?;
        workload_unchanged(run, FREE, true)
    })?;
    Ok(format!(
        "phase Failed, Ready reason Denied, also after a spec change: {}",
        s(&v, "/status/message")
    ))
}

/// Alice's session `name` waits behind the holder on `deploy`; carol approves it and the approval
/// counts (Approved=True) while the holder keeps the workload. Returns carol's approval.
fn approved_behind_holder(run: &Run, name: &str, deploy: &str) -> R<Value> {
    request(run, name, deploy, "10m")?;
    wait_awaiting(run, name)?;
    approve_as_carol(run, name)?;
    let v = WAIT.session(
        &run.appr_ns,
        name,
        "Approved=True, still Pending behind the holder",
        TIMEOUT,
        |v| phase_is(v, "Pending") && cond_is(v, "Approved", "True", None),
    )?;
    approval_by(&v, &run.user("carol"))?.ok_or_else(|| {
        format!(
            "approved, but carol's approval is not recorded: {}",
            summary(&v)
        )
    })
}

/// Deletes the holder of `deploy` and waits until the workload is back as before any session
/// (else it counts as changed: the waiting session may have taken it).
fn release(run: &mut Run, holder: &str, deploy: &str) -> R<()> {
    delete_session(&run.appr_ns, holder, "90s")?;
    let r = wait_for(&format!("{deploy} to be reverted"), TIMEOUT, || {
        matches_snapshot(&run.appr_ns, deploy, &run.pre_session[deploy], false)
    });
    if let Err(e) = &r {
        run.changed.push(e.clone());
    }
    r
}

/// d. Carol approved CHANGED; alice changes its TTL: the approval must not carry over.
fn spec_change(run: &mut Run) -> R<String> {
    approved_behind_holder(run, CHANGED, HELD_D)?;
    let carol = run.user("carol");
    let patch = r#"{"spec":{"ttl":"12m"}}"#;
    let out = patch_session(
        &run.appr_ns,
        CHANGED,
        Some(&run.user("alice")),
        "merge",
        patch,
    );
    ensure(out.ok, || {
        format!("alice's TTL change was refused: {}", out.both())
    })?;
    let v = get_session(&run.appr_ns, CHANGED)?;
    ensure(approval_by(&v, &carol)?.is_none(), || {
        format!(
            "carol's approval survived the spec change: {}",
            v["metadata"]["annotations"][APPROVALS]
        )
    })?;
    let generation = v["metadata"]["generation"].clone();
    WAIT.session(
        &run.appr_ns,
        CHANGED,
        "Approved=False reason AwaitingApproval for the new generation",
        TIMEOUT,
        |v| {
            v["status"]["observedGeneration"] == generation
                && waits_for_approval(v, "AwaitingApproval")
        },
    )?;
    release(run, HOLDER_D, HELD_D)?;
    stays_waiting(run, CHANGED, "AwaitingApproval", HELD_D, false)?;
    let v = get_session(&run.appr_ns, CHANGED)?;
    Ok(format!(
        "approvals after the change: {}; {}",
        v["metadata"]["annotations"][APPROVALS],
        cond_summary(&v, "Approved")
    ))
}

/// e. Carol approved EXPIRED over 20 s before its target frees: it must not start.
fn expired(run: &mut Run) -> R<String> {
    let approval = approved_behind_holder(run, EXPIRED, HELD_E)?;
    let at = parse_time(s(&approval, "/at"))?;
    // Wall-clock time itself is the condition: the approval's age.
    sleep_until_epoch(at + VALID_FOR_SECS + 1.0);
    release(run, HOLDER_E, HELD_E)?;
    let v = WAIT.session(
        &run.appr_ns,
        EXPIRED,
        "Approved=False reason ApprovalExpired",
        TIMEOUT,
        |v| waits_for_approval(v, "ApprovalExpired"),
    )?;
    stays_waiting(run, EXPIRED, "ApprovalExpired", HELD_E, false)?;
    Ok(format!(
        "approved at {}, target free at +{:.0}s: {}",
        s(&approval, "/at"),
        now_epoch() - at,
        cond_summary(&v, "Approved")
    ))
}
