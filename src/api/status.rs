use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TargetKind;

/// Observed state of a DebugSession.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DebugSessionStatus {
    /// Where the session is: Pending, Applying, Active, Reverting, Expired or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Standard conditions: `Ready` (the shell is in every pod and can be attached to) and
    /// `Reverted` (the workload is back as it was).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the shell was added to the workload; the TTL counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the session ends and the workload is reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// When the workload was reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Time>,
    /// The workload as resolved when the session started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ResolvedTarget>,
    /// `<Kind>/<name>` of the target, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<String>,
    /// Pods that carry the shell, with the command to attach to each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<SessionPod>,
    /// `<pods with the shell ready>/<desired pods>`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_pods: Option<String>,
    /// The spec generation that the shell in the workload comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell_generation: Option<i64>,
    /// The name of the shell container in the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell_container: Option<String>,
    /// SHA-256 of the spec without its TTL, for the generation that runs (Copy and Ephemeral
    /// modes, whose shell cannot change once it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_spec: Option<String>,
    /// How the shell got in: Patch, Copy or Ephemeral (fixed once started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<super::Mode>,
    /// The user whose stamp authorized the shell in the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    /// The approvals the session needs and has, when the operator's approval rules cover its
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalStatus>,
    /// One sentence on the current state or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where a session that needs approval stands.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalStatus {
    /// How many people other than the requester must approve the spec.
    pub required: u32,
    /// Who approved the current spec (valid approvals only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<String>,
    /// Who denied the session, when someone did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<String>,
    /// When the last approval that was needed was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Time>,
}

/// Phase of a session, shown in `kubectl get debugsessions`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Phase {
    /// Not started: being validated, or waiting for another session to release the workload.
    Pending,
    /// The shell was added; the pods are rolling.
    Applying,
    /// Every pod carries a ready shell.
    Active,
    /// The workload is being put back.
    Reverting,
    /// The TTL ran out and the workload was reverted.
    Expired,
    /// The session could not start (bad input, missing target, Pod Security) or its target vanished.
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Applying => "Applying",
            Phase::Active => "Active",
            Phase::Reverting => "Reverting",
            Phase::Expired => "Expired",
            Phase::Failed => "Failed",
        }
    }

    /// A session in a terminal phase never touches its workload again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Expired | Phase::Failed)
    }

    pub const ALL: [Phase; 6] = [
        Phase::Pending,
        Phase::Applying,
        Phase::Active,
        Phase::Reverting,
        Phase::Expired,
        Phase::Failed,
    ];
}

/// The target as resolved at the start of the session.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedTarget {
    pub kind: TargetKind,
    pub name: String,
    /// UID of the workload object; a workload recreated under the same name is another target.
    pub uid: String,
}

/// A pod that carries the debug shell.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionPod {
    pub name: String,
    /// The shell container in that pod.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// Whether the shell container is running and ready.
    pub ready: bool,
    /// The command that attaches a terminal to the shell.
    pub attach: String,
}

/// Condition types.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const REVERTED: &str = "Reverted";
    pub const TARGET_LOCKED: &str = "TargetLocked";
    /// Whether the current spec generation is what runs in the workload.
    pub const SPEC_APPLIED: &str = "SpecApplied";
    /// Whether the current spec has the approvals the operator's rules ask for (only on
    /// sessions that need approval).
    pub const APPROVED: &str = "Approved";
}

