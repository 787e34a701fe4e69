//! Unit tests of planning: start, bad input, waiting, rollout, expiry, spec changes, drift,
//! target changes and cleanup.

use super::*;
use crate::api::{DebugSessionSpec, Target};

use serde_json::json;

const T0: &str = "2026-11-30T10:00:00Z";

fn at(offset_secs: i64) -> Timestamp {
    T0.parse::<Timestamp>().unwrap() + SignedDuration::from_secs(offset_secs)
}

fn session(ttl: &str) -> DebugSession {
    let mut s = DebugSession::new(
        "dbg",
        DebugSessionSpec {
            target: Target {
                kind: TargetKind::Deployment,
                name: "web".into(),
                container: None,
            },
            ttl: Some(ttl.into()),
            shell: None,
        },
    );
    s.metadata.namespace = Some("team".into());
    s.metadata.generation = Some(1);
    s
}

fn workload(containers: &[&str], spn: bool, held_by: Option<&str>, managed: bool) -> Workload {
    let d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "team", "uid": "uid-1", "generation": 2,
            "annotations": held_by.map(|h| json!({HOLDER_ANNOTATION: h})).unwrap_or(json!({})),
            "managedFields": if managed { json!([{"manager": "debugsession/team/dbg"}]) } else { json!([]) }},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"shareProcessNamespace": spn,
                "containers": containers.iter().map(|c| json!({"name": c, "image": if *c == "debug-shell" { "busybox:1.36" } else { "nginx" }})).collect::<Vec<_>>()}}},
        "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}
    }))
    .unwrap();
    Workload::from(d)
}

fn pod(name: &str, shell: bool, ready: bool) -> Pod {
    let mut containers = vec![json!({"name": "nginx"})];
    let mut statuses = vec![
        json!({"name": "nginx", "ready": true, "restartCount": 0, "image": "nginx", "imageID": ""}),
    ];
    if shell {
        containers.push(json!({"name": "debug-shell"}));
        statuses.push(json!({"name": "debug-shell", "ready": ready, "restartCount": 0, "image": "b", "imageID": ""}));
    }
    serde_json::from_value(
        json!({"metadata": {"name": name}, "spec": {"containers": containers},
        "status": {"containerStatuses": statuses}}),
    )
    .unwrap()
}

/// A session that started at T0 and was Applying.
fn started(ttl: &str) -> DebugSession {
    let s = session(ttl);
    let obs = Observed {
        workload: Some(workload(&["nginx"], false, None, false)),
        ..Observed::default()
    };
    let p = plan(&s, &obs, &Settings::default(), at(0));
    let mut s = s;
    s.status = Some(p.status);
    s
}

fn running_obs(pods: Vec<Pod>) -> Observed {
    Observed {
        workload: Some(workload(&["nginx", "debug-shell"], true, Some("dbg"), true)),
        holder: Some(Holder::Us),
        pods,
        ..Observed::default()
    }
}

fn ready_reason(p: &Plan) -> &str {
    conditions::get(&p.status.conditions, condition::READY)
        .map(|c| c.reason.as_str())
        .unwrap_or("")
}

#[test]
fn a_new_session_applies_the_shell_and_starts_the_clock() {
    let s = session("15m");
    let obs = Observed {
        workload: Some(workload(&["nginx"], false, None, false)),
        ..Observed::default()
    };
    let p = plan(&s, &obs, &Settings::default(), at(0));
    let WorkloadAction::Take(shell) = &p.action else {
        panic!("expected Take, got {:?}", p.action)
    };
    assert_eq!(shell.name, "debug-shell");
    assert_eq!(p.status.phase, Some(Phase::Applying));
    assert_eq!(p.status.started_at, Some(Time(at(0))));
    assert_eq!(p.status.expires_at, Some(Time(at(900))));
    assert_eq!(
        p.status.target.as_ref().map(|t| t.uid.as_str()),
        Some("uid-1")
    );
    assert_eq!(p.status.target_ref.as_deref(), Some("Deployment/web"));
    assert_eq!(p.status.observed_generation, Some(1));
    assert!(
        p.notes
            .iter()
            .any(|n| n.reason == reason::APPLIED && !n.warning)
    );
}

