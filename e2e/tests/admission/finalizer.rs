//! The finalizer `debugsession.dev/revert` while the session holds its workload: the editor may
//! not remove it; the cluster admin who strips it past the deleted webhooks (the operator frozen or
//! stopped meanwhile) leaves an orphan, which the operator's sweep releases.

use debugsession_e2e::*;

use crate::Run;
use crate::rows::{DENIED, Row, refused_patch, row};
use crate::sessions::{
    EVENT_WAIT, FINALIZER, ORPHAN_LIVE, ORPHAN_STOPPED, RUNNING, delete_session, matches_snapshot,
};
use crate::webhook::{Mode, signal_operator, start_operator, stop_operator, without_webhooks};

pub fn rows() -> Vec<Row> {
    vec![
        editor_strips(
            "JSON patch",
            "json",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ),
        editor_strips(
            "merge patch, finalizers null",
            "merge",
            r#"{"metadata":{"finalizers":null}}"#,
        ),
    ]
}

pub fn orphan_rows() -> Vec<Row> {
    vec![
        row(
            "finalizer stripped and session deleted behind the running operator's back",
            |run: &mut Run| orphaned(run, ORPHAN_LIVE, false),
        ),
        row(
            "finalizer stripped and session deleted while the operator is stopped",
            |run: &mut Run| orphaned(run, ORPHAN_STOPPED, true),
        ),
    ]
}

/// The editor removes the finalizer of the running session, which still holds its workload.
fn editor_strips(how: &'static str, kind: &'static str, patch: &'static str) -> Row {
    row(
        format!("editor removes the finalizer of the running session ({how})"),
        move |run: &mut Run| {
            let msg = refused_patch(
                &run.user("editor"),
                &run.ns,
                RUNNING,
                kind,
                patch,
                &[DENIED, "finalizer debugsession.dev/revert", "still holds"],
            )?;
            let v = get_session(&run.ns, RUNNING)?;
            let fins = &v["metadata"]["finalizers"];
            ensure(
                fins.as_array()
                    .is_some_and(|f| f.iter().any(|x| x == FINALIZER)),
                || format!("the finalizer is gone: {fins}"),
            )?;
            Ok(msg)
        },
    )
}

/// Strips the finalizer of a session and deletes it, as the cluster admin.
fn strip_and_delete(ns: &str, name: &str) -> R<()> {
    let out = strip_finalizers(ns, name);
    ensure(out.ok, || {
        format!("stripping the finalizer: {}", out.both())
    })?;
    delete_session(ns, name, "30s")
}

/// The cluster admin strips the finalizer of a running session and deletes it, with the webhooks
/// deleted, while the operator is frozen (SIGSTOP: it cannot put its finalizer back in between,
/// so the deletion really skips the revert) or stopped. The operator, thawed or restarted, must
/// release the workload through its orphan sweep.
fn orphaned(run: &mut Run, name: &str, stopped: bool) -> R<String> {
    let ns = run.ns.clone();
    let pre = run
        .pre_session
        .get(name)
        .cloned()
        .ok_or_else(|| format!("no pre-session snapshot of {name}"))?;
    without_webhooks(run, |run| {
        let d = get_json(&["-n", &ns, "deployment", name])?;
        ensure(has_shell(&d["spec"]["template"]), || {
            format!("deployment {ns}/{name} has no shell before the strip")
        })?;
        let mut r;
        if stopped {
            stop_operator(run);
            r = strip_and_delete(&ns, name);
            if r.is_ok() {
                r = get_json(&["-n", &ns, "deployment", name]).and_then(|d| {
                    ensure(has_shell(&d["spec"]["template"]), || {
                        "the shell vanished while no operator ran".into()
                    })
                });
            }
            r = r.and(start_operator(run, Mode::Normal));
        } else {
            signal_operator(run, "-STOP")?;
            r = strip_and_delete(&ns, name);
            r = r.and(signal_operator(run, "-CONT"));
        }
        r?;
        wait_for(
            &format!("the orphan sweep to revert deployment {ns}/{name}"),
            TIMEOUT,
            || matches_snapshot(&ns, name, &pre, false),
        )?;
        let (_, _, ev) = WAIT.event(&ns, "Deployment", name, "OrphanReleased", &[], EVENT_WAIT)?;
        let who = if stopped {
            "the restarted"
        } else {
            "the thawed"
        };
        Ok(format!("{who} operator released it: OrphanReleased: {ev}"))
    })
}
