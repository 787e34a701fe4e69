//! Spec changes to the `full` user's sessions by people who may edit DebugSessions but lack the
//! rights the change needs: the `editor` (no pods/exec) on the running and the pending session, and
//! users without exec or without patch raising the TTL.

use debugsession_e2e::*;

use crate::Run;
use crate::rows::{DENIED, NO_EXEC, Row, refused_patch, row};
use crate::sessions::{APP_CONTAINER, INIT_CONTAINER, OTHER, PENDING, RUNNING, SECRET};

pub fn rows() -> Vec<Row> {
    let mut rows = editor_rows(RUNNING, "running");
    rows.extend(editor_rows(PENDING, "pending"));
    rows.extend([
        ttl_row("noexec", &[DENIED, NO_EXEC]),
        ttl_row(
            "nopatch",
            &[DENIED, "may not patch deployments.apps \"victim\""],
        ),
    ]);
    rows
}

/// The spec changes the editor tries on a session of `full`: each is allowed by the policy, so
/// only the sender's own RBAC (no pods/exec) can refuse it.
fn spec_edits() -> Vec<(&'static str, Value)> {
    let busybox = cluster().busybox();
    let repo = match busybox.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
        _ => busybox.clone(),
    };
    let shell = |v: Value| json!({"spec": {"shell": v}});
    vec![
        (
            "shell.command",
            shell(json!({"command": ["sh", "-c", "cat /proc/1/environ; sleep 3600"]})),
        ),
        (
            "shell.args",
            shell(json!({"args": ["-c", "id; sleep 3600"]})),
        ),
        (
            "shell.env from a Secret the editor cannot read",
            shell(json!({"env": [{"name": "STOLEN",
                "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "token"}}}]})),
        ),
        (
            "shell.image: the allowed busybox with another tag",
            shell(json!({"image": format!("{repo}:e2e-other")})),
        ),
        (
            "shell.image: the default image, spelled out",
            shell(json!({ "image": busybox })),
        ),
        ("shell.capabilities: []", shell(json!({"capabilities": []}))),
        (
            "shell.capabilities: [SYS_PTRACE], the default spelled out",
            shell(json!({"capabilities": ["SYS_PTRACE"]})),
        ),
        (
            "shell.containerName: the app container",
            shell(json!({ "containerName": APP_CONTAINER })),
        ),
        (
            "shell.containerName: the initContainer",
            shell(json!({ "containerName": INIT_CONTAINER })),
        ),
        (
            "target: another deployment",
            json!({"spec": {"target": {"kind": "Deployment", "name": OTHER}}}),
        ),
        ("ttl: raised to 20m", json!({"spec": {"ttl": "20m"}})),
    ]
}

/// The editor changes `session` (in `state`) in every way of [`spec_edits`].
fn editor_rows(session: &'static str, state: &str) -> Vec<Row> {
    spec_edits()
        .into_iter()
        .map(|(what, patch)| {
            let patch = patch.to_string();
            row(
                format!("editor changes {what} of the {state} session"),
                move |run: &mut Run| {
                    refused_patch(
                        &run.user("editor"),
                        &run.ns,
                        session,
                        "merge",
                        &patch,
                        &[DENIED, NO_EXEC],
                    )
                },
            )
        })
        .collect()
}

/// `user` raises the TTL of the running session.
fn ttl_row(role: &'static str, words: &'static [&'static str]) -> Row {
    row(
        format!("{role} user raises the TTL of the running session"),
        move |run: &mut Run| {
            refused_patch(
                &run.user(role),
                &run.ns,
                RUNNING,
                "merge",
                r#"{"spec":{"ttl":"20m"}}"#,
                words,
            )
        },
    )
}
