//! Planning a running session: rollout, expiry, spec changes, the target, drift, cleanup.

use super::*;

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

#[test]
fn a_long_rollout_is_rechecked_less_often() {
    // The workload watch wakes the session at each step; the re-check is the safety net.
    let s = started("15m");
    let rolling = running_obs(vec![pod("web-a", true, false)]);
    let p = plan(&s, &rolling, &Settings::default(), at(30));
    assert_eq!(p.status.phase, Some(Phase::Applying));
    assert_eq!(p.requeue, Some(Duration::from_secs(5)));
    let p = plan(&s, &rolling, &Settings::default(), at(120));
    assert_eq!(p.requeue, Some(Duration::from_secs(20)));
}
