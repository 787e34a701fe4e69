//! The operator beside `kubectl debug`, on the same pod in the same run: the time from asking to
//! a shell that can be used, for a copy of the pod (the operator: apply → Ready=True; kubectl:
//! `kubectl alpha debug --copy-to` → its container running) and for an ephemeral container
//! (`--target=nginx`). Both are polled alike (every [`POLL`]); the times are printed as
//! figures, not asserted. Both shells must see nginx.

use std::time::Instant;

use debugsession_e2e::*;

use crate::Suite;
use crate::ns::Ns;
use crate::pods::nginx;
use crate::shell::{Pids, Shell};

/// `kubectl debug` as the cluster's own kubectl runs it: `alpha debug` of the v1.20 kubectl of
/// the local cluster (with the cluster's discovery cache), else the installed kubectl's `debug`.
fn kubectl_debug() -> (String, Vec<String>) {
    match node_kubectl() {
        Some(path) => {
            let mut args = Vec::new();
            if let Some(dir) = cluster().env.get("KUBECACHEDIR") {
                args.push(format!("--cache-dir={dir}"));
            }
            args.extend(["alpha".to_string(), "debug".to_string()]);
            (path.to_string_lossy().into_owned(), args)
        }
        None => ("kubectl".to_string(), vec!["debug".to_string()]),
    }
}

/// Seconds from applying session `name` with `spec` to its Ready=True.
fn operator_seconds(ns: &Ns, name: &str, spec: Value) -> R<f64> {
    let t0 = Instant::now();
    ns.session_spec(name, spec)?;
    ns.wait_session(name, "Ready=True", LONG, |v| {
        cond_is(v, "Ready", "True", None)
    })?;
    Ok(t0.elapsed().as_secs_f64())
}

/// Seconds from starting `kubectl debug <pod> <flags> -- sleep 3600` to container `container`
/// of pod `runs_in` running (an ephemeral container when `ephemeral`).
fn kubectl_seconds(
    ns: &Ns,
    pod: &str,
    flags: &[&str],
    runs_in: &str,
    container: &str,
    ephemeral: bool,
) -> R<f64> {
    let (program, mut args) = kubectl_debug();
    let image = format!("--image={}", cluster().busybox());
    let name = format!("--container={container}");
    let common = [
        "-n",
        &ns.name,
        pod,
        &image,
        "--image-pull-policy=IfNotPresent",
        &name,
        "--stdin=false",
        "--tty=false",
    ];
    args.extend(common.iter().chain(flags).map(|a| a.to_string()));
    args.extend(["--", "sleep", "3600"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ns.say(&format!("{program} {}", args.join(" ")));
    let t0 = Instant::now();
    run_ok(&program, &args, LONG)?;
    let statuses = if ephemeral {
        "/status/ephemeralContainerStatuses"
    } else {
        "/status/containerStatuses"
    };
    wait_for(
        &format!("container {container} of pod {runs_in} running"),
        LONG,
        || {
            let p = get_opt(&ns.name, "pod", runs_in)?.ok_or("no such pod yet")?;
            let st = p
                .pointer(statuses)
                .and_then(Value::as_array)
                .and_then(|l| l.iter().find(|c| c["name"] == container).cloned())
                .unwrap_or(Value::Null);
            if st.pointer("/state/running").is_some() {
                Ok(())
            } else {
                Err(format!("status {st}"))
            }
        },
    )?;
    Ok(t0.elapsed().as_secs_f64())
}

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
    let operator = operator_seconds(ns, "vs-copy", spec)?;
    let flags = ["--copy-to=kubectl-copy", "--share-processes"];
    let kubectl = kubectl_seconds(ns, &pod, &flags, "kubectl-copy", "debugger", false)?;
    Shell::new(ns, "vs-copy-copy", SHELL).sees_the_app(Pids::Pod)?;
    Shell::new(ns, "kubectl-copy", "debugger").sees_the_app(Pids::Pod)?;
    figure("copy-vs-kubectl-debug", operator, kubectl);

    let spec = json!({"target": target, "mode": "Ephemeral", "ttl": "15m"});
    let operator = operator_seconds(ns, "vs-eph", spec)?;
    let shell = s(&ns.dbgs("vs-eph")?, "/status/shellContainer").to_string();
    let flags = ["--target=nginx"];
    let kubectl = kubectl_seconds(ns, &pod, &flags, &pod, "debugger", true)?;
    Shell::new(ns, &pod, &shell).sees_the_app(Pids::App)?;
    Shell::new(ns, &pod, "debugger").sees_the_app(Pids::App)?;
    figure("ephemeral-vs-kubectl-debug", operator, kubectl);

    ns.delete_session("vs-copy")?;
    ns.wait_pod_gone("vs-copy-copy")?;
    ns.delete_session("vs-eph")
}
