//! Act: carry out the planned change through the mode's actuator ([`patch`] for the pod
//! template, [`copy`] for a copy of a pod, [`ephemeral`] for ephemeral containers) and, for a
//! changed workload, say so on it with an Event.

pub mod copy;
pub mod ephemeral;
pub mod patch;

use kube::ResourceExt;
use kube::runtime::events::{Event, EventType};
use tracing::info;

use super::Context;
use super::plan::{Plan, WorkloadAction};
use crate::api::{DebugSession, session_manager};
use crate::{Error, Result};
use patch as apply;

/// Carries out the planned change to the workload.
pub(super) async fn act(session: &DebugSession, ctx: &Context, plan: &Plan) -> Result<()> {
    let ns = session.namespace().ok_or(Error::NotNamespaced)?;
    let name = session.name_any();
    let (kind, target) = plan
        .status
        .target
        .as_ref()
        .map(|t| (t.kind, t.name.clone()))
        .unwrap_or_else(|| session.target_in_force());
    let w = apply::WorkloadRef {
        namespace: ns.clone(),
        kind,
        name: target,
    };
    let note = match &plan.action {
        WorkloadAction::None => return Ok(()),
        WorkloadAction::Take(shell) | WorkloadAction::Apply(shell) => {
            let manager = session_manager(&ns, &name);
            let change = apply::Change {
                client: &ctx.client,
                workload: &w,
                manager: &manager,
                session: &name,
                share_off: plan.share_off,
            };
            if matches!(plan.action, WorkloadAction::Take(_)) {
                apply::take(change, shell).await?;
            } else {
                apply::apply_shell(change, shell).await?;
            }
            info!(workload = %w, %manager, "applied debug shell");
            let what = format!(
                "DebugSession {name} added container {} and shareProcessNamespace",
                shell.name
            );
            (
                crate::api::reason::DEBUG_SHELL_ADDED,
                format!("{what} (field manager {manager})"),
            )
        }
        WorkloadAction::Release => {
            let manager = session_manager(&ns, &name);
            apply::release(&ctx.client, &w, &manager, plan.share_off).await?;
            info!(workload = %w, "reverted workload");
            (
                crate::api::reason::DEBUG_SHELL_REMOVED,
                format!("DebugSession {name} ended: its changes were reverted"),
            )
        }
        WorkloadAction::ReleaseStale { session: other } => {
            let manager = session_manager(&ns, other);
            apply::release(&ctx.client, &w, &manager, plan.share_off).await?;
            info!(workload = %w, stale = %other, "released fields of an ended session");
            let note = format!("the changes of ended DebugSession {other} were reverted");
            (crate::api::reason::DEBUG_SHELL_REMOVED, note)
        }
        WorkloadAction::CreateCopy(pod) => {
            let uid = session.uid().unwrap_or_default();
            copy::create(&ctx.client, &ns, pod, &uid).await?;
            info!(
                pod = pod.metadata.name.as_deref().unwrap_or_default(),
                "created the copy"
            );
            return Ok(());
        }
        WorkloadAction::DeleteCopy { pod, uid } => {
            copy::delete(&ctx.client, &ns, pod, uid).await?;
            info!(%pod, "deleted the copy");
            return Ok(());
        }
        WorkloadAction::AddEphemeral { pods, shell } => {
            let legacy = ctx
                .legacy_ephemeral_api()
                .await
                .map_err(Error::ApplyShell)?;
            ephemeral::add(&ctx.client, &ns, pods, shell, legacy).await?;
            info!(?pods, container = %shell.name, "added the ephemeral shell");
            return Ok(());
        }
    };
    // Say it on the workload too, so that `kubectl describe` of the target shows who changed it.
    if let Some(uid) = plan.status.target.as_ref().map(|t| t.uid.clone()) {
        workload_event(ctx, &w, uid, note.0, note.1);
    }
    Ok(())
}

fn workload_event(ctx: &Context, w: &apply::WorkloadRef, uid: String, reason: &str, note: String) {
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some(w.kind.as_str().into()),
        name: Some(w.name.clone()),
        namespace: Some(w.namespace.clone()),
        uid: Some(uid),
        ..Default::default()
    };
    let event = Event {
        type_: EventType::Normal,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    ctx.events.publish(event, reference);
}
