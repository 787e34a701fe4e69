//! The orphan sweep: fields that a DebugSession's field manager (`debugsession/<ns>/<name>`)
//! still owns on a Deployment, StatefulSet or DaemonSet after that session is gone.
//!
//! Normally a session's finalizer releases its fields before the session disappears. They are
//! left behind when the finalizer was stripped (with the operator running or down), or when a
//! workload is restored from a backup taken while a session ran. The sweep watches the metadata
//! of all three workload kinds (the initial list is the start-up sweep) and, for every
//! `debugsession/` manager whose session a live GET says does not exist, applies the empty
//! intent under that manager ([`apply::release`]) and records an `OrphanReleased` Warning Event
//! on the workload.
//!
//! A session that vanishes without its finalizer's revert causes no workload event, so the sweep
//! also watches DebugSessions and sweeps the target of every session that is deleted.
//!
//! Only `Apply` entries of the main resource count: an empty apply releases exactly those, so
//! after a release the manager is gone from `managedFields` and the event that the release
//! itself causes finds nothing more to do.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, ObjectMeta};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::watcher::{self, Event as Watched};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::api::{DebugSession, TargetKind, session_manager};
use crate::controller::apply::{self, WorkloadRef};
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
pub async fn sweep_workload(
    client: &Client,
    recorder: &Recorder,
    kind: TargetKind,
    meta: &ObjectMeta,
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
                    match apply::release(client, &w, &manager).await {
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

type Item = (TargetKind, watcher::Result<Watched<ObjectMeta>>);

/// What wakes the sweep: a workload event, or a DebugSession that was deleted (namespace, its
/// target).
enum Input {
    Workload(Box<Item>),
    SessionGone(String, TargetKind, String),
}

/// Deleted DebugSessions, as the workload each one targeted.
fn deleted_sessions(client: &Client) -> BoxStream<'static, Input> {
    watcher::watcher(
        Api::<DebugSession>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .filter_map(|res| async move {
        match res {
            Ok(Watched::Delete(s)) => {
                let ns = s.metadata.namespace.clone()?;
                let (kind, name) = s.target_in_force();
                Some(Input::SessionGone(ns, kind, name))
            }
            _ => None,
        }
    })
    .boxed()
}

fn watch<K>(client: &Client, kind: TargetKind) -> BoxStream<'static, Item>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    // `Api<PartialObjectMeta<K>>` lists and watches metadata only.
    watcher::watcher(
        Api::<PartialObjectMeta<K>>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .map(move |res| {
        let ev = res.map(|ev| match ev {
            Watched::Apply(o) => Watched::Apply(o.metadata),
            Watched::InitApply(o) => Watched::InitApply(o.metadata),
            Watched::Delete(o) => Watched::Delete(o.metadata),
            Watched::Init => Watched::Init,
            Watched::InitDone => Watched::InitDone,
        });
        (kind, ev)
    })
    .boxed()
}

/// The sweep's state between events.
struct Sweeper {
    client: Client,
    recorder: Recorder,
    pending: HashMap<Key, Pending>,
}

impl Sweeper {
    /// A workload was listed or changed.
    async fn seen(&mut self, kind: TargetKind, meta: ObjectMeta) {
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
        self.sweep(key, meta, 0).await;
    }

    async fn sweep(&mut self, key: Key, meta: ObjectMeta, failures: u32) {
        match sweep_workload(&self.client, &self.recorder, key.kind, &meta).await {
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
                self.sweep(key, p.meta, p.failures).await;
            }
        }
    }

    /// A session was deleted: its target may carry fields that nothing else will release.
    async fn session_gone(&mut self, ns: &str, kind: TargetKind, name: &str) {
        match live_meta(&self.client, kind, ns, name).await {
            Ok(Some(meta)) => self.seen(kind, meta).await,
            Ok(None) => {}
            Err(e) => {
                warn!(%kind, namespace = %ns, workload = %name, error = %e, "orphan sweep: could not read the target of a deleted session")
            }
        }
    }

    async fn handle(&mut self, (kind, res): Item) {
        match res {
            Ok(Watched::Apply(meta) | Watched::InitApply(meta)) => self.seen(kind, meta).await,
            Ok(Watched::Delete(meta)) => {
                self.pending.remove(&Key::of(kind, &meta));
            }
            Ok(Watched::Init) => debug!(%kind, "orphan sweep: listing workloads"),
            Ok(Watched::InitDone) => info!(%kind, "orphan sweep: start-up sweep done"),
            Err(e) => warn!(%kind, error = %e, "orphan sweep: watch failed, retrying"),
        }
    }
}

/// Watches the metadata of all Deployments, StatefulSets and DaemonSets and releases the fields
/// of session managers whose DebugSession no longer exists (see [`sweep_workload`]); the initial
/// list is the start-up sweep. A workload whose sweep fails is retried with backoff (2s doubling
/// to 5min), not on every event. Runs until `shutdown` resolves.
pub async fn run(client: Client, recorder: Recorder, shutdown: impl Future<Output = ()>) {
    let workloads = stream::select_all([
        watch::<Deployment>(&client, TargetKind::Deployment),
        watch::<StatefulSet>(&client, TargetKind::StatefulSet),
        watch::<DaemonSet>(&client, TargetKind::DaemonSet),
    ])
    .map(|item| Input::Workload(Box::new(item)));
    let mut events = stream::select(workloads, deleted_sessions(&client));
    let mut sweeper = Sweeper {
        client,
        recorder,
        pending: HashMap::new(),
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
            item = events.next() => match item {
                Some(Input::Workload(item)) => sweeper.handle(*item).await,
                Some(Input::SessionGone(ns, kind, name)) => sweeper.session_gone(&ns, kind, &name).await,
                None => {
                    warn!("orphan sweep: the workload watches ended");
                    break;
                }
            },
        }
    }
    info!("orphan sweep stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, Request, Response};
    use kube::client::{Body, ClientBuilder};
    use kube::runtime::events::Reporter;
    use serde_json::{Value, json};

    fn meta(v: Value) -> ObjectMeta {
        serde_json::from_value(v).unwrap()
    }

    fn entry(manager: &str, operation: &str) -> Value {
        json!({"manager": manager, "operation": operation, "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {}})
    }

    #[test]
    fn session_managers_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("no managed fields", json!({"namespace": "team"}), vec![]),
            (
                "one session",
                json!({"namespace": "team", "managedFields": [entry("kubectl-client-side-apply", "Update"), entry("debugsession/team/dbg", "Apply")]}),
                vec!["dbg"],
            ),
            (
                "sorted, without duplicates",
                json!({"namespace": "team", "managedFields": [
                    entry("debugsession/team/b", "Apply"), entry("debugsession/team/a", "Apply"),
                    {"manager": "debugsession/team/b", "operation": "Apply", "apiVersion": "apps/v1beta2"}]}),
                vec!["a", "b"],
            ),
            (
                "other namespace's manager",
                json!({"namespace": "team", "managedFields": [entry("debugsession/other/dbg", "Apply")]}),
                vec![],
            ),
            (
                "namespace prefix of another namespace",
                json!({"namespace": "team", "managedFields": [entry("debugsession/team-b/dbg", "Apply")]}),
                vec![],
            ),
            (
                "Update operation cannot be released by an empty apply",
                json!({"namespace": "team", "managedFields": [entry("debugsession/team/dbg", "Update")]}),
                vec![],
            ),
            (
                "status subresource",
                json!({"namespace": "team", "managedFields": [
                    {"manager": "debugsession/team/dbg", "operation": "Apply", "subresource": "status"}]}),
                vec![],
            ),
            (
                "malformed names",
                json!({"namespace": "team", "managedFields": [
                    entry("debugsession/team/", "Apply"), entry("debugsession/team/a/b", "Apply"),
                    entry("debugsession/team", "Apply"), entry("debugsession-operator", "Apply"),
                    {"operation": "Apply"}]}),
                vec![],
            ),
            (
                "no namespace",
                json!({"managedFields": [entry("debugsession//dbg", "Apply")]}),
                vec![],
            ),
        ];
        for (what, m, want) in cases {
            assert_eq!(session_managers(&meta(m)), want, "{what}");
        }
    }

    #[test]
    fn to_release_table() {
        let found: Vec<String> = ["gone", "live", "unknown"].map(String::from).to_vec();
        // (what, sessions known to exist or not, released)
        type Case = (&'static str, Vec<(&'static str, bool)>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            ("nothing known", vec![], vec![]),
            (
                "only the absent one",
                vec![("gone", false), ("live", true)],
                vec!["gone"],
            ),
            ("all present", vec![("gone", true), ("live", true)], vec![]),
            (
                "absent sessions not on the workload are not released",
                vec![("elsewhere", false), ("gone", false), ("unknown", false)],
                vec!["gone", "unknown"],
            ),
        ];
        for (what, known, want) in cases {
            let known: HashMap<&str, bool> = known.into_iter().collect();
            assert_eq!(
                to_release(&found, |s| known.get(s).copied()),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn retries_back_off_to_five_minutes() {
        let secs: Vec<u64> = [1, 2, 3, 8, 9, 100, u32::MAX]
            .map(|n| retry_delay(n).as_secs())
            .to_vec();
        assert_eq!(secs, vec![2, 4, 8, 256, 300, 300, 300]);
    }

    // --- mocked API server ---

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn mock() -> (Client, Recorder, Handle) {
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = ClientBuilder::new(svc, "default").build();
        let reporter = Reporter {
            controller: "debugsession-operator".into(),
            instance: None,
        };
        (client.clone(), Recorder::new(client, reporter), handle)
    }

    #[derive(Debug)]
    struct Seen {
        method: Method,
        path: String,
        query: String,
        accept: String,
        body: Value,
    }

    /// Answers the next request with `status` and `reply`; `None` as reply echoes the body.
    async fn next(handle: &mut Handle, status: u16, reply: Option<Value>) -> Seen {
        let (req, send) = handle.next_request().await.expect("a request");
        let (method, path, query, accept) = (
            req.method().clone(),
            req.uri().path().to_string(),
            req.uri().query().unwrap_or_default().to_string(),
            req.headers()
                .get("accept")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default(),
        );
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        let reply = reply.unwrap_or_else(|| body.clone());
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap(),
        );
        Seen {
            method,
            path,
            query,
            accept,
            body,
        }
    }

    fn not_found() -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound", "message": "not found"})
    }

    fn workload_meta(managers: &[&str]) -> Value {
        let entries: Vec<Value> = managers.iter().map(|m| entry(m, "Apply")).collect();
        json!({"name": "web", "namespace": "team", "uid": "uid-1", "resourceVersion": "7", "managedFields": entries})
    }

    fn partial(managers: &[&str]) -> Value {
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": workload_meta(managers)})
    }

    fn session(name: &str) -> Value {
        json!({"apiVersion": "debugsession.dev/v1alpha1", "kind": "DebugSession",
               "metadata": {"name": name, "namespace": "team"},
               "spec": {"target": {"kind": "Deployment", "name": "web"}}})
    }

    /// [`sweep_workload`] that fails instead of hanging when it sends a request nobody answers.
    async fn sweep(
        client: &Client,
        recorder: &Recorder,
        kind: TargetKind,
        meta: &ObjectMeta,
    ) -> Result<usize> {
        tokio::time::timeout(
            Duration::from_secs(5),
            sweep_workload(client, recorder, kind, meta),
        )
        .await
        .expect("sweep_workload sent an unexpected request")
    }

    const SESSION_PATH: &str = "/apis/debugsession.dev/v1alpha1/namespaces/team/debugsessions";

    /// Asserts the client sends nothing more.
    async fn no_more(client: Client, recorder: Recorder, handle: tokio::task::JoinHandle<Handle>) {
        let mut handle = handle.await.unwrap();
        drop((client, recorder));
        assert!(handle.next_request().await.is_none(), "no further request");
    }

    #[tokio::test]
    async fn an_absent_session_is_released_and_reported_on_the_workload() {
        let (client, recorder, mut handle) = mock();
        let server = tokio::spawn(async move {
            let get = next(&mut handle, 404, Some(not_found())).await;
            let live = next(
                &mut handle,
                200,
                Some(partial(&[
                    "kube-controller-manager",
                    "debugsession/team/dbg",
                ])),
            )
            .await;
            let patch = next(
                &mut handle,
                200,
                Some(json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": workload_meta(&[])})),
            )
            .await;
            let event = next(&mut handle, 201, None).await;
            ((get, live, patch, event), handle)
        });
        let cached = meta(workload_meta(&["debugsession/team/dbg"]));
        let n = sweep(&client, &recorder, TargetKind::StatefulSet, &cached)
            .await
            .unwrap();
        assert_eq!(n, 1);
        let ((get, live, patch, event), handle) = server.await.unwrap();

        assert_eq!(
            (get.method, get.path.as_str()),
            (Method::GET, format!("{SESSION_PATH}/dbg").as_str())
        );
        assert_eq!(live.method, Method::GET);
        assert_eq!(live.path, "/apis/apps/v1/namespaces/team/statefulsets/web");
        assert!(
            live.accept.contains("as=PartialObjectMetadata"),
            "{}",
            live.accept
        );
        assert!(
            !live.query.contains("resourceVersion"),
            "a live read: {}",
            live.query
        );

        assert_eq!(patch.method, Method::PATCH);
        assert_eq!(patch.path, "/apis/apps/v1/namespaces/team/statefulsets/web");
        assert_eq!(patch.query, "&fieldManager=debugsession%2Fteam%2Fdbg");
        assert_eq!(
            patch.body,
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"}})
        );

        assert_eq!(event.method, Method::POST);
        assert_eq!(event.path, "/apis/events.k8s.io/v1/namespaces/team/events");
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["reason"], ORPHAN_RELEASED);
        assert_eq!(
            event.body["note"],
            "DebugSession dbg no longer exists: released the debug shell it left (field manager debugsession/team/dbg)"
        );
        assert_eq!(
            event.body["regarding"],
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "namespace": "team", "uid": "uid-1"})
        );
        no_more(client, recorder, tokio::spawn(async { handle })).await;
    }

    #[tokio::test]
    async fn an_existing_session_keeps_its_fields() {
        let (client, recorder, mut handle) = mock();
        let server = tokio::spawn(async move {
            let get = next(&mut handle, 200, Some(session("dbg"))).await;
            assert_eq!(
                (get.method, get.path),
                (Method::GET, format!("{SESSION_PATH}/dbg"))
            );
            handle
        });
        let cached = meta(workload_meta(&["debugsession/team/dbg"]));
        let n = sweep(&client, &recorder, TargetKind::Deployment, &cached)
            .await
            .unwrap();
        assert_eq!(n, 0);
        no_more(client, recorder, server).await;
    }

    #[tokio::test]
    async fn only_the_absent_of_two_sessions_is_released() {
        let (client, recorder, mut handle) = mock();
        let server = tokio::spawn(async move {
            let a = next(&mut handle, 200, Some(session("alive"))).await;
            let g = next(&mut handle, 404, Some(not_found())).await;
            next(
                &mut handle,
                200,
                Some(partial(&[
                    "debugsession/team/alive",
                    "debugsession/team/gone",
                ])),
            )
            .await;
            let patch = next(&mut handle, 200, Some(partial(&[]))).await;
            next(&mut handle, 201, None).await;
            ((a.path, g.path, patch.query), handle)
        });
        let cached = meta(workload_meta(&[
            "debugsession/team/gone",
            "debugsession/team/alive",
        ]));
        let n = sweep(&client, &recorder, TargetKind::DaemonSet, &cached)
            .await
            .unwrap();
        assert_eq!(n, 1);
        let ((a, g, query), handle) = server.await.unwrap();
        assert_eq!(a, format!("{SESSION_PATH}/alive"));
        assert_eq!(g, format!("{SESSION_PATH}/gone"));
        assert_eq!(query, "&fieldManager=debugsession%2Fteam%2Fgone");
        no_more(client, recorder, tokio::spawn(async { handle })).await;
    }

    #[tokio::test]
    async fn a_manager_already_gone_from_the_live_workload_is_not_released_again() {
        let (client, recorder, mut handle) = mock();
        let server = tokio::spawn(async move {
            next(&mut handle, 404, Some(not_found())).await;
            let live = next(&mut handle, 200, Some(partial(&["kubectl"]))).await;
            assert_eq!(live.path, "/apis/apps/v1/namespaces/team/deployments/web");
            handle
        });
        let stale = meta(workload_meta(&["debugsession/team/dbg"]));
        let n = sweep(&client, &recorder, TargetKind::Deployment, &stale)
            .await
            .unwrap();
        assert_eq!(n, 0);
        no_more(client, recorder, server).await;
    }

    #[tokio::test]
    async fn a_failed_session_read_releases_nothing() {
        let (client, recorder, mut handle) = mock();
        let server = tokio::spawn(async move {
            let boom = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "reason": "InternalError", "message": "etcd"});
            next(&mut handle, 500, Some(boom)).await;
            handle
        });
        let cached = meta(workload_meta(&["debugsession/team/dbg"]));
        let err = sweep(&client, &recorder, TargetKind::Deployment, &cached)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ReadHolder(_)), "{err}");
        no_more(client, recorder, server).await;
    }

    #[tokio::test]
    async fn a_failed_release_is_an_error_and_records_no_event() {
        let (client, recorder, mut handle) = mock();
        let server = tokio::spawn(async move {
            next(&mut handle, 404, Some(not_found())).await;
            next(&mut handle, 200, Some(partial(&["debugsession/team/dbg"]))).await;
            let forbidden = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403, "reason": "Forbidden", "message": "no"});
            next(&mut handle, 403, Some(forbidden)).await;
            handle
        });
        let cached = meta(workload_meta(&["debugsession/team/dbg"]));
        let err = sweep(&client, &recorder, TargetKind::Deployment, &cached)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Revert(_)), "{err}");
        no_more(client, recorder, server).await;
    }

    #[tokio::test]
    async fn a_workload_without_session_managers_needs_no_request() {
        let (client, recorder, handle) = mock();
        let cached = meta(workload_meta(&["kubectl", "debugsession/other/dbg"]));
        let n = sweep(&client, &recorder, TargetKind::Deployment, &cached)
            .await
            .unwrap();
        assert_eq!(n, 0);
        no_more(client, recorder, tokio::spawn(async { handle })).await;
    }

    /// A workload whose sweep failed is retried when its backoff is due, not on every event, and
    /// is forgotten once it carries no session manager.
    #[tokio::test]
    async fn a_failed_sweep_waits_for_its_retry() {
        let (client, recorder, mut handle) = mock();
        let mut sweeper = Sweeper {
            client,
            recorder,
            pending: HashMap::new(),
        };
        let cached = meta(workload_meta(&["debugsession/team/dbg"]));
        let key = Key::of(TargetKind::Deployment, &cached);
        let boom = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "reason": "InternalError", "message": "etcd"});

        let server = tokio::spawn(async move {
            next(&mut handle, 500, Some(boom)).await;
            handle
        });
        sweeper.seen(TargetKind::Deployment, cached.clone()).await;
        let mut handle = server.await.unwrap();
        let first_due = sweeper.pending[&key].due;
        assert_eq!(sweeper.pending[&key].failures, 1);
        assert!(first_due > Instant::now() + Duration::from_secs(1));

        // Another change of the workload before the retry is due: no request (it would hang).
        let quiet = Duration::from_millis(300);
        let newer = meta(workload_meta(&["debugsession/team/dbg", "kubectl"]));
        tokio::time::timeout(quiet, sweeper.seen(TargetKind::Deployment, newer.clone()))
            .await
            .expect("no request before the retry is due");
        tokio::time::timeout(quiet, sweeper.retry_due())
            .await
            .expect("nothing is due yet");
        assert_eq!(sweeper.pending[&key].meta, newer);
        assert_eq!(sweeper.next_due(), Some(first_due));

        // Due: retried with the newest metadata; it fails again and backs off further.
        sweeper.pending.get_mut(&key).unwrap().due = Instant::now();
        let server = tokio::spawn(async move {
            let boom = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503, "reason": "ServiceUnavailable", "message": "later"});
            let get = next(&mut handle, 503, Some(boom)).await;
            assert_eq!(get.path, format!("{SESSION_PATH}/dbg"));
            handle
        });
        sweeper.retry_due().await;
        let mut handle = server.await.unwrap();
        assert_eq!(sweeper.pending[&key].failures, 2);
        assert!(sweeper.pending[&key].due > Instant::now() + Duration::from_secs(3));

        // Due again: now the session is gone and the workload no longer carries its manager.
        sweeper.pending.get_mut(&key).unwrap().due = Instant::now();
        let server = tokio::spawn(async move {
            next(&mut handle, 404, Some(not_found())).await;
            next(&mut handle, 200, Some(partial(&["kubectl"]))).await;
            handle
        });
        sweeper.retry_due().await;
        server.await.unwrap();
        assert!(sweeper.pending.is_empty());
        assert_eq!(sweeper.next_due(), None);

        // A pending workload is forgotten when an event shows no session manager, or it is deleted.
        sweeper.pending.insert(
            key.clone(),
            Pending {
                meta: cached.clone(),
                failures: 1,
                due: Instant::now(),
            },
        );
        sweeper
            .seen(TargetKind::Deployment, meta(workload_meta(&["kubectl"])))
            .await;
        assert!(sweeper.pending.is_empty());
        sweeper.pending.insert(
            key,
            Pending {
                meta: cached.clone(),
                failures: 1,
                due: Instant::now(),
            },
        );
        sweeper
            .handle((TargetKind::Deployment, Ok(Watched::Delete(cached))))
            .await;
        assert!(sweeper.pending.is_empty());
    }

    /// The start-up sweep: the initial list of Deployments nominates the orphan, it is released,
    /// and `run` returns when shutdown resolves.
    #[tokio::test]
    async fn run_sweeps_the_initial_list_and_stops_on_shutdown() {
        let (client, recorder, mut handle) = mock();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut stop = Some(stop);
        let server = tokio::spawn(async move {
            let mut held = Vec::new(); // open watches, never answered
            let mut seen = Vec::new();
            while let Some((req, send)) = handle.next_request().await {
                let path = req.uri().path().to_string();
                let query = req.uri().query().unwrap_or_default().to_string();
                let method = req.method().clone();
                let bytes = req.into_body().collect_bytes().await.unwrap();
                let list = |items: Vec<Value>| {
                    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                           "metadata": {"resourceVersion": "10"}, "items": items})
                };
                let (status, reply) = if query.contains("watch=true") {
                    held.push(send);
                    continue;
                } else if path == "/apis/apps/v1/deployments" {
                    let item = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                                      "metadata": workload_meta(&["debugsession/team/dbg"])});
                    (200, list(vec![item]))
                } else if path.starts_with("/apis/apps/v1/")
                    && method == Method::GET
                    && !path.contains("/namespaces/")
                {
                    (200, list(vec![]))
                } else if path == "/apis/debugsession.dev/v1alpha1/debugsessions" {
                    let empty = json!({"apiVersion": "debugsession.dev/v1alpha1",
                        "kind": "DebugSessionList", "metadata": {"resourceVersion": "10"}, "items": []});
                    (200, empty)
                } else if path == format!("{SESSION_PATH}/dbg") {
                    (404, not_found())
                } else if path == "/apis/apps/v1/namespaces/team/deployments/web"
                    && method == Method::GET
                {
                    (200, partial(&["debugsession/team/dbg"]))
                } else if method == Method::PATCH {
                    (200, partial(&[]))
                } else if path.starts_with("/apis/events.k8s.io/") {
                    if let Some(stop) = stop.take() {
                        let _ = stop.send(());
                    }
                    (201, serde_json::from_slice(&bytes).unwrap())
                } else {
                    panic!("unexpected request {method} {path}?{query}");
                };
                seen.push((method.clone(), path, query));
                send.send_response(
                    Response::builder()
                        .status(status)
                        .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                        .unwrap(),
                );
                if method == Method::POST {
                    break;
                }
            }
            (seen, held)
        });
        let shutdown = async move {
            let _ = stopped.await;
        };
        tokio::time::timeout(Duration::from_secs(10), run(client, recorder, shutdown))
            .await
            .expect("run stops on shutdown");
        let (seen, _held) = server.await.unwrap();
        let patches: Vec<_> = seen.iter().filter(|s| s.0 == Method::PATCH).collect();
        assert_eq!(patches.len(), 1, "{seen:?}");
        assert_eq!(
            (patches[0].1.as_str(), patches[0].2.as_str()),
            (
                "/apis/apps/v1/namespaces/team/deployments/web",
                "&fieldManager=debugsession%2Fteam%2Fdbg"
            )
        );
    }

    #[tokio::test]
    async fn run_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let (client, recorder, _handle) = mock();
        let fut = run(client, recorder, async {});
        assert_send(&fut);
    }
}
