//! The rollout of the shell to the pods, and drift of the workload away from it.

use super::*;

impl Planner<'_> {
    /// The name of the shell container the spec asks for.
    pub(super) fn shell_name(&self) -> String {
        self.session
            .spec
            .shell
            .as_ref()
            .and_then(|s| s.container_name.clone())
            .unwrap_or_else(|| crate::session::settings::DEFAULT_CONTAINER_NAME.to_string())
    }

    /// The rollout of a patched template: the workload's pods, which must all carry the shell
    /// once the workload's controller has finished rolling.
    pub(super) fn rollout(
        &mut self,
        workload: &Workload,
        pods: &[Pod],
        shell: &str,
        expires: Timestamp,
    ) {
        let expect = Expect {
            shell,
            ephemeral: false,
            desired: workload.desired.max(0) as usize,
            settled: workload.on_delete || workload.rolled_out,
            on_delete: workload.on_delete,
        };
        self.progress(pods, &expect, expires);
    }

    /// Where the shell is in `pods`: the status's pod list, and the progress step.
    pub(super) fn progress(&mut self, pods: &[Pod], e: &Expect, expires: Timestamp) {
        let ns = self.namespace().to_string();
        let shell = e.shell;
        let mut carrying = Vec::new();
        let mut lacking = Vec::new();
        let mut exited = Vec::new();
        for pod in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
        {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let (has_shell, ready) = if e.ephemeral {
                match shell_state::state(pod, shell) {
                    ShellState::Missing => (false, false),
                    ShellState::Running => (true, true),
                    ShellState::Waiting(_) => (true, false),
                    ShellState::Terminated { .. } => {
                        exited.push(name.clone());
                        (true, false)
                    }
                }
            } else {
                let ready = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|cs| cs.iter().find(|c| c.name == shell))
                    .is_some_and(|c| c.ready);
                let has = pod
                    .spec
                    .as_ref()
                    .is_some_and(|s| s.containers.iter().any(|c| c.name == shell));
                (has, ready)
            };
            if !has_shell {
                lacking.push(name);
                continue;
            }
            let attach = format!("kubectl attach -it -n {ns} {name} -c {shell}");
            carrying.push(SessionPod {
                name,
                container: shell.to_string(),
                ready,
                attach,
            });
        }
        carrying.sort_by(|a, b| a.name.cmp(&b.name));
        lacking.sort();
        exited.sort();
        let ready = carrying.iter().filter(|p| p.ready).count();
        let desired = e.desired;
        let first_attach = carrying.iter().find(|p| p.ready).map(|p| p.attach.clone());
        self.status.pods = carrying;
        let complete = desired > 0 && ready >= desired && lacking.is_empty() && e.settled;
        let poll = if complete {
            POLL_ACTIVE
        } else if e.ephemeral {
            // Nothing wakes the session when an ephemeral container starts: look again soon.
            POLL_STARTING
        } else {
            POLL_APPLYING
        };
        let next = poll.min(until(self.now, expires));
        self.requeue = Some(self.requeue.map_or(next, |r| r.min(next)));
        let state = if complete {
            Rollout::Complete {
                attach: first_attach.unwrap_or_default(),
            }
        } else if !exited.is_empty() {
            Rollout::Exited { pods: exited }
        } else if desired == 0 {
            Rollout::NoPods
        } else if e.on_delete && !lacking.is_empty() {
            Rollout::OnDelete { lacking }
        } else {
            Rollout::Rolling
        };
        self.steps.push(Step::Progress(Progress {
            ready,
            desired,
            state,
        }));
    }
}

/// What the shell's progress is measured against.
pub(super) struct Expect<'a> {
    pub shell: &'a str,
    /// The shell is an ephemeral container (else a container of the pod spec).
    pub ephemeral: bool,
    pub desired: usize,
    /// Whatever owns the pods has settled (a workload done rolling; always for a copy).
    pub settled: bool,
    pub on_delete: bool,
}

/// What is missing from the workload that the session put there, if anything.
pub(super) fn drift(workload: &Workload, shell: &Container, session: &str) -> Option<String> {
    let target = format!(
        "{}/{}",
        workload.kind.map(|k| k.as_str()).unwrap_or("workload"),
        workload.name
    );
    let spec = workload.template.spec.clone().unwrap_or_default();
    let Some(found) = spec.containers.iter().find(|c| c.name == shell.name) else {
        return Some(format!(
            "container {} was removed from {target}",
            shell.name
        ));
    };
    if shell.image.is_some() && found.image != shell.image {
        return Some(format!(
            "the image of {} in {target} was changed to {}",
            shell.name,
            found.image.clone().unwrap_or_default()
        ));
    }
    if spec.share_process_namespace != Some(true) {
        return Some(format!("shareProcessNamespace was turned off in {target}"));
    }
    if workload
        .annotations
        .get(HOLDER_ANNOTATION)
        .map(String::as_str)
        != Some(session)
    {
        return Some(format!(
            "the {HOLDER_ANNOTATION} annotation was removed from {target}"
        ));
    }
    None
}
