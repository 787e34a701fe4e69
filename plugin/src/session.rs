//! Reading sessions, with the API's errors explained.

use debugsession_operator::api::DebugSession;
use kube::Api;

use crate::explain::{self, Doing};

pub async fn get(
    api: &Api<DebugSession>,
    name: &str,
    namespace: &str,
) -> Result<DebugSession, String> {
    api.get(name)
        .await
        .map_err(|e| explain::api(&e, Doing::Read { name, namespace }))
}

/// The session, or None once it is gone.
pub async fn get_opt(
    api: &Api<DebugSession>,
    name: &str,
    namespace: &str,
) -> Result<Option<DebugSession>, String> {
    api.get_opt(name)
        .await
        .map_err(|e| explain::api(&e, Doing::Read { name, namespace }))
}
