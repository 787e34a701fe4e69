//! The controller applies only what was stamped: a stamp copied onto another session (by a user
//! through the webhook, or by the admin past it), a spec edited past the deleted webhooks, and an
//! operator without a stamp key (which must start no session at all).

use debugsession_e2e::*;

use crate::Run;
use crate::rows::{DENIED, Row, has_words, row};
use crate::sessions::{
    OTHER, REQUESTER, RUNNING, SIGNATURE, SPEC_DIGEST, VICTIM, create_as, delete_session,
    failed_with, matches_snapshot, patch_session, session_json, spec_for, stamp_of,
};
use crate::webhook::{Mode, with_operator, without_webhooks};

/// While RUNNING is Active.
pub fn rows() -> Vec<Row> {
    vec![
        row(
            "stamp of the running session copied by a user with full rights",
            copied_stamp_by_user,
        ),
        row(
            "stamp of the running session copied onto a session for another workload (admin, no webhooks)",
            |run: &mut Run| copied_stamp_by_admin(run, "copy-other", Some(spec_for(OTHER, "10m"))),
        ),
        row(
            "stamp and spec of the running session copied onto a session of another name (admin, no webhooks)",
            |run: &mut Run| copied_stamp_by_admin(run, "copy-same", None),
        ),
        row(
            "spec of the running session changed by the admin without webhooks",
            unstamped_edit,
        ),
    ]
}

/// Requests that need no live session in the cluster (another operator runs meanwhile).
pub fn late_rows() -> Vec<Row> {
    vec![row(
        "operator without stamp key, webhook or --insecure-allow-unstamped",
        stamp_required,
    )]
}

/// `full` creates a session carrying the running session's stamp verbatim: the webhook must
/// replace it (or refuse the create). The target does not exist: re-stamped, the session is
/// legitimately `full`'s, and must not touch a workload.
fn copied_stamp_by_user(run: &mut Run) -> R<String> {
    let name = "copy-by-full";
    let stamp = stamp_of(&get_session(&run.ns, RUNNING)?);
    let full = run.user("full");
    let manifest = session_json(name, spec_for("no-such-workload", "10m"), stamp.clone());
    let out = kubectl_in(
        &manifest,
        &["create", "-n", &run.ns, "--as", &full, "-f", "-"],
    );
    if !out.ok {
        let msg = out.stderr.trim().to_string();
        has_words(&msg, &[DENIED])?;
        return Ok(msg);
    }
    let v = get_session(&run.ns, name)?;
    let got = stamp_of(&v);
    let _ = delete_session(&run.ns, name, "30s");
    for key in [SIGNATURE, SPEC_DIGEST] {
        ensure(got[key].is_string() && got[key] != stamp[key], || {
            format!(
                "{key} was kept or dropped: copied {}, stored {}",
                stamp[key], got[key]
            )
        })?;
    }
    ensure(got[REQUESTER] == full.as_str(), || {
        format!(
            "stamped for {} instead of the sender {full}",
            got[REQUESTER]
        )
    })?;
    Ok(format!(
        "the webhook re-stamped it for {full}: new {SIGNATURE} and {SPEC_DIGEST}"
    ))
}

/// The cluster admin creates, with the webhooks deleted, a session with `spec` carrying the
/// running session's stamp verbatim: the controller must refuse it.
fn copied_stamp_by_admin(run: &mut Run, name: &str, spec: Option<Value>) -> R<String> {
    let victim = get_session(&run.ns, RUNNING)?;
    let spec = spec.unwrap_or_else(|| victim["spec"].clone());
    let manifest = session_json(name, spec, stamp_of(&victim));
    without_webhooks(run, |run| create_as(&run.ns, None, &manifest))?;
    let msg = failed_with(&run.ns, name, &["InvalidStamp", "SpecNotStamped"])?;
    let other = &run.pre_session[OTHER];
    matches_snapshot(&run.ns, OTHER, other, true)?;
    Ok(msg)
}

/// The cluster admin changes the running session's shell with the webhooks deleted: the
/// unstamped spec must not reach the workload.
fn unstamped_edit(run: &mut Run) -> R<String> {
    let ns = run.ns.clone();
    let v = get_session(&ns, RUNNING)?;
    let gen_before = v["metadata"]["generation"].as_i64().unwrap_or(0);
    let applied = v["status"]["shellGeneration"].as_i64().ok_or_else(|| {
        format!(
            "the running session has no status.shellGeneration: {}",
            summary(&v)
        )
    })?;
    let patch = r#"{"spec":{"shell":{"command":["sh","-c","echo unstamped; sleep 3600"]}}}"#;
    without_webhooks(run, |_| {
        let out = patch_session(&ns, RUNNING, None, "merge", patch);
        ensure(out.ok, || {
            format!("the admin's patch failed: {}", out.both())
        })
    })?;
    let v = WAIT.session(
        &ns,
        RUNNING,
        "SpecApplied=False reason SpecNotStamped for the new generation",
        TIMEOUT,
        |v| {
            v["metadata"]["generation"].as_i64().unwrap_or(0) > gen_before
                && cond_is(v, "SpecApplied", "False", Some("SpecNotStamped"))
        },
    )?;
    ensure(
        v["status"]["shellGeneration"].as_i64() == Some(applied) && phase_is(&v, "Active"),
        || {
            format!(
                "status.shellGeneration should stay {applied}: {}",
                summary(&v)
            )
        },
    )?;
    let held = run.held.as_ref().ok_or("no snapshot of the victim")?;
    matches_snapshot(&ns, VICTIM, held, true)?;
    Ok(format!(
        "not applied: generation {} runs shell of generation {applied}; {}",
        v["metadata"]["generation"],
        cond_summary(&v, "SpecApplied")
    ))
}

/// Without a stamp key, a webhook or --insecure-allow-unstamped, the operator starts no session.
fn stamp_required(run: &mut Run) -> R<String> {
    let name = "no-stamp-key";
    without_webhooks(run, |run| {
        with_operator(run, Mode::NoStampKey, |run| {
            let manifest = session_json(name, spec_for(OTHER, "10m"), json!({}));
            create_as(&run.ns, None, &manifest)?;
            let msg = failed_with(&run.ns, name, &["StampRequired"])?;
            let v = get_session(&run.ns, name)?;
            let text = format!(
                "{} {}",
                s(&v, "/status/message"),
                condition(&v, "Ready")
                    .map(|c| s(c, "/message"))
                    .unwrap_or_default()
            );
            ensure(text.contains("--insecure-allow-unstamped"), || {
                format!("the message does not mention --insecure-allow-unstamped: {text}")
            })?;
            matches_snapshot(&run.ns, OTHER, &run.pre_session[OTHER], true)?;
            Ok(msg)
        })
    })
}
