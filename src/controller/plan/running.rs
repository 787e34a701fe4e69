//! Planning a running session: the target it changed, new spec generations, expiry.

use super::*;

impl Planner<'_> {
    pub(super) fn plan_running(&mut self, obs: &Observed, settings: &Settings) {
        if self.denied_while_running(obs) {
            return;
        }
        self.lock_target();
        // Sessions that started before modes existed ran in Patch mode.
        match self.status.mode.unwrap_or(Mode::Patch) {
            Mode::Patch => self.running_patch(obs, settings),
            Mode::Copy => self.running_copy(obs, settings),
            Mode::Ephemeral => self.running_ephemeral(obs, settings),
        }
    }

    /// The target is fixed once started: a changed `spec.target` is reported, not followed.
    fn lock_target(&mut self) {
        let spec = &self.session.spec;
        let wanted = (spec.target.kind, spec.target.name.as_str());
        match &self.status.target {
            Some(t) if (t.kind, t.name.as_str()) != wanted => {
                let message = format!(
                    "spec.target changed to {}/{} after the session started; {}/{} stays the target",
                    wanted.0, wanted.1, t.kind, t.name
                );
                self.steps.push(Step::TargetLocked { message });
            }
            _ => self.steps.push(Step::TargetUnlocked),
        }
    }

    /// Whether the spec generation is newer than the one whose shell runs.
    pub(super) fn fresh(&self) -> bool {
        self.status
            .shell_generation
            .or(self.status.observed_generation)
            != self.generation()
    }

    /// Moves `expiresAt` to the start plus `ttl` (an accepted new TTL).
    pub(super) fn set_ttl(&mut self, ttl: Duration) {
        let started = self
            .status
            .started_at
            .clone()
            .map(|t| t.0)
            .unwrap_or(self.now);
        let expires = started + SignedDuration::try_from(ttl).unwrap_or(SignedDuration::MAX);
        self.status.expires_at = Some(Time(expires));
    }

    pub(super) fn expires(&self) -> Timestamp {
        self.status
            .expires_at
            .clone()
            .map(|t| t.0)
            .unwrap_or(self.now)
    }

    fn running_patch(&mut self, obs: &Observed, settings: &Settings) {
        let spec = &self.session.spec;
        let resolved = self.status.target.clone();
        // The workload must still be the one we changed.
        let workload = match (&obs.workload, &resolved) {
            (Some(w), Some(t)) if w.uid == t.uid => w,
            (w, _) => return self.target_gone(w.as_ref()),
        };

        // A spec generation that has not run yet runs only when it passes every check a start
        // passes; otherwise the shell of the last accepted generation stays, and so does its
        // expiry.
        let fresh = self.fresh();
        let accepted = if fresh {
            match self.check_new_spec(obs, settings, workload) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.refuse_spec(e);
                    None
                }
            }
        } else {
            None
        };
        if let Some((ttl, _)) = &accepted {
            self.set_ttl(*ttl);
        }
        let expires = self.expires();

        if self.now >= expires {
            let release = workload.is_managed_by(&self.manager());
            return self.expire(release.then_some(WorkloadAction::Release));
        }

        // The shell that should be in the workload: the new generation's, else the running one's
        // (rebuilt from the spec when the spec is the one that runs).
        // A refusal of the spec that already runs (the API server refusing its re-apply, a stamp
        // that no longer verifies) stops re-applies too.
        let refused = (fresh && accepted.is_none()) || (!fresh && obs.refusal.is_some());
        let shell = match (&accepted, refused) {
            (Some((_, shell)), _) => Some(shell.clone()),
            (None, false) => validate::shell_container(spec, settings).ok(),
            (None, true) => None,
        };
        let running_name = self
            .status
            .shell_container
            .clone()
            .unwrap_or_else(|| self.shell_name());
        let expected = shell.clone().unwrap_or(Container {
            name: running_name,
            ..Container::default()
        });
        if let Some((_, shell)) = &accepted {
            self.accept_spec(obs, shell);
            self.action = WorkloadAction::Apply(Box::new(shell.clone()));
            self.requeue = Some(POLL_APPLYING.min(until(self.now, expires)));
        }
        if let Some(what) = drift(workload, &expected, self.name()) {
            if let Some(s) = &shell {
                self.action = WorkloadAction::Apply(Box::new(s.clone()));
            }
            self.steps.push(Step::Drifted {
                what,
                reapply: shell.is_some(),
            });
            self.requeue = Some(POLL_APPLYING.min(until(self.now, expires)));
            return;
        }
        self.rollout(workload, &obs.pods, &expected.name, expires);
    }

    /// The workload the session changed was deleted, or deleted and recreated. A recreated
    /// object may carry the shell again (a manifest exported while the session ran, a backup):
    /// released when the session's field manager owns it, else reported as left behind.
    pub(super) fn target_gone(&mut self, replaced: Option<&Workload>) {
        self.status.ended_at = Some(Time(self.now));
        self.status.pods.clear();
        let gone = match replaced {
            None => Gone::Deleted,
            Some(w) if w.is_managed_by(&self.manager()) => {
                self.action = WorkloadAction::Release;
                Gone::ReplacedReleased
            }
            Some(w) => {
                let shell = self
                    .status
                    .shell_container
                    .clone()
                    .unwrap_or_else(|| self.shell_name());
                let has_shell = w.all_container_names().contains(&shell);
                let held =
                    w.annotations.get(HOLDER_ANNOTATION).map(String::as_str) == Some(self.name());
                if has_shell || held {
                    Gone::ReplacedWithShell { shell }
                } else {
                    Gone::ReplacedClean
                }
            }
        };
        self.steps.push(Step::TargetGone(gone));
    }

    /// Every check a start passes, for a new spec generation of a running session: TTL, shell,
    /// stamp and policy (in `obs.refusal`), container names and Pod Security.
    fn check_new_spec(
        &mut self,
        obs: &Observed,
        settings: &Settings,
        workload: &Workload,
    ) -> Result<(Duration, Container), Invalid> {
        let spec = &self.session.spec;
        let validate::Asked { ttl, shell, .. } = validate::resolve(spec, settings)?;
        if let Some(refusal) = &obs.refusal {
            return Err(refusal.clone());
        }
        self.approval_check(obs)?;
        let own = self
            .status
            .shell_container
            .clone()
            .unwrap_or_else(|| crate::session::settings::DEFAULT_CONTAINER_NAME.to_string());
        validate::against_workload(spec, &shell, workload, Some(&own))?;
        if let Some(message) =
            podsecurity::violation(self.namespace(), &obs.namespace_labels, &shell)
        {
            return Err(Invalid {
                reason: reason::POD_SECURITY_VIOLATION,
                message,
            });
        }
        Ok((ttl, shell))
    }

    /// Records that the current spec generation is what the workload gets, and by whose stamp.
    pub(super) fn accept_spec(&mut self, obs: &Observed, shell: &Container) {
        let previous = self.status.shell_generation;
        self.status.shell_generation = self.generation();
        self.status.shell_container = Some(shell.name.clone());
        self.authorize = true;
        let by = obs.stamp.as_ref().map(|s| s.requester.username.clone());
        self.status.requester = by.clone();
        let changed = previous.map(|_| {
            obs.stamp
                .as_ref()
                .map(|s| s.changed.clone())
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "spec".into())
        });
        self.steps.push(Step::SpecAccepted { by, changed });
    }

    /// A new spec generation of a running session that may not run: the shell of the last
    /// accepted one stays.
    pub(super) fn refuse_spec(&mut self, why: Invalid) {
        let running = self
            .status
            .shell_generation
            .or(self.status.observed_generation)
            .unwrap_or_default();
        if self.status.shell_generation.is_none() {
            self.status.shell_generation = Some(running);
        }
        self.steps.push(Step::SpecRefused { why, running });
    }

    /// The TTL ran out: undo what the mode did (`undo`, when anything is left) and end the
    /// session.
    pub(super) fn expire(&mut self, undo: Option<WorkloadAction>) {
        self.action = undo.unwrap_or(WorkloadAction::None);
        self.status.ended_at = Some(Time(self.now));
        self.status.pods.clear();
        self.steps.push(Step::Expired);
    }
}
