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
        let mut stuck = None;
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
                let status = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|cs| cs.iter().find(|c| c.name == shell));
                let ready = status.is_some_and(|c| c.ready);
                // A copy never restarts its containers: a shell that ended stays ended.
                let never =
                    pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("Never");
                let ended = status
                    .and_then(|c| c.state.as_ref())
                    .is_some_and(|st| st.terminated.is_some());
                if never && ended {
                    exited.push(name.clone());
                }
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
            if !ready && stuck.is_none() {
                stuck = cannot_start(pod, shell, e.ephemeral).map(|why| (name.clone(), why));
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
        let complete = desired > 0 && ready >= desired && lacking.is_empty() && e.settled;
        if !complete && e.ephemeral {
            // No watch of the operator's sees an ephemeral container start: watch its pods.
            let starting = carrying.iter().filter(|p| !p.ready);
            self.wait_for_shells(starting.map(|p| p.name.clone()).collect());
        }
        self.status.pods = carrying;
        let poll = if complete {
            POLL_ACTIVE
        } else if e.ephemeral {
            POLL_STARTING
        } else {
            self.poll_rolling()
        };
        let next = poll.min(until(self.now, expires));
        self.requeue = Some(self.requeue.map_or(next, |r| r.min(next)));
        let state = if complete {
            Rollout::Complete {
                attach: first_attach.unwrap_or_default(),
            }
        } else if !exited.is_empty() {
            Rollout::Exited { pods: exited }
        } else if let Some((pod, why)) = stuck {
            Rollout::Stuck { pod, why }
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

/// Why the shell container cannot start in `pod`, when the kubelet says it waits for a reason
/// that does not pass by itself (a refused configuration, an image that cannot be pulled).
fn cannot_start(pod: &Pod, shell: &str, ephemeral: bool) -> Option<String> {
    const STUCK: &[&str] = &[
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CrashLoopBackOff",
    ];
    let status = pod.status.as_ref()?;
    let list = if ephemeral {
        status.ephemeral_container_statuses.as_ref()
    } else {
        status.container_statuses.as_ref()
    };
    let waiting = list?
        .iter()
        .find(|c| c.name == shell)?
        .state
        .as_ref()?
        .waiting
        .as_ref()?;
    let reason = waiting.reason.as_deref().filter(|r| STUCK.contains(r))?;
    Some(match waiting.message.as_deref() {
        Some(m) if !m.is_empty() => format!("{reason}: {m}"),
        _ => reason.to_string(),
    })
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
