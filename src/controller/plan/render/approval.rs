//! Rendering approvals: waiting for them, having them, being denied.

use super::Render;
use crate::api::{Mode, Phase, condition, reason};

impl Render<'_, '_> {
    pub(super) fn awaiting_approval(
        &mut self,
        missing: u32,
        required: u32,
        approvers: &[String],
        set_aside: &[String],
        expired: bool,
        command: &str,
    ) {
        let why = if expired {
            reason::APPROVAL_EXPIRED
        } else {
            reason::AWAITING_APPROVAL
        };
        let plural = if missing == 1 { "" } else { "s" };
        let mut message = format!(
            "waiting for {missing} more approval{plural} ({} of {required} given{}): somebody other than the requester, allowed the verb approve on debugsessions, runs: {command}",
            approvers.len(),
            if approvers.is_empty() {
                String::new()
            } else {
                format!(" by {}", approvers.join(", "))
            },
        );
        if !set_aside.is_empty() {
            message.push_str(&format!("; not counted: {}", set_aside.join("; ")));
        }
        let first = self.ready_reason_is_not(why);
        self.phase(Phase::Pending, &message);
        self.condition(condition::READY, false, why, &message);
        self.condition(condition::APPROVED, false, why, &message);
        if first {
            self.note(expired, why, message);
        }
    }

    pub(super) fn approved(&mut self, by: &[String]) {
        let message = format!("approved by {}", by.join(", "));
        let said = crate::controller::conditions::get(&self.status.conditions, condition::APPROVED)
            .is_some_and(|c| c.status == "True" && c.observed_generation == self.scene.generation);
        self.condition(condition::APPROVED, true, reason::APPROVED, &message);
        if !said {
            self.note(false, reason::APPROVED, message);
        }
    }

    pub(super) fn denied(&mut self, by: &str, why: &str) {
        let message = format!("denied by {by}: {why}");
        let first =
            self.status.phase != Some(Phase::Failed) || self.ready_reason_is_not(reason::DENIED);
        self.phase(Phase::Failed, &message);
        self.condition(condition::READY, false, reason::DENIED, &message);
        self.condition(condition::APPROVED, false, reason::DENIED, &message);
        let (undone, reverted) = if self.status.started_at.is_none() {
            (true, "the workload was never changed".to_string())
        } else {
            match self.scene.mode {
                Mode::Patch => (true, format!("{} reverted", self.scene.target_ref())),
                Mode::Copy => (true, "the copy pod was deleted".to_string()),
                Mode::Ephemeral => (
                    false,
                    "an ephemeral container cannot be removed: its shell runs until its TTL-bounded command ends, or the pod is replaced".to_string(),
                ),
            }
        };
        self.condition(condition::REVERTED, undone, reason::DENIED, &reverted);
        if first {
            self.note(true, reason::DENIED, message);
        }
    }
}
