//! Planning a session that has not started: the start, bad input, refusals, waiting.

use super::*;

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
    assert_eq!(p.notes.len(), 2);
    assert_eq!(p.notes[0].reason, reason::REQUESTED);
    assert!(p.notes[1].warning);
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
