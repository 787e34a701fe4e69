//! Objects as the API server returns them: sessions, the Deployment, the namespace, pods.

use super::*;

/// A whole second `ago` seconds before now (the operator reads the clock itself).
pub(crate) fn k8s_time(ago: i64) -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second() - ago).unwrap())
}

/// A session that already carries the finalizer (an earlier reconcile added it) and no status.
pub(crate) fn new_session(name: &str) -> DebugSession {
    serde_json::from_value(json!({
        "apiVersion": "debugsession.dev/v1alpha1", "kind": "DebugSession",
        "metadata": {"name": name, "namespace": "team", "uid": format!("uid-{name}"),
            "generation": 1, "resourceVersion": "1500", "finalizers": [FINALIZER]},
        "spec": {"target": {"kind": "Deployment", "name": "web"}, "ttl": "15m"},
    }))
    .unwrap()
}

/// A session whose shell went out `ago` seconds ago (TTL 15m): rolling, or ready in both pods
/// with the status exactly as the operator writes it.
pub(crate) fn started(ago: i64, active: bool) -> DebugSession {
    let mut s = new_session("dbg");
    let (started, expires) = (k8s_time(ago), k8s_time(ago - 15 * 60));
    let condition = |type_: &str, ok: bool, reason: &str, message: &str| {
        json!({"type": type_, "status": if ok { "True" } else { "False" }, "reason": reason,
            "message": message, "observedGeneration": 1, "lastTransitionTime": started})
    };
    let attach = |pod: &str| format!("kubectl attach -it -n team {pod} -c debug-shell");
    let pod = |pod: &str| json!({"name": pod, "container": "debug-shell", "ready": true, "attach": attach(pod)});
    let ready = format!(
        "2/2 pods carry a ready debug shell; attach with: {}",
        attach("web-5d8f-a")
    );
    let mut status = json!({
        "phase": "Active", "message": ready,
        "conditions": [condition("Ready", true, "ShellReady", &ready),
            condition("Reverted", false, "NotReverted", "the debug shell is in the workload"),
            condition("SpecApplied", true, "Applied",
                "generation 1 applied (the operator runs without stamps)")],
        "observedGeneration": 1, "shellGeneration": 1, "shellContainer": "debug-shell",
        "startedAt": started, "expiresAt": expires, "targetRef": "Deployment/web",
        "target": {"kind": "Deployment", "name": "web", "uid": WEB_UID},
        "readyPods": "2/2", "pods": [pod("web-5d8f-a"), pod("web-5d8f-b")],
    });
    if !active {
        let rolling =
            "waiting for the pods of Deployment/web to roll: 0/2 carry a ready debug shell";
        status["conditions"][0] = condition("Ready", false, "RollingOut", rolling);
        status["phase"] = json!("Applying");
        status["message"] = json!(rolling);
        status["readyPods"] = json!("0/2");
        status["pods"] = json!([]);
    }
    s.status = Some(serde_json::from_value(status).unwrap());
    s
}

/// A running session stamped by the webhook for generation 1, whose generation 2 (TTL raised to
/// 2h) bypassed the webhook: the stamp does not cover the spec.
pub(crate) fn unstamped_change() -> DebugSession {
    let mut s = started(60, true);
    let requester = Requester {
        username: "alice".into(),
        uid: "u-alice".into(),
        groups: vec!["dev".into()],
        ..Requester::default()
    };
    let stamp = Stamp {
        requester,
        digest: stamp::spec_digest(&s.spec),
        stamped_at: "2026-01-01T00:00:00Z".into(),
        changed: "created".into(),
    };
    s.metadata.annotations = Some(stamp::annotations(KEY, "team", "dbg", &stamp));
    s.spec.ttl = Some("2h".into());
    s.metadata.generation = Some(2);
    s.status.as_mut().unwrap().requester = Some("alice".into());
    s
}

pub(crate) fn shell_container() -> Value {
    json!({"name": "debug-shell", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent",
        "stdin": true, "tty": true, "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}})
}

pub(crate) fn hold_intent() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {HOLDER_ANNOTATION: "dbg"}}})
}

pub(crate) fn shell_intent() -> Value {
    let mut intent = hold_intent();
    let pod_spec = json!({"shareProcessNamespace": true, "containers": [shell_container()]});
    intent["spec"] = json!({"template": {"spec": pod_spec}});
    intent
}

pub(crate) fn release_intent() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}})
}

/// `web` as this session left it: held, with or without the shell.
pub(crate) fn ours(shell: bool) -> Value {
    deployment(shell, Some(("dbg", MANAGER)))
}

/// Deployment `web` (2 replicas, rolled out); `shell` adds the debug shell and
/// shareProcessNamespace; `holder` is the holder annotation's value and the manager owning it.
pub(crate) fn deployment(shell: bool, holder: Option<(&str, &str)>) -> Value {
    let entry = |manager: &str, operation: &str, fields: Value| {
        json!({"manager": manager, "operation": operation, "apiVersion": "apps/v1",
            "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields})
    };
    let app = json!({"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]});
    let mut containers = vec![app];
    containers.extend(shell.then(shell_container));
    let mut annotations = json!({"deployment.kubernetes.io/revision": "3"});
    let spec_fields = json!({"f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {}}});
    let mut managed = vec![entry("kubectl-client-side-apply", "Update", spec_fields)];
    if let Some((value, manager)) = holder {
        annotations[HOLDER_ANNOTATION] = json!(value);
        let key = format!("f:{HOLDER_ANNOTATION}");
        let mut fields = json!({"f:metadata": {"f:annotations": {key: {}}}});
        let session = manager.starts_with("debugsession/");
        if session && shell {
            let shell_key = r#"k:{"name":"debug-shell"}"#;
            fields["f:spec"] = json!({"f:template": {"f:spec": {"f:shareProcessNamespace": {},
                "f:containers": {shell_key: {".": {}, "f:name": {}}}}}});
        }
        let operation = if session { "Apply" } else { "Update" };
        managed.push(entry(manager, operation, fields));
    }
    json!({
        // Without the shell the template leaves shareProcessNamespace unset, as most do.
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team", "uid": WEB_UID, "generation": 3,
            "resourceVersion": "2207", "annotations": annotations, "managedFields": managed},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"shareProcessNamespace": shell.then_some(true), "containers": containers}}},
        "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2,
            "readyReplicas": 2, "availableReplicas": 2},
    })
}

pub(crate) fn namespace() -> Value {
    let labels = json!({"kubernetes.io/metadata.name": "team",
        "pod-security.kubernetes.io/enforce": "privileged"});
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": labels},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

/// A running pod of `web` whose debug shell is ready.
pub(crate) fn pod(name: &str) -> Value {
    let status = |c: &str| {
        json!({"name": c, "ready": true, "restartCount": 0, "started": true, "image": c,
            "imageID": "", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}})
    };
    let app = json!({"name": "nginx", "image": "nginx:1.27"});
    json!({"metadata": {"name": name, "namespace": "team", "labels": {"app": "web"}},
        "spec": {"containers": [app, shell_container()], "shareProcessNamespace": true},
        "status": {"phase": "Running", "containerStatuses": [status("nginx"), status("debug-shell")]}})
}

pub(crate) const INVALID: &str = "Deployment.apps \"web\" is invalid: spec.template.spec.containers[1].resources.requests: Invalid value: \"2Gi\": must be less than or equal to memory limit";
pub(crate) const CONFLICT: &str = "Apply failed with 1 conflict: conflict with \"debugsession/team/other\": .metadata.annotations.debugsession.dev/session";
