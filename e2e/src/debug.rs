//! Timing a usable shell, the operator's way and `kubectl debug`'s, on the same pod: what the
//! side-by-side scenario of the operator suite and `make bench` measure alike. Both sides are
//! polled every [`POLL`](crate::POLL) and both clocks start before the `kubectl` process that asks.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{LONG, R, Value, cluster, cond_is, ensure, get_opt, json, kubectl_in, node_kubectl};
use crate::{WAIT, run_ok};

/// `kubectl debug` as the cluster's own kubectl runs it: `alpha debug` of the v1.20 kubectl of
/// the local cluster (with the cluster's discovery cache), else the installed kubectl's `debug`.
pub fn kubectl_debug() -> (String, Vec<String>) {
    kubectl_debug_with(node_kubectl())
}

fn kubectl_debug_with(node: Option<PathBuf>) -> (String, Vec<String>) {
    match node {
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

/// `kubectl apply` of DebugSession `ns/name` with `spec` (JSON); the apply must succeed.
pub fn apply_debugsession(ns: &str, name: &str, spec: Value) -> R<()> {
    let obj = json!({
        "apiVersion": "debugsession.dev/v1alpha1",
        "kind": "DebugSession",
        "metadata": {"name": name},
        "spec": spec,
    });
    let out = kubectl_in(&obj.to_string(), &["apply", "-n", ns, "-f", "-"]);
    ensure(out.ok, || {
        format!(
            "kubectl apply of DebugSession {name} failed: {}",
            out.both()
        )
    })
}

/// Seconds from `kubectl apply` of DebugSession `ns/name` with `spec` to its Ready=True (polled
/// every [`POLL`](crate::POLL)).
pub fn session_ready_seconds(ns: &str, name: &str, spec: Value) -> R<f64> {
    let t0 = Instant::now();
    apply_debugsession(ns, name, spec)?;
    WAIT.session(ns, name, "Ready=True", LONG, |v| {
        cond_is(v, "Ready", "True", None)
    })?;
    Ok(t0.elapsed().as_secs_f64())
}

/// Waits until container `container` of pod `ns/pod` runs (an ephemeral container when
/// `ephemeral`), polling every [`POLL`](crate::POLL).
pub fn wait_container_running(
    ns: &str,
    pod: &str,
    container: &str,
    ephemeral: bool,
    timeout: Duration,
) -> R<()> {
    let statuses = if ephemeral {
        "/status/ephemeralContainerStatuses"
    } else {
        "/status/containerStatuses"
    };
    WAIT.until(
        &format!("container {container} of pod {pod} running"),
        timeout,
        || {
            let p = get_opt(ns, "pod", pod)?.ok_or("no such pod yet")?;
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
    )
}

/// The arguments of `kubectl debug <pod> <flags> -- sleep 3600` in namespace `ns` with the
/// cluster's busybox as container `container` (no stdin, no tty).
pub fn kubectl_debug_args(ns: &str, pod: &str, flags: &[&str], container: &str) -> Vec<String> {
    let (_, mut args) = kubectl_debug();
    let common = [
        "-n".to_string(),
        ns.to_string(),
        pod.to_string(),
        format!("--image={}", cluster().busybox()),
        "--image-pull-policy=IfNotPresent".to_string(),
        format!("--container={container}"),
        "--stdin=false".to_string(),
        "--tty=false".to_string(),
    ];
    args.extend(common);
    args.extend(flags.iter().map(|a| a.to_string()));
    args.extend(["--", "sleep", "3600"].map(String::from));
    args
}

/// Seconds from starting `kubectl debug <pod> <flags> -- sleep 3600` (see [`kubectl_debug_args`])
/// to container `container` of pod `runs_in` running (an ephemeral container when `ephemeral`).
pub fn kubectl_debug_seconds(
    ns: &str,
    pod: &str,
    flags: &[&str],
    runs_in: &str,
    container: &str,
    ephemeral: bool,
) -> R<f64> {
    let (program, _) = kubectl_debug();
    let args = kubectl_debug_args(ns, pod, flags, container);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let t0 = Instant::now();
    run_ok(&program, &args, LONG)?;
    wait_container_running(ns, runs_in, container, ephemeral, LONG)?;
    Ok(t0.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_debug_is_alpha_debug_of_the_node_kubectl_else_debug() {
        let (program, args) = kubectl_debug_with(Some(PathBuf::from("/c/kubectl")));
        assert_eq!(program, "/c/kubectl");
        assert_eq!(&args[args.len() - 2..], ["alpha", "debug"]);
        let (program, args) = kubectl_debug_with(None);
        assert_eq!(
            (program.as_str(), args),
            ("kubectl", vec!["debug".to_string()])
        );
    }
}
