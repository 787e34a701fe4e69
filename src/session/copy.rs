//! The `Copy` mode's pod: a standalone copy of the target's pod template (or of one live pod)
//! with the shell added, owned by the session. The workload itself is not touched.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};

use super::invalid::Invalid;
use super::syntax;
use crate::api::{CopyOptions, DebugSession, reason};

/// The label on a copy naming its session (see [`session_label_value`]). It shares its key with
/// the holder annotation on workloads ([`crate::api::HOLDER_ANNOTATION`]).
pub const SESSION_LABEL: &str = "debugsession.dev/session";

/// The longest pod name the copy gets (a DNS label, so that it is also a valid hostname), and
/// the longest label value.
const MAX_NAME: usize = 63;
/// Hex digits of the hash that stands in for a cut-off end of a name.
const HASH_LEN: usize = 10;

/// What the copy is made from.
#[derive(Clone, Copy, Debug)]
pub enum CopySource<'a> {
    /// The workload's pod template.
    Template(&'a PodTemplateSpec),
    /// A live pod (`target.pod`, or a Pod target): its metadata and spec, and its node.
    Pod(&'a Pod),
}

/// The DebugSession that owns the copy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl SessionRef {
    /// The reference to `session` (empty strings for what its metadata lacks).
    pub fn of(session: &DebugSession) -> Self {
        let m = &session.metadata;
        SessionRef {
            namespace: m.namespace.clone().unwrap_or_default(),
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone().unwrap_or_default(),
        }
    }
}

fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..HASH_LEN]
        .to_string()
}

/// At most the first `n` bytes of `name`, without a trailing `-` or `.`.
fn prefix(name: &str, n: usize) -> &str {
    let end = (0..=n.min(name.len()))
        .rev()
        .find(|&i| name.is_char_boundary(i));
    name[..end.unwrap_or(0)].trim_end_matches(['-', '.'])
}

/// The names of the containers and init containers of `spec`.
fn container_names(spec: &PodSpec) -> Vec<&str> {
    let init = spec.init_containers.iter().flatten();
    spec.containers
        .iter()
        .chain(init)
        .map(|c| c.name.as_str())
        .collect()
}

/// The name of a session's copy: `<session>-copy`, or, when that would pass 63 characters,
/// `<start of the session name>-copy-<hash>` with a hash of the whole session name. A short
/// form ends in `-copy` and a hashed one in hex digits, so the two forms never meet; two long
/// names share a copy name only if their hashes collide.
pub fn copy_name(session_name: &str) -> String {
    let short = format!("{session_name}-copy");
    if short.len() <= MAX_NAME {
        return short;
    }
    let room = MAX_NAME - "-copy-".len() - HASH_LEN;
    format!("{}-copy-{}", prefix(session_name, room), hash(session_name))
}

/// The value of [`SESSION_LABEL`] on a session's copy: the session name when it fits a label
/// value's 63 characters, else `<start of the name>_<hash of the whole name>`. The `_` never
/// occurs in a session name, so a hashed value never names another session.
pub fn session_label_value(session_name: &str) -> String {
    if session_name.len() <= MAX_NAME {
        return session_name.to_string();
    }
    let room = MAX_NAME - 1 - HASH_LEN;
    format!("{}_{}", prefix(session_name, room), hash(session_name))
}

