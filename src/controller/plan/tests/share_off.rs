//! Which plans record, and release, the template's own `shareProcessNamespace: false`.

use super::*;

const OURS: &str = "debugsession/team/dbg";

fn unset(mut w: Workload) -> Workload {
    w.template.spec.as_mut().unwrap().share_process_namespace = None;
    w
}

#[test]
fn a_template_that_set_it_off_is_taken_with_the_record_and_one_that_left_it_unset_is_not() {
    let s = session("15m");
    for (w, want) in [
        (workload(&["nginx"], false, None, false), true),
        (unset(workload(&["nginx"], false, None, false)), false),
    ] {
        let obs = Observed {
            workload: Some(w),
            ..Observed::default()
        };
        let p = plan(&s, &obs, &Settings::default(), at(0));
        assert!(
            matches!(p.action, WorkloadAction::Take(_)),
            "{:?}",
            p.action
        );
        assert_eq!(p.share_off, want);
    }
}

#[test]
fn the_release_puts_it_back_when_this_session_recorded_it() {
    let s = started("15m");
    for (owners, want) in [
        (vec![OURS.to_string()], true),
        (vec!["debugsession/team/other".to_string()], false),
        (vec![], false),
    ] {
        let mut obs = running_obs(vec![pod("web-a", true, true)]);
        obs.workload.as_mut().unwrap().share_off_owners = owners;
        let p = plan(&s, &obs, &Settings::default(), at(901));
        assert_eq!(p.action, WorkloadAction::Release);
        assert_eq!(p.share_off, want);
        // The same when the session is deleted.
        let p = plan_cleanup(&s, &obs, at(10));
        assert_eq!(p.action, WorkloadAction::Release);
        assert_eq!(p.share_off, want);
    }
}

#[test]
fn a_stale_holder_is_released_with_its_own_record() {
    let s = session("15m");
    let mut w = workload(&["nginx", "debug-shell"], true, Some("old"), false);
    w.managers = vec!["debugsession/team/old".into()];
    w.holder_owners = vec!["debugsession/team/old".into()];
    w.share_off_owners = vec!["debugsession/team/old".into()];
    let obs = Observed {
        workload: Some(w),
        holder: Some(Holder::Other {
            name: "old".into(),
            live: false,
        }),
        ..Observed::default()
    };
    let p = plan(&s, &obs, &Settings::default(), at(0));
    assert_eq!(
        p.action,
        WorkloadAction::ReleaseStale {
            session: "old".into()
        }
    );
    assert!(p.share_off);
}

#[test]
fn only_actions_on_the_template_carry_it() {
    let s = started("15m");
    let obs = running_obs(vec![pod("web-a", true, true)]);
    let p = plan(&s, &obs, &Settings::default(), at(10));
    assert_eq!(p.action, WorkloadAction::None);
    assert!(!p.share_off);
}
