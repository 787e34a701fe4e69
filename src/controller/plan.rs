//! Pure planning: given a session, what was observed in the cluster and the clock, decide what to
//! do to the workload, the next status, the events to record and when to look again.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::conditions;
use super::podsecurity;
use super::validate::{self, Invalid};
use crate::api::{
    DebugSession, DebugSessionStatus, HOLDER_ANNOTATION, Phase, ResolvedTarget, SessionPod, Target,
    condition, reason,
};
use crate::settings::Settings;
use crate::workload::Workload;

/// Who holds the target workload, from its holder annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    Free,
    Us,
    /// Another session; `live` when it exists and has not ended.
    Other {
        name: String,
        live: bool,
    },
}

/// What the controller saw in the cluster for one reconcile.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub workload: Option<Workload>,
    pub holder: Option<Holder>,
    pub namespace_labels: BTreeMap<String, String>,
    pub pods: Vec<Pod>,
}

/// The change to make to the workload.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkloadAction {
    None,
    /// Take the workload (holder annotation, without force) and apply the shell.
    Apply(Box<Container>),
    /// Apply an empty intent under the session's field manager.
    Release,
    /// Release the fields of another session that ended without releasing them.
    ReleaseStale {
        session: String,
    },
}

/// An event to record on the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub action: WorkloadAction,
    pub status: DebugSessionStatus,
    pub notes: Vec<Note>,
    pub requeue: Option<Duration>,
}

const POLL_PENDING: Duration = Duration::from_secs(10);
const POLL_APPLYING: Duration = Duration::from_secs(5);
const POLL_ACTIVE: Duration = Duration::from_secs(60);

/// Plans one reconcile of a live (not deleted) session.
pub fn plan(session: &DebugSession, obs: &Observed, settings: &Settings, now: Timestamp) -> Plan {
    let mut p = Planner::new(session, now);
    let status = p.status.clone();
    let phase = status.phase.unwrap_or(Phase::Pending);
    let never_started = status.started_at.is_none();
    let spec_changed = status.observed_generation != session.metadata.generation;

    if phase.is_terminal() && !(phase == Phase::Failed && never_started && spec_changed) {
        // Ended: nothing left but making sure the workload carries nothing of ours.
        if obs
            .workload
            .as_ref()
            .is_some_and(|w| w.is_managed_by(&p.manager()))
        {
            p.action = WorkloadAction::Release;
        }
        return p.finish();
    }
    if never_started {
        p.plan_start(obs, settings);
    } else {
        p.plan_running(obs, settings);
    }
    p.finish()
}

/// Plans the revert when the session is being deleted: release if anything of ours is there.
pub fn plan_cleanup(session: &DebugSession, obs: &Observed, now: Timestamp) -> Plan {
    let mut p = Planner::new(session, now);
    match &obs.workload {
        Some(w) if w.is_managed_by(&p.manager()) => {
            p.action = WorkloadAction::Release;
            p.note(
                false,
                reason::REVERTED,
                format!("session deleted: reverted {}", p.target_ref()),
            );
        }
        _ => {}
    }
    p.finish()
}

struct Planner<'a> {
    session: &'a DebugSession,
    now: Timestamp,
    status: DebugSessionStatus,
    action: WorkloadAction,
    notes: Vec<Note>,
    requeue: Option<Duration>,
}

impl<'a> Planner<'a> {
    fn new(session: &'a DebugSession, now: Timestamp) -> Self {
        Planner {
            session,
            now,
            status: session.status.clone().unwrap_or_default(),
            action: WorkloadAction::None,
            notes: Vec::new(),
            requeue: None,
        }
    }

    fn manager(&self) -> String {
        let m = &self.session.metadata;
        crate::api::session_manager(
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default(),
        )
    }

    fn name(&self) -> &str {
        self.session.metadata.name.as_deref().unwrap_or_default()
    }

