//! The kinds of target: a StatefulSet rolling its pod, a StatefulSet with `OnDelete` (the status
//! names the pod to delete), a DaemonSet; and a target that may not change while the session holds
//! it.

use debugsession_e2e::*;

use crate::Suite;
use crate::ns::{DEPLOY, DS, Ns, SAMPLE_DS, SAMPLE_STS, STS};
use crate::pods::{nginx, wait_pods_with_shell, wait_pods_without_shell};

pub fn statefulset(ns: &Ns, _: &Suite) -> R<()> {
    ns.fixture(STS, &[])?;
    ns.rollout("statefulset", "web")?;
    let original = ns.template("statefulset", "web")?;
    let old_uid = s(&ns.get("pod", "web-0")?, "/metadata/uid").to_string();
    ns.session_from(SAMPLE_STS, &[])?;
    ns.wait_phase("web-debug", "Active", TIMEOUT)?;
    ns.assert_applied("statefulset", "web", "web-debug")?;
    let pod = ns.get("pod", "web-0")?;
    ensure(
        s(&pod, "/metadata/uid") != old_uid && has_shell(&pod),
        || "web-0 was not replaced by a pod with the shell".into(),
    )?;
    ns.delete_session("web-debug")?;
    ns.assert_reverted("statefulset", "web", &original)?;
    wait_pods_without_shell(ns, "app=web")
}

pub fn statefulset_ondelete(ns: &Ns, _: &Suite) -> R<()> {
    ns.fixture(STS, &[("type: RollingUpdate", "type: OnDelete")])?;
    wait_for("pod web-0 ready", TIMEOUT, || {
        let p = ns.get("pod", "web-0")?;
        let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        if ready {
            Ok(())
        } else {
            Err("not ready".into())
        }
    })?;
    let original = ns.template("statefulset", "web")?;
    ns.session_from(SAMPLE_STS, &[])?;
    let v = ns.wait_session(
        "web-debug",
        "Applying with WaitingForPodDeletion",
        TIMEOUT,
        |v| phase_is(v, "Applying") && ready_reason(v) == "WaitingForPodDeletion",
    )?;
    let msg = s(&v, "/status/message");
    ensure(
        msg.contains("web-0") && msg.contains("kubectl delete pod"),
        || format!("message does not name the pod to delete: {msg:?}"),
    )?;
    ns.wait_event("web-debug", "WaitingForPodDeletion", TIMEOUT)?;
    ns.assert_applied("statefulset", "web", "web-debug")?;
    ns.k(&["delete", "pod", "web-0", "--wait=false"])?;
    ns.wait_phase("web-debug", "Active", LONG)?;
    ensure(has_shell(&ns.get("pod", "web-0")?), || {
        "recreated web-0 lacks the shell".into()
    })?;
    ns.delete_session("web-debug")?;
    ns.assert_reverted("statefulset", "web", &original)
}

pub fn daemonset(ns: &Ns, _: &Suite) -> R<()> {
    ns.fixture(DS, &[])?;
    ns.rollout("daemonset", "agent")?;
    let original = ns.template("daemonset", "agent")?;
    let old = ns.all_pod_names("app=agent")?;
    ns.session_from(SAMPLE_DS, &[])?;
    let v = ns.wait_phase("agent-debug", "Active", TIMEOUT)?;
    ensure(s(&v, "/status/targetRef") == "DaemonSet/agent", || {
        format!("targetRef {}", v["status"]["targetRef"])
    })?;
    ns.assert_applied("daemonset", "agent", "agent-debug")?;
    wait_pods_with_shell(ns, "app=agent", old.len(), &old)?;
    ns.delete_session("agent-debug")?;
    ns.assert_reverted("daemonset", "agent", &original)?;
    wait_pods_without_shell(ns, "app=agent")
}

pub fn target_locked(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.fixture(
        DEPLOY,
        &[
            ("  name: nginx\n", "  name: other\n"),
            ("app: nginx", "app: other"),
            ("replicas: 2", "replicas: 1"),
        ],
    )?;
    let other_before = ns.get("deployment", "other")?;
    ns.session("lock", "15m")?;
    ns.wait_phase("lock", "Active", TIMEOUT)?;
    ns.k(&[
        "patch",
        "debugsession",
        "lock",
        "--type=merge",
        "-p",
        r#"{"spec":{"target":{"name":"other"}}}"#,
    ])?;
    let v = ns.wait_session(
        "lock",
        "TargetLocked=True reason TargetChangeRefused",
        TIMEOUT,
        |v| cond_is(v, "TargetLocked", "True", Some("TargetChangeRefused")),
    )?;
    ensure(
        s(&v, "/status/target/name") == "nginx" && s(&v, "/status/targetRef") == "Deployment/nginx",
        || {
            format!(
                "status.target moved: {} {}",
                v["status"]["target"], v["status"]["targetRef"]
            )
        },
    )?;
    ns.wait_event("lock", "TargetChangeRefused", TIMEOUT)?;
    ns.assert_applied("deployment", "nginx", "lock")?;
    let other = ns.get("deployment", "other")?;
    template_diff(
        &other_before["spec"]["template"],
        &other["spec"]["template"],
    )?;
    ensure(other.pointer(HOLDER_PTR).is_none(), || {
        "other deployment got the annotation".into()
    })?;
    ns.delete_session("lock")?;
    ns.assert_reverted("deployment", "nginx", &original)?;
    let other = ns.get("deployment", "other")?;
    template_diff(
        &other_before["spec"]["template"],
        &other["spec"]["template"],
    )
}
