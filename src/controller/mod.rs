//! The DebugSession controller: watch → observe → plan (pure) → act (SSA) → report.
//!
//! - [`watch`]: the kube-runtime Controller and what wakes a session.
//! - [`observe`]: the reads a reconcile needs, and what authorizes the spec.
//! - [`plan`]: pure planning (the workload action, the next status, events, requeue).
//! - [`act`] with [`apply`]: the server-side applies to the workload.
//! - [`report`]: status, Events, metrics.
//! - [`sweep`]: fields left behind by sessions that are gone.
//! - [`wake`]: pod watches for what the controller's watches do not see (ephemeral shells).

pub mod act;
pub mod backoff;
pub mod conditions;
pub mod context;
pub mod events;
pub mod index;
pub mod observe;
pub mod plan;
pub mod report;
pub mod sweep;
pub mod wake;
pub mod watch;
pub mod writes;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use tracing::{Instrument, info, info_span, warn};

pub use context::Context;
pub use watch::run;

use crate::api::{DebugSession, FINALIZER, Phase, session_manager};
use crate::authz;
use crate::faultpoint;
use crate::session::validate::Invalid;
use crate::{Error, Result};
use act::act;
use act::patch as apply;
use observe::{admission, observe, observe_target};
use plan::WorkloadAction;
use report::{publish, report, write_status};

/// Reconciles one DebugSession; the finalizer makes deletion always go through [`cleanup`].
pub async fn reconcile(session: Arc<DebugSession>, ctx: Arc<Context>) -> Result<Action> {
    let session = ctx.writes.freshest(session);
    let ns = session.namespace().ok_or(Error::NotNamespaced)?;
    let span = info_span!("reconcile", namespace = %ns, session = %session.name_any());
    async move {
        ctx.metrics.reconciles.inc();
        let api: Api<DebugSession> = Api::namespaced(ctx.client.clone(), &ns);
        let res = finalizer(&api, FINALIZER, session.clone(), |event| async {
            match event {
                Finalizer::Apply(s) => reconcile_live(&s, &ctx).await,
                Finalizer::Cleanup(s) => cleanup(&s, &ctx).await,
            }
        })
        .await
        .map_err(|e| Error::Finalizer(Box::new(e)));
        if res.is_ok()
            && let Ok(mut f) = ctx.failures.lock()
        {
            f.remove(&ObjectRef::from_obj(session.as_ref()));
        }
        res
    }
    .instrument(span)
    .await
}

/// Transient errors back off exponentially (1s .. 5min); a lost race for the workload retries at once.
pub fn error_policy(session: Arc<DebugSession>, err: &Error, ctx: Arc<Context>) -> Action {
    warn!(namespace = session.namespace().unwrap_or_default(), session = %session.name_any(), error = %err, "reconcile failed");
    ctx.metrics
        .errors
        .get_or_create(&crate::metrics::ErrorLabels {
            reason: err.metric_label().into(),
        })
        .inc();
    let lost_race = match err {
        Error::Taken(_) => true,
        Error::Finalizer(f) => matches!(
            f.as_ref(),
            kube::runtime::finalizer::Error::ApplyFailed(Error::Taken(_))
        ),
        _ => false,
    };
    if lost_race {
        return Action::requeue(Duration::from_millis(500));
    }
    let n = ctx
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(ObjectRef::from_obj(session.as_ref())).or_insert(0);
            *n = n.saturating_add(1);
            *n
        })
        .unwrap_or(1);
    Action::requeue(
        Duration::from_secs(1u64 << n.min(8).saturating_sub(1)).min(Duration::from_secs(300)),
    )
}

async fn reconcile_live(session: &DebugSession, ctx: &Context) -> Result<Action> {
    let res = reconcile_planned(session, ctx).await;
    if let Err(e) = &res
        && session.status.as_ref().and_then(|s| s.phase).is_none()
    {
        // After its first reconcile a session always has a phase, even when that reconcile
        // failed before it could plan.
        let now = Timestamp::now();
        let status = plan::retrying(session, &e.to_string(), now);
        match write_status(session, ctx, &status).await {
            Ok(()) => report::audit_transitions(session, ctx, &status, None, now),
            Err(w) => warn!(error = %w, "could not record the failed reconcile in status"),
        }
    }
    res
}

