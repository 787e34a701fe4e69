//! Watch: the kube-runtime Controller over DebugSessions, woken by changes of the workloads they
//! target, and the orphan sweep beside it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use tracing::info;

use super::backoff::WatchBackoff;
use super::{Context, error_policy, reconcile, sweep};
use crate::api::{DebugSession, TargetKind};
use crate::session::copy::SESSION_LABEL;

/// Runs the controller until `shutdown` resolves. `ready` is set after the first sync.
pub async fn run(
    ctx: Arc<Context>,
    ready: Arc<std::sync::atomic::AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let sessions = Api::<DebugSession>::all(client.clone());
    let controller = Controller::new(sessions, watcher::Config::default().any_semantic())
        .trigger_backoff(WatchBackoff::default());
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
        // The copies of Copy-mode sessions, by their label: a copy starting wakes its session.
        .owns(Api::<Pod>::all(client.clone()), wc().labels(SESSION_LABEL))
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
    let sweep = tokio::spawn(sweep::run(
        client.clone(),
        ctx.recorder.clone(),
        Some(store.clone()),
        shutdown,
    ));
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
