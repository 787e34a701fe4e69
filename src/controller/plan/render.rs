//! Pure rendering of the planner's [`Step`]s into the session's phase, conditions and Events.
//! Every sentence a user reads in `kubectl get` / `describe` for a step is written here.

use k8s_openapi::jiff::Timestamp;

use super::Note;
use super::conditions;
use super::step::{Gone, Progress, Rollout, Step};
use crate::api::{
    DebugSessionStatus, HOLDER_ANNOTATION, Mode, Phase, TargetKind, condition, reason,
};
use crate::session::validate::Invalid;

/// What rendering needs to know about the session besides the step.
#[derive(Clone, Debug)]
pub struct Scene<'a> {
    /// The mode in force.
    pub mode: Mode,
    pub namespace: &'a str,
    /// The target in force.
    pub kind: TargetKind,
    pub name: &'a str,
    pub generation: Option<i64>,
    pub now: Timestamp,
    /// The TTL as written in the spec, for the expiry Event.
    pub ttl: &'a str,
}

impl Scene<'_> {
    fn target_ref(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// `deployment/web`, as kubectl takes it.
    fn kubectl_ref(&self) -> String {
        format!("{}/{}", self.kind.as_str().to_lowercase(), self.name)
    }
}

/// Applies one step to the status, adding the Events it deserves to `notes`.
pub fn render(step: &Step, scene: &Scene, status: &mut DebugSessionStatus, notes: &mut Vec<Note>) {
    let mut r = Render {
        scene,
        status,
        notes,
    };
    match step {
        Step::Requested { by } => {
            let ttl = scene.ttl;
            r.note(
                false,
                reason::REQUESTED,
                format!(
                    "requested by {}: {} mode on {}, TTL {ttl}",
                    by.as_deref().unwrap_or("an unstamped request"),
                    scene.mode,
                    scene.target_ref()
                ),
            )
        }
        Step::Fail(invalid) => r.fail(invalid),
        Step::WaitHeld { by } => r.wait_held(by),
        Step::WaitForeign { value, owners } => r.wait_foreign(value, owners),
        Step::ReleaseStale { session } => r.note(
            true,
            reason::HELD_BY_OTHER_SESSION,
            format!(
                "releasing {} from DebugSession {session}, which no longer runs",
                scene.target_ref()
            ),
        ),
        Step::Start {
            shell,
            desired,
            pods,
        } => r.start(shell, *desired, pods),
        Step::ProfileDropped { profile } => r.note(
            true,
            reason::PROFILE_DROPPED,
            format!(
                "this API server (Kubernetes before 1.22) allows no securityContext on an ephemeral container: the shell runs without the {profile} profile's additions, with the pod's defaults"
            ),
        ),
        Step::SpecAccepted { by, changed } => r.spec_accepted(by.as_deref(), changed.as_deref()),
        Step::SpecRefused { why, running } => r.spec_refused(why, *running),
        Step::TargetLocked { message } => {
            if conditions::get(&r.status.conditions, condition::TARGET_LOCKED).is_none() {
                r.note(true, reason::TARGET_CHANGE_REFUSED, message.clone());
            }
            r.condition(
                condition::TARGET_LOCKED,
                true,
                reason::TARGET_CHANGE_REFUSED,
                message,
            );
        }
        Step::TargetUnlocked => {
            conditions::remove(&mut r.status.conditions, condition::TARGET_LOCKED)
        }
        Step::Drifted { what, reapply } => r.drifted(what, *reapply),
        Step::Progress(p) => r.progress(p),
        Step::Expired => r.expired(),
        Step::TargetGone(gone) => r.target_gone(gone),
        Step::Retrying { error } => {
            let message = format!("waiting to retry: {error}");
            r.phase(Phase::Pending, &message);
            r.condition(condition::READY, false, reason::RETRYING, &message);
        }
        Step::Deleted => {
            let what = match scene.mode {
                Mode::Copy => "deleted its copy pod".to_string(),
                _ => format!("reverted {}", scene.target_ref()),
            };
            r.note(false, reason::REVERTED, format!("session deleted: {what}"))
        }
        Step::AwaitingApproval {
            missing,
            required,
            approvers,
            set_aside,
            expired,
            command,
        } => r.awaiting_approval(*missing, *required, approvers, set_aside, *expired, command),
        Step::Approved { by } => r.approved(by),
        Step::Denied { by, reason } => r.denied(by, reason),
    }
}

/// The message while the shell makes its way into the pods.
fn rolling(s: &Scene, ready: usize, desired: usize) -> String {
    match s.mode {
        Mode::Patch => format!(
            "waiting for the pods of {} to roll: {ready}/{desired} carry a ready debug shell",
            s.target_ref()
        ),
        _ => format!(
            "waiting for the debug shell to start: {ready}/{desired} pods carry a ready one"
        ),
    }
}

mod approval;

struct Render<'a, 'b> {
    scene: &'a Scene<'b>,
    status: &'a mut DebugSessionStatus,
    notes: &'a mut Vec<Note>,
}

