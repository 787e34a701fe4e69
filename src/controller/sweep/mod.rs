//! The orphan sweep: fields that a DebugSession's field manager (`debugsession/<ns>/<name>`)
//! still owns on a Deployment, StatefulSet or DaemonSet after that session is gone.
//!
//! Normally a session's finalizer releases its fields before the session disappears. They are
//! left behind when the finalizer was stripped (with the operator running or down), or when a
//! workload is restored from a backup taken while a session ran. The sweep sees the metadata
//! of all three workload kinds through the controller's own watches of them (their initial list
//! is the start-up sweep) and, for every
//! `debugsession/` manager whose session a live GET says does not exist, applies the empty
//! intent under that manager ([`apply::release`]) and records an `OrphanReleased` Warning Event
//! on the workload.
//!
//! A session that vanishes without its finalizer's revert causes no workload event, so the
//! controller's watch of DebugSessions also tells the sweep of every session that is deleted,
//! whose target it sweeps.
//!
//! Only `Apply` entries of the main resource count: an empty apply releases exactly those, so
//! after a release the manager is gone from `managedFields` and the event that the release
//! itself causes finds nothing more to do.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, ObjectMeta};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::Event as Watched;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::api::{DebugSession, TargetKind, session_manager};
use crate::controller::act::patch::{self as apply, WorkloadRef};
use crate::{Error, Result};

/// Reason of the Event recorded on a workload whose orphaned fields were released.
pub use crate::api::reason::ORPHAN_RELEASED;

/// First retry of a workload whose sweep failed; doubles per failure up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// The names of the sessions whose field managers own fields of this object: managers
/// `debugsession/<ns>/<name>` with `<ns>` the object's own namespace, operation `Apply`, on the
/// main resource (not a subresource). Sorted, without duplicates.
///
/// Entries of other operations or subresources are left out on purpose: an empty apply cannot
/// release them, so counting them would "release" again on every change of the workload.
pub fn session_managers(meta: &ObjectMeta) -> Vec<String> {
    let Some(ns) = meta.namespace.as_deref().filter(|ns| !ns.is_empty()) else {
        return Vec::new();
    };
    let prefix = session_manager(ns, "");
    let names: BTreeSet<&str> = meta
        .managed_fields
        .iter()
        .flatten()
        .filter(|e| e.operation.as_deref() == Some("Apply"))
        .filter(|e| e.subresource.as_deref().is_none_or(str::is_empty))
        .filter_map(|e| e.manager.as_deref()?.strip_prefix(prefix.as_str()))
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .collect();
    names.into_iter().map(str::to_owned).collect()
}

/// Which of the sessions `found` on a workload to release: those whose session is known not to
/// exist (`exists` answers `Some(false)`). A session that exists, or whose existence is unknown
/// (`None`: not looked up, or the lookup failed), keeps its fields.
pub fn to_release(found: &[String], exists: impl Fn(&str) -> Option<bool>) -> Vec<String> {
    found
        .iter()
        .filter(|name| exists(name) == Some(false))
        .cloned()
        .collect()
}

/// The note of the `OrphanReleased` Event.
pub fn orphan_note(namespace: &str, session: &str) -> String {
    format!(
        "DebugSession {session} no longer exists: released the debug shell it left (field manager {})",
        session_manager(namespace, session)
    )
}

