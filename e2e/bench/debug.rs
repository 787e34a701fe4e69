//! Copy and Ephemeral beside `kubectl debug` (the cluster's v1.20 `kubectl alpha debug`), on the
//! same pod of a 1-replica nginx Deployment on the real node, in turns: time to a usable shell.
//! The operator is asked two ways: by its own command, `kubectl debugsession <target> --no-attach`
//! (which returns when the shell is ready, as `kubectl debug -it` attaches when it runs), and by
//! `kubectl apply` of a DebugSession, timed to Ready=True like `kubectl debug`'s container is
//! timed to running, by the shared code of the operator suite's side-by-side scenario
//! ([`session_ready_seconds`], [`kubectl_debug_seconds`]).

use std::time::Duration;

use debugsession_e2e::*;

use crate::{Bench, random_pause};

const DEPLOY: &str = "e2e/fixtures/nginx-deployment.yaml";

/// A pause before each timed side: a shell added to the pod within a second of the previous
/// one's start waits for the kubelet's next relist, which would time the side that goes second
/// in a round, not the way it asks.
const SETTLE: Duration = Duration::from_millis(1500);

/// [`SETTLE`] and a random part of up to a second ([`random_pause`]).
fn settle() {
    random_pause(SETTLE);
}

#[derive(Default, Debug)]
pub struct DebugTimes {
    /// `kubectl debugsession ... --no-attach`
    pub copy_plugin: Vec<f64>,
    /// `kubectl apply` to Ready=True
    pub copy_operator: Vec<f64>,
    pub copy_kubectl: Vec<f64>,
    pub ephemeral_plugin: Vec<f64>,
    pub ephemeral_operator: Vec<f64>,
    pub ephemeral_kubectl: Vec<f64>,
}

/// The operator's command (`DEBUGSESSION_PLUGIN_BIN`, default: the release build).
fn plugin() -> String {
    std::env::var("DEBUGSESSION_PLUGIN_BIN").unwrap_or_else(|_| {
        root()
            .join("target/release/kubectl-debugsession")
            .to_string_lossy()
            .into_owned()
    })
}

/// Seconds from starting `kubectl debugsession deploy/nginx --pod <pod> --mode <mode> --name
/// <name> --no-attach` (which returns when the shell is ready) to a watch of the session, started
/// after it, showing Ready=True: the same watch that follows `kubectl debug` and `kubectl apply`
/// on the other sides, so that no side is spared the watch's own start.
fn plugin_seconds(ns: &str, pod: &str, mode: &str, name: &str, ttl: &str) -> R<f64> {
    let t0 = now_epoch();
    run_ok(
        &plugin(),
        &[
            "deploy/nginx",
            "-n",
            ns,
            "--pod",
            pod,
            "--mode",
            mode,
            "--name",
            name,
            "--ttl",
            ttl,
            "--no-attach",
        ],
        LONG,
    )?;
    Ok(seen_ready(ns, name)? - t0)
}

/// Runs `sides` in the order that starts at `round` (mod their number), each after [`settle`];
/// their results in the given order.
fn in_turn(round: usize, sides: &[&dyn Fn() -> R<f64>]) -> R<Vec<f64>> {
    let mut out = vec![0.0; sides.len()];
    for k in 0..sides.len() {
        let i = (round + k) % sides.len();
        settle();
        out[i] = sides[i]()?;
    }
    Ok(out)
}

fn delete_quietly(ns: &str, args: &[&str]) {
    let mut a = vec!["delete", "-n", ns, "--ignore-not-found", "--wait=false"];
    a.extend_from_slice(args);
    let _ = kubectl(&a);
}

pub fn run(b: &Bench, ns: &str) -> R<DebugTimes> {
    let text = render_fixture(DEPLOY, &[("replicas: 2", "replicas: 1")])?;
    k_in(&text, &["apply", "-n", ns, "-f", "-"])?;
    rollout(ns, "deployment/nginx")?;
    let pods = get_json(&["pods", "-n", ns, "-l", "app=nginx"])?;
    let pod = pods["items"]
        .as_array()
        .and_then(|l| l.first())
        .map(|p| s(p, "/metadata/name").to_string())
        .ok_or("Deployment nginx has no pod")?;
    let target = json!({"kind": "Deployment", "name": "nginx", "pod": pod});
    let mut t = DebugTimes::default();
    for round in 0..=b.debug_rounds {
        // Copy
        let copy_plugin = || {
            let name = format!("pcopy-{round}");
            let secs = plugin_seconds(ns, &pod, "copy", &name, "15m");
            delete_quietly(ns, &["debugsession", &name]);
            secs
        };
        let copy_op = || {
            let name = format!("copy-{round}");
            let spec = json!({"target": target, "mode": "Copy", "ttl": "15m"});
            let secs = session_ready_seconds(ns, &name, spec);
            delete_quietly(ns, &["debugsession", &name]);
            secs
        };
        let copy_k = || {
            let copy = format!("kcopy-{round}");
            let to = format!("--copy-to={copy}");
            let secs = kubectl_debug_seconds(
                ns,
                &pod,
                &[&to, "--share-processes"],
                &copy,
                "debugger",
                false,
            );
            delete_quietly(ns, &["pod", &copy, "--grace-period=1"]);
            secs
        };
        let c = in_turn(round, &[&copy_plugin, &copy_op, &copy_k])?;
        // Ephemeral: a container of its own each time (ended ones keep their names).
        let eph_plugin = || {
            let name = format!("peph-{round}");
            let secs = plugin_seconds(ns, &pod, "ephemeral", &name, "2m");
            delete_quietly(ns, &["debugsession", &name]);
            secs
        };
        let eph_op = || {
            let name = format!("eph-{round}");
            let spec = json!({"target": target, "mode": "Ephemeral", "ttl": "2m"});
            let secs = session_ready_seconds(ns, &name, spec);
            delete_quietly(ns, &["debugsession", &name]);
            secs
        };
        let eph_k = || {
            let container = format!("debugger-{round}");
            kubectl_debug_seconds(ns, &pod, &["--target=nginx"], &pod, &container, true)
        };
        let e = in_turn(round, &[&eph_plugin, &eph_op, &eph_k])?;
        b.say(&format!(
            "debug round {round}{}: copy debugsession {:.2}s apply {:.2}s kubectl {:.2}s; ephemeral debugsession {:.2}s apply {:.2}s kubectl {:.2}s",
            if round == 0 { " (warm-up)" } else { "" },
            c[0], c[1], c[2], e[0], e[1], e[2],
        ));
        if round > 0 {
            t.copy_plugin.push(c[0]);
            t.copy_operator.push(c[1]);
            t.copy_kubectl.push(c[2]);
            t.ephemeral_plugin.push(e[0]);
            t.ephemeral_operator.push(e[1]);
            t.ephemeral_kubectl.push(e[2]);
        }
    }
    Ok(t)
}