/// Stable, CamelCase condition reasons.
pub mod reason {
    pub const HELD_BY_OTHER_SESSION: &str = "HeldByOtherSession";
    pub const ROLLING_OUT: &str = "RollingOut";
    pub const WAITING_FOR_POD_DELETION: &str = "WaitingForPodDeletion";
    pub const NO_PODS: &str = "NoPods";
    pub const SHELL_READY: &str = "ShellReady";
    pub const DRIFTED: &str = "Drifted";
    pub const EXPIRED: &str = "Expired";
    pub const NOT_REVERTED: &str = "NotReverted";
    pub const NOTHING_TO_REVERT: &str = "NothingToRevert";
    pub const REVERTED: &str = "Reverted";
    pub const TARGET_NOT_FOUND: &str = "TargetNotFound";
    pub const TARGET_DELETED: &str = "TargetDeleted";
    pub const TARGET_REPLACED: &str = "TargetReplaced";
    pub const TARGET_CHANGE_REFUSED: &str = "TargetChangeRefused";
    pub const INVALID_TTL: &str = "InvalidTTL";
    pub const TTL_TOO_SHORT: &str = "TTLTooShort";
    pub const TTL_TOO_LONG: &str = "TTLTooLong";
    pub const EMPTY_IMAGE: &str = "EmptyImage";
    pub const INVALID_SHELL: &str = "InvalidShell";
    pub const CONTAINER_NOT_FOUND: &str = "ContainerNotFound";
    pub const CONTAINER_NAME_CLASH: &str = "ContainerNameClash";
    pub const POD_SECURITY_VIOLATION: &str = "PodSecurityViolation";
    pub const POLICY_VIOLATION: &str = "PolicyViolation";
    pub const UNAUTHORIZED: &str = "Unauthorized";
    pub const STAMP_MISSING: &str = "StampMissing";
    pub const INVALID_STAMP: &str = "InvalidStamp";
    pub const SPEC_NOT_STAMPED: &str = "SpecNotStamped";
    pub const STAMP_REQUIRED: &str = "StampRequired";
    /// The shell was applied (an event), or the current generation is what runs (SpecApplied).
    pub const APPLIED: &str = "Applied";
    pub const ACTIVE: &str = "Active";
    /// Events on the target workload.
    pub const DEBUG_SHELL_ADDED: &str = "DebugShellAdded";
    pub const DEBUG_SHELL_REMOVED: &str = "DebugShellRemoved";
    pub const ORPHAN_RELEASED: &str = "OrphanReleased";
    pub const SPEC_CHANGED: &str = "SpecChanged";
    pub const INVALID_RESOURCES: &str = "InvalidResources";
    pub const INVALID_ENV: &str = "InvalidEnv";
    pub const INVALID_IMAGE: &str = "InvalidImage";
    pub const NAME_TOO_LONG: &str = "NameTooLong";
    pub const APPLY_REJECTED: &str = "ApplyRejected";
    pub const FOREIGN_HOLDER: &str = "ForeignHolder";
    pub const SHELL_LEFT_IN_REPLACED_TARGET: &str = "ShellLeftInReplacedTarget";
    pub const RETRYING: &str = "Retrying";
    /// The mode cannot act on the target (Patch on a bare Pod).
    pub const MODE_NOT_SUPPORTED: &str = "ModeNotSupported";
    /// The operator runs with the mode switched off.
    pub const MODE_DISABLED: &str = "ModeDisabled";
    /// Options that do not belong to the chosen mode, or name what the source lacks.
    pub const INVALID_OPTIONS: &str = "InvalidOptions";
    /// `target.pod` names no pod of the workload.
    pub const POD_NOT_FOUND: &str = "PodNotFound";
    /// The profile is not in the operator's `allowedProfiles`.
    pub const PROFILE_NOT_ALLOWED: &str = "ProfileNotAllowed";
    /// The API server allows no securityContext on ephemeral containers (Kubernetes < 1.22).
    pub const PROFILE_DROPPED: &str = "ProfileDropped";
    /// An ephemeral shell's command ended with the session (it stays in the pod spec).
    pub const SHELL_EXITED: &str = "ShellExited";
    /// The kubelet cannot start the shell container (refused configuration, image not pulled).
    pub const SHELL_NOT_STARTING: &str = "ShellNotStarting";
    /// The session's copy of the pod was deleted while the session ran.
    pub const COPY_DELETED: &str = "CopyDeleted";
    /// The operator saw the session for the first time (an event).
    pub const REQUESTED: &str = "Requested";
    /// The session was deleted (the audit trail's reason for its end).
    pub const DELETED: &str = "Deleted";
    /// The session waits for the approvals its namespace needs.
    pub const AWAITING_APPROVAL: &str = "AwaitingApproval";
    /// The spec has every approval it needs (condition `Approved`, event).
    pub const APPROVED: &str = "Approved";
    /// Somebody allowed to approve denied the session.
    pub const DENIED: &str = "Denied";
    /// The approvals were given too long before the session could start.
    pub const APPROVAL_EXPIRED: &str = "ApprovalExpired";
}
