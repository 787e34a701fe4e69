//! The DebugSession controller: watch, observe, plan (pure), act (SSA), report.

pub mod apply;
pub mod conditions;
pub mod plan;
pub mod sweep;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{Instrument, info, info_span, warn};

use crate::api::{
    DebugSession, FINALIZER, HOLDER_ANNOTATION, Phase, STATUS_MANAGER, TargetKind, session_manager,
};
use crate::authz;
use crate::faultpoint;
use crate::metrics::Metrics;
use crate::session::policy::Policy;
use crate::session::settings::Settings;
use crate::session::stamp::{self, Stamp};
use crate::session::validate::{self, Invalid};
use crate::workload::{self, Workload};
use crate::{Error, Result};
use plan::{Holder, Observed, Plan, WorkloadAction};

/// Shared state of all reconciles.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    /// What sessions may ask for; re-checked here after the admission webhook.
    pub policy: Policy,
    /// When set, a spec runs only when its requester stamp from the webhook verifies.
    pub stamp_key: Option<Vec<u8>>,
    /// Without a stamp key, start sessions anyway (an install without the webhook: anyone who
    /// may create a session gets a shell). Off by default.
    pub insecure_allow_unstamped: bool,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    failures: Mutex<HashMap<ObjectRef<DebugSession>, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        settings: Settings,
        policy: Policy,
        stamp_key: Option<Vec<u8>>,
        insecure_allow_unstamped: bool,
        metrics: Arc<Metrics>,
        instance: Option<String>,
    ) -> Self {
        let reporter = Reporter {
            controller: "debugsession-operator".into(),
            instance,
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            policy,
            stamp_key,
            insecure_allow_unstamped,
            metrics,
            failures: Mutex::default(),
        }
    }
}