impl Render<'_, '_> {
    fn note(&mut self, warning: bool, reason: &'static str, message: impl Into<String>) {
        self.notes.push(Note {
            warning,
            reason,
            message: message.into(),
            action: None,
        });
    }

    fn condition(&mut self, type_: &str, ok: bool, reason: &str, message: &str) {
        let s = self.scene;
        conditions::set(
            &mut self.status.conditions,
            type_,
            ok,
            reason,
            message,
            s.generation,
            s.now,
        );
    }

    fn phase(&mut self, phase: Phase, message: &str) {
        self.status.phase = Some(phase);
        self.status.message = Some(message.to_string());
    }

    /// Whether the Ready condition's reason is something else than `why` (an Event is due).
    fn ready_reason_is_not(&self, why: &str) -> bool {
        conditions::get(&self.status.conditions, condition::READY).is_none_or(|c| c.reason != why)
    }

    fn fail(&mut self, invalid: &Invalid) {
        let changed =
            self.status.phase != Some(Phase::Failed) || self.ready_reason_is_not(invalid.reason);
        self.phase(Phase::Failed, &invalid.message);
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
            self.note(true, invalid.reason, invalid.message.clone());
        }
    }

    fn wait_held(&mut self, by: &str) {
        let message = format!(
            "waiting: {} is held by DebugSession {by}; this session starts when that one ends",
            self.scene.target_ref()
        );
        let first = self.ready_reason_is_not(reason::HELD_BY_OTHER_SESSION);
        self.phase(Phase::Pending, &message);
        self.condition(
            condition::READY,
            false,
            reason::HELD_BY_OTHER_SESSION,
            &message,
        );
        if first {
            self.note(false, reason::HELD_BY_OTHER_SESSION, message);
        }
    }

    fn wait_foreign(&mut self, value: &str, owners: &[String]) {
        let by = if owners.is_empty() {
            "an unknown writer".to_string()
        } else {
            format!("field manager {}", owners.join(", "))
        };
        let s = self.scene;
        let message = format!(
            "waiting: {} carries the annotation {HOLDER_ANNOTATION}={value:?}, written by {by}, not by a DebugSession; remove it (kubectl annotate -n {} {} {HOLDER_ANNOTATION}-) and this session starts by itself",
            s.target_ref(),
            s.namespace,
            s.kubectl_ref(),
        );
        let first = self.ready_reason_is_not(reason::FOREIGN_HOLDER);
        self.phase(Phase::Pending, &message);
        self.condition(condition::READY, false, reason::FOREIGN_HOLDER, &message);
        if first {
            self.note(true, reason::FOREIGN_HOLDER, message);
        }
    }

    fn start(&mut self, shell: &str, desired: i32, pods: &[String]) {
        let target = self.scene.target_ref();
        let list = pods.join(", ");
        let (message, kept) = match self.scene.mode {
            Mode::Patch => (
                format!(
                    "added {shell} to {target} with shareProcessNamespace; waiting for the pods to roll"
                ),
                "the debug shell is in the workload".to_string(),
            ),
            Mode::Copy => (
                format!(
                    "creating pod {list}, a copy of {target} with {shell} and shareProcessNamespace; waiting for it to start"
                ),
                format!("the copy pod {list} exists until the session ends"),
            ),
            Mode::Ephemeral => (
                format!(
                    "adding the ephemeral container {shell} to pod {list}; waiting for it to start"
                ),
                format!("the ephemeral shell runs in pod {list} until the session expires"),
            ),
        };
        self.note(false, reason::APPLIED, message);
        // The status says what the first look at the pods will say, so that look writes
        // nothing new.
        let waiting = rolling(self.scene, 0, desired.max(0) as usize);
        self.phase(Phase::Applying, &waiting);
        self.condition(condition::READY, false, reason::ROLLING_OUT, &waiting);
        self.condition(condition::REVERTED, false, reason::NOT_REVERTED, &kept);
        self.status.ready_pods = Some(format!("0/{desired}"));
    }

    fn spec_accepted(&mut self, by: Option<&str>, changed: Option<&str>) {
        let number = self.scene.generation.unwrap_or_default();
        let message = match by {
            Some(user) => format!("generation {number} applied, stamped by {user}"),
            None => format!("generation {number} applied (the operator runs without stamps)"),
        };
        self.condition(condition::SPEC_APPLIED, true, reason::APPLIED, &message);
        if let Some(changed) = changed {
            let user = by.unwrap_or("an unstamped request");
            self.notes.push(Note {
                warning: false,
                reason: reason::SPEC_CHANGED,
                message: format!("{user} changed {changed} (generation {number}); applying it"),
                action: Some(format!("ApplyGeneration{number}")),
            });
        }
    }

    fn spec_refused(&mut self, why: &Invalid, running: i64) {
        let generation = self.scene.generation;
        let message = format!(
            "generation {} is not applied: {}; the shell of generation {running} keeps running",
            generation.unwrap_or_default(),
            why.message
        );
        let said = conditions::get(&self.status.conditions, condition::SPEC_APPLIED)
            .is_some_and(|c| c.reason == why.reason && c.observed_generation == generation);
        if !said {
            self.note(true, why.reason, message.clone());
        }
        self.condition(condition::SPEC_APPLIED, false, why.reason, &message);
    }

    fn drifted(&mut self, what: &str, reapply: bool) {
        let message = if reapply {
            format!("{what}; re-applying the debug shell")
        } else {
            format!("{what}; the shell is re-applied once the spec is accepted again")
        };
        if self.ready_reason_is_not(reason::DRIFTED) {
            self.note(true, reason::DRIFTED, message.clone());
        }
        self.phase(Phase::Applying, &message);
        self.condition(condition::READY, false, reason::DRIFTED, &message);
    }

    fn progress(&mut self, p: &Progress) {
        let (ready, desired) = (p.ready, p.desired);
        self.status.ready_pods = Some(format!("{ready}/{desired}"));
        let s = self.scene;
        let target = s.target_ref();
        let (why, message) = match &p.state {
            Rollout::Complete { attach } => {
                let message = format!(
                    "{ready}/{desired} pods carry a ready debug shell; attach with: {attach}"
                );
                if self.status.phase != Some(Phase::Active) {
                    self.note(false, reason::ACTIVE, message.clone());
                }
                self.phase(Phase::Active, &message);
                self.condition(condition::READY, true, reason::SHELL_READY, &message);
                return;
            }
            Rollout::NoPods => (
                reason::NO_PODS,
                format!("{target} has 0 pods: scale it up to get a pod with the debug shell"),
            ),
            Rollout::OnDelete { lacking } => (
                reason::WAITING_FOR_POD_DELETION,
                format!(
                    "{target} uses updateStrategy OnDelete, so its pods never roll by themselves: delete them to get the debug shell (kubectl delete pod -n {} {})",
                    s.namespace,
                    lacking.join(" ")
                ),
            ),
            Rollout::Rolling => (reason::ROLLING_OUT, rolling(s, ready, desired)),
            Rollout::Stuck { pod, why } => (
                reason::SHELL_NOT_STARTING,
                format!("the debug shell cannot start in pod {pod}: {why}"),
            ),
            Rollout::Exited { pods } => (
                reason::SHELL_EXITED,
                format!(
                    "the debug shell exited in pod {} and cannot restart there; end this session and start another",
                    pods.join(", ")
                ),
            ),
        };
        if self.ready_reason_is_not(why) && why != reason::ROLLING_OUT {
            self.note(true, why, message.clone());
        }
        self.phase(Phase::Applying, &message);
        self.condition(condition::READY, false, why, &message);
    }

    fn expired(&mut self) {
        let s = self.scene;
        let (why, message) = match s.mode {
            Mode::Patch => (
                reason::EXPIRED,
                format!("TTL ran out: {} reverted", s.target_ref()),
            ),
            Mode::Copy => (
                reason::EXPIRED,
                "TTL ran out: the copy pod was deleted".to_string(),
            ),
            Mode::Ephemeral => (
                reason::SHELL_EXITED,
                "TTL ran out: the ephemeral shell's command ended; an ephemeral container cannot be removed, so its entry stays in the pod's spec (not running) until the pod is replaced".to_string(),
            ),
        };
        self.phase(Phase::Expired, &message);
        self.condition(condition::READY, false, why, "the session expired");
        self.condition(condition::REVERTED, true, why, &message);
        self.note(false, reason::EXPIRED, format!("TTL of {} ran out", s.ttl));
        self.note(false, reason::REVERTED, message);
    }

    fn target_gone(&mut self, gone: &Gone) {
        let s = self.scene;
        let target = s.target_ref();
        let failure = |reason, what| Invalid {
            reason,
            message: format!("{target} was {what} while the session ran"),
        };
        let (ok, why, message) = match gone {
            Gone::Deleted => {
                self.condition(
                    condition::REVERTED,
                    true,
                    reason::TARGET_DELETED,
                    "nothing to revert: the changed workload is gone",
                );
                return self.fail(&failure(reason::TARGET_DELETED, "deleted"));
            }
            Gone::ReplacedReleased => (
                true,
                reason::TARGET_REPLACED,
                format!(
                    "the recreated {target} carried this session's fields again: released them"
                ),
            ),
            Gone::ReplacedWithShell { shell } => {
                let message = format!(
                    "the recreated {target} carries the debug shell (container {shell}, annotation {HOLDER_ANNOTATION}) without this session's field manager, so the operator cannot tell it apart from its owner's fields: remove the container {shell} and the annotation from its manifest, or run kubectl edit -n {} {}",
                    s.namespace,
                    s.kubectl_ref()
                );
                self.note(true, reason::SHELL_LEFT_IN_REPLACED_TARGET, message.clone());
                (false, reason::SHELL_LEFT_IN_REPLACED_TARGET, message)
            }
            Gone::ReplacedClean => (
                true,
                reason::TARGET_REPLACED,
                "nothing to revert: the changed workload is gone".to_string(),
            ),
        };
        self.condition(condition::REVERTED, ok, why, &message);
        self.fail(&failure(reason::TARGET_REPLACED, "deleted and recreated"));
    }
}
