//! The Copy mode's actuator: create the session's copy of a pod, delete it at the end. The copy
//! is owned by the session (garbage-collected with it); only a pod that names the session as its
//! owner is ever treated as the copy, or deleted.

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

use super::patch::is_refusal;
use crate::{Error, Result};

/// Whether `pod` is owned by the session with UID `session_uid`.
pub fn owned_by(pod: &Pod, session_uid: &str) -> bool {
    !session_uid.is_empty()
        && pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == session_uid)
}

/// Creates the copy. A pod of that name that the session owns already (a create whose status
/// write was lost) is the copy; one it does not own is a refusal, never adopted.
pub async fn create(client: &Client, namespace: &str, pod: &Pod, session_uid: &str) -> Result<()> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let name = pod.metadata.name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), pod).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api.get_opt(&name).await.map_err(Error::ApplyShell)?;
            match existing {
                Some(p) if owned_by(&p, session_uid) => Ok(()),
                _ => Err(Error::Rejected(kube::Error::Api(
                    kube::core::Status::failure(
                        &format!(
                            "pod {name} already exists and is not this session's copy: delete it or rename the session"
                        ),
                        "AlreadyExists",
                    )
                    .with_code(409)
                    .boxed(),
                ))),
            }
        }
        Err(e) if is_refusal(&e) => Err(Error::Rejected(e)),
        Err(e) => Err(Error::ApplyShell(e)),
    }
}

/// Deletes the copy, on the condition that it is still the pod with `uid`. A copy that is gone
/// (or replaced by another pod of that name) needs nothing.
pub async fn delete(client: &Client, namespace: &str, name: &str, uid: &str) -> Result<()> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(Error::Revert(e)),
    }
}