    fn namespace(&self) -> &str {
        self.session
            .metadata
            .namespace
            .as_deref()
            .unwrap_or_default()
    }

    /// The target in force: the resolved one once started, else the spec's.
    fn target(&self) -> Target {
        match &self.status.target {
            Some(t) => Target {
                kind: t.kind,
                name: t.name.clone(),
                container: None,
            },
            None => self.session.spec.target.clone(),
        }
    }

    fn target_ref(&self) -> String {
        let t = self.target();
        format!("{}/{}", t.kind, t.name)
    }

    fn note(&mut self, warning: bool, reason: &'static str, message: impl Into<String>) {
        self.notes.push(Note {
            warning,
            reason,
            message: message.into(),
        });
    }

    fn generation(&self) -> Option<i64> {
        self.session.metadata.generation
    }

    fn condition(&mut self, type_: &str, ok: bool, reason: &str, message: &str) {
        let (generation, now) = (self.generation(), self.now);
        conditions::set(
            &mut self.status.conditions,
            type_,
            ok,
            reason,
            message,
            generation,
            now,
        );
    }

    fn phase(&self) -> Option<Phase> {
        self.status.phase
    }

    fn set_phase(&mut self, phase: Phase, message: impl Into<String>) {
        self.status.phase = Some(phase);
        self.status.message = Some(message.into());
    }

    fn fail(&mut self, invalid: Invalid) {
        let changed = self.phase() != Some(Phase::Failed)
            || conditions::get(&self.status.conditions, condition::READY)
                .map(|c| c.reason.as_str())
                != Some(invalid.reason);
        self.set_phase(Phase::Failed, invalid.message.clone());
        self.condition(condition::READY, false, invalid.reason, &invalid.message);
        if self.status.started_at.is_none() {
            self.condition(
                condition::REVERTED,
                true,
                reason::NOTHING_TO_REVERT,
                "the workload was never changed",
            );
        }
        if changed {
            self.note(true, invalid.reason, invalid.message);
        }
    }

    fn plan_start(&mut self, obs: &Observed, settings: &Settings) {
        self.status.target_ref = Some(self.target_ref());
        let spec = &self.session.spec;
        let checked = validate::session_ttl(spec, settings)
            .and_then(|ttl| validate::shell_container(spec, settings).map(|shell| (ttl, shell)));
        let (ttl, shell) = match checked {
            Ok(v) => v,
            Err(e) => return self.fail(e),
        };
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
        if let Err(e) = validate::against_workload(spec, &shell, workload) {
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
            Holder::Free | Holder::Us => {
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
                self.note(false, "Applied", message.clone());
                self.set_phase(Phase::Applying, message.clone());
                self.condition(condition::READY, false, reason::ROLLING_OUT, &message);
                self.condition(
                    condition::REVERTED,
                    false,
                    reason::NOT_REVERTED,
                    "the debug shell is in the workload",
                );
                self.status.ready_pods = Some(format!("0/{}", workload.desired));
                self.action = WorkloadAction::Apply(Box::new(shell));
                self.requeue = Some(POLL_APPLYING);
            }
        }
    }

