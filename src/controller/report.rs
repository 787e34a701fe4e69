//! Report: write the planned status (server-side apply on the status subresource), record the
//! planned Events on the session and update the metrics.

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use super::Context;
use super::plan::Plan;
use crate::api::{DebugSession, DebugSessionStatus, STATUS_MANAGER};
use crate::audit;
use crate::{Error, Result};

/// Writes the planned status (when it changed), records events, the audit trail and metrics.
/// `requester` is the user of the verified stamp.
pub(super) async fn report(
    session: &DebugSession,
    ctx: &Context,
    plan: &Plan,
    requester: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    let old = session.status.clone().unwrap_or_default();
    if old != plan.status {
        write_status(session, ctx, &plan.status).await?;
    }
    publish(session, ctx, plan).await;
    for event in audit::transitions(&old, &plan.status) {
        audit::emit(&audit::record(
            session,
            &plan.status,
            event,
            requester,
            &ctx.settings,
            now,
        ));
    }
    ctx.metrics
        .observe_transition(session, &old, &plan.status, now);
    Ok(())
}

/// The audit trail of a deleted session: it ended (unless it had), and what it changed is back.
pub(super) fn audit_deleted(session: &DebugSession, ctx: &Context, plan: &Plan, now: Timestamp) {
    let status = session.status.clone().unwrap_or_default();
    let mut events = Vec::new();
    if status.ended_at.is_none() {
        events.push(audit::Transition::Ended);
    }
    if plan.action != super::plan::WorkloadAction::None {
        events.push(audit::Transition::Reverted);
    }
    for event in events {
        audit::emit(&audit::record(
            session,
            &status,
            event,
            None,
            &ctx.settings,
            now,
        ));
    }
}

pub(super) async fn write_status(
    session: &DebugSession,
    ctx: &Context,
    status: &DebugSessionStatus,
) -> Result<()> {
    let ns = session.namespace().ok_or(Error::NotNamespaced)?;
    let api: Api<DebugSession> = Api::namespaced(ctx.client.clone(), &ns);
    let body = json!({
        "apiVersion": DebugSession::api_version(&()),
        "kind": DebugSession::kind(&()),
        "status": status,
    });
    api.patch_status(
        &session.name_any(),
        &PatchParams::apply(STATUS_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .map_err(Error::WriteStatus)?;
    Ok(())
}

pub(super) async fn publish(session: &DebugSession, ctx: &Context, plan: &Plan) {
    let reference = session.object_ref(&());
    for note in &plan.notes {
        let event = Event {
            type_: if note.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: note.reason.to_string(),
            note: Some(note.message.chars().take(1000).collect()),
            action: note
                .action
                .clone()
                .unwrap_or_else(|| note.reason.to_string()),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            warn!(error = %e, reason = note.reason, "could not record event");
        }
    }
}
