//! Pure planning: given a session, what was observed in the cluster and the clock, decide what to
//! do to the workload, the next status, the events to record and when to look again.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::conditions;
use crate::api::{
    DebugSession, DebugSessionStatus, HOLDER_ANNOTATION, Phase, ResolvedTarget, SessionPod,
    TargetKind, condition, reason,
};
use crate::session::podsecurity;
use crate::session::settings::Settings;
use crate::session::stamp::Stamp;
use crate::session::validate::{self, Invalid};
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
    /// The annotation is there, but no DebugSession's field manager owns it: somebody wrote it
    /// by hand (or forged it). `owners` are the field managers that do own it.
    Foreign {
        value: String,
        owners: Vec<String>,
    },
}

/// What the controller saw in the cluster for one reconcile.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub workload: Option<Workload>,
    pub holder: Option<Holder>,
    pub namespace_labels: BTreeMap<String, String>,
    pub pods: Vec<Pod>,
    /// Why the current spec may not run at all: no stamp that covers it, the operator's policy,
    /// or a requester whose rights were revoked.
    pub refusal: Option<Invalid>,
    /// The verified stamp of the current spec (none when the operator runs without stamps).
    pub stamp: Option<Stamp>,
}

/// The change to make to the workload.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkloadAction {
    None,
    /// Take the workload (a dry run of the shell, then the holder annotation without force)
    /// and apply the shell.
    Take(Box<Container>),
    /// Apply the shell to a workload this session already holds.
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
    /// The event's action when it differs from the reason. Events with the same reason and
    /// action are merged into one series that keeps the first message, so an event that must
    /// stand on its own (who changed which generation) gets an action of its own.
    pub action: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub action: WorkloadAction,
    /// The action applies a spec generation that has not run yet: the requester's rights are
    /// checked (SubjectAccessReview) before it is carried out.
    pub authorize: bool,
    pub status: DebugSessionStatus,
    pub notes: Vec<Note>,
    pub requeue: Option<Duration>,
}

const POLL_PENDING: Duration = Duration::from_secs(10);
const POLL_APPLYING: Duration = Duration::from_secs(5);
const POLL_ACTIVE: Duration = Duration::from_secs(60);
/// A foreign holder annotation: the workload watch wakes the session when it goes; this is
/// only the safety net.
const POLL_FOREIGN: Duration = Duration::from_secs(30);

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

/// The status while a failed revert is retried: the workload still carries the shell.
pub fn reverting(planned: &DebugSessionStatus, error: &str) -> DebugSessionStatus {
    DebugSessionStatus {
        phase: Some(Phase::Reverting),
        message: Some(format!("reverting failed, retrying: {error}")),
        ..planned.clone()
    }
}

/// The status of a session whose very first reconcile failed before it could plan: Pending,
/// with the error as the reason to wait.
pub fn retrying(session: &DebugSession, error: &str, now: Timestamp) -> DebugSessionStatus {
    let mut p = Planner::new(session, now);
    let message = format!("waiting to retry: {error}");
    p.set_phase(Phase::Pending, message.clone());
    p.condition(condition::READY, false, reason::RETRYING, &message);
    p.finish().status
}

