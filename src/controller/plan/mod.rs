//! Pure planning: given a session, what was observed in the cluster and the clock, decide what to
//! do to the workload, the next status, the events to record and when to look again.
//!
//! The decisions live in [`start`] (a session that has not started) and [`running`] (one that
//! has), with [`rollout`] reading the pods; each records [`Step`]s, which [`render`] turns into
//! phase, conditions and Events.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::conditions;
use crate::api::Mode;
use crate::api::{
    DebugSession, DebugSessionStatus, HOLDER_ANNOTATION, Phase, ResolvedTarget, SessionPod,
    TargetKind, reason,
};
use crate::session::ephemeral::{self as shell_state, ShellState};
use crate::session::podsecurity;
use crate::session::settings::Settings;
use crate::session::stamp::Stamp;
use crate::session::validate::{self, Asked, Invalid};
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
    /// The pods the shell is in or goes into: the workload's (Patch), the copy (Copy), the
    /// target pods (Ephemeral).
    pub pods: Vec<Pod>,
    /// The pod `target.pod` names, when it does.
    pub source_pod: Option<Pod>,
    /// The API server takes the Kubernetes 1.20-1.21 shape of ephemeral containers, which
    /// allows them no securityContext (read before an Ephemeral session starts).
    pub legacy_ephemeral: bool,
    /// Why the current spec may not run at all: no stamp that covers it, the operator's policy,
    /// or a requester whose rights were revoked.
    pub refusal: Option<Invalid>,
    /// The verified stamp of the current spec (none when the operator runs without stamps).
    pub stamp: Option<Stamp>,
    /// The approvals of the current spec (none when the operator cannot verify any).
    pub approval: Option<crate::session::approval::tally::Tally>,
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
    /// Create the session's copy of a pod (Copy mode).
    CreateCopy(Box<Pod>),
    /// Delete the session's copy (Copy mode), on the condition that it is still the pod with
    /// `uid`.
    DeleteCopy {
        pod: String,
        uid: String,
    },
    /// Add the ephemeral shell to each of these pods that lacks it (Ephemeral mode).
    AddEphemeral {
        pods: Vec<String>,
        shell: Box<EphemeralContainer>,
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
    /// Pods whose next change wakes the session: those where an ephemeral shell is starting
    /// (no watch of the operator's announces it; the requeue is only the safety net).
    pub wake_on_pods: Vec<String>,
    /// The action's intent records, or its release puts back, the template's own
    /// `shareProcessNamespace: false` (see [`crate::controller::act::patch`]).
    pub share_off: bool,
}

const POLL_PENDING: Duration = Duration::from_secs(10);
const POLL_APPLYING: Duration = Duration::from_secs(5);
/// A rollout that has lasted a minute: the workload watch wakes the session at every step of
/// it, so the re-check is only the safety net, and it must not cost a GET and a LIST every 5 s
/// for each of a thousand slow rollouts.
const POLL_ROLLING_LONG: Duration = Duration::from_secs(20);
/// How long a rollout is re-checked every [`POLL_APPLYING`].
const ROLLING_SHORT: Duration = Duration::from_secs(60);
const POLL_ACTIVE: Duration = Duration::from_secs(60);
/// An ephemeral shell starting: a watch of its pods wakes the session ([`Plan::wake_on_pods`]);
/// this is the safety net.
const POLL_STARTING: Duration = Duration::from_secs(1);
/// A foreign holder annotation: the workload watch wakes the session when it goes; this is
/// only the safety net.
const POLL_FOREIGN: Duration = Duration::from_secs(30);

/// Plans one reconcile of a live (not deleted) session.
pub fn plan(session: &DebugSession, obs: &Observed, settings: &Settings, now: Timestamp) -> Plan {
    let mut p = Planner::new(session, now);
    let phase = p.status.phase.unwrap_or(Phase::Pending);
    let never_started = p.status.started_at.is_none();
    let spec_changed = p.status.observed_generation != session.metadata.generation;

    if p.status.phase.is_none() || p.status.phase == Some(Phase::Pending) && retried(&p.status) {
        p.steps.push(Step::Requested {
            by: obs.stamp.as_ref().map(|s| s.requester.username.clone()),
        });
    }
    if phase.is_terminal() && !(phase == Phase::Failed && never_started && spec_changed) {
        // Ended: nothing left but making sure nothing of ours is left.
        p.action = p.undo(obs).unwrap_or(WorkloadAction::None);
        return with_share_off(p.finish(), session, obs);
    }
    if never_started {
        p.plan_start(obs, settings);
    } else {
        p.plan_running(obs, settings);
    }
    with_share_off(p.finish(), session, obs)
}

/// Plans the revert when the session is being deleted: release if anything of ours is there.
pub fn plan_cleanup(session: &DebugSession, obs: &Observed, now: Timestamp) -> Plan {
    let mut p = Planner::new(session, now);
    if let Some(undo) = p.undo(obs) {
        p.action = undo;
        p.steps.push(Step::Deleted);
    }
    with_share_off(p.finish(), session, obs)
}

