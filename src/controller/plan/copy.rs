//! Planning the Copy mode: a standalone copy of a pod with the shell added, owned by the session;
//! the workload is never touched. Only the TTL of a running copy may change.

use super::*;
use crate::session::copy::{self as pod_copy, CopySource, SessionRef};
use crate::session::stamp;

impl Planner<'_> {
    /// The pod `target.pod` names (or the Pod target itself), checked to exist and to belong to
    /// the workload; `None` when the session names no pod.
    pub(super) fn source_pod<'o>(
        &self,
        obs: &'o Observed,
        workload: &Workload,
    ) -> Result<Option<&'o Pod>, Invalid> {
        let spec = &self.session.spec;
        if spec.target.kind == TargetKind::Pod {
            return Ok(obs.source_pod.as_ref());
        }
        let Some(wanted) = spec.target.pod.as_deref() else {
            return Ok(None);
        };
        let found = obs
            .source_pod
            .as_ref()
            .filter(|p| p.metadata.deletion_timestamp.is_none());
        let belongs = |p: &&Pod| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            let selector = workload.selector.match_labels.clone().unwrap_or_default();
            !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        };
        match found {
            Some(p) if belongs(&p) => Ok(Some(p)),
            Some(_) => Err(Invalid {
                reason: reason::POD_NOT_FOUND,
                message: format!(
                    "pod {wanted} is not a pod of {} (its labels do not match the selector)",
                    self.target_ref()
                ),
            }),
            None => Err(Invalid {
                reason: reason::POD_NOT_FOUND,
                message: format!(
                    "target.pod {wanted} not found in namespace {}: name a running pod of {} (kubectl get pods -n {} -l {})",
                    self.namespace(),
                    self.target_ref(),
                    self.namespace(),
                    workload.label_selector()
                ),
            }),
        }
    }

    pub(super) fn start_copy(&mut self, obs: &Observed, workload: &Workload, asked: Asked) {
        let source = match self.source_pod(obs, workload) {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        if let Err(e) = self.check_shell(obs, workload, &asked.shell, None) {
            return self.fail(e);
        }
        let from = match source {
            Some(p) => CopySource::Pod(p),
            None => CopySource::Template(&workload.template),
        };
        let options = self.session.spec.copy.clone().unwrap_or_default();
        let pod =
            match pod_copy::build(&from, &asked.shell, &options, &SessionRef::of(self.session)) {
                Ok(p) => p,
                Err(e) => return self.fail(e),
            };
        let name = pod_copy::copy_name(self.name());
        // After a restart between the create and the status write, the copy is already there.
        let exists = obs
            .pods
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some(name.as_str()));
        self.begin(obs, workload, &asked, vec![name]);
        self.status.fixed_spec = Some(fixed_spec(&self.session.spec));
        if !exists {
            self.action = WorkloadAction::CreateCopy(Box::new(pod));
        }
    }

    pub(super) fn running_copy(&mut self, obs: &Observed, settings: &Settings) {
        let name = pod_copy::copy_name(self.name());
        if self.fresh() {
            match self.check_fixed_spec(obs, settings, "a Copy session's pod cannot change") {
                Ok(asked) => {
                    self.set_ttl(asked.ttl);
                    let running = self.status.shell_container.clone().unwrap_or_default();
                    let shell = Container {
                        name: running,
                        ..asked.shell
                    };
                    self.accept_spec(obs, &shell);
                }
                Err(e) => self.refuse_spec(e),
            }
        }
        let copy = obs.pods.iter().find(|p| {
            p.metadata.name.as_deref() == Some(name.as_str())
                && p.metadata.deletion_timestamp.is_none()
        });
        let expires = self.expires();
        if self.now >= expires {
            let undo = copy.map(|p| WorkloadAction::DeleteCopy {
                pod: name,
                uid: p.metadata.uid.clone().unwrap_or_default(),
            });
            return self.expire(undo);
        }
        let Some(copy) = copy else {
            self.status.ended_at = Some(Time(self.now));
            self.status.pods.clear();
            return self.fail(Invalid {
                reason: reason::COPY_DELETED,
                message: format!(
                    "the copy pod {name} was deleted while the session ran; {} was never changed",
                    self.target_ref()
                ),
            });
        };
        let shell = self.status.shell_container.clone().unwrap_or_default();
        let expect = Expect {
            shell: &shell,
            ephemeral: false,
            desired: 1,
            settled: true,
            on_delete: false,
        };
        self.progress(std::slice::from_ref(copy), &expect, expires);
    }

    /// A new generation of a session whose shell cannot change (Copy, Ephemeral): every check
    /// a start passes, and nothing but the TTL changed.
    pub(super) fn check_fixed_spec(
        &mut self,
        obs: &Observed,
        settings: &Settings,
        why: &str,
    ) -> Result<Asked, Invalid> {
        let asked = validate::resolve(&self.session.spec, settings)?;
        if let Some(refusal) = &obs.refusal {
            return Err(refusal.clone());
        }
        self.approval_check(obs)?;
        if self.status.fixed_spec.as_deref() != Some(fixed_spec(&self.session.spec).as_str()) {
            return Err(Invalid {
                reason: reason::INVALID_OPTIONS,
                message: format!(
                    "{why}: only spec.ttl may change while it runs; end this session and start another"
                ),
            });
        }
        Ok(asked)
    }
}

/// The digest of everything in the spec but the TTL.
pub(super) fn fixed_spec(spec: &crate::api::DebugSessionSpec) -> String {
    let mut spec = spec.clone();
    spec.ttl = None;
    stamp::spec_digest(&spec)
}
