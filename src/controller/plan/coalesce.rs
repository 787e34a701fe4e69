//! Which status changes may wait: a rollout's progress (which pods carry the shell, how many are
//! ready, the message that says so) is written at most every [`PROGRESS_EVERY`]; anything else
//! (a phase, a condition's status or reason, a time, the target) is written at once.

use std::time::Duration;

use crate::api::DebugSessionStatus;

/// How long a rollout's progress may wait before it reaches the status.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(20);

/// Whether `new` differs from `old` only in the progress of a rollout.
pub fn progress_only(old: &DebugSessionStatus, new: &DebugSessionStatus) -> bool {
    old.phase.is_some_and(|p| !p.is_terminal()) && without_progress(old) == without_progress(new)
}

fn without_progress(s: &DebugSessionStatus) -> DebugSessionStatus {
    let mut s = s.clone();
    s.pods.clear();
    s.ready_pods = None;
    s.message = None;
    for c in &mut s.conditions {
        c.message.clear();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Phase, SessionPod};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use k8s_openapi::jiff::Timestamp;

    fn status(phase: Phase, reason: &str, pods: usize) -> DebugSessionStatus {
        DebugSessionStatus {
            phase: Some(phase),
            message: Some(format!("{pods} pods")),
            ready_pods: Some(format!("0/{pods}")),
            pods: (0..pods)
                .map(|i| SessionPod {
                    name: format!("p{i}"),
                    container: "debugger".into(),
                    ready: false,
                    attach: String::new(),
                })
                .collect(),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: reason.into(),
                message: format!("{pods} pods"),
                last_transition_time: Time(Timestamp::UNIX_EPOCH),
                observed_generation: Some(1),
            }],
            ..DebugSessionStatus::default()
        }
    }

    #[test]
    fn pods_and_messages_of_one_phase_are_progress() {
        let old = status(Phase::Applying, "RollingOut", 0);
        assert!(progress_only(
            &old,
            &status(Phase::Applying, "RollingOut", 1)
        ));
    }

    #[test]
    fn phases_reasons_and_times_are_not() {
        let old = status(Phase::Applying, "RollingOut", 0);
        assert!(!progress_only(
            &old,
            &status(Phase::Active, "RollingOut", 1)
        ));
        assert!(!progress_only(&old, &status(Phase::Applying, "Stuck", 0)));
        let mut later = old.clone();
        later.expires_at = Some(Time(Timestamp::UNIX_EPOCH));
        assert!(!progress_only(&old, &later));
        let mut flipped = old.clone();
        flipped.conditions[0].status = "True".into();
        assert!(!progress_only(&old, &flipped));
        // Nothing waits before the first phase, or after the last.
        let first = DebugSessionStatus::default();
        assert!(!progress_only(&first, &old));
        let ended = status(Phase::Expired, "Expired", 0);
        assert!(!progress_only(
            &ended,
            &status(Phase::Expired, "Expired", 1)
        ));
    }
}