#[test]
fn bad_input_fails_without_touching_the_workload() {
    let cases: Vec<(DebugSession, Observed, &str)> = vec![
        (
            session("48h"),
            Observed {
                workload: Some(workload(&["nginx"], false, None, false)),
                ..Default::default()
            },
            reason::TTL_TOO_LONG,
        ),
        (
            session("10s"),
            Observed {
                workload: Some(workload(&["nginx"], false, None, false)),
                ..Default::default()
            },
            reason::TTL_TOO_SHORT,
        ),
        (
            session("15m"),
            Observed::default(),
            reason::TARGET_NOT_FOUND,
        ),
        (
            session("15m"),
            Observed {
                workload: Some(workload(&["nginx"], false, None, false)),
                namespace_labels: [(
                    podsecurity::ENFORCE_LABEL.to_string(),
                    "baseline".to_string(),
                )]
                .into(),
                ..Default::default()
            },
            reason::POD_SECURITY_VIOLATION,
        ),
        (
            session("15m"),
            Observed {
                workload: Some(workload(&["nginx", "debug-shell"], false, None, false)),
                ..Default::default()
            },
            reason::CONTAINER_NAME_CLASH,
        ),
    ];
    for (s, obs, want) in cases {
        let p = plan(&s, &obs, &Settings::default(), at(0));
        assert_eq!(p.action, WorkloadAction::None, "{want}");
        assert_eq!(p.status.phase, Some(Phase::Failed), "{want}");
        assert_eq!(ready_reason(&p), want);
        assert!(!p.status.message.clone().unwrap_or_default().is_empty());
        assert!(
            p.notes.iter().any(|n| n.warning && n.reason == want),
            "{want}: {:?}",
            p.notes
        );
        assert!(p.status.started_at.is_none());
        // Failing again on the same generation records no second event.
        let mut again = s.clone();
        again.status = Some(p.status.clone());
        let p2 = plan(&again, &obs, &Settings::default(), at(5));
        assert!(
            p2.notes.is_empty() && p2.action == WorkloadAction::None,
            "{want}"
        );
    }
}

#[test]
fn a_refused_session_never_touches_the_workload() {
    let obs = Observed {
        workload: Some(workload(&["nginx"], false, None, false)),
        refusal: Some(Invalid {
            reason: reason::UNAUTHORIZED,
            message: "no requester stamp".into(),
        }),
        ..Default::default()
    };
    let p = plan(&session("15m"), &obs, &Settings::default(), at(0));
    assert_eq!(ready_reason(&p), reason::UNAUTHORIZED);
    assert_eq!(
        (p.action, p.status.phase),
        (WorkloadAction::None, Some(Phase::Failed))
    );
}

#[test]
fn a_fixed_spec_retries_a_failed_session() {
    let mut s = session("48h");
    let obs = Observed {
        workload: Some(workload(&["nginx"], false, None, false)),
        ..Default::default()
    };
    s.status = Some(plan(&s, &obs, &Settings::default(), at(0)).status);
    s.spec.ttl = Some("1h".into());
    s.metadata.generation = Some(2);
    let p = plan(&s, &obs, &Settings::default(), at(1));
    assert!(matches!(p.action, WorkloadAction::Take(_)));
    assert_eq!(p.status.phase, Some(Phase::Applying));
}

#[test]
fn a_held_workload_makes_the_session_wait_or_releases_a_dead_holder() {
    let s = session("15m");
    let mut obs = Observed {
        workload: Some(workload(&["nginx"], false, Some("first"), false)),
        ..Default::default()
    };
    obs.holder = Some(Holder::Other {
        name: "first".into(),
        live: true,
    });
    let p = plan(&s, &obs, &Settings::default(), at(0));
    assert_eq!(
        (p.action.clone(), p.status.phase),
        (WorkloadAction::None, Some(Phase::Pending))
    );
    assert_eq!(ready_reason(&p), reason::HELD_BY_OTHER_SESSION);
    assert!(
        p.status
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("first")
    );
    assert!(p.requeue.is_some());
    obs.holder = Some(Holder::Other {
        name: "first".into(),
        live: false,
    });
    let p = plan(&s, &obs, &Settings::default(), at(0));
    assert_eq!(
        p.action,
        WorkloadAction::ReleaseStale {
            session: "first".into()
        }
    );
}

