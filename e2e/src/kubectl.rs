//! The one kubectl wrapper: commands with the cluster's environment and a timeout, objects read
//! as JSON, events, leases, rollouts, and the namespaces a suite makes and the DebugSessions and
//! namespaces it leaves behind.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{LONG, Poller, R, TIMEOUT, Value, cluster, ensure, env_flag, s};

/// How long one kubectl call may take unless told otherwise.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// Output of a command.
#[derive(Debug, Clone)]
pub struct Out {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Out {
    pub fn both(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs a command with the cluster env, optional stdin, and a timeout (killing it when exceeded).
pub fn run(program: &str, args: &[&str], input: Option<&str>, timeout: Duration) -> Out {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(&cluster().env)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Out {
                ok: false,
                code: None,
                stdout: String::new(),
                stderr: format!("cannot run {program}: {e}"),
                timed_out: false,
            };
        }
    };
    if let Some(text) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        let text = text.to_string();
        thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        });
    }
    let mut so = child.stdout.take().expect("piped stdout");
    let mut se = child.stderr.take().expect("piped stderr");
    let t_out = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let t_err = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() > timeout => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let mut stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    if timed_out {
        stderr.push_str(&format!("\n[timed out after {timeout:?}]"));
    }
    Out {
        ok: !timed_out && status.is_some_and(|s| s.success()),
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
        timed_out,
    }
}

/// [`run`] without stdin: stdout on success, an error naming the command and its output otherwise.
pub fn run_ok(program: &str, args: &[&str], timeout: Duration) -> R<String> {
    stdout_or_error(run(program, args, None, timeout), program, args)
}

/// `kubectl <args>` (60s timeout).
pub fn kubectl(args: &[&str]) -> Out {
    kubectl_for(KUBECTL_TIMEOUT, args)
}

/// `kubectl <args>` with another timeout (for kubectl's own waits: `--timeout=` must fit in it).
pub fn kubectl_for(timeout: Duration, args: &[&str]) -> Out {
    run("kubectl", args, None, timeout)
}

/// `kubectl <args>` with `input` on stdin.
pub fn kubectl_in(input: &str, args: &[&str]) -> Out {
    run("kubectl", args, Some(input), KUBECTL_TIMEOUT)
}

/// `kubectl <args>`, stdout on success, an error naming the command and its stderr otherwise.
pub fn k(args: &[&str]) -> R<String> {
    stdout_or_error(kubectl(args), "kubectl", args)
}

/// [`k`] in namespace `ns`.
pub fn k_ns(ns: &str, args: &[&str]) -> R<String> {
    let mut a = vec!["-n", ns];
    a.extend_from_slice(args);
    k(&a)
}

/// Like [`k`] with stdin.
pub fn k_in(input: &str, args: &[&str]) -> R<String> {
    stdout_or_error(kubectl_in(input, args), "kubectl", args)
}

fn stdout_or_error(out: Out, program: &str, args: &[&str]) -> R<String> {
    if out.ok {
        Ok(out.stdout)
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            out.both().trim()
        ))
    }
}

/// `kubectl get <args> -o json` parsed.
pub fn get_json(args: &[&str]) -> R<Value> {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    let text = k(&a)?;
    serde_json::from_str(&text).map_err(|e| format!("bad JSON from kubectl get {args:?}: {e}"))
}

