//! Planning approvals: nothing starts before them, a denial fails (or ends) the session, a new
//! spec of a running session waits for its own.

use super::*;
use crate::session::approval::Decision;
use crate::session::approval::tally::Tally;

fn approval(user: &str) -> Decision {
    Decision {
        user: user.into(),
        at: T0.into(),
        ..Decision::default()
    }
}

fn tally(required: u32, approvers: &[&str]) -> Tally {
    Tally {
        required,
        approvals: approvers.iter().map(|u| approval(u)).collect(),
        ..Tally::default()
    }
}

fn free(t: Tally) -> Observed {
    Observed {
        workload: Some(workload(&["nginx"], false, None, false)),
        approval: Some(t),
        ..Observed::default()
    }
}

fn approved_condition(p: &Plan) -> (String, String) {
    let c = conditions::get(&p.status.conditions, condition::APPROVED).expect("Approved");
    (c.status.clone(), c.reason.clone())
}

#[test]
fn nothing_starts_before_the_approvals() {
    let s = session("15m");
    let p = plan(&s, &free(tally(2, &["carol"])), &Settings::default(), at(0));
    assert_eq!(p.action, WorkloadAction::None);
    assert!(!p.authorize);
    assert_eq!(p.status.phase, Some(Phase::Pending));
    assert_eq!(ready_reason(&p), reason::AWAITING_APPROVAL);
    assert_eq!(
        approved_condition(&p),
        ("False".into(), reason::AWAITING_APPROVAL.into())
    );
    let message = p.status.message.clone().unwrap_or_default();
    assert!(message.contains("1 more approval"), "{message}");
    assert!(
        message.contains("kubectl debugsession approve dbg -n team"),
        "{message}"
    );
    assert_eq!(p.status.started_at, None);
    let a = p.status.approval.clone().unwrap();
    assert_eq!((a.required, a.approved_by), (2, vec!["carol".to_string()]));
    let reasons: Vec<&str> = p.notes.iter().map(|n| n.reason).collect();
    assert_eq!(
        reasons,
        [reason::REQUESTED, reason::AWAITING_APPROVAL],
        "the request, one Event for the wait"
    );
    assert!(p.requeue.is_some());

    // Waiting again says nothing new.
    let mut again = s.clone();
    again.status = Some(p.status.clone());
    let p2 = plan(
        &again,
        &free(tally(2, &["carol"])),
        &Settings::default(),
        at(5),
    );
    assert!(p2.notes.is_empty(), "{:?}", p2.notes);

    // Expired approvals say so.
    let expired = Tally {
        expired: true,
        set_aside: vec!["the approval by carol at ... expired after 10m".into()],
        ..tally(1, &[])
    };
    let p = plan(&s, &free(expired), &Settings::default(), at(0));
    assert_eq!(ready_reason(&p), reason::APPROVAL_EXPIRED);
    assert!(p.status.message.unwrap().contains("not counted"));
}

#[test]
fn an_approved_session_starts_and_says_by_whom() {
    let s = session("15m");
    let p = plan(&s, &free(tally(1, &["carol"])), &Settings::default(), at(0));
    assert!(
        matches!(p.action, WorkloadAction::Take(_)),
        "{:?}",
        p.action
    );
    assert!(p.authorize);
    assert_eq!(
        approved_condition(&p),
        ("True".into(), reason::APPROVED.into())
    );
    assert!(p.notes.iter().any(|n| n.reason == reason::APPROVED));
    let a = p.status.approval.clone().unwrap();
    assert_eq!(a.approved_at, Some(Time(at(0))));
    // Kept in whole seconds, as the API server keeps it: the next look writes nothing new.
    let mut t = tally(1, &["carol"]);
    t.approvals[0].at = "2026-11-30T10:00:00.123456789Z".into();
    let p = plan(&s, &free(t.clone()), &Settings::default(), at(0));
    assert_eq!(
        p.status.approval.clone().unwrap().approved_at,
        Some(Time(at(0)))
    );
    let mut s2 = s.clone();
    s2.status = Some(p.status.clone());
    let again = plan(&s2, &free(t), &Settings::default(), at(1));
    assert_eq!(again.status.approval, p.status.approval);
    // Where no approval is needed, nothing about it shows.
    let p = plan(&s, &free(tally(0, &[])), &Settings::default(), at(0));
    assert!(matches!(p.action, WorkloadAction::Take(_)));
    assert!(p.status.approval.is_none());
    assert!(conditions::get(&p.status.conditions, condition::APPROVED).is_none());
}

#[test]
fn a_denial_fails_a_waiting_session_and_ends_a_running_one() {
    let denied = Tally {
        denial: Some(Decision {
            comment: "not during the freeze".into(),
            ..approval("dave")
        }),
        ..tally(1, &["carol"])
    };
    let s = session("15m");
    let p = plan(&s, &free(denied.clone()), &Settings::default(), at(0));
    assert_eq!(p.action, WorkloadAction::None);
    assert_eq!(p.status.phase, Some(Phase::Failed));
    assert_eq!(ready_reason(&p), reason::DENIED);
    assert_eq!(
        p.status.message.as_deref(),
        Some("denied by dave: not during the freeze")
    );

    let s = started("15m");
    let obs = Observed {
        approval: Some(denied),
        ..running_obs(vec![pod("web-a", true, true)])
    };
    let p = plan(&s, &obs, &Settings::default(), at(10));
    assert_eq!(p.action, WorkloadAction::Release);
    assert_eq!(p.status.phase, Some(Phase::Failed));
    assert!(p.status.ended_at.is_some());
    let reverted = conditions::get(&p.status.conditions, condition::REVERTED).unwrap();
    assert_eq!(
        (reverted.status.as_str(), reverted.reason.as_str()),
        ("True", reason::DENIED)
    );
}

#[test]
fn a_new_spec_of_a_running_session_waits_for_its_own_approval() {
    let mut s = started("15m");
    s.spec.ttl = Some("30m".into());
    s.metadata.generation = Some(2);
    let obs = Observed {
        approval: Some(tally(1, &[])),
        ..running_obs(vec![pod("web-a", true, true)])
    };
    let p = plan(&s, &obs, &Settings::default(), at(10));
    assert!(!p.authorize, "the new generation does not run");
    assert_eq!(
        p.status.expires_at,
        Some(Time(at(900))),
        "the old TTL stands"
    );
    let applied = conditions::get(&p.status.conditions, condition::SPEC_APPLIED).unwrap();
    assert_eq!(
        (applied.status.as_str(), applied.reason.as_str()),
        ("False", reason::AWAITING_APPROVAL)
    );
    // Approved: the new TTL applies.
    let obs = Observed {
        approval: Some(tally(1, &["carol"])),
        ..running_obs(vec![pod("web-a", true, true)])
    };
    let p = plan(&s, &obs, &Settings::default(), at(10));
    assert!(p.authorize);
    assert_eq!(p.status.expires_at, Some(Time(at(1800))));
}

#[test]
fn a_start_left_behind_is_undone_while_the_session_may_not_start() {
    // The shell went in, then the status write was lost, and now the approval no longer counts.
    let s = session("15m");
    let obs = Observed {
        approval: Some(tally(1, &[])),
        ..running_obs(vec![pod("web-a", true, true)])
    };
    let p = plan(&s, &obs, &Settings::default(), at(0));
    assert_eq!(p.action, WorkloadAction::Release);
    assert_eq!(p.status.phase, Some(Phase::Pending));
    assert_eq!(p.status.started_at, None);
}
