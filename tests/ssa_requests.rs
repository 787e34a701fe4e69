//! The exact server-side apply requests for taking, applying and releasing a workload, checked
//! against a mocked API server.

use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::Container;
use kube::client::Body;
use kube::{Client, client::ClientBuilder};
use serde_json::{Value, json};

use debugsession_operator::Error;
use debugsession_operator::api::TargetKind;
use debugsession_operator::controller::act::patch::{self as apply, WorkloadRef};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn mock() -> (Client, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (ClientBuilder::new(svc, "default").build(), handle)
}

struct Seen {
    method: Method,
    path: String,
    query: String,
    content_type: String,
    body: Value,
}

async fn next(handle: &mut Handle, status: u16, reply: Value) -> Seen {
    let (req, send) = handle.next_request().await.expect("a request");
    let seen = Seen {
        method: req.method().clone(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or_default().to_string(),
        content_type: req
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
        body: serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap(),
    };
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    seen
}

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "team"}})
}

fn target(kind: TargetKind) -> WorkloadRef {
    WorkloadRef {
        namespace: "team".into(),
        kind,
        name: "web".into(),
    }
}

fn shell() -> Container {
    serde_json::from_value(
        json!({"name": "debug-shell", "image": "busybox:1.36", "stdin": true, "tty": true,
        "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}),
    )
    .unwrap()
}

/// Session `team/dbg` takes workload `web` of `kind` with the default shell.
async fn take(client: &Client, kind: TargetKind) -> debugsession_operator::Result<()> {
    let w = target(kind);
    let change = apply::Change {
        client,
        workload: &w,
        manager: "debugsession/team/dbg",
        session: "dbg",
        share_off: false,
    };
    apply::take(change, &shell()).await
}

fn conflict(with: &str, field: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409, "reason": "Conflict",
        "message": format!("Apply failed with 1 conflict: conflict with \"{with}\": {field}")})
}

const AS_MANAGER: &str = "&fieldManager=debugsession%2Fteam%2Fdbg";

fn full_intent() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "annotations": {"debugsession.dev/session": "dbg"}},
           "spec": {"template": {"spec": {"shareProcessNamespace": true, "containers": [
               {"name": "debug-shell", "image": "busybox:1.36", "stdin": true, "tty": true,
                "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}]}}}})
}

/// After `client` is dropped, the mock sees no further request.
async fn nothing_more(client: Client, mut handle: Handle, why: &str) {
    drop(client);
    assert!(handle.next_request().await.is_none(), "{why}");
}

#[tokio::test]
async fn a_free_workload_is_taken_with_one_apply_without_force() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let seen = next(&mut handle, 200, deployment()).await;
        (seen, handle)
    });
    take(&client, TargetKind::Deployment).await.unwrap();
    let (seen, handle) = server.await.unwrap();
    assert_eq!(seen.method, Method::PATCH);
    assert_eq!(seen.path, "/apis/apps/v1/namespaces/team/deployments/web");
    assert_eq!(seen.query, AS_MANAGER, "no force, no dry run");
    assert_eq!(seen.content_type, "application/apply-patch+yaml");
    assert_eq!(seen.body, full_intent());
    nothing_more(client, handle, "one write takes a free workload").await;
}

#[tokio::test]
async fn a_conflict_dry_runs_then_takes_the_workload_then_forces_the_shell_fields() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let owned = conflict(
            "kubectl-client-side-apply",
            ".spec.template.spec.shareProcessNamespace",
        );
        let first = next(&mut handle, 409, owned).await;
        let dry = next(&mut handle, 200, deployment()).await;
        let hold = next(&mut handle, 200, deployment()).await;
        let full = next(&mut handle, 200, deployment()).await;
        (first, dry, hold, full)
    });
    take(&client, TargetKind::Deployment).await.unwrap();
    let (first, dry, hold, full) = server.await.unwrap();
    assert_eq!(first.body, full_intent());

    assert_eq!(dry.method, Method::PATCH);
    assert_eq!(
        dry.query,
        "&dryRun=All&force=true&fieldManager=debugsession%2Fteam%2Fdbg"
    );

    assert_eq!(hold.method, Method::PATCH);
    assert_eq!(hold.path, "/apis/apps/v1/namespaces/team/deployments/web");
    assert_eq!(hold.query, AS_MANAGER);
    assert_eq!(hold.content_type, "application/apply-patch+yaml");
    assert_eq!(
        hold.body,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "annotations": {"debugsession.dev/session": "dbg"}}})
    );

    assert_eq!(full.path, "/apis/apps/v1/namespaces/team/deployments/web");
    assert_eq!(
        full.query,
        "&force=true&fieldManager=debugsession%2Fteam%2Fdbg"
    );
    assert_eq!(
        dry.body, full.body,
        "the dry run tries exactly the real intent"
    );
    assert_eq!(full.body, full_intent());
}