/// Sweeps one workload: for each session manager in `meta` (see [`session_managers`]), reads the
/// session live, and when it does not exist, re-reads the workload's metadata live and releases
/// the manager's fields if it still owns any, recording an `OrphanReleased` Event on the workload.
///
/// `meta` usually comes from a watch cache, so it only nominates candidates: nothing is released
/// unless the session GET answers 404 and the live workload still carries the manager (the
/// second read also keeps a stale event from reporting a release that a finalizer already did).
///
/// Returns how many managers were released. Every candidate is tried; when any step failed the
/// first error is returned ([`Error::ReadHolder`] for a session GET, [`Error::ReadWorkload`] for
/// the workload GET, [`Error::Revert`] for a release) after the others were done.
/// `cache`, the controller's store of DebugSessions, spares the GET of a session it holds (a
/// session in the store exists, or its deletion is on its way to the sweep as an event); a
/// session it lacks is always read live.
pub async fn sweep_workload(
    client: &Client,
    recorder: &Recorder,
    kind: TargetKind,
    meta: &ObjectMeta,
    cache: Option<&Store<DebugSession>>,
) -> Result<usize> {
    let candidates = session_managers(meta);
    let (Some(ns), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else {
        return Ok(0);
    };
    if candidates.is_empty() {
        return Ok(0);
    }
    let mut first_error = None;
    let sessions = Api::<DebugSession>::namespaced(client.clone(), ns);
    let mut exists = HashMap::new();
    for session in &candidates {
        if cache.is_some_and(|c| c.get(&ObjectRef::new(session).within(ns)).is_some()) {
            exists.insert(session.clone(), true);
            continue;
        }
        match sessions.get_opt(session).await {
            Ok(found) => {
                exists.insert(session.clone(), found.is_some());
            }
            Err(e) => {
                warn!(namespace = ns, %session, error = %e, "orphan sweep: could not read the DebugSession");
                first_error.get_or_insert(Error::ReadHolder(e));
            }
        }
    }
    let lookup = |s: &str| exists.get(s).copied();
    let mut released = 0;
    if !to_release(&candidates, lookup).is_empty() {
        match live_meta(client, kind, ns, name).await {
            Ok(Some(live)) => {
                let w = WorkloadRef {
                    namespace: ns.to_string(),
                    kind,
                    name: name.to_string(),
                };
                for session in to_release(&session_managers(&live), lookup) {
                    let manager = session_manager(ns, &session);
                    let share_off = crate::workload::share_off_owners(&live).contains(&manager);
                    match apply::release(client, &w, &manager, share_off).await {
                        Ok(()) => {
                            released += 1;
                            info!(workload = %w, namespace = ns, %session, %manager, "released the fields of a DebugSession that no longer exists");
                            orphan_event(recorder, &w, live.uid.clone(), &session).await;
                        }
                        Err(e) => {
                            warn!(workload = %w, namespace = ns, %manager, error = %e, "orphan sweep: release failed");
                            first_error.get_or_insert(e);
                        }
                    }
                }
            }
            Ok(None) => debug!(
                namespace = ns,
                workload = name,
                "orphan sweep: workload is gone"
            ),
            Err(e) => {
                warn!(namespace = ns, workload = name, error = %e, "orphan sweep: could not read the workload");
                first_error.get_or_insert(Error::ReadWorkload(e));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(released),
    }
}

/// The workload's metadata, read live (not from a cache).
async fn live_meta(
    client: &Client,
    kind: TargetKind,
    ns: &str,
    name: &str,
) -> kube::Result<Option<ObjectMeta>> {
    async fn get<K>(client: &Client, ns: &str, name: &str) -> kube::Result<Option<ObjectMeta>>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let api = Api::<K>::namespaced(client.clone(), ns);
        Ok(api.get_metadata_opt(name).await?.map(|p| p.metadata))
    }
    match kind {
        TargetKind::Deployment => get::<Deployment>(client, ns, name).await,
        TargetKind::StatefulSet => get::<StatefulSet>(client, ns, name).await,
        TargetKind::DaemonSet => get::<DaemonSet>(client, ns, name).await,
        TargetKind::Pod => get::<k8s_openapi::api::core::v1::Pod>(client, ns, name).await,
    }
}

/// Records the `OrphanReleased` Warning on the workload; a failure is only logged.
async fn orphan_event(recorder: &Recorder, w: &WorkloadRef, uid: Option<String>, session: &str) {
    let reference = ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some(w.kind.as_str().into()),
        name: Some(w.name.clone()),
        namespace: Some(w.namespace.clone()),
        uid,
        ..Default::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: ORPHAN_RELEASED.into(),
        note: Some(orphan_note(&w.namespace, session)),
        action: ORPHAN_RELEASED.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &reference).await {
        warn!(error = %e, workload = %w, "could not record the OrphanReleased event on the workload");
    }
}

/// A workload, as the sweep's retry bookkeeping knows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    kind: TargetKind,
    namespace: String,
    name: String,
}

