//! What the rows about modes and profiles share: their workloads (Deployment `modes` and the bare
//! Pod `modes-pod`), their users, each holding exactly some of the rights a mode needs, session
//! specs in each mode, and the proof that a refused request changed nothing: no copy of a pod,
//! no ephemeral container, no new workload generation.
//!
//! The users, besides the suite's `dbgs-sessions` role (DebugSessions, and `get` on
//! Deployments, so every target Deployment is readable):
//!
//! | user | rights | their mode |
//! |---|---|---|
//! | `patcher` | attach, patch Deployments | Patch |
//! | `copier` | attach, create pods | Copy |
//! | `podeph` | attach, get and write ephemeral containers of `modes-pod` only | Ephemeral on `modes-pod` |
//! | `noshell` | every right of every mode but exec and attach | none |
//! | `allmodes` | every right of every mode | all |
//! | `revoked-<mode>` | attach, and the right of the mode until a row revokes it | the mode, then none |

use std::collections::BTreeMap;

use debugsession_e2e::*;

use crate::Run;
use crate::install::deployment_named;
use crate::sessions::{session_json, snapshot};

/// The Deployment that the mode rows target; a request refused must leave its generation as it is.
pub const MODES: &str = "modes";
/// A bare Pod: the Pod target of the mode rows, and the one pod `podeph` may write ephemeral
/// containers to.
pub const MODES_POD: &str = "modes-pod";
/// The label on a copy naming its session.
const COPY_LABEL: &str = "debugsession.dev/session";

/// The modes, as `spec.mode` spells them.
pub const MODES_ALL: [&str; 3] = ["Patch", "Copy", "Ephemeral"];

/// The role whose binding a `revoked-<mode>` user loses, by mode.
pub fn mode_role(mode: &str) -> &'static str {
    match mode {
        "Patch" => "dbgs-patch",
        "Copy" => "modes-pods-create",
        _ => "modes-ephemeral",
    }
}

/// The user who holds a mode's rights until its row revokes them.
pub fn revoked_user(mode: &str) -> String {
    format!("revoked-{}", mode.to_lowercase())
}

fn pod_yaml() -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {MODES_POD}
  labels:
    app: {MODES_POD}
spec:
  nodeSelector:
    debugsession.dev/real-node: \"true\"
  terminationGracePeriodSeconds: 2
  containers:
  - name: nginx
    image: {}
    imagePullPolicy: IfNotPresent
",
        cluster().nginx()
    )
}

pub fn binding_name(role: &str, user: &str) -> String {
    format!("{role}-{user}")
}

fn rbac_yaml(run: &Run) -> String {
    let ns = &run.ns;
    let role = |name: &str, rules: &str| {
        format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {name}\n  namespace: {ns}\nrules:\n{rules}"
        )
    };
    let binding = |role: &str, user: &str| {
        format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {}\n  namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {role}\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: {user}\n",
            binding_name(role, user)
        )
    };
    let mut out = String::new();
    out += &role(
        "modes-attach",
        "- apiGroups: [\"\"]\n  resources: [pods/attach]\n  verbs: [create]\n",
    );
    out += &role(
        "modes-pods-create",
        "- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: [create]\n",
    );
    out += &role(
        "modes-ephemeral",
        "- apiGroups: [\"\"]\n  resources: [pods/ephemeralcontainers]\n  verbs: [patch, update]\n",
    );
    out += &role(
        "modes-pod-one",
        &format!(
            "- apiGroups: [\"\"]\n  resources: [pods]\n  resourceNames: [{MODES_POD}]\n  verbs: [get]\n- apiGroups: [\"\"]\n  resources: [pods/ephemeralcontainers]\n  resourceNames: [{MODES_POD}]\n  verbs: [patch, update]\n"
        ),
    );
    out += &role(
        "modes-pod-get",
        &format!(
            "- apiGroups: [\"\"]\n  resources: [pods]\n  resourceNames: [{MODES_POD}]\n  verbs: [get]\n"
        ),
    );
    let every_mode = [
        "dbgs-patch",
        "modes-pods-create",
        "modes-ephemeral",
        "modes-pod-get",
    ];
    let mut users: Vec<(String, Vec<&str>)> = vec![
        ("patcher".into(), vec!["modes-attach", "dbgs-patch"]),
        ("copier".into(), vec!["modes-attach", "modes-pods-create"]),
        ("podeph".into(), vec!["modes-attach", "modes-pod-one"]),
        ("noshell".into(), every_mode.to_vec()),
        (
            "allmodes".into(),
            [&["modes-attach"][..], &every_mode].concat(),
        ),
    ];
    for mode in MODES_ALL {
        users.push((revoked_user(mode), vec!["modes-attach", mode_role(mode)]));
    }
    for (role_key, roles) in users {
        let user = run.user(&role_key);
        for r in std::iter::once("dbgs-sessions").chain(roles) {
            out += &binding(r, &user);
        }
    }
    out
}