async fn reconcile_planned(session: &DebugSession, ctx: &Context) -> Result<Action> {
    let ns = session.namespace().ok_or(Error::NotNamespaced)?;
    let mut obs = observe(session, ctx).await?;
    match admission(session, ctx) {
        Ok(stamp) => obs.stamp = stamp,
        Err(refusal) => obs.refusal = Some(refusal),
    }
    let now = Timestamp::now();
    obs.approval = observe::approvals(session, ctx, &obs, now);
    let mut plan = plan::plan(session, &obs, &ctx.settings, now);
    // Defence in depth: before a spec generation first reaches the workload, its approvers must
    // still be allowed to approve, and the stamped requester must still hold the rights it
    // needs (either may have been revoked since admission).
    if plan.authorize && recheck_approvers(session, ctx, &mut obs).await? {
        plan = plan::plan(session, &obs, &ctx.settings, now);
    }
    if plan.authorize
        && let Some(stamp) = &obs.stamp
    {
        let target = &session.spec.target;
        if let Err(message) =
            authz::decide(&ctx.client, &stamp.requester, &ns, target, session.mode())
                .await
                .map_err(Error::Authorize)?
        {
            obs.refusal = Some(Invalid {
                reason: crate::api::reason::UNAUTHORIZED,
                message,
            });
            plan = plan::plan(session, &obs, &ctx.settings, now);
        }
    }
    let expiring =
        matches!(plan.action, WorkloadAction::Release) && plan.status.phase == Some(Phase::Expired);
    if expiring {
        faultpoint::reach(faultpoint::BEFORE_RELEASE).await;
    }
    match act(session, ctx, &plan).await {
        Ok(()) => {}
        Err(Error::Rejected(e)) => {
            // The API server refused the shell for good: say so instead of retrying, and hold
            // nothing for a session that never started (a refused `Take` gave its hold back
            // already; an `Apply` of a never-started session holds from before a restart).
            let never_started = session
                .status
                .as_ref()
                .is_none_or(|s| s.started_at.is_none());
            if never_started && matches!(plan.action, WorkloadAction::Apply(_)) {
                let (kind, name) = session.target_in_force();
                let w = apply::WorkloadRef {
                    namespace: ns.clone(),
                    kind,
                    name,
                };
                let manager = session_manager(&ns, &session.name_any());
                apply::release(&ctx.client, &w, &manager, plan.share_off).await?;
            }
            obs.refusal = Some(Invalid {
                reason: crate::api::reason::APPLY_REJECTED,
                message: format!(
                    "the API server refused the debug shell: {}",
                    api_message(&e)
                ),
            });
            plan = plan::plan(session, &obs, &ctx.settings, now);
            plan.action = WorkloadAction::None;
        }
        Err(e) => {
            if matches!(plan.action, WorkloadAction::Release) {
                // Say so while retrying: the workload still carries the shell.
                write_status(session, ctx, &plan::reverting(&plan.status, &e.to_string())).await?;
            }
            return Err(e);
        }
    }
    if matches!(
        plan.action,
        WorkloadAction::Take(_) | WorkloadAction::Apply(_)
    ) {
        faultpoint::reach(faultpoint::AFTER_SHELL).await;
    }
    if expiring {
        faultpoint::reach(faultpoint::AFTER_RELEASE).await;
    }
    let requester = obs.stamp.as_ref().map(|s| s.requester.username.as_str());
    let waits = report(session, ctx, &plan, requester, now).await?;
    let me = ObjectRef::from_obj(session);
    (ctx.wakes).watch_read(&ctx.client, &me, &ns, &plan.wake_on_pods, &obs.pods);
    let requeue = match (plan.requeue, waits) {
        (Some(r), Some(w)) => Some(r.min(w)),
        (r, w) => r.or(w),
    };
    Ok(requeue
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

/// Drops the approvals whose approvers may no longer approve; whether any went.
async fn recheck_approvers(
    session: &DebugSession,
    ctx: &Context,
    obs: &mut plan::Observed,
) -> Result<bool> {
    let Some(tally) = obs.approval.as_mut().filter(|t| t.required > 0) else {
        return Ok(false);
    };
    let (ns, name) = (session.namespace().unwrap_or_default(), session.name_any());
    let mut kept = Vec::new();
    let mut dropped = false;
    for a in std::mem::take(&mut tally.approvals) {
        match authz::decide_approve(&ctx.client, &a.approver(), &ns, &name)
            .await
            .map_err(Error::Authorize)?
        {
            Ok(()) => kept.push(a),
            Err(why) => {
                tally.set_aside.push(why);
                dropped = true;
            }
        }
    }
    tally.approvals = kept;
    Ok(dropped)
}

/// The API server's own sentence for a refused request.
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        e => e.to_string(),
    }
}

async fn cleanup(session: &DebugSession, ctx: &Context) -> Result<Action> {
    let obs = observe_target(session, ctx).await?;
    let now = Timestamp::now();
    let plan = plan::plan_cleanup(session, &obs, now);
    act(session, ctx, &plan).await?;
    faultpoint::reach(faultpoint::CLEANUP_AFTER_RELEASE).await;
    publish(session, ctx, &plan);
    report::audit_deleted(session, ctx, &plan, now);
    ctx.metrics.ended_by_deletion(session);
    ctx.metrics.forget(session);
    ctx.writes.forget(&ObjectRef::from_obj(session));
    info!(action = ?plan.action, "session deleted");
    Ok(Action::await_change())
}