/// Sets [`Plan::share_off`] for the manager whose fields the action writes or releases: it
/// recorded the template's own `shareProcessNamespace: false`, or the template says `false`.
fn with_share_off(mut plan: Plan, session: &DebugSession, obs: &Observed) -> Plan {
    use crate::api::session_manager;
    use kube::ResourceExt;
    let ns = session.namespace().unwrap_or_default();
    let manager = match &plan.action {
        WorkloadAction::Take(_) | WorkloadAction::Apply(_) | WorkloadAction::Release => {
            session_manager(&ns, &session.name_any())
        }
        WorkloadAction::ReleaseStale { session: other } => session_manager(&ns, other),
        _ => return plan,
    };
    plan.share_off = (obs.workload.as_ref()).is_some_and(|w| w.keeps_share_off(&manager));
    plan
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
    p.steps.push(Step::Retrying {
        error: error.to_string(),
    });
    p.finish().status
}

/// One reconcile's decisions: the facts it records in status (times, resolved target, pods),
/// the workload action, the requeue and the [`Step`]s that [`render`] turns into phase,
/// conditions and Events.
struct Planner<'a> {
    session: &'a DebugSession,
    now: Timestamp,
    status: DebugSessionStatus,
    action: WorkloadAction,
    authorize: bool,
    steps: Vec<Step>,
    requeue: Option<Duration>,
    wake_on_pods: Vec<String>,
}

impl<'a> Planner<'a> {
    fn new(session: &'a DebugSession, now: Timestamp) -> Self {
        Planner {
            session,
            now,
            status: session.status.clone().unwrap_or_default(),
            action: WorkloadAction::None,
            authorize: false,
            steps: Vec::new(),
            requeue: None,
            wake_on_pods: Vec::new(),
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

    fn generation(&self) -> Option<i64> {
        self.session.metadata.generation
    }

    /// What undoes the session's change, if anything of it is left: the release of the
    /// workload's fields (Patch, or anything the manager still owns), the deletion of the copy.
    fn undo(&self, obs: &Observed) -> Option<WorkloadAction> {
        if obs
            .workload
            .as_ref()
            .is_some_and(|w| w.is_managed_by(&self.manager()))
        {
            return Some(WorkloadAction::Release);
        }
        let copy = obs
            .pods
            .iter()
            .find(|_| self.status.mode.unwrap_or(self.session.mode()) == Mode::Copy)?;
        Some(WorkloadAction::DeleteCopy {
            pod: copy.metadata.name.clone().unwrap_or_default(),
            uid: copy.metadata.uid.clone().unwrap_or_default(),
        })
    }

    /// How long ago the session started (zero before it has).
    fn since_start(&self) -> Duration {
        self.status
            .started_at
            .as_ref()
            .map(|t| Duration::try_from(self.now.duration_since(t.0)).unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::ZERO)
    }

    /// How soon to look again at a shell making its way into the pods: every 5 s in the first
    /// minute since the start, then every 20 s.
    fn poll_rolling(&self) -> Duration {
        if self.since_start() < ROLLING_SHORT {
            POLL_APPLYING
        } else {
            POLL_ROLLING_LONG
        }
    }

    /// Looks again at the ephemeral shells starting in `pods` when they change, and at the
    /// latest after [`POLL_STARTING`].
    fn wait_for_shells(&mut self, pods: Vec<String>) {
        self.requeue = Some(self.requeue.map_or(POLL_STARTING, |r| r.min(POLL_STARTING)));
        self.wake_on_pods = pods;
    }

    fn fail(&mut self, invalid: Invalid) {
        self.steps.push(Step::Fail(invalid));
    }

    fn finish(self) -> Plan {
        let (kind, name) = self.target();
        let ttl = self.session.spec.ttl.as_deref().unwrap_or("default");
        let scene = Scene {
            mode: self.status.mode.unwrap_or(self.session.mode()),
            namespace: self.namespace(),
            kind,
            name: &name,
            generation: self.generation(),
            now: self.now,
            ttl,
        };
        let mut status = self.status.clone();
        let mut notes = Vec::new();
        for step in &self.steps {
            render(step, &scene, &mut status, &mut notes);
        }
        status.observed_generation = self.session.metadata.generation;
        if status.target_ref.is_none() {
            let t = &self.session.spec.target;
            status.target_ref = Some(format!("{}/{}", t.kind, t.name));
        }
        Plan {
            action: self.action,
            authorize: self.authorize,
            status,
            notes,
            requeue: self.requeue,
            wake_on_pods: self.wake_on_pods,
            share_off: false,
        }
    }
}

/// Whether the only status so far is that of a first reconcile that failed before planning.
fn retried(status: &DebugSessionStatus) -> bool {
    conditions::get(&status.conditions, crate::api::condition::READY)
        .is_some_and(|c| c.reason == reason::RETRYING)
        && status.started_at.is_none()
        && !status
            .conditions
            .iter()
            .any(|c| c.type_ == crate::api::condition::APPROVED)
}

fn until(now: Timestamp, t: Timestamp) -> Duration {
    Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO) + Duration::from_millis(100)
}

mod approval;
pub mod coalesce;
mod copy;
mod ephemeral;
pub mod render;
mod rollout;
mod running;
mod start;
pub mod step;

use render::{Scene, render};
use rollout::{Expect, drift};
use step::{Gone, Progress, Rollout, Step};
#[cfg(test)]
mod tests;
