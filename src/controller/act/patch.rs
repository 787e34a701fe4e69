//! The Patch mode's actuator: server-side apply of a session's changes to its workload's pod
//! template, and their release.
//!
//! Each session writes under its own field manager (`debugsession/<namespace>/<name>`). Its intent
//! holds exactly the holder annotation, the shell container entry and `shareProcessNamespace`.
//! Releasing applies an empty intent under the same manager: the API server then removes the
//! fields that only this manager owned and keeps everything anybody else set meanwhile.
//!
//! One field may have had a value before: a template that set `shareProcessNamespace: false`
//! itself. The shell's forced apply takes that field, so an empty intent would drop the `false`
//! with it. Such a session's intent also carries [`SHARE_OFF_ANNOTATION`], and its release puts
//! the `false` back in two writes: an apply of `false` (the template is again the owner's, and
//! the workload rolls back to its own ReplicaSet), then the manager's entry taken out of
//! `managedFields` (so the `false` stays, owned by nobody, for the owner's next apply to take).

use k8s_openapi::api::core::v1::Container;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

use crate::api::{HOLDER_ANNOTATION, SHARE_OFF_ANNOTATION, TargetKind};
use crate::{Error, Result};

/// The workload a change goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadRef {
    pub namespace: String,
    pub kind: TargetKind,
    pub name: String,
}

impl std::fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// One session's write to one workload: the client, the workload, the session's field manager
/// and its name (the holder annotation's value), and whether the template's own
/// `shareProcessNamespace: false` is recorded for the release to put back.
#[derive(Clone, Copy)]
pub struct Change<'a> {
    pub client: &'a Client,
    pub workload: &'a WorkloadRef,
    pub manager: &'a str,
    pub session: &'a str,
    pub share_off: bool,
}

fn api(client: &Client, w: &WorkloadRef) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("apps", "v1", w.kind.as_str());
    let ar = ApiResource::from_gvk_with_plural(&gvk, w.kind.plural());
    Api::namespaced_with(client.clone(), &w.namespace, &ar)
}

/// The intent that takes the workload: only the holder annotation.
pub fn hold_intent(kind: TargetKind, name: &str, session: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": kind.as_str(),
        "metadata": {"name": name, "annotations": {HOLDER_ANNOTATION: session}},
    })
}

/// The full intent of a running session; `share_off` records the template's own
/// `shareProcessNamespace: false`.
pub fn shell_intent(c: Change<'_>, shell: &Container) -> Value {
    let w = c.workload;
    let mut intent = json!({
        "apiVersion": "apps/v1",
        "kind": w.kind.as_str(),
        "metadata": {"name": w.name, "annotations": {HOLDER_ANNOTATION: c.session}},
        "spec": {"template": {"spec": {
            "shareProcessNamespace": true,
            "containers": [shell],
        }}},
    });
    if c.share_off {
        intent["metadata"]["annotations"][SHARE_OFF_ANNOTATION] = json!("false");
    }
    intent
}

/// The intent that puts the template's `shareProcessNamespace: false` back and releases the
/// rest (the shell, the holder annotation).
pub fn share_off_intent(kind: TargetKind, name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": kind.as_str(),
        "metadata": {"name": name, "annotations": {SHARE_OFF_ANNOTATION: "false"}},
        "spec": {"template": {"spec": {"shareProcessNamespace": false}}},
    })
}

/// The empty intent that releases everything a manager owns.
pub fn release_intent(kind: TargetKind, name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": kind.as_str(), "metadata": {"name": name}})
}

/// Whether the API server refused a request for good (invalid, forbidden, gone), as opposed to a
/// conflict, throttling or an outage worth retrying.
pub fn is_refusal(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if (400..500).contains(&s.code) && s.code != 409 && s.code != 429)
}

fn classify(e: kube::Error) -> Error {
    if is_refusal(&e) {
        Error::Rejected(e)
    } else {
        Error::ApplyShell(e)
    }
}

