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
                let message = format!(
                    "waiting: {} is held by DebugSession {name}; this session starts when that one ends",
                    self.target_ref()
                );
                let first = conditions::get(&self.status.conditions, condition::READY)
                    .is_none_or(|c| c.reason != reason::HELD_BY_OTHER_SESSION);
                self.set_phase(Phase::Pending, message.clone());
                self.condition(
                    condition::READY,
                    false,
                    reason::HELD_BY_OTHER_SESSION,
                    &message,
                );
                if first {
                    self.note(false, reason::HELD_BY_OTHER_SESSION, message);
                }
                self.requeue = Some(POLL_PENDING);
            }
            Holder::Foreign { value, owners } => {
                let by = if owners.is_empty() {
                    "an unknown writer".to_string()
                } else {
                    format!("field manager {}", owners.join(", "))
                };
                let (kind, name) = self.target();
                let message = format!(
                    "waiting: {} carries the annotation {HOLDER_ANNOTATION}={value:?}, written by {by}, not by a DebugSession; remove it (kubectl annotate -n {} {}/{} {HOLDER_ANNOTATION}-) and this session starts by itself",
                    self.target_ref(),
                    self.namespace(),
                    kind.as_str().to_lowercase(),
                    name
                );
                let first = conditions::get(&self.status.conditions, condition::READY)
                    .is_none_or(|c| c.reason != reason::FOREIGN_HOLDER);
                self.set_phase(Phase::Pending, message.clone());
                self.condition(condition::READY, false, reason::FOREIGN_HOLDER, &message);
                if first {
                    self.note(true, reason::FOREIGN_HOLDER, message);
                }
                self.requeue = Some(POLL_FOREIGN);
            }
            Holder::Other { name, live: false } => {
                // The holder ended or vanished without releasing: release its fields first.
                self.note(
                    true,
                    reason::HELD_BY_OTHER_SESSION,
                    format!(
                        "releasing {} from DebugSession {name}, which no longer runs",
                        self.target_ref()
                    ),
                );
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
                let message = format!(
                    "added {} to {} with shareProcessNamespace; waiting for the pods to roll",
                    shell.name,
                    self.target_ref()
                );
                self.note(false, reason::APPLIED, message.clone());
                self.set_phase(Phase::Applying, message.clone());
                self.condition(condition::READY, false, reason::ROLLING_OUT, &message);
                self.condition(
                    condition::REVERTED,
                    false,
                    reason::NOT_REVERTED,
                    "the debug shell is in the workload",
                );
                self.status.ready_pods = Some(format!("0/{}", workload.desired));
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