#[test]
fn active_when_every_pod_carries_a_ready_shell() {
    let s = started("15m");
    let obs = running_obs(vec![pod("web-b", true, true), pod("web-a", true, true)]);
    let p = plan(&s, &obs, &Settings::default(), at(10));
    assert_eq!(p.action, WorkloadAction::None);
    assert_eq!(p.status.phase, Some(Phase::Active));
    assert_eq!(p.status.ready_pods.as_deref(), Some("2/2"));
    let names: Vec<_> = p.status.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["web-a", "web-b"]);
    assert_eq!(
        p.status.pods[0].attach,
        "kubectl attach -it -n team web-a -c debug-shell"
    );
    assert!(p.notes.iter().any(|n| n.reason == reason::ACTIVE));
    assert!(p.requeue.unwrap() <= Duration::from_secs(890) + Duration::from_millis(100));
}

#[test]
fn rolling_while_old_pods_or_unready_shells_remain() {
    let s = started("15m");
    for pods in [
        vec![pod("a", true, true), pod("old", false, false)],
        vec![pod("a", true, true), pod("b", true, false)],
    ] {
        let p = plan(&s, &running_obs(pods), &Settings::default(), at(10));
        assert_eq!(p.status.phase, Some(Phase::Applying));
        assert_eq!(ready_reason(&p), reason::ROLLING_OUT);
        assert_eq!(p.status.ready_pods.as_deref(), Some("1/2"));
    }
}

#[test]
fn on_delete_statefulset_names_the_pods_to_delete() {
    let s = started("15m");
    let mut obs = running_obs(vec![pod("db-0", false, false), pod("db-1", true, true)]);
    if let Some(w) = obs.workload.as_mut() {
        w.on_delete = true;
    }
    let p = plan(&s, &obs, &Settings::default(), at(10));
    assert_eq!(ready_reason(&p), reason::WAITING_FOR_POD_DELETION);
    let msg = p.status.message.unwrap();
    assert!(
        msg.contains("OnDelete") && msg.contains("db-0") && !msg.contains("db-1"),
        "{msg}"
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.reason == reason::WAITING_FOR_POD_DELETION)
    );
}

#[test]
fn expiry_reverts_whenever_the_operator_looks_again() {
    let s = started("15m");
    for late in [900, 901, 86_400] {
        let p = plan(&s, &running_obs(vec![]), &Settings::default(), at(late));
        assert_eq!(p.action, WorkloadAction::Release, "{late}");
        assert_eq!(p.status.phase, Some(Phase::Expired));
        assert_eq!(p.status.ended_at, Some(Time(at(late))));
        let reverted = conditions::get(&p.status.conditions, condition::REVERTED).unwrap();
        assert_eq!(
            (reverted.status.as_str(), reverted.reason.as_str()),
            ("True", reason::EXPIRED)
        );
        assert!(p.notes.iter().any(|n| n.reason == reason::REVERTED));
    }
    let p = plan(&s, &running_obs(vec![]), &Settings::default(), at(899));
    assert_ne!(p.action, WorkloadAction::Release);
    assert!(p.requeue.unwrap() <= Duration::from_millis(1100));
}

#[test]
fn raising_the_ttl_extends_from_started_at_and_is_capped() {
    let mut s = started("15m");
    s.spec.ttl = Some("2h".into());
    s.metadata.generation = Some(2);
    let p = plan(&s, &running_obs(vec![]), &Settings::default(), at(600));
    assert_eq!(p.status.expires_at, Some(Time(at(7200))));
    s.spec.ttl = Some("48h".into());
    let p = plan(&s, &running_obs(vec![]), &Settings::default(), at(600));
    assert_eq!(
        p.status.expires_at,
        Some(Time(at(900))),
        "an over-long TTL keeps the old expiry"
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.warning && n.reason == reason::TTL_TOO_LONG)
    );
}

fn spec_applied(p: &Plan) -> (String, String) {
    conditions::get(&p.status.conditions, condition::SPEC_APPLIED)
        .map(|c| (c.status.clone(), c.reason.clone()))
        .unwrap_or_default()
}

