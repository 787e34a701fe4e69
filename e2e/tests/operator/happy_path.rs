//! The README's walk-through: a session on a 2-replica Deployment becomes Ready, its pods carry the
//! shell, `kubectl get`/`describe` tell about it, the shell sees and signals the app and reads its
//! files, `kubectl attach -it` works; deleting the session brings the Deployment back.

use std::time::{Duration, Instant};

use debugsession_e2e::*;

use crate::Suite;
use crate::ns::{Ns, pod_name};
use crate::pods::{nginx, wait_pods_with_shell, wait_pods_without_shell};
use crate::shell::{Pids, Shell};

const SESSION: &str = "nginx-debug";

pub fn happy_path(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 2)?;
    let old = ns.all_pod_names("app=nginx")?;
    let uid = s(&ns.get("deployment", "nginx")?, "/metadata/uid").to_string();
    apply_until_ready(ns)?;
    status_while_active(ns, &uid)?;
    let (v, pods) = pods_rolled(ns, &old)?;
    kubectl_get_columns(ns, &v)?;
    events_and_describe(ns)?;
    let pod = &pods[0];
    Shell::new(ns, pod, SHELL).reaches_the_app(Pids::Pod)?;
    attach_and_detach(ns, pod)?;
    ns.delete_session(SESSION)?;
    ns.assert_reverted("deployment", "nginx", &original)?;
    wait_pods_without_shell(ns, "app=nginx")
}

/// The README sample applied; `kubectl wait --for=condition=Ready` returns (FIGURE: how fast).
fn apply_until_ready(ns: &Ns) -> R<()> {
    let t0 = Instant::now();
    ns.session(SESSION, "15m")?;
    let target = format!("debugsession/{SESSION}");
    let out = kubectl_for(
        LONG,
        &[
            "wait",
            "-n",
            &ns.name,
            "--for=condition=Ready",
            &target,
            "--timeout=110s",
        ],
    );
    let secs = t0.elapsed().as_secs_f64();
    ensure(out.ok, || {
        format!(
            "kubectl wait --for=condition=Ready failed: {}; session: {}",
            out.both().trim(),
            ns.dbgs(SESSION).map(|v| summary(&v)).unwrap_or_default()
        )
    })?;
    println!("FIGURE apply-to-ready-seconds={secs:.1}");
    Ok(())
}

/// Active, 2/2 ready, the target with its uid, start and expiry times, not reverted; the shell is
/// in the Deployment's template.
fn status_while_active(ns: &Ns, uid: &str) -> R<()> {
    let v = ns.dbgs(SESSION)?;
    ensure(phase_is(&v, "Active"), || {
        format!("not Active after Ready: {}", summary(&v))
    })?;
    ensure(s(&v, "/status/readyPods") == "2/2", || {
        format!("readyPods: {}", summary(&v))
    })?;
    ensure(s(&v, "/status/targetRef") == "Deployment/nginx", || {
        format!("targetRef {}", v["status"]["targetRef"])
    })?;
    ensure(
        s(&v, "/status/target/kind") == "Deployment"
            && s(&v, "/status/target/name") == "nginx"
            && s(&v, "/status/target/uid") == uid,
        || {
            format!(
                "status.target {} (deployment uid {uid})",
                v["status"]["target"]
            )
        },
    )?;
    for f in ["startedAt", "expiresAt"] {
        parse_time(s(&v, &format!("/status/{f}")))?;
    }
    let reverted = cond_summary(&v, "Reverted");
    ensure(reverted.starts_with("Reverted=False"), || {
        format!("while Active: {reverted}")
    })?;
    ns.assert_applied("deployment", "nginx", SESSION)?;
    Ok(())
}

/// Pods rolled: new pods carry the shell, the old ones are gone; status.pods lists them, each
/// ready with its `kubectl attach` line. Returns the session and the pods' names (sorted).
fn pods_rolled(ns: &Ns, old: &[String]) -> R<(Value, Vec<String>)> {
    let pods = wait_pods_with_shell(ns, "app=nginx", 2, old)?;
    let mut names: Vec<String> = pods.iter().map(pod_name).collect();
    names.sort();
    let v = ns.wait_session(SESSION, "status.pods = the live pods", TIMEOUT, |v| {
        let mut listed: Vec<String> = v["status"]["pods"]
            .as_array()
            .map(|a| a.iter().map(|p| s(p, "/name").to_string()).collect())
            .unwrap_or_default();
        listed.sort();
        listed == names
    })?;
    for p in v["status"]["pods"].as_array().cloned().unwrap_or_default() {
        let want = format!(
            "kubectl attach -it -n {} {} -c {SHELL}",
            ns.name,
            s(&p, "/name")
        );
        ensure(p["ready"] == true && s(&p, "/attach") == want, || {
            format!("status.pods entry {p}, want ready and attach {want:?}")
        })?;
    }
    Ok((v, names))
}

/// `kubectl get debugsessions` columns, and `-o wide` with the message.
fn kubectl_get_columns(ns: &Ns, v: &Value) -> R<()> {
    let table = ns.k(&["get", "debugsessions"])?;
    let header = table.lines().next().unwrap_or("");
    for col in ["NAME", "TARGET", "MODE", "PHASE", "EXPIRES", "READY", "AGE"] {
        ensure(header.contains(col), || {
            format!("kubectl get header lacks {col}: {table}")
        })?;
    }
    let row = table.lines().find(|l| l.starts_with(SESSION)).unwrap_or("");
    let cols: Vec<&str> = row.split_whitespace().collect();
    ensure(
        cols.get(1) == Some(&"Deployment/nginx")
            && cols.get(2) == Some(&"Patch")
            && cols.get(3) == Some(&"Active")
            && cols.contains(&"2/2"),
        || format!("kubectl get row wrong: {table}"),
    )?;
    let wide = ns.k(&["get", "dbgs", "-o", "wide"])?;
    let message = s(v, "/status/message");
    ensure(
        wide.lines().next().unwrap_or("").contains("MESSAGE")
            && !message.is_empty()
            && wide.contains(message),
        || format!("-o wide lacks MESSAGE column / message {message:?}: {wide}"),
    )
}

/// Events Applied and Active, shown by `kubectl describe`.
fn events_and_describe(ns: &Ns) -> R<()> {
    ns.wait_event(SESSION, "Applied", TIMEOUT)?;
    ns.wait_event(SESSION, "Active", TIMEOUT)?;
    let describe = ns.k(&["describe", "debugsession", SESSION])?;
    ensure(
        describe.contains("Applied") && describe.contains("Active"),
        || format!("describe lacks Applied/Active events: {describe}"),
    )
}

/// `kubectl attach -it` (through a pseudo-terminal) runs a command, then Ctrl-P Ctrl-Q detaches.
fn attach_and_detach(ns: &Ns, pod: &str) -> R<()> {
    let drive = root().join("e2e/cluster/tty-drive");
    let out = run(
        &drive.to_string_lossy(),
        &[
            "echo hello-$((6*7))",
            "\\x10\\x11",
            "--",
            "kubectl",
            "attach",
            "-it",
            "-n",
            &ns.name,
            pod,
            "-c",
            SHELL,
        ],
        None,
        Duration::from_secs(60),
    );
    ensure(out.stdout.contains("hello-42"), || {
        format!("kubectl attach -it: no echo output: {}", out.both())
    })
}
