//! Sessions and workloads as the admission scenarios see them: the names they share, manifests,
//! reads, patches and waits, stamps, and snapshots of a Deployment to compare with later.

use std::time::Duration;

use debugsession_e2e::*;

pub const REQUESTER: &str = "debugsession.dev/requester";
pub const SIGNATURE: &str = "debugsession.dev/requester-signature";
pub const SPEC_DIGEST: &str = "debugsession.dev/spec-digest";
/// Every stamp annotation starts with this.
const STAMP_PREFIX: &str = "debugsession.dev/";
pub const FINALIZER: &str = "debugsession.dev/revert";
/// How long the suite waits for an Event.
pub const EVENT_WAIT: Duration = Duration::from_secs(30);

/// Deployment held by the `full` user's sessions RUNNING (Active) and PENDING (waiting behind it).
pub const VICTIM: &str = "victim";
pub const APP_CONTAINER: &str = "nginx";
pub const INIT_CONTAINER: &str = "setup";
pub const RUNNING: &str = "victim-running";
pub const PENDING: &str = "victim-pending";
/// Deployment that no session may touch: the target of redirected and copied sessions.
pub const OTHER: &str = "other";
/// Deployment and session of the same name, whose finalizer the admin strips while the operator
/// is frozen (ORPHAN_LIVE) or stopped (ORPHAN_STOPPED).
pub const ORPHAN_LIVE: &str = "orphan-live";
pub const ORPHAN_STOPPED: &str = "orphan-stopped";
/// A Secret in the suite's namespace that only the admin may read.
pub const SECRET: &str = "adm-secret";

pub fn session_yaml(name: &str, spec: &str, annotations: &str) -> String {
    format!(
        "apiVersion: debugsession.dev/v1alpha1\nkind: DebugSession\nmetadata:\n  name: {name}\n{annotations}spec:\n{spec}"
    )
}

/// `spec.target` (YAML) naming Deployment `name`.
pub fn target(name: &str) -> String {
    format!("  target:\n    kind: Deployment\n    name: {name}\n")
}

/// A DebugSession as JSON (annotation values may hold anything, e.g. a copied stamp).
pub fn session_json(name: &str, spec: Value, annotations: Value) -> String {
    json!({
        "apiVersion": "debugsession.dev/v1alpha1",
        "kind": "DebugSession",
        "metadata": {"name": name, "annotations": annotations},
        "spec": spec,
    })
    .to_string()
}

/// `{target: Deployment <name>}` with a TTL.
pub fn spec_for(deployment: &str, ttl: &str) -> Value {
    json!({"target": {"kind": "Deployment", "name": deployment}, "ttl": ttl})
}

/// `kubectl create -f -` in `ns`, as `user` (None: the cluster admin).
pub fn create_as(ns: &str, user: Option<&str>, manifest: &str) -> R<String> {
    let mut args = vec!["create", "-n", ns, "-f", "-"];
    if let Some(u) = user {
        args.extend(["--as", u]);
    }
    k_in(manifest, &args)
}

/// `kubectl patch` of a session with a patch of `kind` (merge, json), as `user` (None: the admin).
pub fn patch_session(ns: &str, name: &str, user: Option<&str>, kind: &str, patch: &str) -> Out {
    let mut args = vec![
        "patch",
        "-n",
        ns,
        "debugsession",
        name,
        "--type",
        kind,
        "-p",
        patch,
    ];
    if let Some(u) = user {
        args.extend(["--as", u]);
    }
    kubectl(&args)
}

/// Deletes a session and waits (up to `timeout`, e.g. `30s`) until it is gone.
pub fn delete_session(ns: &str, name: &str, timeout: &str) -> R<()> {
    let timeout = format!("--timeout={timeout}");
    k(&[
        "delete",
        "-n",
        ns,
        "debugsession",
        name,
        "--wait=true",
        &timeout,
    ])
    .map(|_| ())
}

/// Waits (180s at most) until the session is Active.
pub fn wait_active(ns: &str, name: &str) -> R<Value> {
    WAIT.session(ns, name, "Active", Duration::from_secs(180), |v| {
        phase_is(v, "Active")
    })
}

/// Waits until the session is Failed with a Ready reason among `reasons`.
pub fn failed_with(ns: &str, name: &str, reasons: &[&str]) -> R<String> {
    let what = format!("Failed ({})", reasons.join(" or "));
    let v = WAIT.session(ns, name, &what, TIMEOUT, |v| {
        phase_is(v, "Failed") && reasons.contains(&ready_reason(v))
    })?;
    Ok(format!(
        "phase Failed, Ready reason {}: {}",
        ready_reason(&v),
        s(&v, "/status/message")
    ))
}

/// The stamp annotations of a session, verbatim.
pub fn stamp_of(v: &Value) -> Value {
    let map = v["metadata"]["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .filter(|(k, _)| k.starts_with(STAMP_PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    Value::Object(map)
}

/// A deployment's pod template and generation at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub template: Value,
    pub generation: i64,
}

pub fn snapshot(ns: &str, name: &str) -> R<Snapshot> {
    let d = get_json(&["-n", ns, "deployment", name])?;
    Ok(Snapshot {
        template: d["spec"]["template"].clone(),
        generation: d
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("deployment {ns}/{name} has no generation"))?,
    })
}

/// `name=image` of each container of a pod template, for messages.
fn container_list(template: &Value) -> String {
    let list = |key: &str| {
        template["spec"][key]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| format!("{}={}", s(c, "/name"), s(c, "/image")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    format!(
        "init[{}] containers[{}]",
        list("initContainers"),
        list("containers")
    )
}

/// Ok when the deployment's pod template equals the snapshot's (and, with `same_generation`, its
/// generation too).
pub fn matches_snapshot(ns: &str, name: &str, snap: &Snapshot, same_generation: bool) -> R<()> {
    let now = snapshot(ns, name)?;
    if same_generation && now.generation != snap.generation {
        return Err(format!(
            "deployment {ns}/{name} changed: generation {} -> {} ({})",
            snap.generation,
            now.generation,
            container_list(&now.template)
        ));
    }
    if now.template != snap.template {
        let shell = shell_of(&now.template).cloned().unwrap_or(Value::Null);
        return Err(format!(
            "deployment {ns}/{name} changed: pod template differs from the snapshot: was {}, now {}; shell now {shell}",
            container_list(&snap.template),
            container_list(&now.template)
        ));
    }
    Ok(())
}

/// Ok when the deployment still has generation `gen_before` and no shell.
pub fn untouched(ns: &str, name: &str, gen_before: i64) -> R<()> {
    let d = get_json(&["-n", ns, "deployment", name])?;
    let now = d
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(-1);
    let shell = has_shell(&d["spec"]["template"]);
    ensure(now == gen_before && !shell, || {
        format!("deployment {ns}/{name} changed: generation {gen_before} -> {now}, shell={shell}")
    })
}
