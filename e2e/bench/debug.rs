//! Copy and Ephemeral beside `kubectl debug` (the cluster's v1.20 `kubectl alpha debug`), on the
//! same pod of a 1-replica nginx Deployment on the real node, alternating: time to a usable shell,
//! both sides timed by the shared code of the operator suite's side-by-side scenario
//! ([`session_ready_seconds`], [`kubectl_debug_seconds`]).

use std::time::Duration;

use debugsession_e2e::*;

use crate::Bench;

const DEPLOY: &str = "e2e/fixtures/nginx-deployment.yaml";

/// A pause before each timed side: a shell added to the pod within a second of the previous
/// one's start waits for the kubelet's next relist, which would time the side that goes second
/// in a round, not the way it asks.
const SETTLE: Duration = Duration::from_millis(1500);

/// [`SETTLE`] and a random part of up to a second: the kubelet reports a started container at
/// its next relist (every second), and with pauses of a fixed length each side would meet that
/// clock at the same phase round after round; at random phases both sides draw alike.
fn settle() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // The low digits of the clock, mixed: a phase between 0 and 1 s.
    let jitter = u64::from(nanos.wrapping_mul(2_654_435_761) % 1_000_000_000);
    std::thread::sleep(SETTLE + Duration::from_nanos(jitter));
}

#[derive(Default, Debug)]
pub struct DebugTimes {
    pub copy_operator: Vec<f64>,
    pub copy_kubectl: Vec<f64>,
    pub ephemeral_operator: Vec<f64>,
    pub ephemeral_kubectl: Vec<f64>,
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
        let operator_first = round % 2 == 0;
        // Copy
        let copy_op = || {
            settle();
            let name = format!("copy-{round}");
            let spec = json!({"target": target, "mode": "Copy", "ttl": "15m"});
            let secs = session_ready_seconds(ns, &name, spec);
            delete_quietly(ns, &["debugsession", &name]);
            secs
        };
        let copy_k = || {
            settle();
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
        let (co, ck) = if operator_first {
            let o = copy_op()?;
            (o, copy_k()?)
        } else {
            let k = copy_k()?;
            (copy_op()?, k)
        };
        // Ephemeral: a container of its own each time (ended ones keep their names).
        let eph_op = || {
            settle();
            let name = format!("eph-{round}");
            let spec = json!({"target": target, "mode": "Ephemeral", "ttl": "2m"});
            let secs = session_ready_seconds(ns, &name, spec);
            delete_quietly(ns, &["debugsession", &name]);
            secs
        };
        let eph_k = || {
            settle();
            let container = format!("debugger-{round}");
            kubectl_debug_seconds(ns, &pod, &["--target=nginx"], &pod, &container, true)
        };
        let (eo, ek) = if operator_first {
            let o = eph_op()?;
            (o, eph_k()?)
        } else {
            let k = eph_k()?;
            (eph_op()?, k)
        };
        b.say(&format!(
            "debug round {round}{}: copy operator {co:.2}s kubectl {ck:.2}s; ephemeral operator {eo:.2}s kubectl {ek:.2}s",
            if round == 0 { " (warm-up)" } else { "" },
        ));
        if round > 0 {
            t.copy_operator.push(co);
            t.copy_kubectl.push(ck);
            t.ephemeral_operator.push(eo);
            t.ephemeral_kubectl.push(ek);
        }
    }
    Ok(t)
}
