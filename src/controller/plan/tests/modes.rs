//! Planning the Copy and Ephemeral modes: start, progress, spec changes, expiry, the end.

use super::*;
use crate::api::{CopyOptions, Mode};

fn in_mode(mode: Mode, ttl: &str) -> DebugSession {
    let mut s = session(ttl);
    s.spec.mode = Some(mode);
    s.metadata.uid = Some("session-uid".into());
    s
}

fn free_workload() -> Observed {
    Observed {
        workload: Some(workload(&["nginx"], false, None, false)),
        ..Observed::default()
    }
}

/// A running pod of the workload, as the API server lists it.
fn live_pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "uid": format!("uid-{name}"), "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "nginx"}], "nodeName": "node-1"},
        "status": {"phase": "Running"}
    }))
    .unwrap()
}

/// Runs `plan` and stores the status back, as one reconcile followed by the status write.
fn step(s: &mut DebugSession, obs: &Observed, t: i64) -> Plan {
    let p = plan(s, obs, &Settings::default(), at(t));
    s.status = Some(p.status.clone());
    p
}

#[test]
fn copy_creates_an_owned_copy_and_never_touches_the_workload() {
    let mut s = in_mode(Mode::Copy, "15m");
    let p = step(&mut s, &free_workload(), 0);
    let WorkloadAction::CreateCopy(built) = &p.action else {
        panic!("expected CreateCopy, got {:?}", p.action)
    };
    assert_eq!(built.metadata.name.as_deref(), Some("dbg-copy"));
    let owner = &built.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("DebugSession", "session-uid")
    );
    let spec = built.spec.as_ref().unwrap();
    assert_eq!(spec.share_process_namespace, Some(true));
    assert!(spec.containers.iter().any(|c| c.name == "debug-shell"));
    assert_eq!(p.status.mode, Some(Mode::Copy));
    assert_eq!(p.status.phase, Some(Phase::Applying));
    assert!(p.status.fixed_spec.is_some());

    // The copy runs with a ready shell: Active, and the attach command names the copy.
    let mut copy = pod("dbg-copy", true, true);
    copy.metadata.uid = Some("copy-uid".into());
    let obs = Observed {
        pods: vec![copy.clone()],
        ..free_workload()
    };
    let p = step(&mut s, &obs, 5);
    assert_eq!(p.action, WorkloadAction::None);
    assert_eq!(p.status.phase, Some(Phase::Active), "{:?}", p.status);
    assert_eq!(
        p.status.pods[0].attach,
        "kubectl attach -it -n team dbg-copy -c debug-shell"
    );

    // The TTL runs out: the copy (that very pod) is deleted.
    let p = step(&mut s, &obs, 900);
    assert_eq!(
        p.action,
        WorkloadAction::DeleteCopy {
            pod: "dbg-copy".into(),
            uid: "copy-uid".into()
        }
    );
    assert_eq!(p.status.phase, Some(Phase::Expired));
}

#[test]
fn a_copy_deleted_under_the_session_fails_it() {
    let mut s = in_mode(Mode::Copy, "15m");
    step(&mut s, &free_workload(), 0);
    let p = step(&mut s, &free_workload(), 5);
    assert_eq!(p.status.phase, Some(Phase::Failed));
    assert_eq!(ready_reason(&p), reason::COPY_DELETED);
    assert_eq!(p.action, WorkloadAction::None);
}

