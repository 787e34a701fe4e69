//! The allowed path: the `full` user gets a shell (stamped with their name), extends it and
//! changes it; the change is re-stamped for them, applied, and told in an event.

use debugsession_e2e::*;

use crate::sessions::{
    EVENT_WAIT, FINALIZER, REQUESTER, delete_session, session_yaml, target, wait_active,
};
use crate::{Run, step};

pub fn allowed_path(run: &mut Run) -> R<()> {
    step("the allowed path: the full user gets a shell, extends it and changes it");
    let full = run.user("full");
    let spec = format!("{}  ttl: 10m\n", target("nginx"));
    let created = k_in(
        &session_yaml("allowed", &spec, ""),
        &[
            "create", "-n", &run.ns, "--as", &full, "-o", "json", "-f", "-",
        ],
    )?;
    let res = born_with_finalizer(&created).and_then(|()| stamped_then_changed(run, &full));
    // End it while the operator runs, so that it reverts.
    let _ = delete_session(&run.ns, "allowed", "90s");
    res
}

/// The session as the create returned it (before any reconcile) carries the operator's
/// finalizer: the mutating webhook adds it.
fn born_with_finalizer(created: &str) -> R<()> {
    let v: Value = serde_json::from_str(created).map_err(|e| format!("create -o json: {e}"))?;
    let fins = &v["metadata"]["finalizers"];
    let has = fins
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER));
    ensure(has, || {
        format!("the created session's finalizers are {fins}, want the operator's")
    })?;
    println!("  allowed  created with the finalizer {fins}");
    Ok(())
}

fn stamped_then_changed(run: &Run, full: &str) -> R<()> {
    let v = wait_active(&run.ns, "allowed").map_err(|e| format!("allowed path: {e}"))?;
    let who = v["metadata"]["annotations"][REQUESTER]
        .as_str()
        .unwrap_or("");
    ensure(who == full, || {
        format!("allowed session stamped {who:?}, want {full:?}")
    })?;
    println!("  allowed  session Active, stamped with requester {who}");
    let msg = own_changes(run, "allowed").map_err(|e| format!("allowed path, own changes: {e}"))?;
    println!("  allowed  own TTL and shell changed: {msg}");
    Ok(())
}

/// True when the session runs the shell of its current generation.
fn applied(v: &Value) -> bool {
    phase_is(v, "Active")
        && cond_is(v, "SpecApplied", "True", None)
        && v["status"]["shellGeneration"].is_i64()
        && v["status"]["shellGeneration"] == v["metadata"]["generation"]
}

/// `full` patches their own session `name` (merge patch).
fn patch_own(run: &Run, name: &str, patch: &str) -> R<String> {
    let full = run.user("full");
    k(&[
        "patch",
        "-n",
        &run.ns,
        "debugsession",
        name,
        "--as",
        &full,
        "--type",
        "merge",
        "-p",
        patch,
    ])
}

/// The allowed path, part two: `full` extends their own running session and changes its shell.
fn own_changes(run: &Run, name: &str) -> R<String> {
    let (ns, full) = (&run.ns, run.user("full"));
    let v = get_session(ns, name)?;
    let expires = parse_time(s(&v, "/status/expiresAt"))?;
    patch_own(run, name, r#"{"spec":{"ttl":"20m"}}"#)?;
    // Only the expiry counts here: whether a TTL-only generation bumps shellGeneration is the
    // controller's business; after the shell change below it must.
    let v = WAIT.session(ns, name, "expiresAt 10 minutes later", TIMEOUT, |v| {
        parse_time(s(v, "/status/expiresAt")).is_ok_and(|t| t >= expires + 540.0)
    })?;
    let extended = s(&v, "/status/expiresAt").to_string();
    patch_own(
        run,
        name,
        r#"{"spec":{"shell":{"env":[{"name":"E2E_CHANGED","value":"by-full"}]}}}"#,
    )?;
    wait_for("the shell container to carry E2E_CHANGED", TIMEOUT, || {
        let d = get_json(&["-n", ns, "deployment", "nginx"])?;
        let shell = shell_of(&d["spec"]["template"])
            .cloned()
            .unwrap_or_default();
        let env = shell["env"].as_array().cloned().unwrap_or_default();
        ensure(
            env.iter()
                .any(|e| e["name"] == "E2E_CHANGED" && e["value"] == "by-full"),
            || format!("shell container: {shell}"),
        )
    })?;
    let v = WAIT.session(
        ns,
        name,
        "SpecApplied=True, shellGeneration = generation",
        TIMEOUT,
        applied,
    )?;
    ensure(
        v["metadata"]["annotations"][REQUESTER] == full.as_str(),
        || {
            format!(
                "re-stamped for {} instead of {full}",
                v["metadata"]["annotations"][REQUESTER]
            )
        },
    )?;
    let (_, _, ev) = WAIT.event(
        ns,
        "DebugSession",
        name,
        "SpecChanged",
        &[&full, "spec.shell"],
        EVENT_WAIT,
    )?;
    Ok(format!(
        "expiresAt moved to {extended}; shell generation {} applied; SpecChanged: {ev}",
        v["metadata"]["generation"]
    ))
}