struct Planner<'a> {
    session: &'a DebugSession,
    now: Timestamp,
    status: DebugSessionStatus,
    action: WorkloadAction,
    authorize: bool,
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
            authorize: false,
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
    fn target(&self) -> (TargetKind, String) {
        crate::api::target_in_force(Some(&self.status), &self.session.spec)
    }

    fn target_ref(&self) -> String {
        let (kind, name) = self.target();
        format!("{kind}/{name}")
    }

    fn note(&mut self, warning: bool, reason: &'static str, message: impl Into<String>) {
        self.notes.push(Note {
            warning,
            reason,
            message: message.into(),
            action: None,
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
            (w, _) => return self.target_gone(w.as_ref()),
        };

        // A spec generation that has not run yet runs only when it passes every check a start
        // passes; otherwise the shell of the last accepted generation stays, and so does its
        // expiry.
        let fresh = self
            .status
            .shell_generation
            .or(self.status.observed_generation)
            != self.generation();
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
        let started = self
            .status
            .started_at
            .clone()
            .map(|t| t.0)
            .unwrap_or(self.now);
        if let Some((ttl, _)) = &accepted {
            let expires = started + SignedDuration::try_from(*ttl).unwrap_or(SignedDuration::MAX);
            self.status.expires_at = Some(Time(expires));
        }
        let expires = self
            .status
            .expires_at
            .clone()
            .map(|t| t.0)
            .unwrap_or(self.now);

        if self.now >= expires {
            return self.expire(workload);
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
            let message = match &shell {
                Some(s) => {
                    self.action = WorkloadAction::Apply(Box::new(s.clone()));
                    format!("{what}; re-applying the debug shell")
                }
                None => format!("{what}; the shell is re-applied once the spec is accepted again"),
            };
            let first = conditions::get(&self.status.conditions, condition::READY)
                .is_none_or(|c| c.reason != reason::DRIFTED);
            if first {
                self.note(true, reason::DRIFTED, message.clone());
            }
            self.set_phase(Phase::Applying, message.clone());
            self.condition(condition::READY, false, reason::DRIFTED, &message);
            self.requeue = Some(POLL_APPLYING.min(until(self.now, expires)));
            return;
        }
        self.rollout(workload, &obs.pods, &expected.name, expires);
    }

    /// The workload the session changed was deleted, or deleted and recreated. A recreated
    /// object may carry the shell again (a manifest exported while the session ran, a backup):
    /// released when the session's field manager owns it, else reported as left behind.
    fn target_gone(&mut self, replaced: Option<&Workload>) {
        self.status.ended_at = Some(Time(self.now));
        self.status.pods.clear();
        let target = self.target_ref();
        let Some(w) = replaced else {
            self.condition(
                condition::REVERTED,
                true,
                reason::TARGET_DELETED,
                "nothing to revert: the changed workload is gone",
            );
            return self.fail(Invalid {
                reason: reason::TARGET_DELETED,
                message: format!("{target} was deleted while the session ran"),
            });
        };
        let shell = self
            .status
            .shell_container
            .clone()
            .unwrap_or_else(|| self.shell_name());
        let has_shell = w.all_container_names().contains(&shell);
        let held = w.annotations.get(HOLDER_ANNOTATION).map(String::as_str) == Some(self.name());
        if w.is_managed_by(&self.manager()) {
            self.action = WorkloadAction::Release;
            self.condition(
                condition::REVERTED,
                true,
                reason::TARGET_REPLACED,
                &format!(
                    "the recreated {target} carried this session's fields again: released them"
                ),
            );
        } else if has_shell || held {
            let (kind, name) = self.target();
            let kind = kind.as_str().to_lowercase();
            let message = format!(
                "the recreated {target} carries the debug shell (container {shell}, annotation {HOLDER_ANNOTATION}) without this session's field manager, so the operator cannot tell it apart from its owner's fields: remove the container {shell} and the annotation from its manifest, or run kubectl edit -n {} {kind}/{}",
                self.namespace(),
                name
            );
            self.condition(
                condition::REVERTED,
                false,
                reason::SHELL_LEFT_IN_REPLACED_TARGET,
                &message,
            );
            self.note(true, reason::SHELL_LEFT_IN_REPLACED_TARGET, message);
        } else {
            self.condition(
                condition::REVERTED,
                true,
                reason::TARGET_REPLACED,
                "nothing to revert: the changed workload is gone",
            );
        }
        self.fail(Invalid {
            reason: reason::TARGET_REPLACED,
            message: format!("{target} was deleted and recreated while the session ran"),
        })
    }

    /// Every check a start passes, for a new spec generation of a running session: TTL, shell,
    /// stamp and policy (in `obs.refusal`), container names and Pod Security.
    fn check_new_spec(
        &self,
        obs: &Observed,
        settings: &Settings,
        workload: &Workload,
    ) -> Result<(Duration, Container), Invalid> {
        let spec = &self.session.spec;
        let validate::Asked { ttl, shell } = validate::resolve(spec, settings)?;
        if let Some(refusal) = &obs.refusal {
            return Err(refusal.clone());
        }
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
    fn accept_spec(&mut self, obs: &Observed, shell: &Container) {
        let generation = self.generation();
        let previous = self.status.shell_generation;
        self.status.shell_generation = generation;
        self.status.shell_container = Some(shell.name.clone());
        self.authorize = true;
        let who = obs.stamp.as_ref().map(|s| s.requester.username.clone());
        self.status.requester = who.clone();
        let number = generation.unwrap_or_default();
        let message = match &who {
            Some(user) => format!("generation {number} applied, stamped by {user}"),
            None => format!("generation {number} applied (the operator runs without stamps)"),
        };
        self.condition(condition::SPEC_APPLIED, true, reason::APPLIED, &message);
        if previous.is_some() {
            let changed = obs
                .stamp
                .as_ref()
                .map(|s| s.changed.clone())
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "spec".into());
            let user = who.unwrap_or_else(|| "an unstamped request".into());
            self.notes.push(Note {
                warning: false,
                reason: reason::SPEC_CHANGED,
                message: format!("{user} changed {changed} (generation {number}); applying it"),
                action: Some(format!("ApplyGeneration{number}")),
            });
        }
    }

    /// A new spec generation of a running session that may not run: say why, once.
    fn refuse_spec(&mut self, e: Invalid) {
        let generation = self.generation();
        let running = self
            .status
            .shell_generation
            .or(self.status.observed_generation)
            .unwrap_or_default();
        let message = format!(
            "generation {} is not applied: {}; the shell of generation {running} keeps running",
            generation.unwrap_or_default(),
            e.message
        );
        let said = conditions::get(&self.status.conditions, condition::SPEC_APPLIED)
            .is_some_and(|c| c.reason == e.reason && c.observed_generation == generation);
        if !said {
            self.note(true, e.reason, message.clone());
        }
        if self.status.shell_generation.is_none() {
            self.status.shell_generation = Some(running);
        }
        self.condition(condition::SPEC_APPLIED, false, e.reason, &message);
    }

    /// The TTL ran out: release the workload and end the session.
    fn expire(&mut self, workload: &Workload) {
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
        let ttl = self.session.spec.ttl.as_deref().unwrap_or("default");
        self.note(false, reason::EXPIRED, format!("TTL of {ttl} ran out"));
        self.note(false, reason::REVERTED, message);
    }

    /// The name of the shell container the spec asks for.
    fn shell_name(&self) -> String {
        self.session
            .spec
            .shell
            .as_ref()
            .and_then(|s| s.container_name.clone())
            .unwrap_or_else(|| crate::session::settings::DEFAULT_CONTAINER_NAME.to_string())
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
                self.note(false, reason::ACTIVE, message.clone());
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
            authorize: self.authorize,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DebugSessionSpec, Target};

    use serde_json::json;

    const T0: &str = "2026-11-30T10:00:00Z";

    fn at(offset_secs: i64) -> Timestamp {
        T0.parse::<Timestamp>().unwrap() + SignedDuration::from_secs(offset_secs)
    }

    fn session(ttl: &str) -> DebugSession {
        let mut s = DebugSession::new(
            "dbg",
            DebugSessionSpec {
                target: Target {
                    kind: TargetKind::Deployment,
                    name: "web".into(),
                    container: None,
                },
                ttl: Some(ttl.into()),
                shell: None,
            },
        );
        s.metadata.namespace = Some("team".into());
        s.metadata.generation = Some(1);
        s
    }

    fn workload(containers: &[&str], spn: bool, held_by: Option<&str>, managed: bool) -> Workload {
        let d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "team", "uid": "uid-1", "generation": 2,
                "annotations": held_by.map(|h| json!({HOLDER_ANNOTATION: h})).unwrap_or(json!({})),
                "managedFields": if managed { json!([{"manager": "debugsession/team/dbg"}]) } else { json!([]) }},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"shareProcessNamespace": spn,
                    "containers": containers.iter().map(|c| json!({"name": c, "image": if *c == "debug-shell" { "busybox:1.36" } else { "nginx" }})).collect::<Vec<_>>()}}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}
        }))
        .unwrap();
        Workload::from(d)
    }

    fn pod(name: &str, shell: bool, ready: bool) -> Pod {
        let mut containers = vec![json!({"name": "nginx"})];
        let mut statuses = vec![
            json!({"name": "nginx", "ready": true, "restartCount": 0, "image": "nginx", "imageID": ""}),
        ];
        if shell {
            containers.push(json!({"name": "debug-shell"}));
            statuses.push(json!({"name": "debug-shell", "ready": ready, "restartCount": 0, "image": "b", "imageID": ""}));
        }
        serde_json::from_value(
            json!({"metadata": {"name": name}, "spec": {"containers": containers},
            "status": {"containerStatuses": statuses}}),
        )
        .unwrap()
    }

    /// A session that started at T0 and was Applying.
    fn started(ttl: &str) -> DebugSession {
        let s = session(ttl);
        let obs = Observed {
            workload: Some(workload(&["nginx"], false, None, false)),
            ..Observed::default()
        };
        let p = plan(&s, &obs, &Settings::default(), at(0));
        let mut s = s;
        s.status = Some(p.status);
        s
    }

    fn running_obs(pods: Vec<Pod>) -> Observed {
        Observed {
            workload: Some(workload(&["nginx", "debug-shell"], true, Some("dbg"), true)),
            holder: Some(Holder::Us),
            pods,
            ..Observed::default()
        }
    }

    fn ready_reason(p: &Plan) -> &str {
        conditions::get(&p.status.conditions, condition::READY)
            .map(|c| c.reason.as_str())
            .unwrap_or("")
    }

    #[test]
    fn a_new_session_applies_the_shell_and_starts_the_clock() {
        let s = session("15m");
        let obs = Observed {
            workload: Some(workload(&["nginx"], false, None, false)),
            ..Observed::default()
        };
        let p = plan(&s, &obs, &Settings::default(), at(0));
        let WorkloadAction::Take(shell) = &p.action else {
            panic!("expected Take, got {:?}", p.action)
        };
        assert_eq!(shell.name, "debug-shell");
        assert_eq!(p.status.phase, Some(Phase::Applying));
        assert_eq!(p.status.started_at, Some(Time(at(0))));
        assert_eq!(p.status.expires_at, Some(Time(at(900))));
        assert_eq!(
            p.status.target.as_ref().map(|t| t.uid.as_str()),
            Some("uid-1")
        );
        assert_eq!(p.status.target_ref.as_deref(), Some("Deployment/web"));
        assert_eq!(p.status.observed_generation, Some(1));
        assert!(
            p.notes
                .iter()
                .any(|n| n.reason == reason::APPLIED && !n.warning)
        );
    }

    #[test]
    fn bad_input_fails_without_touching_the_workload() {
        let cases: Vec<(DebugSession, Observed, &str)> = vec![
            (
                session("48h"),
                Observed {
                    workload: Some(workload(&["nginx"], false, None, false)),
                    ..Default::default()
                },
                reason::TTL_TOO_LONG,
            ),
            (
                session("10s"),
                Observed {
                    workload: Some(workload(&["nginx"], false, None, false)),
                    ..Default::default()
                },
                reason::TTL_TOO_SHORT,
            ),
            (
                session("15m"),
                Observed::default(),
                reason::TARGET_NOT_FOUND,
            ),
            (
                session("15m"),
                Observed {
                    workload: Some(workload(&["nginx"], false, None, false)),
                    namespace_labels: [(
                        podsecurity::ENFORCE_LABEL.to_string(),
                        "baseline".to_string(),
                    )]
                    .into(),
                    ..Default::default()
                },
                reason::POD_SECURITY_VIOLATION,
            ),
            (
                session("15m"),
                Observed {
                    workload: Some(workload(&["nginx", "debug-shell"], false, None, false)),
                    ..Default::default()
                },
                reason::CONTAINER_NAME_CLASH,
            ),
        ];
        for (s, obs, want) in cases {
            let p = plan(&s, &obs, &Settings::default(), at(0));
            assert_eq!(p.action, WorkloadAction::None, "{want}");
            assert_eq!(p.status.phase, Some(Phase::Failed), "{want}");
            assert_eq!(ready_reason(&p), want);
            assert!(!p.status.message.clone().unwrap_or_default().is_empty());
            assert!(
                p.notes.iter().any(|n| n.warning && n.reason == want),
                "{want}: {:?}",
                p.notes
            );
            assert!(p.status.started_at.is_none());
            // Failing again on the same generation records no second event.
            let mut again = s.clone();
            again.status = Some(p.status.clone());
            let p2 = plan(&again, &obs, &Settings::default(), at(5));
            assert!(
                p2.notes.is_empty() && p2.action == WorkloadAction::None,
                "{want}"
            );
        }
    }

    #[test]
    fn a_refused_session_never_touches_the_workload() {
        let obs = Observed {
            workload: Some(workload(&["nginx"], false, None, false)),
            refusal: Some(Invalid {
                reason: reason::UNAUTHORIZED,
                message: "no requester stamp".into(),
            }),
            ..Default::default()
        };
        let p = plan(&session("15m"), &obs, &Settings::default(), at(0));
        assert_eq!(ready_reason(&p), reason::UNAUTHORIZED);
        assert_eq!(
            (p.action, p.status.phase),
            (WorkloadAction::None, Some(Phase::Failed))
        );
    }

    #[test]
    fn a_fixed_spec_retries_a_failed_session() {
        let mut s = session("48h");
        let obs = Observed {
            workload: Some(workload(&["nginx"], false, None, false)),
            ..Default::default()
        };
        s.status = Some(plan(&s, &obs, &Settings::default(), at(0)).status);
        s.spec.ttl = Some("1h".into());
        s.metadata.generation = Some(2);
        let p = plan(&s, &obs, &Settings::default(), at(1));
        assert!(matches!(p.action, WorkloadAction::Take(_)));
        assert_eq!(p.status.phase, Some(Phase::Applying));
    }

    #[test]
    fn a_held_workload_makes_the_session_wait_or_releases_a_dead_holder() {
        let s = session("15m");
        let mut obs = Observed {
            workload: Some(workload(&["nginx"], false, Some("first"), false)),
            ..Default::default()
        };
        obs.holder = Some(Holder::Other {
            name: "first".into(),
            live: true,
        });
        let p = plan(&s, &obs, &Settings::default(), at(0));
        assert_eq!(
            (p.action.clone(), p.status.phase),
            (WorkloadAction::None, Some(Phase::Pending))
        );
        assert_eq!(ready_reason(&p), reason::HELD_BY_OTHER_SESSION);
        assert!(
            p.status
                .message
                .as_deref()
                .unwrap_or_default()
                .contains("first")
        );
        assert!(p.requeue.is_some());
        obs.holder = Some(Holder::Other {
            name: "first".into(),
            live: false,
        });
        let p = plan(&s, &obs, &Settings::default(), at(0));
        assert_eq!(
            p.action,
            WorkloadAction::ReleaseStale {
                session: "first".into()
            }
        );
    }

    #[test]
    fn active_when_every_pod_carries_a_ready_shell() {
        let s = started("15m");
        let obs = running_obs(vec![pod("web-b", true, true), pod("web-a", true, true)]);
        let p = plan(&s, &obs, &Settings::default(), at(10));
        assert_eq!(p.action, WorkloadAction::None);
        assert_eq!(p.status.phase, Some(Phase::Active));
        assert_eq!(p.status.ready_pods.as_deref(), Some("2/2"));
        let names: Vec<_> = p.status.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["web-a", "web-b"]);
        assert_eq!(
            p.status.pods[0].attach,
            "kubectl attach -it -n team web-a -c debug-shell"
        );
        assert!(p.notes.iter().any(|n| n.reason == reason::ACTIVE));
        assert!(p.requeue.unwrap() <= Duration::from_secs(890) + Duration::from_millis(100));
    }

    #[test]
    fn rolling_while_old_pods_or_unready_shells_remain() {
        let s = started("15m");
        for pods in [
            vec![pod("a", true, true), pod("old", false, false)],
            vec![pod("a", true, true), pod("b", true, false)],
        ] {
            let p = plan(&s, &running_obs(pods), &Settings::default(), at(10));
            assert_eq!(p.status.phase, Some(Phase::Applying));
            assert_eq!(ready_reason(&p), reason::ROLLING_OUT);
            assert_eq!(p.status.ready_pods.as_deref(), Some("1/2"));
        }
    }

    #[test]
    fn on_delete_statefulset_names_the_pods_to_delete() {
        let s = started("15m");
        let mut obs = running_obs(vec![pod("db-0", false, false), pod("db-1", true, true)]);
        if let Some(w) = obs.workload.as_mut() {
            w.on_delete = true;
        }
        let p = plan(&s, &obs, &Settings::default(), at(10));
        assert_eq!(ready_reason(&p), reason::WAITING_FOR_POD_DELETION);
        let msg = p.status.message.unwrap();
        assert!(
            msg.contains("OnDelete") && msg.contains("db-0") && !msg.contains("db-1"),
            "{msg}"
        );
        assert!(
            p.notes
                .iter()
                .any(|n| n.reason == reason::WAITING_FOR_POD_DELETION)
        );
    }

    #[test]
    fn expiry_reverts_whenever_the_operator_looks_again() {
        let s = started("15m");
        for late in [900, 901, 86_400] {
            let p = plan(&s, &running_obs(vec![]), &Settings::default(), at(late));
            assert_eq!(p.action, WorkloadAction::Release, "{late}");
            assert_eq!(p.status.phase, Some(Phase::Expired));
            assert_eq!(p.status.ended_at, Some(Time(at(late))));
            let reverted = conditions::get(&p.status.conditions, condition::REVERTED).unwrap();
            assert_eq!(
                (reverted.status.as_str(), reverted.reason.as_str()),
                ("True", reason::EXPIRED)
            );
            assert!(p.notes.iter().any(|n| n.reason == reason::REVERTED));
        }
        let p = plan(&s, &running_obs(vec![]), &Settings::default(), at(899));
        assert_ne!(p.action, WorkloadAction::Release);
        assert!(p.requeue.unwrap() <= Duration::from_millis(1100));
    }

    #[test]
    fn raising_the_ttl_extends_from_started_at_and_is_capped() {
        let mut s = started("15m");
        s.spec.ttl = Some("2h".into());
        s.metadata.generation = Some(2);
        let p = plan(&s, &running_obs(vec![]), &Settings::default(), at(600));
        assert_eq!(p.status.expires_at, Some(Time(at(7200))));
        s.spec.ttl = Some("48h".into());
        let p = plan(&s, &running_obs(vec![]), &Settings::default(), at(600));
        assert_eq!(
            p.status.expires_at,
            Some(Time(at(900))),
            "an over-long TTL keeps the old expiry"
        );
        assert!(
            p.notes
                .iter()
                .any(|n| n.warning && n.reason == reason::TTL_TOO_LONG)
        );
    }

    fn spec_applied(p: &Plan) -> (String, String) {
        conditions::get(&p.status.conditions, condition::SPEC_APPLIED)
            .map(|c| (c.status.clone(), c.reason.clone()))
            .unwrap_or_default()
    }

    #[test]
    fn a_new_spec_runs_only_when_it_passes_every_start_check() {
        let s = started("15m");
        assert_eq!(s.status.as_ref().unwrap().shell_generation, Some(1));
        assert_eq!(
            s.status.as_ref().unwrap().shell_container.as_deref(),
            Some("debug-shell")
        );
        let edited = |edit: &dyn Fn(&mut DebugSession)| {
            let mut e = s.clone();
            edit(&mut e);
            e.metadata.generation = Some(2);
            e
        };
        let refusal = |reason| Invalid {
            reason,
            message: "no".into(),
        };
        // (edit, refusal from admission, expected SpecApplied reason when refused)
        type Edit = Box<dyn Fn(&mut DebugSession)>;
        let cases: Vec<(&str, Edit, Option<Invalid>, &str)> = vec![
            (
                "unstamped TTL raise",
                Box::new(|e| e.spec.ttl = Some("2h".into())),
                Some(refusal(reason::SPEC_NOT_STAMPED)),
                reason::SPEC_NOT_STAMPED,
            ),
            (
                "unstamped command",
                Box::new(|e| {
                    e.spec.shell = Some(crate::api::Shell {
                        command: Some(vec!["sh".into(), "-c".into(), "evil".into()]),
                        ..Default::default()
                    })
                }),
                Some(refusal(reason::INVALID_STAMP)),
                reason::INVALID_STAMP,
            ),
            (
                "revoked rights",
                Box::new(|e| e.spec.ttl = Some("20m".into())),
                Some(refusal(reason::UNAUTHORIZED)),
                reason::UNAUTHORIZED,
            ),
            (
                "shell renamed to the app container",
                Box::new(|e| {
                    e.spec.shell = Some(crate::api::Shell {
                        container_name: Some("nginx".into()),
                        ..Default::default()
                    })
                }),
                None,
                reason::CONTAINER_NAME_CLASH,
            ),
            (
                "TTL over the maximum",
                Box::new(|e| e.spec.ttl = Some("48h".into())),
                None,
                reason::TTL_TOO_LONG,
            ),
        ];
        for (name, edit, refused, want) in cases {
            let e = edited(&*edit);
            let mut obs = running_obs(vec![pod("web-a", true, true), pod("web-b", true, true)]);
            obs.refusal = refused;
            let p = plan(&e, &obs, &Settings::default(), at(600));
            assert_eq!(p.action, WorkloadAction::None, "{name}");
            assert!(!p.authorize, "{name}");
            assert_eq!(
                spec_applied(&p),
                ("False".to_string(), want.to_string()),
                "{name}"
            );
            assert_eq!(
                p.status.expires_at,
                Some(Time(at(900))),
                "{name}: expiry kept"
            );
            assert_eq!(p.status.shell_generation, Some(1), "{name}");
            assert_eq!(
                p.status.phase,
                Some(Phase::Active),
                "{name}: the old shell runs"
            );
            assert_eq!(
                p.notes.iter().filter(|n| n.reason == want).count(),
                1,
                "{name}: said once"
            );
            // Looking again says nothing new.
            let mut again = e.clone();
            again.status = Some(p.status.clone());
            let p2 = plan(&again, &obs, &Settings::default(), at(610));
            assert!(p2.notes.is_empty(), "{name}: {:?}", p2.notes);
            assert_eq!(p2.action, WorkloadAction::None, "{name}");
        }
        // Stamped and valid: applied, the clock moves, the change is recorded.
        let e = edited(&|e: &mut DebugSession| e.spec.ttl = Some("2h".into()));
        let mut obs = running_obs(vec![pod("web-a", true, true)]);
        obs.stamp = Some(Stamp {
            requester: crate::session::stamp::Requester {
                username: "bob".into(),
                ..Default::default()
            },
            changed: "spec.ttl".into(),
            ..Stamp::default()
        });
        let p = plan(&e, &obs, &Settings::default(), at(600));
        assert!(matches!(p.action, WorkloadAction::Apply(_)));
        assert!(p.authorize);
        assert_eq!(p.status.shell_generation, Some(2));
        assert_eq!(p.status.requester.as_deref(), Some("bob"));
        assert_eq!(p.status.expires_at, Some(Time(at(7200))));
        assert_eq!(spec_applied(&p), ("True".into(), reason::APPLIED.into()));
        let note = p
            .notes
            .iter()
            .find(|n| n.reason == reason::SPEC_CHANGED)
            .expect("SpecChanged event");
        assert!(
            note.message.contains("bob changed spec.ttl (generation 2)"),
            "{}",
            note.message
        );
        // A refused spec that drifted is not re-applied from the refused spec.
        let e = edited(&|e: &mut DebugSession| e.spec.ttl = Some("2h".into()));
        let mut obs = running_obs(vec![]);
        obs.workload = Some(workload(&["nginx"], true, Some("dbg"), true));
        obs.refusal = Some(refusal(reason::SPEC_NOT_STAMPED));
        let p = plan(&e, &obs, &Settings::default(), at(600));
        assert_eq!(p.action, WorkloadAction::None);
        assert_eq!(ready_reason(&p), reason::DRIFTED);
    }

    #[test]
    fn a_foreign_holder_annotation_makes_the_session_wait_quietly() {
        let mut s = session("15m");
        let obs = Observed {
            workload: Some(workload(&["nginx"], false, Some("ghost"), false)),
            holder: Some(Holder::Foreign {
                value: "ghost".into(),
                owners: vec!["kubectl-annotate".into()],
            }),
            ..Observed::default()
        };
        let p = plan(&s, &obs, &Settings::default(), at(0));
        assert_eq!(p.action, WorkloadAction::None);
        assert_eq!(p.status.phase, Some(Phase::Pending));
        assert_eq!(ready_reason(&p), reason::FOREIGN_HOLDER);
        let msg = p.status.message.clone().unwrap();
        assert!(
            msg.contains("debugsession.dev/session=\"ghost\"") && msg.contains("kubectl-annotate"),
            "{msg}"
        );
        assert_eq!(p.notes.len(), 1);
        assert!(p.notes[0].warning);
        assert!(
            p.requeue >= Some(Duration::from_secs(30)),
            "no hot loop: {:?}",
            p.requeue
        );
        // Looking again: no new event.
        s.status = Some(p.status);
        let p = plan(&s, &obs, &Settings::default(), at(30));
        assert!(p.notes.is_empty(), "{:?}", p.notes);
    }

    #[test]
    fn a_name_too_long_for_the_field_manager_fails_before_anything() {
        let mut s = session("15m");
        s.metadata.name = Some("x".repeat(120));
        let obs = Observed {
            workload: Some(workload(&["nginx"], false, None, false)),
            holder: Some(Holder::Free),
            ..Observed::default()
        };
        let p = plan(&s, &obs, &Settings::default(), at(0));
        assert_eq!(p.action, WorkloadAction::None);
        assert_eq!(p.status.phase, Some(Phase::Failed));
        assert_eq!(ready_reason(&p), reason::NAME_TOO_LONG);
    }

    #[test]
    fn a_recreated_target_carrying_the_shell_is_released_or_reported() {
        let s = started("15m");
        let reverted = |p: &Plan| {
            conditions::get(&p.status.conditions, condition::REVERTED)
                .map(|c| (c.status.clone(), c.reason.clone()))
                .unwrap()
        };
        // Restored with this session's managedFields: released.
        let mut w = workload(&["nginx", "debug-shell"], true, Some("dbg"), true);
        w.uid = "uid-2".into();
        let obs = Observed {
            workload: Some(w),
            ..running_obs(vec![])
        };
        let p = plan(&s, &obs, &Settings::default(), at(60));
        assert_eq!(p.action, WorkloadAction::Release);
        assert_eq!(p.status.phase, Some(Phase::Failed));
        assert_eq!(
            reverted(&p),
            ("True".into(), reason::TARGET_REPLACED.into())
        );
        // Restored without managedFields: never Reverted=True while the shell is there.
        let mut w = workload(&["nginx", "debug-shell"], true, Some("dbg"), false);
        w.uid = "uid-2".into();
        let obs = Observed {
            workload: Some(w),
            ..running_obs(vec![])
        };
        let p = plan(&s, &obs, &Settings::default(), at(60));
        assert_eq!(p.action, WorkloadAction::None);
        assert_eq!(
            reverted(&p),
            ("False".into(), reason::SHELL_LEFT_IN_REPLACED_TARGET.into())
        );
        assert!(
            p.notes
                .iter()
                .any(|n| n.reason == reason::SHELL_LEFT_IN_REPLACED_TARGET)
        );
        // Recreated clean: nothing to revert.
        let mut w = workload(&["nginx"], false, None, false);
        w.uid = "uid-2".into();
        let obs = Observed {
            workload: Some(w),
            ..running_obs(vec![])
        };
        let p = plan(&s, &obs, &Settings::default(), at(60));
        assert_eq!(
            reverted(&p),
            ("True".into(), reason::TARGET_REPLACED.into())
        );
    }

    #[test]
    fn a_first_reconcile_that_fails_still_leaves_a_phase() {
        let s = session("15m");
        let st = retrying(&s, "reading the target workload: timed out", at(0));
        assert_eq!(st.phase, Some(Phase::Pending));
        assert!(st.message.unwrap().contains("timed out"));
        assert_eq!(
            conditions::get(&st.conditions, condition::READY).map(|c| c.reason.as_str()),
            Some(reason::RETRYING)
        );
    }

    #[test]
    fn drift_is_reported_and_reapplied() {
        let s = started("15m");
        let cases = [
            workload(&["nginx"], true, Some("dbg"), true),
            workload(&["nginx", "debug-shell"], false, Some("dbg"), true),
            workload(&["nginx", "debug-shell"], true, None, true),
        ];
        for w in cases {
            let obs = Observed {
                workload: Some(w),
                holder: Some(Holder::Us),
                ..Default::default()
            };
            let p = plan(&s, &obs, &Settings::default(), at(10));
            assert!(
                matches!(p.action, WorkloadAction::Apply(_)),
                "{:?}",
                p.action
            );
            assert_eq!(ready_reason(&p), reason::DRIFTED);
            assert!(
                p.notes
                    .iter()
                    .any(|n| n.warning && n.reason == reason::DRIFTED)
            );
        }
    }

    #[test]
    fn a_changed_target_is_refused_and_the_original_kept() {
        let mut s = started("15m");
        s.spec.target.name = "other".into();
        s.metadata.generation = Some(2);
        let p = plan(
            &s,
            &running_obs(vec![pod("a", true, true), pod("b", true, true)]),
            &Settings::default(),
            at(10),
        );
        let locked = conditions::get(&p.status.conditions, condition::TARGET_LOCKED).unwrap();
        assert_eq!(locked.reason, reason::TARGET_CHANGE_REFUSED);
        assert_eq!(p.status.target.as_ref().unwrap().name, "web");
        assert_eq!(p.status.phase, Some(Phase::Active));
    }

    #[test]
    fn a_deleted_or_replaced_target_ends_the_session() {
        let s = started("15m");
        let p = plan(&s, &Observed::default(), &Settings::default(), at(10));
        assert_eq!(
            (p.status.phase, ready_reason(&p)),
            (Some(Phase::Failed), reason::TARGET_DELETED)
        );
        assert_eq!(p.action, WorkloadAction::None);
        let mut obs = running_obs(vec![]);
        if let Some(w) = obs.workload.as_mut() {
            w.uid = "uid-2".into();
        }
        let p = plan(&s, &obs, &Settings::default(), at(10));
        assert_eq!(ready_reason(&p), reason::TARGET_REPLACED);
    }

    #[test]
    fn ended_sessions_only_release_leftovers_and_cleanup_reverts() {
        let s = started("15m");
        let mut ended = s.clone();
        ended.status = Some(plan(&s, &running_obs(vec![]), &Settings::default(), at(900)).status);
        assert_eq!(
            plan(&ended, &running_obs(vec![]), &Settings::default(), at(901)).action,
            WorkloadAction::Release
        );
        let clean = Observed {
            workload: Some(workload(&["nginx"], false, None, false)),
            ..Default::default()
        };
        let p = plan(&ended, &clean, &Settings::default(), at(901));
        assert_eq!((p.action, p.requeue), (WorkloadAction::None, None));

        assert_eq!(
            plan_cleanup(&s, &running_obs(vec![]), at(5)).action,
            WorkloadAction::Release
        );
        assert_eq!(plan_cleanup(&s, &clean, at(5)).action, WorkloadAction::None);
        assert_eq!(
            plan_cleanup(&s, &Observed::default(), at(5)).action,
            WorkloadAction::None
        );
    }
}
