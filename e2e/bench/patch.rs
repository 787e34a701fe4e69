//! Patch mode beside doing it by hand, alternating rounds on one 2-replica nginx Deployment on
//! the real node: `kubectl patch` adding the shell and `shareProcessNamespace` until the rollout
//! is complete, vs `kubectl apply` of a DebugSession until `Ready=True` (`kubectl wait`, a watch,
//! as `kubectl rollout status` is); the reverts: a JSON patch removing both until the rollout is
//! complete, vs deleting the session (its finalizer reverts) until the rollout is complete.

use std::time::{Duration, Instant};

use debugsession_e2e::*;

use crate::{Bench, random_pause};

const DEPLOY: &str = "e2e/fixtures/nginx-deployment.yaml";

/// The samples of each side, one per measured round.
#[derive(Default, Debug)]
pub struct PatchTimes {
    pub manual_apply: Vec<f64>,
    pub operator_ready: Vec<f64>,
    /// From the operator's `kubectl apply` to its rollout complete (after Ready=True).
    pub operator_rolled: Vec<f64>,
    pub manual_revert: Vec<f64>,
    pub operator_revert: Vec<f64>,
}

/// The shell the operator adds (its defaults: busybox, stdin+tty, the `general` profile's
/// SYS_PTRACE) and `shareProcessNamespace`, as a strategic-merge patch of the Deployment.
fn shell_patch() -> String {
    json!({"spec": {"template": {"spec": {
        "shareProcessNamespace": true,
        "containers": [{
            "name": SHELL,
            "image": cluster().busybox(),
            "imagePullPolicy": "IfNotPresent",
            "stdin": true,
            "tty": true,
            "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}},
        }],
    }}}})
    .to_string()
}

/// A JSON patch taking the shell and `shareProcessNamespace` out again (testing the names first).
fn removal_patch(template: &Value) -> R<String> {
    let idx = containers(template)
        .iter()
        .position(|c| c["name"] == SHELL)
        .ok_or("no shell in the template")?;
    Ok(json!([
        {"op": "test", "path": format!("/spec/template/spec/containers/{idx}/name"), "value": SHELL},
        {"op": "remove", "path": format!("/spec/template/spec/containers/{idx}")},
        {"op": "remove", "path": "/spec/template/spec/shareProcessNamespace"},
    ])
    .to_string())
}

fn template(ns: &str) -> R<Value> {
    Ok(get_obj(ns, "deployment", "nginx")?["spec"]["template"].clone())
}

/// Before each timed step: the pods of the last rollout gone (none terminating), then a random
/// pause of up to a second ([`random_pause`]), so that each step starts on a quiet Deployment
/// and at a random phase of the kubelet's relist and the readiness probe.
fn settle(ns: &str) -> R<()> {
    wait_for("the last rollout's pods to be gone", LONG, || {
        let pods = get_json(&["pods", "-n", ns])?;
        let terminating = pods["items"].as_array().map_or(0, |l| {
            l.iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_string())
                .count()
        });
        if terminating == 0 {
            Ok(())
        } else {
            Err(format!("{terminating} pods terminating"))
        }
    })?;
    random_pause(Duration::ZERO);
    Ok(())
}

fn manual_apply(ns: &str) -> R<f64> {
    let t0 = Instant::now();
    k_ns(ns, &["patch", "deployment", "nginx", "-p", &shell_patch()])?;
    rollout(ns, "deployment/nginx")?;
    Ok(t0.elapsed().as_secs_f64())
}

fn manual_revert(ns: &str) -> R<f64> {
    let patch = removal_patch(&template(ns)?)?;
    let t0 = Instant::now();
    k_ns(
        ns,
        &["patch", "deployment", "nginx", "--type=json", "-p", &patch],
    )?;
    rollout(ns, "deployment/nginx")?;
    Ok(t0.elapsed().as_secs_f64())
}

/// (to Ready=True, to the rollout complete)
fn operator_apply(ns: &str, name: &str) -> R<(f64, f64)> {
    let spec = json!({"target": {"kind": "Deployment", "name": "nginx"}, "ttl": "15m"});
    let t0 = Instant::now();
    apply_debugsession(ns, name, spec)?;
    let out = kubectl_for(
        LONG,
        &[
            "wait",
            "-n",
            ns,
            "--for=condition=Ready",
            &format!("debugsession/{name}"),
            "--timeout=110s",
        ],
    );
    ensure(out.ok, || format!("{name} not Ready: {}", out.both()))?;
    let ready = t0.elapsed().as_secs_f64();
    rollout(ns, "deployment/nginx")?;
    Ok((ready, t0.elapsed().as_secs_f64()))
}

fn operator_revert(ns: &str, name: &str) -> R<f64> {
    let t0 = Instant::now();
    let out = kubectl_for(
        LONG,
        &["delete", "-n", ns, "debugsession", name, "--timeout=110s"],
    );
    ensure(out.ok, || format!("deleting {name}: {}", out.both()))?;
    rollout(ns, "deployment/nginx")?;
    Ok(t0.elapsed().as_secs_f64())
}

fn check_clean(ns: &str, original: &Value) -> R<()> {
    template_diff(original, &template(ns)?)
}

pub fn run(b: &Bench, ns: &str) -> R<PatchTimes> {
    let text = render_fixture(DEPLOY, &[])?;
    k_in(&text, &["apply", "-n", ns, "-f", "-"])?;
    rollout(ns, "deployment/nginx")?;
    let original = template(ns)?;
    let mut t = PatchTimes::default();
    // Round 0 warms both paths up (kubectl's discovery cache, the operator's first reconcile)
    // and is not counted.
    for round in 0..=b.rounds {
        let manual_first = round % 2 == 0;
        let name = format!("bench-{round}");
        let manual = || -> R<(f64, f64)> {
            settle(ns)?;
            let a = manual_apply(ns)?;
            settle(ns)?;
            let r = manual_revert(ns)?;
            check_clean(ns, &original)?;
            Ok((a, r))
        };
        let operator = || -> R<(f64, f64, f64)> {
            settle(ns)?;
            let (ready, rolled) = operator_apply(ns, &name)?;
            settle(ns)?;
            let r = operator_revert(ns, &name)?;
            check_clean(ns, &original)?;
            Ok((ready, rolled, r))
        };
        let (m, o) = if manual_first {
            let m = manual()?;
            (m, operator()?)
        } else {
            let o = operator()?;
            (manual()?, o)
        };
        b.say(&format!(
            "patch round {round}{}: manual {:.2}s/{:.2}s, operator {:.2}s (rolled {:.2}s)/{:.2}s",
            if round == 0 { " (warm-up)" } else { "" },
            m.0,
            m.1,
            o.0,
            o.1,
            o.2
        ));
        if round > 0 {
            t.manual_apply.push(m.0);
            t.manual_revert.push(m.1);
            t.operator_ready.push(o.0);
            t.operator_rolled.push(o.1);
            t.operator_revert.push(o.2);
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_patch_takes_out_the_shell_at_its_index_and_the_shared_namespace() {
        let t = json!({"spec": {"containers": [{"name": "nginx"}, {"name": SHELL}]}});
        let p: Value = serde_json::from_str(&removal_patch(&t).unwrap()).unwrap();
        assert_eq!(p[0]["path"], "/spec/template/spec/containers/1/name");
        assert_eq!(p[1]["path"], "/spec/template/spec/containers/1");
        assert_eq!(p[2]["path"], "/spec/template/spec/shareProcessNamespace");
        assert!(removal_patch(&json!({"spec": {"containers": []}})).is_err());
    }
}
