//! Timing a usable shell, the operator's way and `kubectl debug`'s, on the same pod: what the
//! side-by-side scenario of the operator suite and `make bench` measure alike. Both clocks start
//! before the `kubectl` process that asks, and both sides are then watched alike
//! (`kubectl get --watch`, [`watch_until`]): the time is when the watch delivers the object that
//! says so, not the next tick of a poll.

use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::{LONG, R, Value, cluster, cond_is, ensure, json, kubectl_in, node_kubectl};
use crate::{now_epoch, run_ok};

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

/// Seconds from `kubectl apply` of DebugSession `ns/name` with `spec` to a watch of it showing
/// Ready=True.
pub fn session_ready_seconds(ns: &str, name: &str, spec: Value) -> R<f64> {
    let t0 = now_epoch();
    apply_debugsession(ns, name, spec)?;
    Ok(seen_ready(ns, name)? - t0)
}

/// When (epoch seconds) a watch of DebugSession `ns/name`, started now, shows it Ready=True.
pub fn seen_ready(ns: &str, name: &str) -> R<f64> {
    watch_until(
        &["get", "debugsession", name, "-n", ns],
        &format!("DebugSession {ns}/{name} Ready=True"),
        LONG,
        |v| cond_is(v, "Ready", "True", None),
    )
}

/// When (epoch seconds) `kubectl <get_args> --watch -o json` first prints an object for which
/// `done` holds; an error when it does not within `timeout`, or the watch ends first.
pub fn watch_until(
    get_args: &[&str],
    what: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool + Send + 'static,
) -> R<f64> {
    let mut child = Command::new("kubectl")
        .args(get_args)
        .args(["--watch", "-o", "json"])
        .envs(&cluster().env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("kubectl {}: {e}", get_args.join(" ")))?;
    let out = child.stdout.take().ok_or("kubectl without stdout")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let objects = serde_json::Deserializer::from_reader(BufReader::new(out));
        for v in objects.into_iter::<Value>() {
            match v {
                Ok(v) if done(&v) => {
                    let _ = tx.send(now_epoch());
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let seen = rx.recv_timeout(timeout);
    let _ = child.kill();
    let _ = child.wait();
    seen.map_err(|e| match e {
        mpsc::RecvTimeoutError::Timeout => format!("{what}: not seen within {timeout:?}"),
        mpsc::RecvTimeoutError::Disconnected => format!("{what}: the watch ended before it"),
    })
}

/// Whether container `container` of `pod` (an ephemeral container when `ephemeral`) runs.
fn container_running(pod: &Value, container: &str, ephemeral: bool) -> bool {
    let statuses = if ephemeral {
        "/status/ephemeralContainerStatuses"
    } else {
        "/status/containerStatuses"
    };
    pod.pointer(statuses)
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|c| c["name"] == container))
        .is_some_and(|c| c.pointer("/state/running").is_some())
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
/// to a watch of pod `runs_in` showing container `container` running (an ephemeral container
/// when `ephemeral`).
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
    let t0 = now_epoch();
    run_ok(&program, &args, LONG)?;
    let name = container.to_string();
    let seen = watch_until(
        &["get", "pod", runs_in, "-n", ns],
        &format!("container {container} of pod {ns}/{runs_in} running"),
        LONG,
        move |p| container_running(p, &name, ephemeral),
    )?;
    Ok(seen - t0)
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