#[test]
fn a_running_copy_takes_a_new_ttl_but_no_other_change() {
    let mut s = in_mode(Mode::Copy, "15m");
    step(&mut s, &free_workload(), 0);
    let obs = Observed {
        pods: vec![pod("dbg-copy", true, true)],
        ..free_workload()
    };
    step(&mut s, &obs, 5);

    s.spec.ttl = Some("30m".into());
    s.metadata.generation = Some(2);
    let p = step(&mut s, &obs, 10);
    assert_eq!(p.status.expires_at, Some(Time(at(1800))));
    assert_eq!(p.status.shell_generation, Some(2));

    s.spec.copy = Some(CopyOptions {
        keep_probes: Some(true),
        ..CopyOptions::default()
    });
    s.metadata.generation = Some(3);
    let p = step(&mut s, &obs, 15);
    let applied = conditions::get(&p.status.conditions, condition::SPEC_APPLIED).unwrap();
    assert_eq!(
        (applied.status.as_str(), applied.reason.as_str()),
        ("False", reason::INVALID_OPTIONS)
    );
    assert_eq!(p.status.expires_at, Some(Time(at(1800))));
    assert_eq!(p.action, WorkloadAction::None);
}

#[test]
fn deleting_a_copy_session_deletes_the_copy() {
    let mut s = in_mode(Mode::Copy, "15m");
    step(&mut s, &free_workload(), 0);
    let mut copy = pod("dbg-copy", true, true);
    copy.metadata.uid = Some("copy-uid".into());
    let obs = Observed {
        pods: vec![copy],
        ..free_workload()
    };
    let p = plan_cleanup(&s, &obs, at(5));
    assert!(matches!(p.action, WorkloadAction::DeleteCopy { .. }));
    assert!(p.notes.iter().any(|n| n.reason == reason::REVERTED));
}

#[test]
fn ephemeral_adds_a_bounded_shell_to_every_running_pod() {
    let mut s = in_mode(Mode::Ephemeral, "15m");
    let obs = Observed {
        pods: vec![live_pod("web-a"), live_pod("web-b")],
        ..free_workload()
    };
    let p = step(&mut s, &obs, 0);
    let WorkloadAction::AddEphemeral { pods, shell } = &p.action else {
        panic!("expected AddEphemeral, got {:?}", p.action)
    };
    assert_eq!(pods, &["web-a", "web-b"]);
    assert!(shell.name.starts_with("debug-shell-"), "{}", shell.name);
    assert_eq!(shell.target_container_name.as_deref(), Some("nginx"));
    let command = shell.command.clone().unwrap_or_default();
    assert_eq!(command[..4], ["timeout", "-s", "KILL", "900"]);
    assert!(shell.security_context.is_some());
    assert_eq!(p.status.ready_pods.as_deref(), Some("0/2"));
    // No watch of the operator's announces the shell's start: its pods are watched, and
    // looked at again every second.
    assert_eq!(p.wake_on_pods, ["web-a", "web-b"]);
    assert_eq!(p.requeue, Some(Duration::from_secs(1)));

    // The shells run: Active.
    let name = shell.name.clone();
    let with_shell = |pod: &str| {
        let mut p = live_pod(pod);
        let spec = p.spec.as_mut().unwrap();
        spec.ephemeral_containers =
            Some(vec![serde_json::from_value(json!({"name": name})).unwrap()]);
        p.status =
            serde_json::from_value(json!({"phase": "Running", "ephemeralContainerStatuses": [
            {"name": name, "ready": false, "restartCount": 0, "image": "b", "imageID": "",
             "state": {"running": {}}}]}))
            .unwrap();
        p
    };
    let starting = |pod: &str| {
        let mut p = with_shell(pod);
        p.status =
            serde_json::from_value(json!({"phase": "Running", "ephemeralContainerStatuses": [
            {"name": name, "ready": false, "restartCount": 0, "image": "b", "imageID": "",
             "state": {"waiting": {"reason": "ContainerCreating"}}}]}))
            .unwrap();
        p
    };
    let waiting = Observed {
        pods: vec![starting("web-a"), starting("web-b")],
        ..free_workload()
    };
    let mut later = s.clone();
    let p = step(&mut later, &waiting, 2);
    assert_eq!(p.status.phase, Some(Phase::Applying), "{:?}", p.status);
    assert_eq!(p.requeue, Some(Duration::from_secs(1)));
    assert_eq!(p.wake_on_pods, ["web-a", "web-b"]);
    let obs = Observed {
        pods: vec![with_shell("web-a"), with_shell("web-b")],
        ..free_workload()
    };
    let p = step(&mut s, &obs, 3);
    assert_eq!(p.status.phase, Some(Phase::Active), "{:?}", p.status);
    assert!(p.wake_on_pods.is_empty(), "{:?}", p.wake_on_pods);

    // A new spec generation cannot reach an ephemeral shell.
    s.spec.ttl = Some("30m".into());
    s.metadata.generation = Some(2);
    let p = step(&mut s, &obs, 5);
    assert_eq!(p.status.expires_at, Some(Time(at(900))));
    let applied = conditions::get(&p.status.conditions, condition::SPEC_APPLIED).unwrap();
    assert_eq!(applied.reason, reason::INVALID_OPTIONS);

    // At the TTL nothing is undone (it cannot be): Expired, with the shell's exit explained.
    let p = step(&mut s, &obs, 900);
    assert_eq!(p.action, WorkloadAction::None);
    assert_eq!(p.status.phase, Some(Phase::Expired));
    assert_eq!(ready_reason(&p), reason::SHELL_EXITED);
}