    fn plan_running(&mut self, obs: &Observed, settings: &Settings) {
        let spec = &self.session.spec;
        let resolved = self.status.target.clone();
        // The target is fixed once started.
        let wanted = (spec.target.kind, spec.target.name.as_str());
        match &resolved {
            Some(t) if (t.kind, t.name.as_str()) != wanted => {
                let message = format!(
                    "spec.target changed to {}/{} after the session started; {}/{} stays the target",
                    wanted.0, wanted.1, t.kind, t.name
                );
                if conditions::get(&self.status.conditions, condition::TARGET_LOCKED).is_none() {
                    self.note(true, reason::TARGET_CHANGE_REFUSED, message.clone());
                }
                self.condition(
                    condition::TARGET_LOCKED,
                    true,
                    reason::TARGET_CHANGE_REFUSED,
                    &message,
                );
            }
            _ => conditions::remove(&mut self.status.conditions, condition::TARGET_LOCKED),
        }

        // The workload must still be the one we changed.
        let workload = match (&obs.workload, &resolved) {
            (Some(w), Some(t)) if w.uid == t.uid => w,
            (w, _) => {
                let (why, message) = match w {
                    None => (
                        reason::TARGET_DELETED,
                        format!("{} was deleted while the session ran", self.target_ref()),
                    ),
                    Some(_) => (
                        reason::TARGET_REPLACED,
                        format!(
                            "{} was deleted and recreated while the session ran",
                            self.target_ref()
                        ),
                    ),
                };
                self.status.ended_at = Some(Time(self.now));
                self.status.pods.clear();
                self.condition(
                    condition::REVERTED,
                    true,
                    why,
                    "nothing to revert: the changed workload is gone",
                );
                return self.fail(Invalid {
                    reason: why,
                    message,
                });
            }
        };

        // TTL: counted from startedAt; a spec change moves expiresAt, an invalid one is refused.
        let started = self
            .status
            .started_at
            .clone()
            .map(|t| t.0)
            .unwrap_or(self.now);
        match validate::session_ttl(spec, settings) {
            Ok(ttl) => {
                let expires =
                    started + SignedDuration::try_from(ttl).unwrap_or(SignedDuration::MAX);
                self.status.expires_at = Some(Time(expires));
            }
            Err(e) if self.status.observed_generation != self.generation() => {
                self.note(
                    true,
                    e.reason,
                    format!("{}; the session keeps its expiry", e.message),
                );
            }
            Err(_) => {}
        }
        let expires = self
            .status
            .expires_at
            .clone()
            .map(|t| t.0)
            .unwrap_or(self.now);

        if self.now >= expires {
            let message = format!("TTL ran out: {} reverted", self.target_ref());
            self.action = if workload.is_managed_by(&self.manager()) {
                WorkloadAction::Release
            } else {
                WorkloadAction::None
            };
            self.status.ended_at = Some(Time(self.now));
            self.status.pods.clear();
            self.set_phase(Phase::Expired, message.clone());
            self.condition(
                condition::READY,
                false,
                reason::EXPIRED,
                "the session expired",
            );
            self.condition(condition::REVERTED, true, reason::EXPIRED, &message);
            self.note(
                false,
                reason::EXPIRED,
                format!(
                    "TTL of {} ran out",
                    spec.ttl.as_deref().unwrap_or("default")
                ),
            );
            self.note(false, reason::REVERTED, message);
            return;
        }

        let shell = match validate::shell_container(spec, settings) {
            Ok(s) => s,
            Err(e) => {
                if self.status.observed_generation != self.generation() {
                    self.note(
                        true,
                        e.reason,
                        format!("{}; the running shell is kept", e.message),
                    );
                }
                // Keep what is in place: only look for the container we put there.
                let name = self.applied_shell_name(workload);
                Container {
                    name,
                    ..Container::default()
                }
            }
        };
        let drift = drift(workload, &shell, self.name());
        let spec_changed =
            self.status.observed_generation != self.generation() && shell.image.is_some();
        if drift.is_some() || spec_changed {
            if let Some(what) = &drift {
                let message = format!("{what}; re-applying the debug shell");
                self.note(true, reason::DRIFTED, message.clone());
                self.set_phase(Phase::Applying, message.clone());
                self.condition(condition::READY, false, reason::DRIFTED, &message);
            }
            if shell.image.is_some() {
                self.action = WorkloadAction::Apply(Box::new(shell.clone()));
            }
            self.requeue = Some(POLL_APPLYING.min(until(self.now, expires)));
            if drift.is_some() {
                return;
            }
        }
        self.rollout(workload, &obs.pods, &shell.name, expires);
    }