/// The Deployment `modes`, the Pod `modes-pod` and the users of the mode rows; `modes` joins the
/// workloads no request may change.
pub fn install(run: &mut Run) -> R<()> {
    let ns = run.ns.clone();
    k_in(&deployment_named(MODES)?, &["apply", "-n", &ns, "-f", "-"])?;
    k_in(&pod_yaml(), &["apply", "-n", &ns, "-f", "-"])?;
    k_in(&rbac_yaml(run), &["apply", "-f", "-"])?;
    rollout(&ns, &format!("deployment/{MODES}"))?;
    let out = kubectl_for(
        LONG,
        &[
            "wait",
            "-n",
            &ns,
            "--for=condition=Ready",
            &format!("pod/{MODES_POD}"),
            "--timeout=110s",
        ],
    );
    ensure(out.ok, || {
        format!("pod {MODES_POD} not Ready: {}", out.both())
    })?;
    let snap = snapshot(&ns, MODES)?;
    run.watched.push((ns, MODES.to_string(), snap.generation));
    run.pre_session.insert(MODES.to_string(), snap);
    Ok(())
}

/// The running pod of Deployment `modes`.
pub fn modes_pod_of_deployment(ns: &str) -> R<String> {
    let v = get_json(&["pods", "-n", ns, "-l", &format!("app={MODES}")])?;
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p.pointer("/metadata/deletionTimestamp").is_none() && s(p, "/status/phase") == "Running"
        })
        .map(|p| s(p, "/metadata/name").to_string())
        .ok_or_else(|| format!("deployment {ns}/{MODES} has no running pod"))
}

/// A session spec in `mode` (None: the target's default) with a 10m TTL, on Deployment `modes`.
pub fn on_deployment(mode: Option<&str>) -> Value {
    with_mode(
        json!({"target": {"kind": "Deployment", "name": MODES}, "ttl": "10m"}),
        mode,
    )
}

/// A session spec in `mode` (None: the target's default) with a 10m TTL, on Pod `modes-pod`.
pub fn on_pod(mode: Option<&str>) -> Value {
    with_mode(
        json!({"target": {"kind": "Pod", "name": MODES_POD}, "ttl": "10m"}),
        mode,
    )
}

fn with_mode(mut spec: Value, mode: Option<&str>) -> Value {
    if let Some(m) = mode {
        spec["mode"] = json!(m);
    }
    spec
}

/// `spec` with the fields of `extra` set (one level deep, `target` merged).
pub fn with(mut spec: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().into_iter().flatten() {
        match (k.as_str(), v.as_object()) {
            ("target", Some(t)) => {
                for (tk, tv) in t {
                    spec["target"][tk] = tv.clone();
                }
            }
            _ => spec[k] = v.clone(),
        }
    }
    spec
}

/// What a refused request must leave as it was in the namespace: the generation of every
/// Deployment and the ephemeral containers of every pod.
pub struct Scene {
    generations: BTreeMap<String, i64>,
    ephemeral: BTreeMap<String, Vec<String>>,
}

fn ephemeral_names(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| s(c, "/name").to_string())
        .collect()
}

fn items(ns: &str, kind: &str) -> R<Vec<Value>> {
    let v = get_json(&[kind, "-n", ns])?;
    Ok(v["items"].as_array().cloned().unwrap_or_default())
}