#[test]
fn ephemeral_on_an_old_api_server_drops_additions_and_refuses_restricted() {
    let obs = Observed {
        pods: vec![live_pod("web-a")],
        legacy_ephemeral: true,
        ..free_workload()
    };
    let mut s = in_mode(Mode::Ephemeral, "15m");
    let p = step(&mut s, &obs, 0);
    let WorkloadAction::AddEphemeral { shell, .. } = &p.action else {
        panic!("expected AddEphemeral, got {:?}", p.action)
    };
    assert_eq!(shell.security_context, None);
    assert!(p.notes.iter().any(|n| n.reason == reason::PROFILE_DROPPED));

    let mut s = in_mode(Mode::Ephemeral, "15m");
    s.spec.profile = Some(crate::api::Profile::Restricted);
    let p = step(&mut s, &obs, 0);
    assert_eq!(p.status.phase, Some(Phase::Failed));
    assert_eq!(ready_reason(&p), reason::INVALID_OPTIONS);
}

#[test]
fn ephemeral_needs_a_running_pod_and_a_pod_of_the_workload() {
    let mut s = in_mode(Mode::Ephemeral, "15m");
    let p = step(&mut s, &free_workload(), 0);
    assert_eq!(ready_reason(&p), reason::NO_PODS);

    let mut s = in_mode(Mode::Ephemeral, "15m");
    s.spec.target.pod = Some("other".into());
    let mut stranger = live_pod("other");
    stranger.metadata.labels = Some([("app".to_string(), "db".to_string())].into());
    let obs = Observed {
        source_pod: Some(stranger),
        ..free_workload()
    };
    let p = step(&mut s, &obs, 0);
    assert_eq!(ready_reason(&p), reason::POD_NOT_FOUND);
    assert_eq!(p.action, WorkloadAction::None);
}

#[test]
fn a_shell_that_cannot_start_says_why() {
    let mut s = in_mode(Mode::Copy, "15m");
    step(&mut s, &free_workload(), 0);
    let copy: Pod = serde_json::from_value(json!({
        "metadata": {"name": "dbg-copy"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "nginx"}, {"name": "debug-shell"}]},
        "status": {"containerStatuses": [
            {"name": "debug-shell", "ready": false, "restartCount": 0, "image": "b", "imageID": "",
             "state": {"waiting": {"reason": "CreateContainerConfigError",
                                   "message": "container has runAsNonRoot and image will run as root"}}}
        ]}
    }))
    .unwrap();
    let obs = Observed {
        pods: vec![copy],
        ..free_workload()
    };
    let p = step(&mut s, &obs, 5);
    assert_eq!(ready_reason(&p), reason::SHELL_NOT_STARTING);
    assert!(
        p.status
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("runAsNonRoot"),
        "{:?}",
        p.status.message
    );
    assert!(p.notes.iter().any(|n| n.warning));
}