#[test]
fn a_new_spec_runs_only_when_it_passes_every_start_check() {
    let s = started("15m");
    assert_eq!(s.status.as_ref().unwrap().shell_generation, Some(1));
    assert_eq!(
        s.status.as_ref().unwrap().shell_container.as_deref(),
        Some("debug-shell")
    );
    let edited = |edit: &dyn Fn(&mut DebugSession)| {
        let mut e = s.clone();
        edit(&mut e);
        e.metadata.generation = Some(2);
        e
    };
    let refusal = |reason| Invalid {
        reason,
        message: "no".into(),
    };
    // (edit, refusal from admission, expected SpecApplied reason when refused)
    type Edit = Box<dyn Fn(&mut DebugSession)>;
    let cases: Vec<(&str, Edit, Option<Invalid>, &str)> = vec![
        (
            "unstamped TTL raise",
            Box::new(|e| e.spec.ttl = Some("2h".into())),
            Some(refusal(reason::SPEC_NOT_STAMPED)),
            reason::SPEC_NOT_STAMPED,
        ),
        (
            "unstamped command",
            Box::new(|e| {
                e.spec.shell = Some(crate::api::Shell {
                    command: Some(vec!["sh".into(), "-c".into(), "evil".into()]),
                    ..Default::default()
                })
            }),
            Some(refusal(reason::INVALID_STAMP)),
            reason::INVALID_STAMP,
        ),
        (
            "revoked rights",
            Box::new(|e| e.spec.ttl = Some("20m".into())),
            Some(refusal(reason::UNAUTHORIZED)),
            reason::UNAUTHORIZED,
        ),
        (
            "shell renamed to the app container",
            Box::new(|e| {
                e.spec.shell = Some(crate::api::Shell {
                    container_name: Some("nginx".into()),
                    ..Default::default()
                })
            }),
            None,
            reason::CONTAINER_NAME_CLASH,
        ),
        (
            "TTL over the maximum",
            Box::new(|e| e.spec.ttl = Some("48h".into())),
            None,
            reason::TTL_TOO_LONG,
        ),
    ];
    for (name, edit, refused, want) in cases {
        let e = edited(&*edit);
        let mut obs = running_obs(vec![pod("web-a", true, true), pod("web-b", true, true)]);
        obs.refusal = refused;
        let p = plan(&e, &obs, &Settings::default(), at(600));
        assert_eq!(p.action, WorkloadAction::None, "{name}");
        assert!(!p.authorize, "{name}");
        assert_eq!(
            spec_applied(&p),
            ("False".to_string(), want.to_string()),
            "{name}"
        );
        assert_eq!(
            p.status.expires_at,
            Some(Time(at(900))),
            "{name}: expiry kept"
        );
        assert_eq!(p.status.shell_generation, Some(1), "{name}");
        assert_eq!(
            p.status.phase,
            Some(Phase::Active),
            "{name}: the old shell runs"
        );
        assert_eq!(
            p.notes.iter().filter(|n| n.reason == want).count(),
            1,
            "{name}: said once"
        );
        // Looking again says nothing new.
        let mut again = e.clone();
        again.status = Some(p.status.clone());
        let p2 = plan(&again, &obs, &Settings::default(), at(610));
        assert!(p2.notes.is_empty(), "{name}: {:?}", p2.notes);
        assert_eq!(p2.action, WorkloadAction::None, "{name}");
    }
    // Stamped and valid: applied, the clock moves, the change is recorded.
    let e = edited(&|e: &mut DebugSession| e.spec.ttl = Some("2h".into()));
    let mut obs = running_obs(vec![pod("web-a", true, true)]);
    obs.stamp = Some(Stamp {
        requester: crate::session::stamp::Requester {
            username: "bob".into(),
            ..Default::default()
        },
        changed: "spec.ttl".into(),
        ..Stamp::default()
    });
    let p = plan(&e, &obs, &Settings::default(), at(600));
    assert!(matches!(p.action, WorkloadAction::Apply(_)));
    assert!(p.authorize);
    assert_eq!(p.status.shell_generation, Some(2));
    assert_eq!(p.status.requester.as_deref(), Some("bob"));
    assert_eq!(p.status.expires_at, Some(Time(at(7200))));
    assert_eq!(spec_applied(&p), ("True".into(), reason::APPLIED.into()));
    let note = p
        .notes
        .iter()
        .find(|n| n.reason == reason::SPEC_CHANGED)
        .expect("SpecChanged event");
    assert!(
        note.message.contains("bob changed spec.ttl (generation 2)"),
        "{}",
        note.message
    );
    // A refused spec that drifted is not re-applied from the refused spec.
    let e = edited(&|e: &mut DebugSession| e.spec.ttl = Some("2h".into()));
    let mut obs = running_obs(vec![]);
    obs.workload = Some(workload(&["nginx"], true, Some("dbg"), true));
    obs.refusal = Some(refusal(reason::SPEC_NOT_STAMPED));
    let p = plan(&e, &obs, &Settings::default(), at(600));
    assert_eq!(p.action, WorkloadAction::None);
    assert_eq!(ready_reason(&p), reason::DRIFTED);
}

