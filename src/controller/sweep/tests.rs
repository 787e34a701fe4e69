//! The sweep's decisions, its retry bookkeeping and its requests against a mocked API server.

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
        sweep_workload(client, recorder, kind, meta, None),
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
        cache: None,
    };
    let cached = meta(workload_meta(&["debugsession/team/dbg"]));
    let key = Key::of(TargetKind::Deployment, &cached);
    let boom = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "reason": "InternalError", "message": "etcd"});

    let server = tokio::spawn(async move {
        next(&mut handle, 500, Some(boom)).await;
        handle
    });
    let before = Instant::now();
    sweeper
        .seen(TargetKind::Deployment, cached.clone(), true)
        .await;
    let mut handle = server.await.unwrap();
    let first_due = sweeper.pending[&key].due;
    assert_eq!(sweeper.pending[&key].failures, 1);
    assert!(first_due >= before + FIRST_RETRY);

    // Another change of the workload before the retry is due: no request (it would hang).
    let quiet = Duration::from_millis(300);
    let newer = meta(workload_meta(&["debugsession/team/dbg", "kubectl"]));
    tokio::time::timeout(
        quiet,
        sweeper.seen(TargetKind::Deployment, newer.clone(), true),
    )
    .await
    .expect("no request before the retry is due");
    tokio::time::timeout(quiet, sweeper.retry_due())
        .await
        .expect("nothing is due yet");
    assert_eq!(sweeper.pending[&key].meta, newer);
    assert_eq!(sweeper.next_due(), Some(first_due));

    // Due: retried with the newest metadata; it fails again and backs off further.
    let before = Instant::now();
    sweeper.pending.get_mut(&key).unwrap().due = before;
    let server = tokio::spawn(async move {
        let boom = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503, "reason": "ServiceUnavailable", "message": "later"});
        let get = next(&mut handle, 503, Some(boom)).await;
        assert_eq!(get.path, format!("{SESSION_PATH}/dbg"));
        handle
    });
    sweeper.retry_due().await;
    let mut handle = server.await.unwrap();
    assert_eq!(sweeper.pending[&key].failures, 2);
    assert!(sweeper.pending[&key].due >= before + 2 * FIRST_RETRY);

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
        .seen(
            TargetKind::Deployment,
            meta(workload_meta(&["kubectl"])),
            true,
        )
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
        .handle(Input::Workload(
            TargetKind::Deployment,
            Box::new(Watched::Delete(cached)),
        ))
        .await;
    assert!(sweeper.pending.is_empty());
}

/// The start-up sweep: the initial list of Deployments (as the controller's watch feeds it)
/// nominates the orphan, it is released, the target of a deleted session is read and swept, and
/// `run` returns when its inputs end.
#[tokio::test]
async fn run_sweeps_what_the_watches_feed_until_they_end() {
    let (client, recorder, mut handle) = mock();
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((req, send)) = handle.next_request().await {
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or_default().to_string();
            let method = req.method().clone();
            let bytes = req.into_body().collect_bytes().await.unwrap();
            let (status, reply) = if path == format!("{SESSION_PATH}/dbg") {
                (404, not_found())
            } else if path == "/apis/apps/v1/namespaces/team/deployments/web"
                && method == Method::GET
            {
                (200, partial(&["debugsession/team/dbg"]))
            } else if method == Method::PATCH {
                (200, partial(&[]))
            } else if path.starts_with("/apis/events.k8s.io/") {
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
        }
        seen
    });
    let listed: ObjectMeta =
        serde_json::from_value(workload_meta(&["debugsession/team/dbg"])).unwrap();
    let inputs = futures::stream::iter([
        Input::Workload(TargetKind::Deployment, Box::new(Watched::Init)),
        Input::Workload(TargetKind::Deployment, Box::new(Watched::InitApply(listed))),
        Input::Workload(TargetKind::Deployment, Box::new(Watched::InitDone)),
        Input::SessionGone("team".into(), TargetKind::Deployment, "web".into()),
    ]);
    tokio::time::timeout(
        Duration::from_secs(10),
        run(client, recorder, None, inputs, std::future::pending()),
    )
    .await
    .expect("run stops when its inputs end");
    let seen = server.await.unwrap();
    let patches: Vec<_> = seen
        .iter()
        .filter(|s| s.0 == Method::PATCH && s.1.starts_with("/apis/apps/"))
        .collect();
    assert_eq!(patches.len(), 2, "{seen:?}");
    for patch in patches {
        assert_eq!(
            (patch.1.as_str(), patch.2.as_str()),
            (
                "/apis/apps/v1/namespaces/team/deployments/web",
                "&fieldManager=debugsession%2Fteam%2Fdbg"
            )
        );
    }
}

#[tokio::test]
async fn run_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (client, recorder, _handle) = mock();
    let fut = run(client, recorder, None, futures::stream::empty(), async {});
    assert_send(&fut);
}

mod cache;
mod share_off;
