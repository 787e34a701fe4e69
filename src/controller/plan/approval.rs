//! Planning approvals: a spec generation that needs approval runs only once it has it; a
//! denial ends the session.

use super::*;
use crate::api::ApprovalStatus;
use crate::session::approval::Decision;
use crate::session::approval::tally::Tally;

/// How often a session waiting for approval looks again without being woken (an approval
/// annotation wakes it at once).
const POLL_APPROVAL: Duration = Duration::from_secs(60);

impl Planner<'_> {
    /// Records where the current spec stands with its approvals.
    fn record_approval(&mut self, t: &Tally) {
        if t.required == 0 && t.denial.is_none() {
            return;
        }
        // Whole seconds, as the API server keeps a Time: what is read back equals what was
        // written, so an unchanged tally writes no status.
        let approved_at = if t.approved() {
            t.approved_at()
                .and_then(|at| Timestamp::from_second(at.as_second()).ok())
                .map(Time)
        } else {
            None
        };
        self.status.approval = Some(ApprovalStatus {
            required: t.required,
            approved_by: t.approvers(),
            denied_by: t.denial.as_ref().map(|d| d.user.clone()),
            approved_at,
        });
    }

    /// Before a session starts: whether it may (approved, or no approval needed). When not,
    /// the steps say why (waiting, or denied).
    pub(super) fn approval_gate(&mut self, obs: &Observed) -> bool {
        let Some(t) = &obs.approval else {
            return true;
        };
        let passed = self.gate(t);
        if !passed {
            // A start whose status write was lost may have left the shell (or the copy):
            // nothing stays in the target of a session that may not start.
            self.action = self.undo(obs).unwrap_or(WorkloadAction::None);
        }
        passed
    }

    fn gate(&mut self, t: &Tally) -> bool {
        self.record_approval(t);
        if let Some(d) = &t.denial {
            self.steps.push(denied_step(d));
            return false;
        }
        if t.required == 0 {
            return true;
        }
        if !t.approved() {
            self.steps.push(Step::AwaitingApproval {
                missing: t.required - t.approvals.len() as u32,
                required: t.required,
                approvers: t.approvers(),
                set_aside: t.set_aside.clone(),
                expired: t.expired,
                command: self.approve_command(),
            });
            self.requeue = Some(POLL_APPROVAL);
            return false;
        }
        self.steps.push(Step::Approved { by: t.approvers() });
        true
    }

    /// For a new spec generation of a running session: `Err` while it lacks its approvals.
    /// `status.approval` keeps describing the spec that runs until the new one is approved.
    pub(super) fn approval_check(&mut self, obs: &Observed) -> Result<(), Invalid> {
        let Some(t) = &obs.approval else {
            return Ok(());
        };
        if t.required == 0 || t.approved() {
            self.record_approval(t);
            return Ok(());
        }
        let missing = t.required - t.approvals.len() as u32;
        Err(Invalid {
            reason: if t.expired {
                reason::APPROVAL_EXPIRED
            } else {
                reason::AWAITING_APPROVAL
            },
            message: format!(
                "it waits for {missing} more approval{} ({})",
                if missing == 1 { "" } else { "s" },
                self.approve_command()
            ),
        })
    }

    /// A denial of the spec that runs ends the session now: undone like an expiry.
    pub(super) fn denied_while_running(&mut self, obs: &Observed) -> bool {
        let Some(d) = obs.approval.as_ref().and_then(|t| t.denial.clone()) else {
            return false;
        };
        if let Some(t) = &obs.approval {
            self.record_approval(t);
        }
        self.action = self.undo(obs).unwrap_or(WorkloadAction::None);
        self.status.ended_at = Some(Time(self.now));
        self.status.pods.clear();
        self.steps.push(denied_step(&d));
        true
    }

    /// `kubectl debugsession approve NAME -n NS`.
    pub(super) fn approve_command(&self) -> String {
        format!(
            "kubectl debugsession approve {} -n {}",
            self.name(),
            self.namespace()
        )
    }
}

fn denied_step(d: &Decision) -> Step {
    Step::Denied {
        by: d.user.clone(),
        reason: d.comment.clone(),
    }
}