/// Reconciles one DebugSession; the finalizer makes deletion always go through [`cleanup`].
pub async fn reconcile(session: Arc<DebugSession>, ctx: Arc<Context>) -> Result<Action> {
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
    if matches!(err, Error::Taken(_)) {
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

/// Reads what planning needs.
async fn observe(session: &DebugSession, ctx: &Context, full: bool) -> Result<Observed> {
    let ns = session.namespace().ok_or(Error::NotNamespaced)?;
    let (kind, name) = session.target_in_force();
    let workload = workload::fetch(&ctx.client, &ns, kind, &name).await?;
    let mut obs = Observed {
        workload,
        ..Observed::default()
    };
    if !full {
        return Ok(obs);
    }
    let started = session
        .status
        .as_ref()
        .is_some_and(|s| s.started_at.is_some());
    let terminal = session
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .is_some_and(Phase::is_terminal);
    if let Some(w) = &obs.workload {
        obs.holder = Some(holder(w, session, ctx, &ns).await?);
        if !started || fresh_spec(session) {
            let nsobj = Api::<Namespace>::all(ctx.client.clone())
                .get_opt(&ns)
                .await
                .map_err(Error::ReadNamespace)?;
            obs.namespace_labels = nsobj.map(|n| n.labels().clone()).unwrap_or_default();
        }
        if started && !terminal {
            let selector = w.label_selector();
            if !selector.is_empty() {
                let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ns)
                    .list(&ListParams::default().labels(&selector))
                    .await
                    .map_err(Error::ListPods)?;
                obs.pods = pods.items;
            }
        }
    }
    Ok(obs)
}

/// Who holds the workload: the session whose field manager owns the holder annotation. An
/// annotation that no DebugSession's manager owns holds nothing and is reported as foreign.
async fn holder(w: &Workload, session: &DebugSession, ctx: &Context, ns: &str) -> Result<Holder> {
    let Some(value) = w.annotations.get(HOLDER_ANNOTATION) else {
        return Ok(Holder::Free);
    };
    let prefix = crate::api::session_manager(ns, "");
    let Some(name) = w
        .holder_owners
        .iter()
        .find_map(|m| m.strip_prefix(prefix.as_str()))
        .map(String::from)
    else {
        return Ok(Holder::Foreign {
            value: value.clone(),
            owners: w.holder_owners.clone(),
        });
    };
    if name == session.name_any() {
        return Ok(Holder::Us);
    }
    let other = Api::<DebugSession>::namespaced(ctx.client.clone(), ns)
        .get_opt(&name)
        .await
        .map_err(Error::ReadHolder)?;
    // A holder being deleted is still live: its finalizer releases the workload.
    let live = other.is_some_and(|o| {
        o.metadata.deletion_timestamp.is_some()
            || !o
                .status
                .and_then(|s| s.phase)
                .is_some_and(Phase::is_terminal)
    });
    Ok(Holder::Other { name, live })
}

/// Whether the spec generation is newer than the one whose shell runs.
fn fresh_spec(session: &DebugSession) -> bool {
    let status = session.status.as_ref();
    status
        .and_then(|s| s.shell_generation.or(s.observed_generation))
        .is_none_or(|g| Some(g) != session.metadata.generation)
}

/// The stamp that authorizes the session's spec as it stands, or why nothing authorizes it: no
/// stamp that covers this spec (when stamps are required), no stamp key and no opt-in to run
/// unstamped, or the operator's policy.
fn admission(session: &DebugSession, ctx: &Context) -> Result<Option<Stamp>, Invalid> {
    let ns = session.namespace().unwrap_or_default();
    let stamp = match &ctx.stamp_key {
        Some(key) => Some(stamp::verify(
            key,
            &ns,
            &session.name_any(),
            session.annotations(),
            &session.spec,
        )?),
        None if ctx.insecure_allow_unstamped => None,
        None => {
            return Err(Invalid {
                reason: crate::api::reason::STAMP_REQUIRED,
                message: "the operator runs without a stamp key, so it cannot tell who asked for this session and starts none: install its admission webhook (Helm: webhook.enabled=true; kustomize: config/default), or accept that anyone who may create a DebugSession gets a shell by running the operator with --insecure-allow-unstamped".into(),
            });
        }
    };
    // A spec that does not resolve fails in planning, with its own reason.
    if let Ok(asked) = validate::resolve(&session.spec, &ctx.settings) {
        ctx.policy.check(&ns, &asked.shell)?;
    }
    Ok(stamp)
}

async fn reconcile_live(session: &DebugSession, ctx: &Context) -> Result<Action> {
    let res = reconcile_planned(session, ctx).await;
    if let Err(e) = &res
        && session.status.as_ref().and_then(|s| s.phase).is_none()
    {
        // After its first reconcile a session always has a phase, even when that reconcile
        // failed before it could plan.
        let status = plan::retrying(session, &e.to_string(), Timestamp::now());
        if let Err(w) = write_status(session, ctx, &status).await {
            warn!(error = %w, "could not record the failed reconcile in status");
        }
    }
    res
}

async fn reconcile_planned(session: &DebugSession, ctx: &Context) -> Result<Action> {
    let ns = session.namespace().ok_or(Error::NotNamespaced)?;
    let mut obs = observe(session, ctx, true).await?;
    match admission(session, ctx) {
        Ok(stamp) => obs.stamp = stamp,
        Err(refusal) => obs.refusal = Some(refusal),
    }
    let now = Timestamp::now();
    let mut plan = plan::plan(session, &obs, &ctx.settings, now);
    // Defence in depth: before a spec generation first reaches the workload, the stamped
    // requester must still hold the rights it needs (they may have been revoked since admission).
    if plan.authorize
        && let Some(stamp) = &obs.stamp
    {
        let target = &session.spec.target;
        if let Err(message) = authz::decide(&ctx.client, &stamp.requester, &ns, target)
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
    let held = matches!(obs.holder, Some(Holder::Us));
    let expiring =
        matches!(plan.action, WorkloadAction::Release) && plan.status.phase == Some(Phase::Expired);
    if expiring {
        faultpoint::reach(faultpoint::BEFORE_RELEASE).await;
    }
    match act(session, ctx, &plan, held).await {
        Ok(()) => {}
        Err(Error::Rejected(e)) => {
            // The API server refused the shell for good: say so instead of retrying, and hold
            // nothing for a session that never started.
            if session
                .status
                .as_ref()
                .is_none_or(|s| s.started_at.is_none())
            {
                let (kind, name) = session.target_in_force();
                let w = apply::WorkloadRef {
                    namespace: ns.clone(),
                    kind,
                    name,
                };
                apply::release(&ctx.client, &w, &session_manager(&ns, &session.name_any())).await?;
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
                let mut status = plan.status.clone();
                status.phase = Some(Phase::Reverting);
                status.message = Some(format!("reverting failed, retrying: {e}"));
                write_status(session, ctx, &status).await?;
            }
            return Err(e);
        }
    }
    if matches!(plan.action, WorkloadAction::Apply(_)) {
        faultpoint::reach(faultpoint::AFTER_SHELL).await;
    }
    if expiring {
        faultpoint::reach(faultpoint::AFTER_RELEASE).await;
    }
    report(session, ctx, &plan, now).await?;
    Ok(plan
        .requeue
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

/// The API server's own sentence for a refused request.
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        e => e.to_string(),
    }
}

async fn cleanup(session: &DebugSession, ctx: &Context) -> Result<Action> {
    let obs = observe(session, ctx, false).await?;
    let plan = plan::plan_cleanup(session, &obs, Timestamp::now());
    act(session, ctx, &plan, true).await?;
    faultpoint::reach(faultpoint::CLEANUP_AFTER_RELEASE).await;
    publish(session, ctx, &plan).await;
    ctx.metrics.forget(session);
    info!(action = ?plan.action, "session deleted");
    Ok(Action::await_change())
}

/// Carries out the planned change to the workload.
async fn act(session: &DebugSession, ctx: &Context, plan: &Plan, held: bool) -> Result<()> {
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
        WorkloadAction::Apply(shell) => {
            let manager = session_manager(&ns, &name);
            apply::apply_shell(&ctx.client, &w, &manager, &name, shell, held).await?;
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
            apply::release(&ctx.client, &w, &session_manager(&ns, &name)).await?;
            info!(workload = %w, "reverted workload");
            (
                crate::api::reason::DEBUG_SHELL_REMOVED,
                format!("DebugSession {name} ended: its changes were reverted"),
            )
        }
        WorkloadAction::ReleaseStale { session: other } => {
            apply::release(&ctx.client, &w, &session_manager(&ns, other)).await?;
            info!(workload = %w, stale = %other, "released fields of an ended session");
            let note = format!("the changes of ended DebugSession {other} were reverted");
            (crate::api::reason::DEBUG_SHELL_REMOVED, note)
        }
    };
    // Say it on the workload too, so that `kubectl describe` of the target shows who changed it.
    if let Some(uid) = plan.status.target.as_ref().map(|t| t.uid.clone()) {
        workload_event(ctx, &w, uid, note.0, note.1).await;
    }
    Ok(())
}

async fn workload_event(
    ctx: &Context,
    w: &apply::WorkloadRef,
    uid: String,
    reason: &str,
    note: String,
) {
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
    if let Err(e) = ctx.recorder.publish(&event, &reference).await {
        warn!(error = %e, reason, workload = %w, "could not record event on the workload");
    }
}

/// Writes the planned status (when it changed), records events and metrics.
async fn report(session: &DebugSession, ctx: &Context, plan: &Plan, now: Timestamp) -> Result<()> {
    let old = session.status.clone().unwrap_or_default();
    if old != plan.status {
        write_status(session, ctx, &plan.status).await?;
    }
    publish(session, ctx, plan).await;
    ctx.metrics
        .observe_transition(session, &old, &plan.status, now);
    Ok(())
}

async fn write_status(
    session: &DebugSession,
    ctx: &Context,
    status: &crate::api::DebugSessionStatus,
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

async fn publish(session: &DebugSession, ctx: &Context, plan: &Plan) {
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

/// Runs the controller until `shutdown` resolves. `ready` is set after the first sync.
pub async fn run(
    ctx: Arc<Context>,
    ready: Arc<std::sync::atomic::AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let sessions = Api::<DebugSession>::all(client.clone());
    let controller = Controller::new(sessions, watcher::Config::default().any_semantic());
    let store = controller.store();
    let wc = || watcher::Config::default().any_semantic();
    let controller = controller
        .watches(
            Api::<Deployment>::all(client.clone()),
            wc(),
            mapper(store.clone(), TargetKind::Deployment),
        )
        .watches(
            Api::<StatefulSet>::all(client.clone()),
            wc(),
            mapper(store.clone(), TargetKind::StatefulSet),
        )
        .watches(
            Api::<DaemonSet>::all(client.clone()),
            wc(),
            mapper(store.clone(), TargetKind::DaemonSet),
        )
        .graceful_shutdown_on(shutdown.clone());
    let ready_store = store.clone();
    tokio::spawn(async move {
        // The store's readiness signal wakes only one waiter (the controller itself), so poll it.
        loop {
            let wait =
                tokio::time::timeout(Duration::from_millis(250), ready_store.wait_until_ready());
            if let Ok(res) = wait.await {
                if res.is_ok() {
                    ready.store(true, std::sync::atomic::Ordering::SeqCst);
                    info!("initial sync done");
                }
                break;
            }
        }
    });
    // Fields of sessions that vanished without their revert: released by the orphan sweep,
    // which runs where the controller runs (on the leader).
    let sweep = tokio::spawn(sweep::run(client.clone(), ctx.recorder.clone(), shutdown));
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "reconcile result");
            }
        })
        .await;
    let _ = sweep.await;
    info!("controller stopped");
}

/// Maps a workload event to the sessions that target it.
fn mapper<K: Resource<DynamicType = ()>>(
    store: Store<DebugSession>,
    kind: TargetKind,
) -> impl Fn(K) -> Vec<ObjectRef<DebugSession>> + Send + Sync + 'static {
    move |obj: K| {
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        store
            .state()
            .iter()
            .filter(|s| s.namespace().as_deref() == Some(ns.as_str()))
            .filter(|s| {
                let (k, n) = s.target_in_force();
                k == kind && n == name
            })
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect()
    }
}
