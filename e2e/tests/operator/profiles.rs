//! The shell's security profile, in Copy mode (Kubernetes before 1.22 refuses a securityContext
//! on an ephemeral container, so the copy is where a profile shows in full): each profile the
//! operator allows gives the shell `kubectl debug --profile`'s securityContext, read from the
//! copy; the kernel grants `general` its SYS_PTRACE and `baseline` none; `restricted` cannot run
//! a root image and the session says why. A namespace whose Pod Security level is `baseline`
//! refuses `general` before anything is created, and takes `baseline`. (The profiles the
//! operator does not allow by default are rows of [`crate::modes_input`].)

use debugsession_e2e::*;

use crate::Suite;
use crate::ns::Ns;
use crate::pods::{Untouched, nginx};
use crate::shell::{Pids, Shell};

/// Bit of `CAP_SYS_PTRACE` in a capability set.
const CAP_SYS_PTRACE: u64 = 1 << 19;

/// A Copy session of Deployment nginx with `profile` (none: the default).
fn copy_spec(profile: Option<&str>) -> Value {
    let mut spec =
        json!({"target": {"kind": "Deployment", "name": "nginx"}, "mode": "Copy", "ttl": "15m"});
    if let Some(p) = profile {
        spec["profile"] = json!(p);
    }
    spec
}

/// The shell's securityContext in the copy of session `name`, once the copy exists.
fn copy_shell_context(ns: &Ns, name: &str) -> R<Value> {
    let copy = format!("{name}-copy");
    let pod = wait_for(&format!("pod {copy}"), TIMEOUT, || {
        get_opt(&ns.name, "pod", &copy)?.ok_or_else(|| "not created yet".to_string())
    })?;
    let shell = shell_of(&pod)
        .cloned()
        .ok_or_else(|| format!("{copy} has no {SHELL}: {}", pod["spec"]["containers"]))?;
    Ok(shell["securityContext"].clone())
}

pub fn profiles(ns: &Ns, _: &Suite) -> R<()> {
    nginx(ns, 1)?;
    let untouched = Untouched::take(ns, "deployment", "nginx", "app=nginx")?;
    let general = json!({"capabilities": {"add": ["SYS_PTRACE"]}});
    let restricted = json!({
        "runAsNonRoot": true,
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    });
    // (session, spec.profile, the shell's securityContext; null: none, or an empty one)
    let rows = [
        ("prof-default", None, general.clone()),
        ("prof-general", Some("general"), general),
        ("prof-baseline", Some("baseline"), Value::Null),
        ("prof-restricted", Some("restricted"), restricted),
    ];
    for (name, profile, _) in &rows {
        ns.session_spec(name, copy_spec(*profile))?;
    }
    let mut failures = Vec::new();
    for (name, _, want) in &rows {
        let got = copy_shell_context(ns, name)?;
        let empty = got.is_null() || got == json!({});
        if !(got == *want || want.is_null() && empty) {
            failures.push(format!(
                "{name}: the shell's securityContext {got}, want {want}"
            ));
        }
    }
    ensure(failures.is_empty(), || failures.join(" | "))?;
    for (name, ptrace) in [
        ("prof-default", true),
        ("prof-general", true),
        ("prof-baseline", false),
    ] {
        ns.wait_active(name, TIMEOUT)?;
        let copy = format!("{name}-copy");
        let shell = Shell::new(ns, &copy, SHELL);
        let caps = shell.effective_capabilities()?;
        ensure((caps & CAP_SYS_PTRACE != 0) == ptrace, || {
            format!("{name}: CapEff {caps:#x}, SYS_PTRACE expected {ptrace}")
        })?;
        shell.sees_the_app(Pids::Pod)?;
    }
    restricted_cannot_run_as_root(ns)?;
    untouched.check(ns, true)?;
    for (name, _, _) in &rows {
        ns.delete_session(name)?;
        ns.wait_pod_gone(&format!("{name}-copy"))?;
    }
    untouched.check(ns, true)
}

/// busybox runs as root, which `restricted`'s runAsNonRoot forbids: the kubelet does not start
/// the shell, and the session stays Applying with ShellNotStarting and the kubelet's reason.
fn restricted_cannot_run_as_root(ns: &Ns) -> R<()> {
    let name = "prof-restricted";
    let v = ns.wait_session(name, "Applying with ShellNotStarting", TIMEOUT, |v| {
        phase_is(v, "Applying") && ready_reason(v) == "ShellNotStarting"
    })?;
    let msg = s(&v, "/status/message");
    ensure(
        msg.contains("runAsNonRoot") && msg.contains(&format!("{name}-copy")),
        || format!("message does not give the kubelet's reason and the pod: {msg:?}"),
    )?;
    let ev = ns.wait_event(name, "ShellNotStarting", TIMEOUT)?;
    ensure(ev.0 == "Warning", || {
        format!("ShellNotStarting event {ev:?}")
    })
}

pub fn profile_pod_security(ns: &Ns, _: &Suite) -> R<()> {
    ns.k(&[
        "label",
        "namespace",
        &ns.name,
        "pod-security.kubernetes.io/enforce=baseline",
    ])?;
    nginx(ns, 1)?;
    // Every pod of the namespace: a copy would be a new one.
    let untouched = Untouched::take(ns, "deployment", "nginx", "")?;
    ns.expect_refused(
        "psa-general",
        copy_spec(Some("general")),
        "PodSecurityViolation",
        &["baseline", "SYS_PTRACE"],
    )?;
    ensure(
        get_opt(&ns.name, "pod", "psa-general-copy")?.is_none(),
        || "a refused session has a copy".into(),
    )?;
    untouched.check(ns, true)?;
    // The same level takes the baseline profile, which adds nothing.
    ns.session_spec("psa-baseline", copy_spec(Some("baseline")))?;
    ns.wait_active("psa-baseline", TIMEOUT)?;
    Shell::new(ns, "psa-baseline-copy", SHELL).sees_the_app(Pids::Pod)?;
    ns.delete_session("psa-baseline")?;
    ns.wait_pod_gone("psa-baseline-copy")?;
    untouched.check(ns, true)
}
