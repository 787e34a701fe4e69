//! Report: write the planned status (server-side apply on the status subresource), record the
//! planned Events on the session and update the metrics.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::Context;
use super::plan::{Plan, coalesce};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::conditions;
use crate::api::{DebugSession, DebugSessionStatus, STATUS_MANAGER, condition, reason};
use crate::audit;
use crate::{Error, Result};

/// Writes the planned status (when it changed), records events, the audit trail and metrics.
/// `requester` is the user of the verified stamp. A change that is only a rollout's progress
/// waits ([`coalesce`]): when it makes a shell attachable, until [`coalesce::PROGRESS_EVERY`]
/// after the last write (the result is how long: the session looks again then); otherwise
/// until the next write.
pub(super) async fn report(
    session: &DebugSession,
    ctx: &Context,
    plan: &Plan,
    requester: Option<&str>,
    now: Timestamp,
) -> Result<Option<Duration>> {
    let old = session.status.clone().unwrap_or_default();
    if old != plan.status {
        match coalesce::change(&old, &plan.status) {
            coalesce::Change::Now => {}
            coalesce::Change::Attachable => {
                if let Some(wait) = ctx.writes.progress_wait(&ObjectRef::from_obj(session)) {
                    // Planned again, with its events, when the wait is over.
                    return Ok(Some(wait));
                }
            }
            // Planned again, with its events, at the plan's next look or the next change.
            coalesce::Change::Idle => return Ok(None),
        }
        write_status(session, ctx, &plan.status).await?;
    }
    publish(session, ctx, plan);
    audit_transitions(session, ctx, &plan.status, requester, now);
    ctx.metrics
        .observe_transition(session, &old, &plan.status, now);
    Ok(None)
}

/// One audit line per transition from the session's status to `status`, just written.
pub(super) fn audit_transitions(
    session: &DebugSession,
    ctx: &Context,
    status: &DebugSessionStatus,
    requester: Option<&str>,
    now: Timestamp,
) {
    let old = session.status.clone().unwrap_or_default();
    for event in audit::transitions(&old, status) {
        audit::emit(&audit::record(
            session,
            status,
            event,
            requester,
            &ctx.settings,
            now,
        ));
    }
}

/// The audit trail of a deleted session, once per session: it ended (unless it had), and what
/// it changed is back (when the cleanup undid anything).
pub(super) fn audit_deleted(session: &DebugSession, ctx: &Context, plan: &Plan, now: Timestamp) {
    let uid = session.uid().unwrap_or_default();
    let first = ctx.audited_deletions.lock().is_ok_and(|mut seen| {
        if seen.len() > 10_000 {
            seen.clear();
        }
        seen.insert(uid)
    });
    if !first {
        return;
    }
    let mut status = session.status.clone().unwrap_or_default();
    let message = plan
        .notes
        .last()
        .map(|n| n.message.clone())
        .unwrap_or_else(|| "session deleted: nothing to revert".into());
    let mut events = Vec::new();
    if status.ended_at.is_none() {
        events.push(audit::Transition::Ended);
        status.ended_at = Some(Time(now));
    }
    if plan.action != super::plan::WorkloadAction::None {
        events.push(audit::Transition::Reverted);
    }
    status.message = Some(message.clone());
    conditions::set(
        &mut status.conditions,
        condition::READY,
        false,
        reason::DELETED,
        &message,
        session.metadata.generation,
        now,
    );
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
    let written = api
        .patch_status(
            &session.name_any(),
            &PatchParams::apply(STATUS_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(Error::WriteStatus)?;
    ctx.writes.written(session, written);
    Ok(())
}

pub(super) fn publish(session: &DebugSession, ctx: &Context, plan: &Plan) {
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
        ctx.events.publish(event, reference.clone());
    }
}