/// A namespaced object, or None when it does not exist.
pub fn get_opt(ns: &str, resource: &str, name: &str) -> R<Option<Value>> {
    let out = kubectl(&[
        "get",
        "-n",
        ns,
        resource,
        name,
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    if out.ok {
        return serde_json::from_str(&out.stdout)
            .map(Some)
            .map_err(|e| format!("bad JSON: {e}"));
    }
    if out.stderr.contains("NotFound") || out.stderr.contains("not found") {
        return Ok(None);
    }
    Err(format!(
        "kubectl get -n {ns} {resource} {name}: {}",
        out.stderr.trim()
    ))
}

/// A namespaced object that must exist.
pub fn get_obj(ns: &str, resource: &str, name: &str) -> R<Value> {
    get_opt(ns, resource, name)?.ok_or_else(|| format!("{resource}/{name} not found in {ns}"))
}

/// Waits (110s at most) until the rollout of `target` (`kind/name`) in `ns` has finished.
pub fn rollout(ns: &str, target: &str) -> R<()> {
    let out = kubectl_for(
        LONG,
        &["rollout", "status", "-n", ns, target, "--timeout=110s"],
    );
    ensure(out.ok, || {
        format!("rollout of {target} did not finish: {}", out.both())
    })
}

/// The holder of Lease `ns/lease`; an error while it has none.
pub fn lease_holder(ns: &str, lease: &str) -> R<String> {
    let v = get_json(&["lease", lease, "-n", ns])?;
    let holder = s(&v, "/spec/holderIdentity");
    if holder.is_empty() {
        Err("no holder yet".into())
    } else {
        Ok(holder.to_string())
    }
}

/// An event as `(type, reason, message)`.
pub type Ev = (String, String, String);

/// The events (objects as kubectl returns them) whose involved object is `kind/name` in `ns`.
pub fn event_objects(ns: &str, kind: &str, name: &str) -> R<Vec<Value>> {
    let v = get_json(&["events", "-n", ns])?;
    Ok(v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["involvedObject"]["kind"] == kind && e["involvedObject"]["name"] == name)
        .collect())
}

/// Events whose involved object is `kind/name` in `ns`.
pub fn events(ns: &str, kind: &str, name: &str) -> R<Vec<Ev>> {
    Ok(event_objects(ns, kind, name)?
        .iter()
        .map(|e| {
            (
                s(e, "/type").to_string(),
                s(e, "/reason").to_string(),
                s(e, "/message").to_string(),
            )
        })
        .collect())
}

/// The names of the DebugSessions in `ns`.
pub fn session_names(ns: &str) -> R<Vec<String>> {
    let v = get_json(&["debugsessions", "-n", ns])?;
    Ok(v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| s(i, "/metadata/name").to_string())
                .collect()
        })
        .unwrap_or_default())
}

/// Deletes every DebugSession of `ns`, waiting (60s at most) for their finalizers to run.
pub fn delete_sessions(ns: &str) -> Out {
    kubectl_for(
        Duration::from_secs(70),
        &[
            "delete",
            "--ignore-not-found",
            "--wait=true",
            "--timeout=60s",
            "-n",
            ns,
            "debugsessions",
            "--all",
        ],
    )
}

/// Removes the finalizers of DebugSession `ns/name` (as the harness's user), so that a session
/// whose operator cannot run them does not stay.
pub fn strip_finalizers(ns: &str, name: &str) -> Out {
    kubectl(&[
        "patch",
        "-n",
        ns,
        "debugsession",
        name,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
}

/// Creates namespace `name` and waits until its default ServiceAccount, which pods need, exists
/// (trying as often as `poller` says).
pub fn create_namespace(name: &str, poller: Poller) -> R<()> {
    k(&["create", "namespace", name])?;
    poller.until("the default ServiceAccount", TIMEOUT, || {
        k(&["get", "serviceaccount", "default", "-n", name]).map(|_| ())
    })
}

/// Takes a scenario's namespace away: its DebugSessions first (their finalizers dropped when the
/// operator could not run them, so that the namespace does not hang), then the namespace (not
/// waited for). With `E2E_KEEP=1`, the namespace of a failed scenario stays for inspection.
pub fn remove_namespace(ns: &str, failed: bool) {
    if failed && env_flag("E2E_KEEP") {
        println!("  (kept namespace {ns} for inspection)");
        return;
    }
    if !delete_sessions(ns).ok {
        for name in session_names(ns).unwrap_or_default() {
            let _ = strip_finalizers(ns, &name);
        }
    }
    let _ = kubectl(&["delete", "namespace", ns, "--wait=false"]);
}
