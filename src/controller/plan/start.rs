//! Planning a session that has not started: checks, waiting for the workload, taking it.

use super::*;

impl Planner<'_> {
    pub(super) fn plan_start(&mut self, obs: &Observed, settings: &Settings) {
        self.status.target_ref = Some(self.target_ref());
        let spec = &self.session.spec;
        let checked = validate::session_name(self.namespace(), self.name())
            .and_then(|()| validate::resolve(spec, settings));
        let validate::Asked { ttl, shell } = match checked {
            Ok(v) => v,
            Err(e) => return self.fail(e),
        };
        // What the admission layer refuses (no stamp, policy) comes after the spec's own errors.
        if let Some(refusal) = &obs.refusal {
            return self.fail(refusal.clone());
        }
        let Some(workload) = &obs.workload else {
            return self.fail(Invalid {
                reason: reason::TARGET_NOT_FOUND,
                message: format!(
                    "{} not found in namespace {}",
                    self.target_ref(),
                    self.namespace()
                ),
            });
        };
        // A held workload carries the holder's shell: wait before judging the template.
        match obs.holder.clone().unwrap_or(Holder::Free) {
            Holder::Other { name, live: true } => {
                self.steps.push(Step::WaitHeld { by: name });
                self.requeue = Some(POLL_PENDING);
            }
            Holder::Foreign { value, owners } => {
                self.steps.push(Step::WaitForeign { value, owners });
                self.requeue = Some(POLL_FOREIGN);
            }
            Holder::Other { name, live: false } => {
                // The holder ended or vanished without releasing: release its fields first.
                self.steps.push(Step::ReleaseStale {
                    session: name.clone(),
                });
                self.action = WorkloadAction::ReleaseStale { session: name };
                self.requeue = Some(Duration::from_millis(200));
            }
            holder @ (Holder::Free | Holder::Us) => {
                // Our own shell may already be there after a restart between apply and status.
                let ours = holder == Holder::Us;
                let own = ours.then_some(shell.name.as_str());
                if let Err(e) = validate::against_workload(spec, &shell, workload, own) {
                    return self.fail(e);
                }
                if let Some(message) =
                    podsecurity::violation(self.namespace(), &obs.namespace_labels, &shell)
                {
                    return self.fail(Invalid {
                        reason: reason::POD_SECURITY_VIOLATION,
                        message,
                    });
                }
                let expires =
                    self.now + SignedDuration::try_from(ttl).unwrap_or(SignedDuration::MAX);
                self.status.started_at = Some(Time(self.now));
                self.status.expires_at = Some(Time(expires));
                self.status.target = Some(ResolvedTarget {
                    kind: spec.target.kind,
                    name: spec.target.name.clone(),
                    uid: workload.uid.clone(),
                });
                self.steps.push(Step::Start {
                    shell: shell.name.clone(),
                    desired: workload.desired,
                });
                self.accept_spec(obs, &shell);
                self.action = if ours {
                    WorkloadAction::Apply(Box::new(shell))
                } else {
                    WorkloadAction::Take(Box::new(shell))
                };
                self.requeue = Some(POLL_APPLYING);
            }
        }
    }
}
