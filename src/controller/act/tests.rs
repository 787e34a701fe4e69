//! The requests of a take against a mocked API server: one apply when nothing conflicts, the
//! careful way when something does, nothing held after a refusal.

use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::Container;
use kube::Client;
use kube::client::{Body, ClientBuilder};
use serde_json::{Value, json};

use crate::controller::mock::{Seen, next, refusal};

use super::patch::{Change, WorkloadRef, shell_intent, take};
use crate::Error;
use crate::api::{HOLDER_ANNOTATION, TargetKind};

const PATH: &str = "/apis/apps/v1/namespaces/team/deployments/web";
const MANAGER: &str = "fieldManager=debugsession%2Fteam%2Fdbg";

fn shell() -> Container {
    Container {
        name: "debugger".into(),
        image: Some("busybox".into()),
        ..Container::default()
    }
}

/// Runs a take against the mock, answering its requests with `statuses` in turn.
async fn run(statuses: &'static [u16]) -> (crate::Result<()>, Vec<Seen>) {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = ClientBuilder::new(svc, "default").build();
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for &status in statuses {
            let reply = (status >= 400).then(|| refusal(status));
            seen.push(next(&mut handle, status, reply).await);
        }
        (seen, handle)
    });
    let res = take_web(&client).await;
    let (seen, _handle) = server.await.unwrap();
    (res, seen)
}

async fn take_web(client: &Client) -> crate::Result<()> {
    let w = WorkloadRef {
        namespace: "team".into(),
        kind: TargetKind::Deployment,
        name: "web".into(),
    };
    let change = Change {
        client,
        workload: &w,
        manager: "debugsession/team/dbg",
        session: "dbg",
    };
    take(change, &shell()).await
}

fn full() -> Value {
    shell_intent(TargetKind::Deployment, "web", "dbg", &shell())
}

#[tokio::test]
async fn one_apply_without_force_takes_a_free_workload() {
    let (res, seen) = run(&[200]).await;
    res.unwrap();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!((s.method.clone(), s.path.as_str()), (Method::PATCH, PATH));
    assert_eq!(s.query, format!("&{MANAGER}"), "no force, no dry run");
    assert_eq!(s.body, full());
}

#[tokio::test]
async fn a_conflict_takes_the_careful_way() {
    let (res, seen) = run(&[409, 200, 200, 200]).await;
    res.unwrap();
    let queries: Vec<&str> = seen.iter().map(|s| s.query.as_str()).collect();
    assert_eq!(
        queries,
        [
            format!("&{MANAGER}"),
            format!("&dryRun=All&force=true&{MANAGER}"),
            format!("&{MANAGER}"),
            format!("&force=true&{MANAGER}"),
        ]
    );
    assert_eq!(seen[1].body, full(), "the dry run tries the whole shell");
    assert!(
        seen[2].body["spec"].is_null(),
        "the hold is the annotation alone: {}",
        seen[2].body
    );
    assert_eq!(
        seen[2].body["metadata"]["annotations"][HOLDER_ANNOTATION],
        "dbg"
    );
    assert_eq!(seen[3].body, full());
}

#[tokio::test]
async fn another_holder_makes_the_take_lose_the_race() {
    let (res, seen) = run(&[409, 200, 409]).await;
    assert!(matches!(res, Err(Error::Taken(_))), "{res:?}");
    assert_eq!(seen.len(), 3);
}

#[tokio::test]
async fn a_refused_shell_holds_nothing() {
    let (res, seen) = run(&[422]).await;
    assert!(matches!(res, Err(Error::Rejected(_))), "{res:?}");
    assert_eq!(seen.len(), 1, "nothing written, nothing to give back");
    // Refused on the careful way after the hold: the hold is given back.
    let (res, seen) = run(&[409, 200, 200, 422, 200]).await;
    assert!(matches!(res, Err(Error::Rejected(_))), "{res:?}");
    let last = seen.last().unwrap();
    assert_eq!(last.query, format!("&{MANAGER}"));
    assert_eq!(
        last.body,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}),
        "the release"
    );
}
