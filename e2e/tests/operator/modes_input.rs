//! What the modes refuse, one row each: the session fails with a reason and a message saying
//! why (or `kubectl apply` refuses it with that message, when the admission webhook runs), and
//! nothing is created: no copy, no ephemeral container, the Deployment and every pod of the
//! namespace as they were.

use debugsession_e2e::*;

use crate::Suite;
use crate::ns::Ns;
use crate::pods::{Untouched, bare_nginx, nginx};

/// A session of Deployment nginx (TTL 15m) with the fields of `extra` added; `target` fields
/// merge into the target.
fn on_deployment(extra: Value) -> Value {
    let mut spec = json!({"target": {"kind": "Deployment", "name": "nginx"}, "ttl": "15m"});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        match (k.as_str(), v) {
            ("target", Value::Object(t)) => {
                for (tk, tv) in t {
                    spec["target"][tk] = tv;
                }
            }
            (_, v) => spec[k] = v,
        }
    }
    spec
}

pub fn mode_bad_input(ns: &Ns, _: &Suite) -> R<()> {
    nginx(ns, 1)?;
    bare_nginx(ns, "solo")?;
    let untouched = Untouched::take(ns, "deployment", "nginx", "")?;
    let pod = ns
        .all_pod_names("app=nginx")?
        .into_iter()
        .next()
        .ok_or("Deployment nginx has no pod")?;
    // An image the policy allows, so that what is refused is the container name.
    let busybox = cluster().busybox();
    let not_patch = format!("spec.target.pod \"{pod}\" does not apply to mode Patch");
    // (case, spec, Ready reason, words of the message)
    let rows: Vec<(&str, Value, &str, Vec<&str>)> = vec![
        (
            "patch-on-pod",
            json!({"target": {"kind": "Pod", "name": "solo"}, "mode": "Patch", "ttl": "15m"}),
            "ModeNotSupported",
            vec!["mode Patch cannot act on Pod solo"],
        ),
        (
            "pod-not-found-ephemeral",
            on_deployment(json!({"target": {"pod": "no-such-pod"}, "mode": "Ephemeral"})),
            "PodNotFound",
            vec!["target.pod no-such-pod not found"],
        ),
        (
            "pod-not-found-copy",
            on_deployment(json!({"target": {"pod": "no-such-pod"}, "mode": "Copy"})),
            "PodNotFound",
            vec!["target.pod no-such-pod not found"],
        ),
        (
            "set-image-unknown-container",
            on_deployment(json!({"mode": "Copy", "copy": {"setImage": {"sidecar": busybox}}})),
            "InvalidOptions",
            vec!["setImage names container \"sidecar\"", "nginx"],
        ),
        (
            "profile-sysadmin",
            on_deployment(json!({"mode": "Copy", "profile": "sysadmin"})),
            "ProfileNotAllowed",
            vec!["spec.profile sysadmin is not allowed"],
        ),
        (
            "profile-netadmin",
            on_deployment(json!({"mode": "Copy", "profile": "netadmin"})),
            "ProfileNotAllowed",
            vec!["spec.profile netadmin is not allowed"],
        ),
        (
            "copy-options-patch",
            on_deployment(json!({"mode": "Patch", "copy": {"keepLabels": true}})),
            "InvalidOptions",
            vec!["spec.copy applies to mode Copy only"],
        ),
        (
            "copy-options-ephemeral",
            on_deployment(json!({"mode": "Ephemeral", "copy": {"keepProbes": true}})),
            "InvalidOptions",
            vec!["spec.copy applies to mode Copy only"],
        ),
        (
            "target-pod-patch",
            on_deployment(json!({"target": {"pod": pod}, "mode": "Patch"})),
            "InvalidOptions",
            vec![not_patch.as_str()],
        ),
    ];
    let mut failures = Vec::new();
    for (case, spec, reason, words) in rows {
        if let Err(e) = ns.expect_refused(case, spec, reason, &words) {
            failures.push(format!("{case}: {e}"));
        }
    }
    if let Err(e) = untouched.check(ns, true) {
        failures.push(format!("something was created or changed: {e}"));
    }
    ensure(failures.is_empty(), || failures.join(" | "))
}