/// The copy's owner reference: the session, as its controller, so that deleting the session
/// deletes the copy and no ReplicaSet adopts it even when it keeps the source's labels.
pub fn owner_reference(session: &SessionRef) -> OwnerReference {
    use kube::Resource;
    OwnerReference {
        api_version: DebugSession::api_version(&()).into_owned(),
        kind: DebugSession::kind(&()).into_owned(),
        name: session.name.clone(),
        uid: session.uid.clone(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// Builds the copy of `source` with `shell` added, as `opts` asks:
///
/// - named [`copy_name`] in the session's namespace, owned by the session ([`owner_reference`]);
/// - the source's labels and annotations stripped unless `keepLabels` / `keepAnnotations`,
///   then [`SESSION_LABEL`] added;
/// - `nodeName` cleared, unless `sameNode`, which needs a live source pod that has a node;
/// - ephemeral containers cleared; liveness, readiness and startup probes removed from every
///   container unless `keepProbes`; init containers dropped with `skipInitContainers`;
/// - `setImage` applied: a container or init container name of the source, or `*` for every
///   container not named otherwise;
/// - `shareProcessNamespace: true`, so the shell sees the app's processes;
/// - `restartPolicy: Never`: a process a person is inspecting (stopped under a debugger, say)
///   is not restarted under them, and a shell that exits stays exited;
/// - the shell appended to the containers; its name must be free among the copy's containers
///   and init containers.
pub fn build(
    source: &CopySource,
    shell: &Container,
    opts: &CopyOptions,
    session: &SessionRef,
) -> Result<Pod, Invalid> {
    let (meta, mut spec) = match source {
        CopySource::Template(t) => (
            t.metadata.clone().unwrap_or_default(),
            t.spec.clone().unwrap_or_default(),
        ),
        CopySource::Pod(p) => (p.metadata.clone(), p.spec.clone().unwrap_or_default()),
    };
    let same = opts.same_node == Some(true);
    let node = same.then(|| same_node(source, &spec)).transpose()?;
    set_images(&mut spec, opts)?;

    let mut labels = match opts.keep_labels {
        Some(true) => meta.labels.unwrap_or_default(),
        _ => BTreeMap::new(),
    };
    labels.insert(SESSION_LABEL.into(), session_label_value(&session.name));
    let annotations = match opts.keep_annotations {
        Some(true) => meta.annotations.filter(|a| !a.is_empty()),
        _ => None,
    };

    spec.node_name = node;
    spec.ephemeral_containers = None;
    if opts.skip_init_containers == Some(true) {
        spec.init_containers = None;
    }
    if opts.keep_probes != Some(true) {
        for c in spec.containers.iter_mut() {
            c.liveness_probe = None;
            c.readiness_probe = None;
            c.startup_probe = None;
        }
    }
    if container_names(&spec).contains(&shell.name.as_str()) {
        return Err(Invalid::new(
            reason::CONTAINER_NAME_CLASH,
            format!(
                "the copied pod already has a container or initContainer named {:?}: set spec.shell.containerName to another name",
                shell.name
            ),
        ));
    }
    spec.share_process_namespace = Some(true);
    spec.restart_policy = Some("Never".to_string());
    spec.containers.push(shell.clone());

    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(copy_name(&session.name)),
            namespace: Some(session.namespace.clone()),
            labels: Some(labels),
            annotations,
            owner_references: Some(vec![owner_reference(session)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// The node of a live source pod, for `sameNode`.
fn same_node(source: &CopySource, spec: &PodSpec) -> Result<String, Invalid> {
    match source {
        CopySource::Template(_) => Err(Invalid::new(
            reason::INVALID_OPTIONS,
            "spec.copy.sameNode needs spec.target.pod (or a Pod target): a pod template runs on no node".to_string(),
        )),
        CopySource::Pod(p) => spec.node_name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
            Invalid::new(
                reason::INVALID_OPTIONS,
                format!(
                    "spec.copy.sameNode needs a pod on a node, and pod {} is not scheduled yet",
                    p.metadata.name.as_deref().unwrap_or_default()
                ),
            )
        }),
    }
}

/// Applies `setImage` to the containers and init containers of `spec`.
fn set_images(spec: &mut PodSpec, opts: &CopyOptions) -> Result<(), Invalid> {
    let Some(images) = opts.set_image.as_ref().filter(|m| !m.is_empty()) else {
        return Ok(());
    };
    let names = container_names(spec);
    for (name, image) in images {
        if name != "*" && !names.contains(&name.as_str()) {
            return Err(Invalid::new(
                reason::INVALID_OPTIONS,
                format!(
                    "spec.copy.setImage names container {name:?}, which the source does not have (it has: {})",
                    names.join(", ")
                ),
            ));
        }
        if let Some(why) = syntax::image_reference_error(image) {
            return Err(Invalid::new(
                reason::INVALID_IMAGE,
                format!("spec.copy.setImage.{name} {image:?} is not an image reference: {why}"),
            ));
        }
    }
    let all = images.get("*");
    let containers = spec.containers.iter_mut();
    for c in containers.chain(spec.init_containers.iter_mut().flatten()) {
        if let Some(image) = images.get(&c.name).or(all) {
            c.image = Some(image.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reason::{CONTAINER_NAME_CLASH, INVALID_IMAGE, INVALID_OPTIONS};
    use serde_json::{Value, json};

    fn template() -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}, "annotations": {"team": "payments"}},
            "spec": {
                "initContainers": [{"name": "migrate", "image": "app:1"}],
                "containers": [
                    {"name": "app", "image": "app:1", "livenessProbe": {"tcpSocket": {"port": 80}},
                     "readinessProbe": {"tcpSocket": {"port": 80}}, "startupProbe": {"tcpSocket": {"port": 80}}},
                    {"name": "proxy", "image": "envoy:1"}
                ],
                "restartPolicy": "Always",
                "nodeSelector": {"disk": "ssd"}
            }
        }))
        .unwrap()
    }

    /// A live pod of the template, owned by a ReplicaSet, with an ephemeral container.
    fn live_pod(node: Option<&str>) -> Pod {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-7d9f-abcde", "labels": {"pod-template-hash": "7d9f"},
                         "annotations": {"team": "payments"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f", "uid": "rs"}]},
        }))
        .unwrap();
        let mut spec = template().spec.unwrap();
        spec.node_name = node.map(String::from);
        spec.ephemeral_containers = Some(vec![Default::default()]);
        spec.ephemeral_containers.as_mut().unwrap()[0].name = "debugger-x".into();
        pod.spec = Some(spec);
        pod
    }

    fn shell(name: &str) -> Container {
        serde_json::from_value(json!({"name": name, "image": "busybox:1.36"})).unwrap()
    }

    fn session() -> SessionRef {
        let (namespace, name, uid) = ("team".into(), "dbg".into(), "uid-1".into());
        SessionRef {
            namespace,
            name,
            uid,
        }
    }

    /// Asserts that `r` is refused with `reason` and a message that contains `text`.
    fn refused<T: std::fmt::Debug>(r: Result<T, Invalid>, reason: &str, text: &str) {
        let e = r.unwrap_err();
        assert_eq!(e.reason, reason, "{}", e.message);
        assert!(e.message.contains(text), "{}", e.message);
    }

    /// Copies `source` with the default shell and the options written as JSON.
    fn copy(source: CopySource, opts: Value) -> Result<Pod, Invalid> {
        let opts = serde_json::from_value(opts).unwrap();
        build(&source, &shell("debug-shell"), &opts, &session())
    }

    #[test]
    fn a_default_copy() {
        let t = template();
        let pod = copy(CopySource::Template(&t), json!({})).unwrap();
        let m = &pod.metadata;
        assert_eq!(m.name.as_deref(), Some("dbg-copy"));
        assert_eq!(m.namespace.as_deref(), Some("team"));
        let want = [(SESSION_LABEL.to_string(), "dbg".to_string())].into();
        assert_eq!(m.labels, Some(want));
        assert_eq!(m.annotations, None);
        assert_eq!(
            serde_json::to_value(m.owner_references.as_ref().unwrap()).unwrap(),
            json!([{"apiVersion": "debugsession.dev/v1alpha1", "kind": "DebugSession",
                    "name": "dbg", "uid": "uid-1", "controller": true}])
        );
        let s = pod.spec.unwrap();
        assert_eq!(s.share_process_namespace, Some(true));
        assert_eq!(s.restart_policy.as_deref(), Some("Never"));
        assert_eq!(s.node_name, None);
        assert_eq!(s.node_selector, t.spec.as_ref().unwrap().node_selector);
        let names: Vec<&str> = s.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["app", "proxy", "debug-shell"]);
        assert_eq!(s.containers[2], shell("debug-shell"));
        let probes = |c: &Container| {
            c.liveness_probe.is_some() || c.readiness_probe.is_some() || c.startup_probe.is_some()
        };
        assert!(!s.containers.iter().any(probes));
        assert_eq!(s.init_containers.unwrap()[0].name, "migrate");
        assert!(pod.status.is_none());
    }

    #[test]
    fn a_live_pod_keeps_what_is_asked_and_never_its_owners() {
        let spec = json!({"target": {"kind": "Pod", "name": "p"}});
        let mut dbg = DebugSession::new("dbg", serde_json::from_value(spec).unwrap());
        (dbg.metadata.namespace, dbg.metadata.uid) = (Some("team".into()), Some("uid-1".into()));
        assert_eq!(SessionRef::of(&dbg), session());
        let p = live_pod(Some("node-1"));
        let opts = json!({"keepLabels": true, "keepAnnotations": true, "keepProbes": true,
                          "skipInitContainers": true});
        let pod = copy(CopySource::Pod(&p), opts).unwrap();
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(labels["pod-template-hash"], "7d9f");
        assert_eq!(labels[SESSION_LABEL], "dbg");
        assert_eq!(pod.metadata.annotations.unwrap()["team"], "payments");
        let owners = pod.metadata.owner_references.unwrap();
        assert_eq!((owners.len(), owners[0].kind.as_str()), (1, "DebugSession"));
        let s = pod.spec.unwrap();
        assert!(s.containers[0].liveness_probe.is_some());
        assert_eq!(s.init_containers, None);
        assert_eq!(s.ephemeral_containers, None);
        assert_eq!(s.node_name, None, "not sameNode: the scheduler places it");
    }

    #[test]
    fn same_node_needs_a_scheduled_live_pod() {
        let opts = || json!({"sameNode": true});
        let p = live_pod(Some("node-1"));
        let s = copy(CopySource::Pod(&p), opts()).unwrap().spec.unwrap();
        assert_eq!(s.node_name.as_deref(), Some("node-1"));
        let t = template();
        let r = copy(CopySource::Template(&t), opts());
        refused(r, INVALID_OPTIONS, "copy.sameNode needs spec.target.pod");
        let unscheduled = live_pod(None);
        let r = copy(CopySource::Pod(&unscheduled), opts());
        refused(r, INVALID_OPTIONS, "pod web-7d9f-abcde is not scheduled");
    }

    #[test]
    fn set_image() {
        let t = template();
        let images = |set: Value| -> Result<Vec<String>, Invalid> {
            let pod = copy(CopySource::Template(&t), json!({"setImage": set}))?;
            let s = pod.spec.unwrap();
            let all = s.init_containers.iter().flatten().chain(&s.containers);
            Ok(all.map(|c| c.image.clone().unwrap_or_default()).collect())
        };
        assert_eq!(
            images(json!({"app": "app:debug", "migrate": "app:2"})).unwrap(),
            ["app:2", "app:debug", "envoy:1", "busybox:1.36"]
        );
        // `*` sets every source container not named otherwise; never the shell.
        assert_eq!(
            images(json!({"*": "alpine:3", "proxy": "envoy:2"})).unwrap(),
            ["alpine:3", "alpine:3", "envoy:2", "busybox:1.36"]
        );
        let has = "\"db\", which the source does not have (it has: app, proxy, migrate)";
        refused(images(json!({"db": "pg:16"})), INVALID_OPTIONS, has);
        let r = images(json!({"app": "Bad Image"}));
        refused(r, INVALID_IMAGE, "setImage.app \"Bad Image\"");
        let r = images(json!({"debug-shell": "x"}));
        refused(r, INVALID_OPTIONS, "\"debug-shell\"");
    }

    #[test]
    fn the_shell_name_must_be_free() {
        let t = template();
        let p = live_pod(None);
        let (none, skip) = (json!({}), json!({"skipInitContainers": true}));
        let build = |source: CopySource, name: &str, opts: &Value| {
            let opts = serde_json::from_value(opts.clone()).unwrap();
            build(&source, &shell(name), &opts, &session()).map(|_| ())
        };
        for name in ["app", "migrate"] {
            let r = build(CopySource::Template(&t), name, &none);
            refused(r, CONTAINER_NAME_CLASH, &format!("named {name:?}"));
        }
        // A skipped init container or a cleared ephemeral container frees its name.
        assert_eq!(build(CopySource::Template(&t), "migrate", &skip), Ok(()));
        assert_eq!(build(CopySource::Pod(&p), "debugger-x", &none), Ok(()));
    }

    #[test]
    fn names_fit_and_never_collide() {
        assert_eq!(copy_name("dbg"), "dbg-copy");
        let at_limit = "a".repeat(58);
        assert_eq!(copy_name(&at_limit), format!("{at_limit}-copy"));
        let long = format!("{}-x.y", "a".repeat(60));
        let other = format!("{}-x.z", "a".repeat(60));
        for n in [&long, &other] {
            let c = copy_name(n);
            let label = c.replace('.', "-");
            assert!(c.len() <= 63 && syntax::is_dns_label(&label), "{c}");
            assert!(!c.ends_with("-copy") && c.contains("-copy-"), "{c}");
            assert_eq!(c, copy_name(n), "stable");
        }
        assert_ne!(copy_name(&long), copy_name(&other));
        // A cut that would end in '-' or '.' is trimmed.
        let dashed = format!("{}--------{}", "b".repeat(40), "c".repeat(30));
        assert!(copy_name(&dashed).starts_with(&format!("{}-copy-", "b".repeat(40))));

        assert_eq!(session_label_value("dbg"), "dbg");
        assert_eq!(session_label_value(&"a".repeat(63)), "a".repeat(63));
        let v = session_label_value(&long);
        assert!(v.len() <= 63 && v.contains('_'), "{v}");
        assert_ne!(v, session_label_value(&other));
        assert_eq!(SESSION_LABEL, crate::api::HOLDER_ANNOTATION);
    }
}
