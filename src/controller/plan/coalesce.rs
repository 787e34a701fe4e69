//! Which status changes may wait: a rollout's progress (which pods carry the shell, how many are
//! ready, the message that says so) is written only when it changes where a user can attach (the
//! pods whose shell is ready), and then at most every [`PROGRESS_EVERY`]; progress that changes
//! nobody's options (a pod that carries the shell but is not ready yet, a reworded message)
//! waits for the next write. Anything else (a phase, a condition's status or reason, a time,
//! the target) is written at once.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::api::DebugSessionStatus;

/// How long a rollout's progress may wait before it reaches the status.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(20);

/// How a planned status differs from the written one, for the write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A phase, reason, time or target: written at once.
    Now,
    /// Progress that changes the pods a user can attach to: written within [`PROGRESS_EVERY`].
    Attachable,
    /// Progress that changes nobody's options: carried by the next write.
    Idle,
}

/// How `new` differs from `old` (which it does).
pub fn change(old: &DebugSessionStatus, new: &DebugSessionStatus) -> Change {
    if !progress_only(old, new) {
        Change::Now
    } else if ready_pods(old) != ready_pods(new) {
        Change::Attachable
    } else {
        Change::Idle
    }
}

/// Whether `new` differs from `old` only in the progress of a rollout.
fn progress_only(old: &DebugSessionStatus, new: &DebugSessionStatus) -> bool {
    old.phase.is_some_and(|p| !p.is_terminal()) && without_progress(old) == without_progress(new)
}

/// The pods whose shell is ready: where a user can attach.
fn ready_pods(s: &DebugSessionStatus) -> BTreeSet<(&str, &str)> {
    s.pods
        .iter()
        .filter(|p| p.ready)
        .map(|p| (p.name.as_str(), p.container.as_str()))
        .collect()
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
    fn progress_is_written_when_a_shell_becomes_attachable_and_waits_otherwise() {
        let old = status(Phase::Applying, "RollingOut", 1);
        // A second pod with the shell, not ready yet: nobody can attach to more than before.
        assert_eq!(
            change(&old, &status(Phase::Applying, "RollingOut", 2)),
            Change::Idle
        );
        let mut one_ready = status(Phase::Applying, "RollingOut", 2);
        one_ready.pods[1].ready = true;
        assert_eq!(change(&old, &one_ready), Change::Attachable);
        // ... and one going away again is news as well.
        assert_eq!(change(&one_ready, &old), Change::Attachable);
        assert_eq!(
            change(&old, &status(Phase::Active, "RollingOut", 1)),
            Change::Now
        );
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
