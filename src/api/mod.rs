//! The `DebugSession` custom resource (group `debugsession.dev`, version `v1alpha1`).

mod spec;
mod status;

pub use spec::*;
pub use status::*;

/// API group of the custom resource.
pub const GROUP: &str = "debugsession.dev";
/// Annotation on a workload naming the DebugSession that currently holds it.
pub const HOLDER_ANNOTATION: &str = "debugsession.dev/session";
/// Finalizer that guarantees the revert before a DebugSession goes away.
pub const FINALIZER: &str = "debugsession.dev/revert";
/// Field manager used for the DebugSession status subresource.
pub const STATUS_MANAGER: &str = "debugsession-operator";

/// The field manager that owns a session's changes to its workload:
/// `debugsession/<namespace>/<name>`. Reverting applies an empty intent under this manager,
/// which releases exactly the fields it owns. Argo CD users list the prefix `debugsession/`
/// in `ignoreDifferences.managedFieldsManagers`.
pub fn session_manager(namespace: &str, name: &str) -> String {
    format!("debugsession/{namespace}/{name}")
}