    /// The name of the shell container in force: what the status reports, else the spec's.
    fn applied_shell_name(&self, workload: &Workload) -> String {
        let spec_name = self
            .session
            .spec
            .shell
            .as_ref()
            .and_then(|s| s.container_name.clone())
            .unwrap_or_else(|| crate::settings::DEFAULT_CONTAINER_NAME.to_string());
        workload
            .container_names()
            .into_iter()
            .find(|n| *n == spec_name)
            .unwrap_or(spec_name)
    }

    fn rollout(&mut self, workload: &Workload, pods: &[Pod], shell: &str, expires: Timestamp) {
        let ns = self.namespace().to_string();
        let mut carrying = Vec::new();
        let mut lacking = Vec::new();
        for pod in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
        {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let has_shell = pod
                .spec
                .as_ref()
                .is_some_and(|s| s.containers.iter().any(|c| c.name == shell));
            if !has_shell {
                lacking.push(name);
                continue;
            }
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.name == shell))
                .is_some_and(|c| c.ready);
            let attach = format!("kubectl attach -it -n {ns} {name} -c {shell}");
            carrying.push(SessionPod {
                name,
                ready,
                attach,
            });
        }
        carrying.sort_by(|a, b| a.name.cmp(&b.name));
        lacking.sort();
        let ready = carrying.iter().filter(|p| p.ready).count();
        let desired = workload.desired.max(0) as usize;
        self.status.ready_pods = Some(format!("{ready}/{desired}"));
        let first_attach = carrying.iter().find(|p| p.ready).map(|p| p.attach.clone());
        self.status.pods = carrying;
        let target = self.target_ref();
        let complete = desired > 0
            && ready >= desired
            && lacking.is_empty()
            && (workload.on_delete || workload.rolled_out);
        let poll = if complete { POLL_ACTIVE } else { POLL_APPLYING };
        let next = poll.min(until(self.now, expires));
        self.requeue = Some(self.requeue.map_or(next, |r| r.min(next)));
        if complete {
            let message = format!(
                "{ready}/{desired} pods carry a ready debug shell; attach with: {}",
                first_attach.unwrap_or_default()
            );
            if self.phase() != Some(Phase::Active) {
                self.note(false, "Active", message.clone());
            }
            self.set_phase(Phase::Active, message.clone());
            self.condition(condition::READY, true, reason::SHELL_READY, &message);
            return;
        }
        let (why, message) = if desired == 0 {
            (
                reason::NO_PODS,
                format!("{target} has 0 pods: scale it up to get a pod with the debug shell"),
            )
        } else if workload.on_delete && !lacking.is_empty() {
            (
                reason::WAITING_FOR_POD_DELETION,
                format!(
                    "{target} uses updateStrategy OnDelete, so its pods never roll by themselves: delete them to get the debug shell (kubectl delete pod -n {ns} {})",
                    lacking.join(" ")
                ),
            )
        } else {
            (
                reason::ROLLING_OUT,
                format!(
                    "waiting for the pods of {target} to roll: {ready}/{desired} carry a ready debug shell"
                ),
            )
        };
        let reason_changed = conditions::get(&self.status.conditions, condition::READY)
            .is_none_or(|c| c.reason != why);
        if reason_changed && why != reason::ROLLING_OUT {
            self.note(true, why, message.clone());
        }
        self.set_phase(Phase::Applying, message.clone());
        self.condition(condition::READY, false, why, &message);
    }

    fn finish(self) -> Plan {
        let mut status = self.status;
        status.observed_generation = self.session.metadata.generation;
        if status.target_ref.is_none() {
            let t = &self.session.spec.target;
            status.target_ref = Some(format!("{}/{}", t.kind, t.name));
        }
        Plan {
            action: self.action,
            status,
            notes: self.notes,
            requeue: self.requeue,
        }
    }
}

fn until(now: Timestamp, t: Timestamp) -> Duration {
    Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO) + Duration::from_millis(100)
}

/// What is missing from the workload that the session put there, if anything.
fn drift(workload: &Workload, shell: &Container, session: &str) -> Option<String> {
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
