//! The Ephemeral mode's actuator: add the shell to each pod's `ephemeralcontainers`
//! subresource, in the shape the API server takes (Kubernetes 1.20-1.21: GET and PUT an
//! `EphemeralContainers` object; 1.22 and later: a strategic-merge patch of the Pod). A pod that
//! already has the shell is left as it is (ephemeral containers cannot change).

use k8s_openapi::api::core::v1::{EphemeralContainer, Pod};
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};

use super::patch::is_refusal;
use crate::session::ephemeral::{legacy_body, patch_body};
use crate::{Error, Result};

const SUBRESOURCE: &str = "ephemeralcontainers";

fn classify(e: kube::Error) -> Error {
    if is_refusal(&e) {
        Error::Rejected(e)
    } else {
        Error::ApplyShell(e)
    }
}

/// Adds `shell` to each pod in `pods` that lacks it.
pub async fn add(
    client: &Client,
    namespace: &str,
    pods: &[String],
    shell: &EphemeralContainer,
    legacy: bool,
) -> Result<()> {
    for pod in pods {
        if legacy {
            add_legacy(client, namespace, pod, shell).await?;
        } else {
            add_patch(client, namespace, pod, shell).await?;
        }
    }
    Ok(())
}

async fn add_legacy(
    client: &Client,
    namespace: &str,
    pod: &str,
    shell: &EphemeralContainer,
) -> Result<()> {
    let gvk = GroupVersionKind::gvk("", "v1", "Pod");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "pods");
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &ar);
    let current = api
        .get_subresource(SUBRESOURCE, pod)
        .await
        .map_err(classify)?;
    let existing: Vec<EphemeralContainer> = current
        .data
        .get("ephemeralContainers")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| Error::ApplyShell(kube::Error::SerdeError(e)))?
        .unwrap_or_default();
    if existing.iter().any(|c| c.name == shell.name) {
        return Ok(());
    }
    let mut body = legacy_body(pod, namespace, existing, shell.clone());
    // Carry the resourceVersion read, so that a concurrent change is a conflict, not lost.
    if let Some(rv) = current.metadata.resource_version {
        body["metadata"]["resourceVersion"] = rv.into();
    }
    api.replace_subresource(SUBRESOURCE, pod, &PostParams::default(), &body)
        .await
        .map(|_| ())
        .map_err(classify)
}

async fn add_patch(
    client: &Client,
    namespace: &str,
    pod: &str,
    shell: &EphemeralContainer,
) -> Result<()> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let current = api.get(pod).await.map_err(classify)?;
    let has = current
        .spec
        .and_then(|s| s.ephemeral_containers)
        .is_some_and(|l| l.iter().any(|c| c.name == shell.name));
    if has {
        return Ok(());
    }
    api.patch_subresource(
        SUBRESOURCE,
        pod,
        &PatchParams::default(),
        &Patch::Strategic(patch_body(shell)),
    )
    .await
    .map(|_| ())
    .map_err(classify)
}