#[test]
fn a_foreign_holder_annotation_makes_the_session_wait_quietly() {
    let mut s = session("15m");
    let obs = Observed {
        workload: Some(workload(&["nginx"], false, Some("ghost"), false)),
        holder: Some(Holder::Foreign {
            value: "ghost".into(),
            owners: vec!["kubectl-annotate".into()],
        }),
        ..Observed::default()
    };
    let p = plan(&s, &obs, &Settings::default(), at(0));
    assert_eq!(p.action, WorkloadAction::None);
    assert_eq!(p.status.phase, Some(Phase::Pending));
    assert_eq!(ready_reason(&p), reason::FOREIGN_HOLDER);
    let msg = p.status.message.clone().unwrap();
    assert!(
        msg.contains("debugsession.dev/session=\"ghost\"") && msg.contains("kubectl-annotate"),
        "{msg}"
    );
    assert_eq!(p.notes.len(), 1);
    assert!(p.notes[0].warning);
    assert!(
        p.requeue >= Some(Duration::from_secs(30)),
        "no hot loop: {:?}",
        p.requeue
    );
    // Looking again: no new event.
    s.status = Some(p.status);
    let p = plan(&s, &obs, &Settings::default(), at(30));
    assert!(p.notes.is_empty(), "{:?}", p.notes);
}

#[test]
fn a_name_too_long_for_the_field_manager_fails_before_anything() {
    let mut s = session("15m");
    s.metadata.name = Some("x".repeat(120));
    let obs = Observed {
        workload: Some(workload(&["nginx"], false, None, false)),
        holder: Some(Holder::Free),
        ..Observed::default()
    };
    let p = plan(&s, &obs, &Settings::default(), at(0));
    assert_eq!(p.action, WorkloadAction::None);
    assert_eq!(p.status.phase, Some(Phase::Failed));
    assert_eq!(ready_reason(&p), reason::NAME_TOO_LONG);
}

#[test]
fn a_recreated_target_carrying_the_shell_is_released_or_reported() {
    let s = started("15m");
    let reverted = |p: &Plan| {
        conditions::get(&p.status.conditions, condition::REVERTED)
            .map(|c| (c.status.clone(), c.reason.clone()))
            .unwrap()
    };
    // Restored with this session's managedFields: released.
    let mut w = workload(&["nginx", "debug-shell"], true, Some("dbg"), true);
    w.uid = "uid-2".into();
    let obs = Observed {
        workload: Some(w),
        ..running_obs(vec![])
    };
    let p = plan(&s, &obs, &Settings::default(), at(60));
    assert_eq!(p.action, WorkloadAction::Release);
    assert_eq!(p.status.phase, Some(Phase::Failed));
    assert_eq!(
        reverted(&p),
        ("True".into(), reason::TARGET_REPLACED.into())
    );
    // Restored without managedFields: never Reverted=True while the shell is there.
    let mut w = workload(&["nginx", "debug-shell"], true, Some("dbg"), false);
    w.uid = "uid-2".into();
    let obs = Observed {
        workload: Some(w),
        ..running_obs(vec![])
    };
    let p = plan(&s, &obs, &Settings::default(), at(60));
    assert_eq!(p.action, WorkloadAction::None);
    assert_eq!(
        reverted(&p),
        ("False".into(), reason::SHELL_LEFT_IN_REPLACED_TARGET.into())
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.reason == reason::SHELL_LEFT_IN_REPLACED_TARGET)
    );
    // Recreated clean: nothing to revert.
    let mut w = workload(&["nginx"], false, None, false);
    w.uid = "uid-2".into();
    let obs = Observed {
        workload: Some(w),
        ..running_obs(vec![])
    };
    let p = plan(&s, &obs, &Settings::default(), at(60));
    assert_eq!(
        reverted(&p),
        ("True".into(), reason::TARGET_REPLACED.into())
    );
}