impl Key {
    fn of(kind: TargetKind, meta: &ObjectMeta) -> Self {
        Key {
            kind,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

/// A workload whose sweep failed: retried at `due` with the newest metadata seen.
struct Pending {
    meta: ObjectMeta,
    failures: u32,
    due: Instant,
}

/// How long to wait after the `failures`-th failure in a row: 2s, 4s, 8s, ... at most 5 minutes.
fn retry_delay(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1 << failures.clamp(1, 16).saturating_sub(1))
        .min(MAX_RETRY)
}

/// What wakes the sweep. The controller's watches feed it ([`Feed`]): the sweep shares their
/// streams instead of listing and watching the same objects again.
#[derive(Debug)]
pub enum Input {
    /// An event of a workload's metadata (the initial list is the start-up sweep).
    Workload(TargetKind, Box<Watched<ObjectMeta>>),
    /// A workload watch failed (it retries by itself).
    WatchFailed(TargetKind, String),
    /// A DebugSession was deleted: its namespace and the workload it targeted.
    SessionGone(String, TargetKind, String),
}

/// Where the watches send the sweep its [`Input`]s. Unbounded: the sweep keeps up with the
/// watches (a workload without session managers costs it nothing), and a watch must never wait
/// for it.
pub type Feed = tokio::sync::mpsc::UnboundedSender<Input>;

/// The sweep's input for a session that was deleted.
pub fn session_gone(session: &DebugSession) -> Option<Input> {
    let ns = session.metadata.namespace.clone()?;
    let (kind, name) = session.target_in_force();
    Some(Input::SessionGone(ns, kind, name))
}

/// The sweep's state between events.
struct Sweeper {
    client: Client,
    recorder: Recorder,
    pending: HashMap<Key, Pending>,
    /// The controller's store of DebugSessions (see [`sweep_workload`]).
    cache: Option<Store<DebugSession>>,
}

impl Sweeper {
    /// A workload was listed or changed.
    /// `cached`: whether the store may answer for the sessions (not when one was just deleted).
    async fn seen(&mut self, kind: TargetKind, meta: ObjectMeta, cached: bool) {
        let key = Key::of(kind, &meta);
        if session_managers(&meta).is_empty() {
            self.pending.remove(&key);
            return;
        }
        if let Some(p) = self.pending.get_mut(&key) {
            // Failed before: wait for the retry (with the newest metadata), whatever else changes.
            p.meta = meta;
            return;
        }
        self.sweep(key, meta, 0, cached).await;
    }

    async fn sweep(&mut self, key: Key, meta: ObjectMeta, failures: u32, cached: bool) {
        let cache = self.cache.as_ref().filter(|_| cached);
        match sweep_workload(&self.client, &self.recorder, key.kind, &meta, cache).await {
            Ok(n) => {
                if n > 0 {
                    debug!(kind = %key.kind, namespace = %key.namespace, workload = %key.name, released = n, "orphan sweep done");
                }
            }
            Err(e) => {
                let failures = failures.saturating_add(1);
                let delay = retry_delay(failures);
                warn!(kind = %key.kind, namespace = %key.namespace, workload = %key.name, error = %e, retry_in = ?delay, "orphan sweep failed");
                let due = Instant::now() + delay;
                self.pending.insert(
                    key,
                    Pending {
                        meta,
                        failures,
                        due,
                    },
                );
            }
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.due).min()
    }

    /// Retries the workloads whose time has come.
    async fn retry_due(&mut self) {
        let now = Instant::now();
        let due: Vec<Key> = self
            .pending
            .iter()
            .filter(|(_, p)| p.due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(p) = self.pending.remove(&key) {
                self.sweep(key, p.meta, p.failures, false).await;
            }
        }
    }

    /// A session was deleted: its target may carry fields that nothing else will release.
    async fn session_gone(&mut self, ns: &str, kind: TargetKind, name: &str) {
        match live_meta(&self.client, kind, ns, name).await {
            Ok(Some(meta)) => self.seen(kind, meta, false).await,
            Ok(None) => {}
            Err(e) => {
                warn!(%kind, namespace = %ns, workload = %name, error = %e, "orphan sweep: could not read the target of a deleted session")
            }
        }
    }

    async fn handle(&mut self, input: Input) {
        match input {
            Input::Workload(kind, ev) => match *ev {
                Watched::Apply(meta) | Watched::InitApply(meta) => {
                    self.seen(kind, meta, true).await
                }
                Watched::Delete(meta) => {
                    self.pending.remove(&Key::of(kind, &meta));
                }
                Watched::Init => debug!(%kind, "orphan sweep: listing workloads"),
                Watched::InitDone => info!(%kind, "orphan sweep: start-up sweep done"),
            },
            Input::WatchFailed(kind, e) => {
                warn!(%kind, error = %e, "orphan sweep: watch failed, retrying")
            }
            Input::SessionGone(ns, kind, name) => self.session_gone(&ns, kind, &name).await,
        }
    }
}

/// Releases the fields of session managers whose DebugSession no longer exists (see
/// [`sweep_workload`]), for every workload that `inputs` lists or changes and the target of
/// every session deleted; the initial list of the workloads is the start-up sweep. A workload
/// whose sweep fails is retried with backoff (2s doubling to 5min), not on every event. Runs
/// until `shutdown` resolves or `inputs` ends.
pub async fn run(
    client: Client,
    recorder: Recorder,
    cache: Option<Store<DebugSession>>,
    inputs: impl Stream<Item = Input> + Unpin,
    shutdown: impl Future<Output = ()>,
) {
    let mut inputs = inputs;
    let mut sweeper = Sweeper {
        client,
        recorder,
        pending: HashMap::new(),
        cache,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let next_due = sweeper.next_due();
        let timer = async move {
            match next_due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = timer => sweeper.retry_due().await,
            input = inputs.next() => match input {
                Some(input) => sweeper.handle(input).await,
                None => {
                    info!("orphan sweep: the watches ended");
                    break;
                }
            },
        }
    }
    info!("orphan sweep stopped");
}

#[cfg(test)]
mod tests;
