//! Planning a session that has not started: checks, waiting for the target, starting it in the
//! session's mode (Patch takes the workload; Copy and Ephemeral live in [`super::copy`] and
//! [`super::ephemeral`]).

use super::*;

impl Planner<'_> {
    pub(super) fn plan_start(&mut self, obs: &Observed, settings: &Settings) {
        self.status.target_ref = Some(self.target_ref());
        let spec = &self.session.spec;
        let checked = validate::session_name(self.namespace(), self.name())
            .and_then(|()| validate::resolve(spec, settings));
        let asked = match checked {
            Ok(v) => v,
            Err(e) => return self.fail(e),
        };
        // What the admission layer refuses (no stamp, policy) comes after the spec's own errors.
        if let Some(refusal) = &obs.refusal {
            return self.fail(refusal.clone());
        }
        // Nothing touches the target before the approvals its namespace asks for.
        if !self.approval_gate(obs) {
            return;
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
        match asked.mode {
            Mode::Patch => self.start_patch(obs, workload, asked),
            Mode::Copy => self.start_copy(obs, workload, asked),
            Mode::Ephemeral => self.start_ephemeral(obs, workload, asked),
        }
    }

    /// The checks every mode runs on its shell before anything is created or changed: the
    /// container names of the target and the namespace's Pod Security level.
    pub(super) fn check_shell(
        &self,
        obs: &Observed,
        workload: &Workload,
        shell: &Container,
        own: Option<&str>,
    ) -> Result<(), Invalid> {
        validate::against_workload(&self.session.spec, shell, workload, own)?;
        match podsecurity::violation(self.namespace(), &obs.namespace_labels, shell) {
            Some(message) => Err(Invalid {
                reason: reason::POD_SECURITY_VIOLATION,
                message,
            }),
            None => Ok(()),
        }
    }

    /// Starts the clock and records the resolved target and mode, then the start step.
    pub(super) fn begin(
        &mut self,
        obs: &Observed,
        workload: &Workload,
        asked: &validate::Asked,
        pods: Vec<String>,
    ) {
        let spec = &self.session.spec;
        let expires = self.now + SignedDuration::try_from(asked.ttl).unwrap_or(SignedDuration::MAX);
        self.status.started_at = Some(Time(self.now));
        self.status.expires_at = Some(Time(expires));
        self.status.mode = Some(asked.mode);
        self.status.target = Some(ResolvedTarget {
            kind: spec.target.kind,
            name: spec.target.name.clone(),
            uid: workload.uid.clone(),
        });
        let desired = match asked.mode {
            Mode::Patch => workload.desired,
            Mode::Copy => 1,
            Mode::Ephemeral => pods.len() as i32,
        };
        self.steps.push(Step::Start {
            shell: asked.shell.name.clone(),
            desired,
            pods,
        });
        self.accept_spec(obs, &asked.shell);
        self.requeue = Some(POLL_APPLYING);
    }

    fn start_patch(&mut self, obs: &Observed, workload: &Workload, asked: validate::Asked) {
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
                let own = ours.then_some(asked.shell.name.as_str());
                if let Err(e) = self.check_shell(obs, workload, &asked.shell, own) {
                    return self.fail(e);
                }
                self.begin(obs, workload, &asked, Vec::new());
                let shell = Box::new(asked.shell);
                self.action = if ours {
                    WorkloadAction::Apply(shell)
                } else {
                    WorkloadAction::Take(shell)
                };
            }
        }
    }
}
