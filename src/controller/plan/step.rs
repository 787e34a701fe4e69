//! The planner's outcome, as data: what happened to the session in this reconcile. Deciding a
//! step is the planner's job ([`super::start`], [`super::running`]); turning it into phase,
//! conditions and Events is [`super::render`]'s.

use crate::session::validate::Invalid;

/// One thing the planner decided; a reconcile renders its steps in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The operator sees the session for the first time; `by`: the stamped requester.
    Requested { by: Option<String> },
    /// The session cannot run (bad input, refused spec, missing target): it fails.
    Fail(Invalid),
    /// Another live session holds the target; this one starts when it ends.
    WaitHeld { by: String },
    /// The holder annotation was written by someone who is not a DebugSession.
    WaitForeign { value: String, owners: Vec<String> },
    /// The holder ended without releasing: its fields are released first.
    ReleaseStale { session: String },
    /// The shell goes in now; `desired` pods should carry it (`pods`: the copy, or the pods
    /// that get an ephemeral shell).
    Start {
        shell: String,
        desired: i32,
        pods: Vec<String>,
    },
    /// The API server allows no securityContext on ephemeral containers: the shell runs
    /// without the profile's additions.
    ProfileDropped { profile: crate::api::Profile },
    /// The current spec generation is what the target gets, stamped by `by`.
    SpecAccepted {
        by: Option<String>,
        /// What the stamp says changed; `None` for the generation that started the session.
        changed: Option<String>,
    },
    /// A new spec generation may not run; the running shell stays.
    SpecRefused { why: Invalid, running: i64 },
    /// `spec.target` was changed after the start: the resolved target stays.
    TargetLocked { message: String },
    /// `spec.target` agrees with the resolved target again.
    TargetUnlocked,
    /// The target lost something the session put there; `reapply` when the shell goes back now.
    Drifted { what: String, reapply: bool },
    /// How far the shell has come in the pods.
    Progress(Progress),
    /// The TTL ran out; the target is released.
    Expired,
    /// The changed target is gone.
    TargetGone(Gone),
    /// The first reconcile failed before it could plan.
    Retrying { error: String },
    /// The session is being deleted and its changes were released.
    Deleted,
    /// The spec needs `missing` more approvals (of `required`) before it may run.
    AwaitingApproval {
        missing: u32,
        required: u32,
        approvers: Vec<String>,
        /// Why recorded approvals do not count.
        set_aside: Vec<String>,
        /// An approval would count but for its age.
        expired: bool,
        /// The command that approves.
        command: String,
    },
    /// The spec has every approval it needs.
    Approved { by: Vec<String> },
    /// Somebody who may approve denied the session; it ends.
    Denied { by: String, reason: String },
}

/// The shell's progress through the pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub ready: usize,
    pub desired: usize,
    pub state: Rollout,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// Every pod carries a ready shell; attach with the command.
    Complete { attach: String },
    /// The target wants no pods.
    NoPods,
    /// The pods only change when deleted (`OnDelete`); these still lack the shell.
    OnDelete { lacking: Vec<String> },
    /// The pods are rolling (Patch), or the shell is starting (Copy, Ephemeral).
    Rolling,
    /// The kubelet cannot start the shell in `pod` (`why`: its reason and message).
    Stuck { pod: String, why: String },
    /// The shell ended in these pods before the session did, and cannot restart.
    Exited { pods: Vec<String> },
}

/// How the changed target went away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gone {
    /// Deleted, nothing in its place.
    Deleted,
    /// Recreated carrying this session's fields again: they are released.
    ReplacedReleased,
    /// Recreated carrying the shell under another field manager: left, with instructions.
    ReplacedWithShell { shell: String },
    /// Recreated without anything of this session.
    ReplacedClean,
}
