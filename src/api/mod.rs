//! The `DebugSession` custom resource (group `debugsession.dev`, version `v1alpha1`).

mod spec;
mod status;

pub use spec::*;
pub use status::*;

/// API group of the custom resource.
pub const GROUP: &str = "debugsession.dev";
/// Annotation on a workload naming the DebugSession that currently holds it.
pub const HOLDER_ANNOTATION: &str = "debugsession.dev/session";
/// Annotation a session's intent carries when the workload's own template set
/// `shareProcessNamespace: false`, which the shell turns to `true`: its release puts the `false`
/// back (see `controller::act::patch::release`).
pub const SHARE_OFF_ANNOTATION: &str = "debugsession.dev/restore-share-process-namespace";
/// Finalizer that guarantees the revert before a DebugSession goes away.
pub const FINALIZER: &str = "debugsession.dev/revert";
/// Field manager used for the DebugSession status subresource.
pub const STATUS_MANAGER: &str = "debugsession-operator";

/// The workload a session acts on: the one resolved when it started, else the spec's.
pub fn target_in_force(
    status: Option<&DebugSessionStatus>,
    spec: &DebugSessionSpec,
) -> (TargetKind, String) {
    match status.and_then(|s| s.target.as_ref()) {
        Some(t) => (t.kind, t.name.clone()),
        None => (spec.target.kind, spec.target.name.clone()),
    }
}

impl DebugSession {
    /// The mode in force: the one the session started with, else the spec's, else the target
    /// kind's default.
    pub fn mode(&self) -> Mode {
        self.status
            .as_ref()
            .and_then(|s| s.mode)
            .or(self.spec.mode)
            .unwrap_or(self.spec.target.kind.default_mode())
    }

    /// See [`target_in_force`].
    pub fn target_in_force(&self) -> (TargetKind, String) {
        target_in_force(self.status.as_ref(), &self.spec)
    }
}

/// The field manager that owns a session's changes to its workload:
/// `debugsession/<namespace>/<name>`. Reverting applies an empty intent under this manager,
/// which releases exactly the fields it owns. Argo CD users list the prefix `debugsession/`
/// in `ignoreDifferences.managedFieldsManagers`.
pub fn session_manager(namespace: &str, name: &str) -> String {
    format!("debugsession/{namespace}/{name}")
}