/// Takes the workload (fails with [`Error::Taken`] when another session holds it) and applies
/// the shell.
///
/// Mostly one write: the whole intent applied without force. The API server refuses it as a
/// conflict when another manager holds a field of it with another value: another session's holder
/// annotation, or a field of the shell someone else set. Then the careful way: the shell applied
/// as a dry run (so that nothing is held when the API server would refuse the shell), the holder
/// annotation alone without force ([`Error::Taken`] on a conflict), then the shell with force; a
/// refusal of that apply gives the hold back. A refusal is [`Error::Rejected`], and in either way
/// leaves nothing of the session in the workload.
pub async fn take(c: Change<'_>, shell: &Container) -> Result<()> {
    let (w, manager) = (c.workload, c.manager);
    let api = api(c.client, w);
    let full = Patch::Apply(shell_intent(c, shell));
    match api
        .patch(&w.name, &PatchParams::apply(manager), &full)
        .await
    {
        Ok(_) => {
            crate::faultpoint::reach(crate::faultpoint::AFTER_HOLD).await;
            return Ok(());
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(classify(e)),
    }
    api.patch(
        &w.name,
        &PatchParams::apply(manager).force().dry_run(),
        &full,
    )
    .await
    .map_err(classify)?;
    let hold = Patch::Apply(hold_intent(w.kind, &w.name, c.session));
    api.patch(&w.name, &PatchParams::apply(manager), &hold)
        .await
        .map_err(|e| match &e {
            kube::Error::Api(s) if s.code == 409 => Error::Taken(e),
            _ => Error::ApplyShell(e),
        })?;
    crate::faultpoint::reach(crate::faultpoint::AFTER_HOLD).await;
    match apply_shell(c, shell).await {
        Err(Error::Rejected(e)) => {
            // Taken in this call: give it back before reporting.
            release(c.client, w, manager, false).await?;
            Err(Error::Rejected(e))
        }
        other => other,
    }
}

/// Applies the shell to a workload the session holds, forcing ownership of the shell's own
/// fields (the holder annotation, the container entry, `shareProcessNamespace`).
pub async fn apply_shell(c: Change<'_>, shell: &Container) -> Result<()> {
    let w = c.workload;
    let full = Patch::Apply(shell_intent(c, shell));
    api(c.client, w)
        .patch(&w.name, &PatchParams::apply(c.manager).force(), &full)
        .await
        .map(|_| ())
        .map_err(classify)
}

/// Releases every field `manager` owns on the workload; with `share_off`, puts the template's
/// own `shareProcessNamespace: false` back first ([`restore_share_off`]). A workload that is gone
/// needs nothing.
pub async fn release(
    client: &Client,
    w: &WorkloadRef,
    manager: &str,
    share_off: bool,
) -> Result<()> {
    if share_off {
        let mut tries = 0;
        loop {
            tries += 1;
            match restore_share_off(client, w, manager).await {
                Ok(ShareOff::Restored) => return Ok(()),
                // Another manager holds `shareProcessNamespace` at another value: theirs stays.
                Ok(ShareOff::Contested) => break,
                Err(kube::Error::Api(s)) if s.code == 409 && tries < 3 => continue,
                Err(e) => return Err(Error::Revert(e)),
            }
        }
    }
    let empty = Patch::Apply(release_intent(w.kind, &w.name));
    match api(client, w)
        .patch(&w.name, &PatchParams::apply(manager), &empty)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::Revert(e)),
    }
}

/// How putting `shareProcessNamespace: false` back went.
#[derive(Debug, PartialEq, Eq)]
pub enum ShareOff {
    /// Back (or the workload is gone), and `manager` owns nothing any more.
    Restored,
    /// Another manager holds the field at another value: nothing was written.
    Contested,
}

/// Two writes: `false` applied without force under `manager` (releasing the shell and the holder
/// annotation with it; a conflict means someone else holds the field, [`ShareOff::Contested`]),
/// then `manager`'s entry taken out of `managedFields` and the record annotation removed, on the
/// condition that nothing changed in between (a 409 error otherwise: try again).
pub async fn restore_share_off(
    client: &Client,
    w: &WorkloadRef,
    manager: &str,
) -> Result<ShareOff, kube::Error> {
    let api = api(client, w);
    let intent = Patch::Apply(share_off_intent(w.kind, &w.name));
    let applied = match api
        .patch(&w.name, &PatchParams::apply(manager), &intent)
        .await
    {
        Ok(o) => o,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(ShareOff::Restored),
        Err(kube::Error::Api(s)) if s.code == 409 => return Ok(ShareOff::Contested),
        Err(e) => return Err(e),
    };
    let rest: Vec<_> = (applied.metadata.managed_fields.iter().flatten())
        .filter(|m| m.manager.as_deref() != Some(manager))
        .collect();
    // An empty list would be ignored (the API server keeps the entries it has).
    if rest.is_empty() {
        return Ok(ShareOff::Restored);
    }
    let handback = Patch::Merge(json!({"metadata": {
        "resourceVersion": applied.metadata.resource_version,
        "managedFields": rest,
        "annotations": {SHARE_OFF_ANNOTATION: null},
    }}));
    let params = PatchParams {
        field_manager: Some(manager.to_string()),
        ..PatchParams::default()
    };
    match api.patch(&w.name, &params, &handback).await {
        Ok(_) => Ok(ShareOff::Restored),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(ShareOff::Restored),
        Err(e) => Err(e),
    }
}