#[tokio::test]
async fn a_held_workload_is_reported_as_taken_and_nothing_else_is_sent() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let held = || {
            conflict(
                "debugsession/team/first",
                ".metadata.annotations.debugsession.dev/session",
            )
        };
        next(&mut handle, 409, held()).await; // the whole intent
        next(&mut handle, 200, deployment()).await; // dry run
        next(&mut handle, 409, held()).await; // the hold
        handle
    });
    let err = take(&client, TargetKind::StatefulSet).await.unwrap_err();
    assert!(matches!(err, Error::Taken(_)), "{err}");
    let handle = server.await.unwrap();
    nothing_more(client, handle, "no forced apply after losing the race").await;
}

#[tokio::test]
async fn release_applies_an_empty_intent_under_the_session_manager() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move { next(&mut handle, 200, deployment()).await });
    apply::release(
        &client,
        &target(TargetKind::DaemonSet),
        "debugsession/team/dbg",
        false,
    )
    .await
    .unwrap();
    let seen = server.await.unwrap();
    assert_eq!(seen.method, Method::PATCH);
    assert_eq!(seen.path, "/apis/apps/v1/namespaces/team/daemonsets/web");
    assert_eq!(seen.query, "&fieldManager=debugsession%2Fteam%2Fdbg");
    assert_eq!(
        seen.body,
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "web"}})
    );
}

#[tokio::test]
async fn release_of_a_vanished_workload_is_done() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let gone = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound", "message": "not found"});
        next(&mut handle, 404, gone).await
    });
    apply::release(
        &client,
        &target(TargetKind::Deployment),
        "debugsession/team/dbg",
        false,
    )
    .await
    .unwrap();
    server.await.unwrap();
}

fn invalid() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422, "reason": "Invalid",
        "message": "Deployment.apps \"web\" is invalid: spec.template.spec.containers[1].resources.requests: Invalid value: \"2Gi\": must be less than or equal to memory limit"})
}

#[tokio::test]
async fn a_shell_the_api_server_refuses_takes_nothing() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let first = next(&mut handle, 422, invalid()).await;
        (first, handle)
    });
    let err = take(&client, TargetKind::Deployment).await.unwrap_err();
    assert!(matches!(err, Error::Rejected(_)), "{err}");
    assert!(
        err.to_string()
            .contains("must be less than or equal to memory limit")
    );
    let (first, handle) = server.await.unwrap();
    assert_eq!(first.query, AS_MANAGER);
    nothing_more(
        client,
        handle,
        "the refused apply wrote nothing: no hold, no release",
    )
    .await;
}

#[tokio::test]
async fn a_refused_real_apply_gives_the_hold_back_in_the_same_call() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let owned = conflict("helm", ".spec.template.spec.shareProcessNamespace");
        next(&mut handle, 409, owned).await; // the whole intent conflicts
        next(&mut handle, 200, deployment()).await; // dry run passes
        next(&mut handle, 200, deployment()).await; // hold
        next(&mut handle, 422, invalid()).await; // the real apply is refused
        next(&mut handle, 200, deployment()).await // release
    });
    let err = take(&client, TargetKind::Deployment).await.unwrap_err();
    assert!(matches!(err, Error::Rejected(_)), "{err}");
    let release = server.await.unwrap();
    assert_eq!(release.query, AS_MANAGER);
    assert_eq!(
        release.body,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}})
    );
}