#[test]
fn a_first_reconcile_that_fails_still_leaves_a_phase() {
    let s = session("15m");
    let st = retrying(&s, "reading the target workload: timed out", at(0));
    assert_eq!(st.phase, Some(Phase::Pending));
    assert!(st.message.unwrap().contains("timed out"));
    assert_eq!(
        conditions::get(&st.conditions, condition::READY).map(|c| c.reason.as_str()),
        Some(reason::RETRYING)
    );
}

#[test]
fn drift_is_reported_and_reapplied() {
    let s = started("15m");
    let cases = [
        workload(&["nginx"], true, Some("dbg"), true),
        workload(&["nginx", "debug-shell"], false, Some("dbg"), true),
        workload(&["nginx", "debug-shell"], true, None, true),
    ];
    for w in cases {
        let obs = Observed {
            workload: Some(w),
            holder: Some(Holder::Us),
            ..Default::default()
        };
        let p = plan(&s, &obs, &Settings::default(), at(10));
        assert!(
            matches!(p.action, WorkloadAction::Apply(_)),
            "{:?}",
            p.action
        );
        assert_eq!(ready_reason(&p), reason::DRIFTED);
        assert!(
            p.notes
                .iter()
                .any(|n| n.warning && n.reason == reason::DRIFTED)
        );
    }
}

#[test]
fn a_changed_target_is_refused_and_the_original_kept() {
    let mut s = started("15m");
    s.spec.target.name = "other".into();
    s.metadata.generation = Some(2);
    let p = plan(
        &s,
        &running_obs(vec![pod("a", true, true), pod("b", true, true)]),
        &Settings::default(),
        at(10),
    );
    let locked = conditions::get(&p.status.conditions, condition::TARGET_LOCKED).unwrap();
    assert_eq!(locked.reason, reason::TARGET_CHANGE_REFUSED);
    assert_eq!(p.status.target.as_ref().unwrap().name, "web");
    assert_eq!(p.status.phase, Some(Phase::Active));
}

#[test]
fn a_deleted_or_replaced_target_ends_the_session() {
    let s = started("15m");
    let p = plan(&s, &Observed::default(), &Settings::default(), at(10));
    assert_eq!(
        (p.status.phase, ready_reason(&p)),
        (Some(Phase::Failed), reason::TARGET_DELETED)
    );
    assert_eq!(p.action, WorkloadAction::None);
    let mut obs = running_obs(vec![]);
    if let Some(w) = obs.workload.as_mut() {
        w.uid = "uid-2".into();
    }
    let p = plan(&s, &obs, &Settings::default(), at(10));
    assert_eq!(ready_reason(&p), reason::TARGET_REPLACED);
}

#[test]
fn ended_sessions_only_release_leftovers_and_cleanup_reverts() {
    let s = started("15m");
    let mut ended = s.clone();
    ended.status = Some(plan(&s, &running_obs(vec![]), &Settings::default(), at(900)).status);
    assert_eq!(
        plan(&ended, &running_obs(vec![]), &Settings::default(), at(901)).action,
        WorkloadAction::Release
    );
    let clean = Observed {
        workload: Some(workload(&["nginx"], false, None, false)),
        ..Default::default()
    };
    let p = plan(&ended, &clean, &Settings::default(), at(901));
    assert_eq!((p.action, p.requeue), (WorkloadAction::None, None));

    assert_eq!(
        plan_cleanup(&s, &running_obs(vec![]), at(5)).action,
        WorkloadAction::Release
    );
    assert_eq!(plan_cleanup(&s, &clean, at(5)).action, WorkloadAction::None);
    assert_eq!(
        plan_cleanup(&s, &Observed::default(), at(5)).action,
        WorkloadAction::None
    );
}
