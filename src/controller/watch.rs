//! Watch: the kube-runtime Controller over DebugSessions, woken by changes of the workloads they
//! target, and the orphan sweep beside it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ObjectMeta, PartialObjectMeta, PartialObjectMetaExt};
use kube::runtime::controller::{Config, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::info;

use super::backoff::WatchBackoff;
use super::index::TargetIndex;
use super::{Context, error_policy, reconcile, sweep};
use crate::api::{DebugSession, TargetKind};
use crate::session::copy::SESSION_LABEL;

/// How many sessions reconcile at once: enough to keep the API server busy, few enough that a
/// thousand sessions created or expiring together do not hold a thousand responses in memory.
const CONCURRENCY: u16 = 32;

/// Runs the controller until `shutdown` resolves. `ready` is set after the first sync.
pub async fn run(
    ctx: Arc<Context>,
    ready: Arc<std::sync::atomic::AtomicBool>,
    shutdown: impl std::future::Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let wc = || watcher::Config::default().any_semantic();
    // The sessions, cached without their managedFields (nothing reads them), and indexed by
    // the workload each one targets.
    let (store, writer) = reflector::store();
    let index = Arc::new(TargetIndex::default());
    let indexed = index.clone();
    // The orphan sweep shares these watches: the deleted sessions and the workloads' metadata.
    let (feed, mut inputs) = tokio::sync::mpsc::unbounded_channel();
    let gone = feed.clone();
    let sessions = watcher::watcher(Api::<DebugSession>::all(client.clone()), wc())
        .backoff(WatchBackoff::default())
        .modify(|s| s.managed_fields_mut().clear())
        .inspect(move |ev| {
            if let Ok(ev) = ev {
                indexed.apply(ev);
                if let watcher::Event::Delete(s) = ev
                    && let Some(input) = sweep::session_gone(s)
                {
                    let _ = gone.send(input);
                }
            }
        })
        .reflect(writer)
        .applied_objects();
    // Workloads only wake their sessions: their metadata is enough (a change of spec or status
    // moves the resourceVersion); a reconcile reads the workload it needs.
    // The controller backs off its merged triggers as well: with kube's default (up to 30 s),
    // an API server restart could leave every watch asleep half a minute after it came back.
    let mut controller = Controller::for_stream(sessions, store.clone())
        .with_config(Config::default().concurrency(CONCURRENCY))
        .trigger_backoff(WatchBackoff::default())
        .watches_stream(
            workloads::<Deployment>(&client, TargetKind::Deployment, feed.clone()),
            mapper(index.clone(), TargetKind::Deployment),
        )
        .watches_stream(
            workloads::<StatefulSet>(&client, TargetKind::StatefulSet, feed.clone()),
            mapper(index.clone(), TargetKind::StatefulSet),
        )
        .watches_stream(
            workloads::<DaemonSet>(&client, TargetKind::DaemonSet, feed),
            mapper(index.clone(), TargetKind::DaemonSet),
        )
        // The copies of Copy-mode sessions, by their label: a copy starting wakes its session.
        .owns_stream(metadata_events::<Pod>(&client, wc().labels(SESSION_LABEL)).touched_objects())
        .graceful_shutdown_on(shutdown.clone());
    // Sessions woken by a change of a pod where their ephemeral shell starts.
    if let Some(wakes) = ctx.wakes.take_stream() {
        controller = controller.reconcile_on(wakes);
    }
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
        futures::stream::poll_fn(move |cx| inputs.poll_recv(cx)),
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

/// The watch events of the objects of kind `K` that `config` selects, metadata only
/// (`Api<PartialObjectMeta<K>>` lists and watches metadata), retried with [`WatchBackoff`].
fn metadata_events<K>(
    client: &Client,
    config: watcher::Config,
) -> impl futures::Stream<Item = watcher::Result<watcher::Event<PartialObjectMeta<K>>>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(Api::<PartialObjectMeta<K>>::all(client.clone()), config)
        .backoff(WatchBackoff::default())
}

/// The workloads of kind `K` whose metadata changed, named only (all a mapper needs); the full
/// metadata of every event goes to the orphan sweep through `feed`, so that one watch serves both.
fn workloads<K>(
    client: &Client,
    kind: TargetKind,
    feed: sweep::Feed,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    metadata_events::<K>(client, watcher::Config::default().any_semantic())
        .map(move |res| match res {
            Ok(ev) => {
                let (named, full) = split(ev);
                let _ = feed.send(sweep::Input::Workload(kind, Box::new(full)));
                Ok(named)
            }
            Err(e) => {
                let _ = feed.send(sweep::Input::WatchFailed(kind, e.to_string()));
                Err(e)
            }
        })
        .touched_objects()
}

/// A workload event as the controller needs it (the object's name and namespace) and as the
/// sweep needs it (all of its metadata).
fn split<K>(
    ev: watcher::Event<PartialObjectMeta<K>>,
) -> (
    watcher::Event<PartialObjectMeta<K>>,
    watcher::Event<ObjectMeta>,
) {
    let named = |meta: &ObjectMeta| {
        ObjectMeta {
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            ..ObjectMeta::default()
        }
        .into_response_partial::<K>()
    };
    match ev {
        watcher::Event::Apply(o) => (
            watcher::Event::Apply(named(&o.metadata)),
            watcher::Event::Apply(o.metadata),
        ),
        watcher::Event::InitApply(o) => (
            watcher::Event::InitApply(named(&o.metadata)),
            watcher::Event::InitApply(o.metadata),
        ),
        watcher::Event::Delete(o) => (
            watcher::Event::Delete(named(&o.metadata)),
            watcher::Event::Delete(o.metadata),
        ),
        watcher::Event::Init => (watcher::Event::Init, watcher::Event::Init),
        watcher::Event::InitDone => (watcher::Event::InitDone, watcher::Event::InitDone),
    }
}

/// Maps a workload event to the sessions that target it.
fn mapper<K: Resource<DynamicType = ()>>(
    index: Arc<TargetIndex>,
    kind: TargetKind,
) -> impl Fn(PartialObjectMeta<K>) -> Vec<ObjectRef<DebugSession>> + Send + Sync + 'static {
    move |obj| index.sessions(&obj.namespace().unwrap_or_default(), kind, &obj.name_any())
}