/// A Deployment as the API server returns it after the first write of a restore: the owner's
/// and the session's managedFields entries.
fn restored(rv: &str) -> Value {
    let entry = |manager: &str, op: &str, fields: Value| {
        json!({"manager": manager, "operation": op, "apiVersion": "apps/v1",
            "time": "2026-12-01T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields})
    };
    let owner = entry(
        "kubectl-client-side-apply",
        "Update",
        json!({"f:spec": {"f:replicas": {}}}),
    );
    let ours = entry(
        "debugsession/team/dbg",
        "Apply",
        json!({"f:spec": {"f:template": {"f:spec": {"f:shareProcessNamespace": {}}}}}),
    );
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web",
        "namespace": "team", "resourceVersion": rv, "managedFields": [owner, ours]}})
}

fn share_off_intent() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {SHARE_OFF: "false"}},
        "spec": {"template": {"spec": {"shareProcessNamespace": false}}}})
}

const SHARE_OFF: &str = "debugsession.dev/restore-share-process-namespace";

/// Checks the second write of a restore: the session's managedFields entry out, the record
/// annotation removed, on the condition of the version the first write returned.
fn assert_handback(seen: &Seen, rv: &str) {
    assert_eq!(seen.method, Method::PATCH);
    assert_eq!(seen.content_type, "application/merge-patch+json");
    assert_eq!(seen.query, "&fieldManager=debugsession%2Fteam%2Fdbg");
    let owner = restored(rv)["metadata"]["managedFields"][0].clone();
    assert_eq!(
        seen.body,
        json!({"metadata": {"resourceVersion": rv, "managedFields": [owner],
            "annotations": {SHARE_OFF: null}}})
    );
}

#[tokio::test]
async fn a_template_that_set_share_process_namespace_off_is_taken_with_the_record() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move { next(&mut handle, 200, deployment()).await });
    let w = target(TargetKind::Deployment);
    let change = apply::Change {
        client: &client,
        workload: &w,
        manager: "debugsession/team/dbg",
        session: "dbg",
        share_off: true,
    };
    apply::take(change, &shell()).await.unwrap();
    let seen = server.await.unwrap();
    let mut want = full_intent();
    want["metadata"]["annotations"][SHARE_OFF] = json!("false");
    assert_eq!(seen.body, want);
}

#[tokio::test]
async fn release_puts_share_off_back_and_leaves_the_field_to_its_owner() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let apply = next(&mut handle, 200, restored("77")).await;
        let handback = next(&mut handle, 200, deployment()).await;
        (apply, handback, handle)
    });
    let w = target(TargetKind::Deployment);
    apply::release(&client, &w, "debugsession/team/dbg", true)
        .await
        .unwrap();
    let (apply, handback, handle) = server.await.unwrap();
    assert_eq!(apply.content_type, "application/apply-patch+yaml");
    assert_eq!(apply.query, AS_MANAGER, "no force");
    assert_eq!(apply.body, share_off_intent());
    assert_handback(&handback, "77");
    nothing_more(client, handle, "two writes restore").await;
}

#[tokio::test]
async fn a_share_off_someone_else_holds_otherwise_gets_the_plain_release() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let field = ".spec.template.spec.shareProcessNamespace";
        next(&mut handle, 409, conflict("kubectl", field)).await;
        let plain = next(&mut handle, 200, deployment()).await;
        (plain, handle)
    });
    let w = target(TargetKind::Deployment);
    apply::release(&client, &w, "debugsession/team/dbg", true)
        .await
        .unwrap();
    let (plain, handle) = server.await.unwrap();
    assert_eq!(
        plain.body,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}})
    );
    nothing_more(client, handle, "the plain release ends it").await;
}

#[tokio::test]
async fn a_workload_changed_between_the_two_writes_is_restored_again() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        next(&mut handle, 200, restored("77")).await;
        let moved = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409,
            "reason": "Conflict", "message": "the object has been modified"});
        next(&mut handle, 409, moved).await;
        let again = next(&mut handle, 200, restored("79")).await;
        let handback = next(&mut handle, 200, deployment()).await;
        (again, handback, handle)
    });
    let w = target(TargetKind::Deployment);
    apply::release(&client, &w, "debugsession/team/dbg", true)
        .await
        .unwrap();
    let (again, handback, handle) = server.await.unwrap();
    assert_eq!(again.body, share_off_intent());
    assert_handback(&handback, "79");
    nothing_more(client, handle, "restored on the second try").await;
}
