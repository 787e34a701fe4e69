//! The allowed path of each mode: a user holding exactly the rights the mode needs (and no
//! other mode's) gets a shell, stamped with their name; ending the session undoes what it did.
//! - Patch: `patcher` (attach, patch the Deployment) gets the shell in the pod template of
//!   `modes`, which comes back as it was;
//! - Copy: `copier` (attach, create pods) gets `<session>-copy`, and `modes` keeps its generation;
//!   the copy goes with the session;
//! - Ephemeral: `podeph` (attach, get and write the ephemeral containers of `modes-pod` only) gets
//!   an ephemeral shell in `modes-pod`.
//!
//! Each also proves the check of the refused rows ([`changes`]) sees what a session does: the
//! one change it reports is the session's.

use debugsession_e2e::*;

use crate::modes::{MODES, MODES_POD, changes, on_deployment, on_pod, scene};
use crate::sessions::{
    REQUESTER, create_as, delete_session, matches_snapshot, session_json, snapshot, wait_active,
};
use crate::{Run, step};

pub fn allowed_modes(run: &mut Run) -> R<()> {
    step("the allowed path of each mode, for a user with exactly the mode's rights");
    let mut errors = Vec::new();
    for (mode, r) in [
        ("Patch", patch(run)),
        ("Copy", copy(run)),
        ("Ephemeral", ephemeral(run)),
    ] {
        match r {
            Ok(msg) => println!("  allowed  {mode}: {msg}"),
            Err(e) => {
                println!("  REFUSED  {mode}: {e}");
                errors.push(format!("{mode}: {e}"));
            }
        }
    }
    ensure(errors.is_empty(), || errors.join("\n  "))
}

/// `role` creates session `name` with `spec`; once it is Active and stamped for them, `check`
/// gets it and what [`changes`] sees in the namespace since before the create. The session is
/// deleted afterwards, also when a check failed.
fn session(
    run: &Run,
    role: &str,
    name: &str,
    spec: Value,
    check: impl FnOnce(&Value, &[String]) -> R<String>,
) -> R<String> {
    let user = run.user(role);
    let before = scene(&run.ns)?;
    create_as(&run.ns, Some(&user), &session_json(name, spec, json!({})))?;
    let r = wait_active(&run.ns, name).and_then(|v| {
        let who = s(
            &v,
            &format!("/metadata/annotations/{}", REQUESTER.replace('/', "~1")),
        );
        ensure(who == user, || {
            format!("session {name} stamped for {who:?}, want {user:?}")
        })?;
        let seen = changes(&run.ns, name, &before)?;
        check(&v, &seen)
    });
    let end = delete_session(&run.ns, name, "90s");
    let msg = r?;
    end.map_err(|e| format!("ending {name}: {e}"))?;
    Ok(msg)
}

/// Ok when [`changes`] saw one change, mentioning `what`.
fn seen_one(seen: &[String], what: &str) -> R<()> {
    ensure(seen.len() == 1 && seen[0].contains(what), || {
        format!("the check of the refused rows saw {seen:?}, want one change mentioning {what:?}")
    })
}

fn patch(run: &Run) -> R<String> {
    let name = "allowed-patch";
    let msg = session(
        run,
        "patcher",
        name,
        on_deployment(Some("Patch")),
        |_, seen| {
            let d = get_json(&["-n", &run.ns, "deployment", MODES])?;
            ensure(has_shell(&d["spec"]["template"]), || {
                format!("{name} is Active but deployment {MODES} has no shell")
            })?;
            seen_one(seen, &format!("deployment {}/{MODES} changed", run.ns))?;
            Ok(format!(
                "{} has the shell in deployment {MODES}'s pod template",
                run.user("patcher")
            ))
        },
    )?;
    let pre = &run.pre_session[MODES];
    wait_for("deployment modes to be reverted", TIMEOUT, || {
        matches_snapshot(&run.ns, MODES, pre, false)
    })?;
    Ok(format!("{msg}; reverted when the session ended"))
}

fn copy(run: &Run) -> R<String> {
    let name = "allowed-copy";
    let copy = format!("{name}-copy");
    let generation = snapshot(&run.ns, MODES)?.generation;
    let msg = session(
        run,
        "copier",
        name,
        on_deployment(Some("Copy")),
        |_, seen| {
            let pod = get_obj(&run.ns, "pod", &copy)?;
            ensure(has_shell(&pod), || {
                format!("copy {copy} has no shell: {}", pod["spec"]["containers"])
            })?;
            let now = snapshot(&run.ns, MODES)?.generation;
            ensure(now == generation, || {
                format!("deployment {MODES} changed: generation {generation} -> {now}")
            })?;
            seen_one(seen, &format!("pod {}/{copy} was created", run.ns))?;
            Ok(format!(
                "{} has the shell in pod {copy}; deployment {MODES} kept generation {generation}",
                run.user("copier")
            ))
        },
    )?;
    wait_for(&format!("pod {copy} to go"), TIMEOUT, || {
        match get_opt(&run.ns, "pod", &copy)? {
            None => Ok(()),
            Some(_) => Err(format!("pod {copy} is still there")),
        }
    })?;
    Ok(format!("{msg}; the copy went with the session"))
}

fn ephemeral(run: &Run) -> R<String> {
    let name = "allowed-eph";
    session(run, "podeph", name, on_pod(Some("Ephemeral")), |v, seen| {
        let container = s(v, "/status/pods/0/container").to_string();
        let pod = get_obj(&run.ns, "pod", MODES_POD)?;
        let names: Vec<&str> = pod["spec"]["ephemeralContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| s(c, "/name"))
            .collect();
        ensure(
            !container.is_empty() && names.contains(&container.as_str()),
            || {
                format!(
                    "pod {MODES_POD} has ephemeral containers {names:?}, not the session's {container:?}"
                )
            },
        )?;
        seen_one(
            seen,
            &format!("pod {}/{MODES_POD} has ephemeral containers", run.ns),
        )?;
        Ok(format!(
            "{} has the ephemeral shell {container} in pod {MODES_POD}",
            run.user("podeph")
        ))
    })
}
