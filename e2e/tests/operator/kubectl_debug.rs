//! The operator beside `kubectl debug`, on the same pod in the same run: the time from asking to
//! a shell that can be used, for a copy of the pod (the operator: apply → Ready=True; kubectl:
//! `kubectl alpha debug --copy-to` → its container running) and for an ephemeral container
//! (`--target=nginx`). Both are watched alike (`kubectl get --watch`; the timing is the shared
//! `debugsession_e2e::debug`, which `make bench` uses too); the times are printed as figures, not
//! asserted. Both shells must see nginx.

use debugsession_e2e::*;

use crate::Suite;
use crate::ns::Ns;
use crate::pods::nginx;
use crate::shell::{Pids, Shell};

/// `FIGURE <what> operator-seconds=.. kubectl-seconds=.. ratio=..` (operator / kubectl).
fn figure(what: &str, operator: f64, kubectl: f64) {
    let ratio = operator / kubectl.max(0.001);
    println!(
        "FIGURE {what} operator-seconds={operator:.1} kubectl-seconds={kubectl:.1} ratio={ratio:.2}"
    );
}

pub fn versus_kubectl_debug(ns: &Ns, _: &Suite) -> R<()> {
    nginx(ns, 1)?;
    let pod = ns
        .all_pod_names("app=nginx")?
        .into_iter()
        .next()
        .ok_or("Deployment nginx has no pod")?;
    let target = json!({"kind": "Deployment", "name": "nginx", "pod": pod});

    let spec = json!({"target": target, "mode": "Copy", "ttl": "15m"});
    let operator = session_ready_seconds(&ns.name, "vs-copy", spec)?;
    let flags = ["--copy-to=kubectl-copy", "--share-processes"];
    let kubectl = kubectl_debug_seconds(&ns.name, &pod, &flags, "kubectl-copy", "debugger", false)?;
    Shell::new(ns, "vs-copy-copy", SHELL).sees_the_app(Pids::Pod)?;
    Shell::new(ns, "kubectl-copy", "debugger").sees_the_app(Pids::Pod)?;
    figure("copy-vs-kubectl-debug", operator, kubectl);

    let spec = json!({"target": target, "mode": "Ephemeral", "ttl": "15m"});
    let operator = session_ready_seconds(&ns.name, "vs-eph", spec)?;
    let shell = s(&ns.dbgs("vs-eph")?, "/status/shellContainer").to_string();
    let flags = ["--target=nginx"];
    let kubectl = kubectl_debug_seconds(&ns.name, &pod, &flags, &pod, "debugger", true)?;
    Shell::new(ns, &pod, &shell).sees_the_app(Pids::App)?;
    Shell::new(ns, &pod, "debugger").sees_the_app(Pids::App)?;
    figure("ephemeral-vs-kubectl-debug", operator, kubectl);

    ns.delete_session("vs-copy")?;
    ns.wait_pod_gone("vs-copy-copy")?;
    ns.delete_session("vs-eph")
}
