//! Planning the Ephemeral mode: an ephemeral container in the target pod (or every running pod
//! of the workload) whose command ends when the session expires. An ephemeral container cannot
//! be removed or changed, so nothing is undone at the end and no new generation can reach it.

use sha2::{Digest, Sha256};

use super::*;
use crate::api::Profile;
use crate::session::ephemeral as shell_build;

impl Planner<'_> {
    pub(super) fn start_ephemeral(&mut self, obs: &Observed, workload: &Workload, asked: Asked) {
        let source = match self.source_pod(obs, workload) {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        let named = self
            .session
            .spec
            .shell
            .as_ref()
            .is_some_and(|s| s.container_name.is_some());
        let mut shell = asked.shell.clone();
        if !named {
            shell.name = default_name(self.session);
        }
        let running = |p: &&Pod| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        };
        let pods: Vec<&Pod> = match source {
            Some(p) => vec![p],
            None => obs.pods.iter().filter(running).collect(),
        };
        if pods.is_empty() {
            return self.fail(Invalid {
                reason: reason::NO_PODS,
                message: format!(
                    "{} has no running pod to add an ephemeral shell to",
                    self.target_ref()
                ),
            });
        }
        if let Err(e) = self.check_shell(obs, workload, &shell, None) {
            return self.fail(e);
        }
        // A pod that already has an ephemeral container of this name: this session's own after
        // a restart (the default name is the session's), else a clash.
        let taken = pods.iter().find(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.ephemeral_containers.as_ref())
                .is_some_and(|l| l.iter().any(|c| c.name == shell.name))
        });
        if let Some(p) = taken.filter(|_| named) {
            return self.fail(Invalid {
                reason: reason::CONTAINER_NAME_CLASH,
                message: format!(
                    "pod {} already has an ephemeral container named {:?} (ephemeral containers stay in a pod until it is replaced): set spec.shell.containerName to another name",
                    p.metadata.name.clone().unwrap_or_default(),
                    shell.name
                ),
            });
        }
        let app = self
            .session
            .spec
            .target
            .container
            .clone()
            .or_else(|| workload.container_names().into_iter().next());
        let mut container = match shell_build::build(&shell, app.as_deref(), asked.ttl) {
            Ok(c) => c,
            Err(e) => return self.fail(e),
        };
        if obs.legacy_ephemeral && container.security_context.take().is_some() {
            // Kubernetes 1.20 and 1.21 refuse any securityContext on an ephemeral container: a
            // profile that only adds (general, netadmin, sysadmin) runs without its additions;
            // one that restricts cannot hold, so it is refused rather than weakened.
            if asked.profile == Profile::Restricted {
                return self.fail(Invalid {
                    reason: reason::INVALID_OPTIONS,
                    message: "this API server (Kubernetes before 1.22) allows no securityContext on an ephemeral container, so the restricted profile cannot hold in Ephemeral mode: use mode Copy".into(),
                });
            }
            self.steps.push(Step::ProfileDropped {
                profile: asked.profile,
            });
        }
        let names: Vec<String> = pods
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        let asked = Asked { shell, ..asked };
        self.begin(obs, workload, &asked, names.clone());
        self.status.fixed_spec = Some(super::copy::fixed_spec(&self.session.spec));
        self.status.pods = names
            .iter()
            .map(|name| SessionPod {
                name: name.clone(),
                container: asked.shell.name.clone(),
                ready: false,
                attach: format!(
                    "kubectl attach -it -n {} {name} -c {}",
                    self.namespace(),
                    asked.shell.name
                ),
            })
            .collect();
        self.wait_for_shells(names.clone());
        self.action = WorkloadAction::AddEphemeral {
            pods: names,
            shell: Box::new(container),
        };
    }

    pub(super) fn running_ephemeral(&mut self, obs: &Observed, settings: &Settings) {
        if self.fresh() {
            let why = "an ephemeral shell's command and lifetime are fixed when it starts";
            let refusal = match self.check_fixed_spec(obs, settings, why) {
                Ok(_) => Invalid {
                    reason: reason::INVALID_OPTIONS,
                    message: format!(
                        "{why}, so a new spec.ttl cannot reach it; end this session and start another"
                    ),
                },
                Err(e) => e,
            };
            self.refuse_spec(refusal);
        }
        let shell = self.status.shell_container.clone().unwrap_or_default();
        let expires = self.expires();
        if self.now >= expires {
            return self.expire(None);
        }
        let live: Vec<Pod> = obs
            .pods
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && shell_build::state(p, &shell) != ShellState::Missing
            })
            .cloned()
            .collect();
        if live.is_empty() {
            self.status.ended_at = Some(Time(self.now));
            self.status.pods.clear();
            return self.fail(Invalid {
                reason: reason::TARGET_DELETED,
                message: "the pods with the ephemeral shell are gone (deleted or replaced)".into(),
            });
        }
        let expect = Expect {
            shell: &shell,
            ephemeral: true,
            desired: live.len(),
            settled: true,
            on_delete: false,
        };
        self.progress(&live, &expect, expires);
    }
}

/// The default name of a session's ephemeral shell: `debug-shell-` and a hash of the session's
/// UID. Ephemeral containers stay in a pod after they end, so each session needs a name of its
/// own.
fn default_name(session: &DebugSession) -> String {
    let uid = session.metadata.uid.clone().unwrap_or_default();
    let hash: String = Sha256::digest(uid.as_bytes())
        .iter()
        .take(3)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{hash}",
        crate::session::settings::DEFAULT_CONTAINER_NAME
    )
}