pub fn scene(ns: &str) -> R<Scene> {
    let generations = items(ns, "deployments")?
        .iter()
        .map(|d| {
            let generation = d.pointer("/metadata/generation").and_then(Value::as_i64);
            (s(d, "/metadata/name").to_string(), generation.unwrap_or(-1))
        })
        .collect();
    let ephemeral = items(ns, "pods")?
        .iter()
        .map(|p| (s(p, "/metadata/name").to_string(), ephemeral_names(p)))
        .collect();
    Ok(Scene {
        generations,
        ephemeral,
    })
}

/// How the namespace differs from `before` in what session `session` could have changed: a
/// copy of a pod made for it (`<session>-copy`, or any pod labelled with it), an ephemeral
/// container added to a pod, a Deployment with a new generation.
pub fn changes(ns: &str, session: &str, before: &Scene) -> R<Vec<String>> {
    let mut out = Vec::new();
    let after = scene(ns)?;
    for pod in items(ns, "pods")? {
        let name = s(&pod, "/metadata/name");
        let labelled = s(
            &pod,
            &format!("/metadata/labels/{}", COPY_LABEL.replace('/', "~1")),
        );
        if name == format!("{session}-copy") || labelled == session {
            out.push(format!("pod {ns}/{name} was created for session {session}"));
        }
    }
    for (pod, now) in &after.ephemeral {
        let was = before.ephemeral.get(pod).cloned().unwrap_or_default();
        if *now != was {
            out.push(format!(
                "pod {ns}/{pod} has ephemeral containers {now:?}, had {was:?}"
            ));
        }
    }
    for (name, now) in &after.generations {
        if let Some(was) = before.generations.get(name)
            && was != now
        {
            out.push(format!(
                "deployment {ns}/{name} changed: generation {was} -> {now}"
            ));
        }
    }
    Ok(out)
}

/// Runs the request `f` about session `session`; Ok with its message when it was refused and
/// nothing in the namespace changed. A change (also after a request that was not refused) counts
/// among the suite's changed workloads.
pub fn nothing_changed(
    run: &mut Run,
    session: &str,
    f: impl FnOnce(&mut Run) -> R<String>,
) -> R<String> {
    let before = scene(&run.ns)?;
    let r = f(run);
    let changed = changes(&run.ns, session, &before)?;
    if !changed.is_empty() {
        run.changed.extend(changed.iter().cloned());
        let outcome = match r {
            Ok(_) => "refused".to_string(),
            Err(e) => e,
        };
        return Err(format!("{outcome}; and {}", changed.join("; ")));
    }
    r
}

/// The server-side dry run of creating session `name` with `spec` as `user`: the spec and the
/// stamp annotations the webhook gave it, as a manifest the admin can create later.
pub fn stamped_manifest(run: &Run, user: &str, name: &str, spec: &Value) -> R<String> {
    let manifest = session_json(name, spec.clone(), json!({}));
    let out = kubectl_in(
        &manifest,
        &[
            "create",
            "--dry-run=server",
            "-o",
            "json",
            "-n",
            &run.ns,
            "--as",
            user,
            "-f",
            "-",
        ],
    );
    ensure(out.ok, || {
        format!("dry run as {user} was refused: {}", out.both())
    })?;
    let v: Value = serde_json::from_str(&out.stdout).map_err(|e| e.to_string())?;
    let stamp = crate::sessions::stamp_of(&v);
    ensure(stamp[crate::sessions::REQUESTER] == user, || {
        format!("dry run not stamped for {user}: {stamp}")
    })?;
    Ok(session_json(name, v["spec"].clone(), stamp))
}

/// `kubectl auth can-i` as `user` in `ns` ("yes" or "no").
pub fn can_i(ns: &str, user: &str, verb: &str, resource: &str, sub: Option<&str>) -> String {
    let sub = sub.map(|s| format!("--subresource={s}"));
    let mut args = vec!["auth", "can-i", verb, resource, "-n", ns, "--as", user];
    if let Some(s) = sub.as_deref() {
        args.push(s);
    }
    kubectl(&args).stdout.trim().to_string()
}
