//! The webhook's decisions on creates, spec changes, metadata updates and the finalizer, and the
//! TLS listener end to end.

use super::*;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

const NOW: &str = "2026-11-30T10:00:00Z";

const KEY: &[u8] = b"test key";
const OPERATOR: &str = "system:serviceaccount:dbgs:operator";

fn session(name: &str, spec: Value, annotations: Option<Value>) -> Value {
    let mut meta = json!({"name": name, "namespace": "team"});
    if let Some(a) = annotations {
        meta["annotations"] = a;
    }
    json!({"apiVersion": "debugsession.dev/v1alpha1", "kind": "DebugSession", "metadata": meta, "spec": spec})
}

fn web() -> Value {
    json!({"target": {"kind": "Deployment", "name": "web"}, "ttl": "10m"})
}

fn request(op: &str, user: &str, object: Option<Value>, old: Option<Value>) -> Request {
    let name = object
        .as_ref()
        .or(old.as_ref())
        .and_then(|o| o["metadata"]["name"].as_str())
        .unwrap_or("")
        .to_string();
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "debugsession.dev", "version": "v1alpha1", "kind": "DebugSession"},
            "resource": {"group": "debugsession.dev", "version": "v1alpha1", "resource": "debugsessions"},
            "name": name,
            "namespace": "team",
            "operation": op,
            "userInfo": {"username": user, "groups": ["system:authenticated", "team"]},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    });
    parse(&serde_json::to_vec(&review).unwrap()).unwrap()
}

fn alice() -> Requester {
    Requester {
        username: "alice".into(),
        groups: vec!["system:authenticated".into(), "team".into()],
        ..Requester::default()
    }
}

fn stamp_for(r: &Requester, spec: &Value) -> Stamp {
    let typed: DebugSessionSpec = serde_json::from_value(spec.clone()).unwrap();
    Stamp {
        requester: r.clone(),
        digest: stamp::spec_digest(&typed),
        stamped_at: NOW.into(),
        changed: "created".into(),
    }
}

fn stamped(name: &str, spec: Value, r: &Requester) -> Value {
    let a = stamp::annotations(KEY, "team", name, &stamp_for(r, &spec));
    session(name, spec, Some(json!(a)))
}

fn typed(spec: &Value) -> DebugSessionSpec {
    serde_json::from_value(spec.clone()).unwrap()
}

/// Applies the mutating response's patch to the request's object.
fn mutated(req: &Request) -> Value {
    let resp = mutate(req, KEY, NOW.parse().unwrap());
    assert!(resp.allowed, "{:?}", resp.result);
    let mut obj = serde_json::to_value(req.object.as_ref().unwrap()).unwrap();
    if let Some(p) = resp.patch {
        let patch: Patch = serde_json::from_slice(&p).unwrap();
        json_patch::patch(&mut obj, &patch).unwrap();
    }
    obj
}

fn rules(operator: Option<&str>) -> Rules {
    Rules {
        policy: Policy::default(),
        settings: Settings::default(),
        key: KEY.to_vec(),
        operator_username: operator.map(String::from),
    }
}

fn decide(req: &Request, authz: Result<(), String>) -> Result<(), String> {
    finish(verdict(req, &rules(Some(OPERATOR))), authz)
}

#[test]
fn patch_creates_annotations_or_adds_escaped_keys() {
    let stamp = stamp::annotations(KEY, "team", "s", &stamp_for(&alice(), &web()));
    let whole = serde_json::to_value(stamp_patch(None, &stamp)).unwrap();
    assert_eq!(
        whole,
        json!([{"op": "add", "path": "/metadata/annotations", "value": stamp}])
    );
    let existing = BTreeMap::from([("note".to_string(), "x".to_string())]);
    let keys = serde_json::to_value(stamp_patch(Some(&existing), &stamp)).unwrap();
    let paths: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["path"].as_str().unwrap())
        .collect();
    let mut want: Vec<String> = stamp::KEYS
        .iter()
        .map(|k| format!("/metadata/annotations/{}", k.replace('/', "~1")))
        .collect();
    want.sort();
    assert_eq!(paths, want);
    assert!(keys.as_array().unwrap().iter().all(|op| op["op"] == "add"));
    let requester = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["path"] == "/metadata/annotations/debugsession.dev~1requester");
    assert_eq!(requester.unwrap()["value"], "alice");
}

#[test]
fn mutate_stamps_and_overwrites_forged_stamps() {
    // No annotations at all.
    let req = request("CREATE", "alice", Some(session("s", web(), None)), None);
    let obj = mutated(&req);
    let a: BTreeMap<String, String> =
        serde_json::from_value(obj["metadata"]["annotations"].clone()).unwrap();
    assert_eq!(
        stamp::verify(KEY, "team", "s", &a, &typed(&web())).map(|s| s.requester),
        Ok(alice())
    );
    // Other annotations and a forged stamp: the forgery is replaced, the rest kept.
    let forged = json!({
        "note": "keep me",
        "debugsession.dev/requester": "admin",
        "debugsession.dev/requester-groups": "system:masters",
        "debugsession.dev/requester-signature": "00"
    });
    let req = request(
        "CREATE",
        "alice",
        Some(session("s", web(), Some(forged))),
        None,
    );
    let obj = mutated(&req);
    let a: BTreeMap<String, String> =
        serde_json::from_value(obj["metadata"]["annotations"].clone()).unwrap();
    assert_eq!(a["note"], "keep me");
    assert_eq!(a[stamp::REQUESTER], "alice");
    assert_eq!(
        stamp::verify(KEY, "team", "s", &a, &typed(&web())).map(|s| s.requester),
        Ok(alice())
    );
    // The mutated object passes validation (authz permitting).
    let obj_req = request("CREATE", "alice", Some(obj), None);
    assert_eq!(decide(&obj_req, Ok(())), Ok(()));
}

#[test]
fn mutate_leaves_updates_and_others_alone() {
    let old = stamped("s", web(), &alice());
    let mut new = old.clone();
    new["metadata"]["annotations"]["debugsession.dev/requester"] = json!("bob");
    let resp = mutate(
        &request("UPDATE", "bob", Some(new), Some(old)),
        KEY,
        NOW.parse().unwrap(),
    );
    assert!(resp.allowed && resp.patch.is_none());
    let mut req = request("CREATE", "alice", Some(session("s", web(), None)), None);
    req.kind.kind = "Pod".into();
    req.kind.group = String::new();
    let resp = mutate(&req, KEY, NOW.parse().unwrap());
    assert!(resp.allowed && resp.patch.is_none());
    // generateName: no name to bind the stamp to.
    let mut obj = session("", web(), None);
    obj["metadata"]["generateName"] = json!("s-");
    let resp = mutate(
        &request("CREATE", "alice", Some(obj), None),
        KEY,
        NOW.parse().unwrap(),
    );
    assert!(!resp.allowed);
    assert!(resp.result.message.contains("generateName"));
}

#[test]
fn create_decisions() {
    let exec_denied = Err(authz::missing_shell_access(&alice(), "team"));
    let target = Target {
        kind: TargetKind::Deployment,
        name: "web".into(),
        container: None,
        pod: None,
    };
    let patch_denied = Err(authz::missing_patch(&alice(), "team", &target));
    let with = |spec: Value| stamped("s", spec, &alice());
    let create = |obj: Value| request("CREATE", "alice", Some(obj), None);
    // (object, authz outcome, expected error substring or None)
    let cases: Vec<(Value, Result<(), String>, Option<&str>)> = vec![
        (with(web()), Ok(()), None),
        (
            with(web()),
            exec_denied,
            Some("may not create pods/exec or pods/attach"),
        ),
        (
            with(web()),
            patch_denied,
            Some(r#"may not patch deployments.apps "web""#),
        ),
        (
            with(
                json!({"target": {"kind": "Deployment", "name": "web"}, "shell": {"image": "alpine:3"}}),
            ),
            Ok(()),
            Some(r#"image "alpine:3" is not allowed"#),
        ),
        (
            with(json!({"target": {"kind": "Deployment", "name": "web"}, "ttl": "48h"})),
            Ok(()),
            Some("longer than the maximum of 24h"),
        ),
        (
            with(
                json!({"target": {"kind": "Deployment", "name": "web"}, "shell": {"capabilities": ["SYS_ADMIN"]}}),
            ),
            Ok(()),
            Some(r#"capability "SYS_ADMIN" is not allowed"#),
        ),
        (
            with(json!({"target": {"kind": "Deployment", "name": "web"}, "shell": {"image": ""}})),
            Ok(()),
            Some("image"),
        ),
        (
            session("s", web(), None),
            Ok(()),
            Some("no requester stamp"),
        ),
        (
            session(
                "s",
                web(),
                Some(json!(stamp::annotations(
                    KEY,
                    "team",
                    "other",
                    &stamp_for(&alice(), &web())
                ))),
            ),
            Ok(()),
            Some("stamp is invalid"),
        ),
        (
            stamped(
                "s",
                web(),
                &Requester {
                    username: "bob".into(),
                    groups: alice().groups,
                    ..Requester::default()
                },
            ),
            Ok(()),
            Some(r#"names user "bob" but the request comes from user "alice""#),
        ),
    ];
    for (obj, authz, want) in cases {
        let got = decide(&create(obj.clone()), authz);
        match want {
            None => assert_eq!(got, Ok(()), "{obj}"),
            Some(text) => {
                let err = got.expect_err(text);
                assert!(err.contains(text), "{text:?} not in {err:?}");
            }
        }
    }
    // A name whose field manager would not fit the API server's 128 characters.
    let long = "s".repeat(120);
    let req = create(stamped(&long, web(), &alice()));
    assert!(decide(&req, Ok(())).unwrap_err().contains("field manager"));
    // kube-system, in the request's namespace.
    let mut req = create(with(web()));
    req.namespace = Some("kube-system".into());
    assert!(
        decide(&req, Ok(()))
            .unwrap_err()
            .contains(r#"namespace "kube-system" is denied"#)
    );
    // The verdict asks exactly the right authz question.
    assert_eq!(
        verdict(&create(with(web())), &rules(None)),
        Verdict::Authorize(AuthzQuery {
            requester: alice(),
            namespace: "team".into(),
            target: target.clone(),
            mode: Mode::Patch,
        })
    );
    // The denial is a 403 with the message.
    let resp = respond(&create(with(web())), Err("nope".into()));
    assert!(!resp.allowed);
    assert_eq!(
        (resp.result.code, resp.result.message.as_str()),
        (403, "nope")
    );
    let v = serde_json::to_value(resp.into_review()).unwrap();
    assert_eq!(v["response"]["uid"], "u-1");
    assert_eq!(v["response"]["status"]["code"], 403);
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
}

/// The update request as it reaches /validate: after /mutate.
fn update_as(user: &str, new: Value, old: &Value) -> Request {
    let req = request("UPDATE", user, Some(new), Some(old.clone()));
    let obj = mutated(&req);
    request("UPDATE", user, Some(obj), Some(old.clone()))
}

fn verdict_of(req: &Request) -> Verdict {
    verdict(req, &rules(Some(OPERATOR)))
}

#[test]
fn spec_changes_are_authorized_for_the_sender_and_restamped() {
    let old = stamped("s", web(), &alice());
    let edits: Vec<(&str, Value)> = vec![
        ("/spec/ttl", json!("20m")),
        ("/spec/ttl", json!("5m")),
        ("/spec/shell", json!({"command": ["sh", "-c", "id"]})),
        ("/spec/shell", json!({"args": ["-x"]})),
        (
            "/spec/shell",
            json!({"env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]}),
        ),
        ("/spec/shell", json!({"image": "busybox:1.37"})),
        ("/spec/shell", json!({"capabilities": []})),
        ("/spec/shell", json!({"containerName": "nginx"})),
        ("/spec/target", json!({"kind": "Deployment", "name": "db"})),
    ];
    for (path, value) in edits {
        let mut new = old.clone();
        new["spec"][path.trim_start_matches("/spec/")] = value.clone();
        let req = update_as("mallory", new.clone(), &old);
        // The stamp now names the editor, over the edited spec.
        let obj = req.object.as_ref().unwrap();
        let st = stamp::verify(KEY, "team", "s", &annotations(obj), &typed(&new["spec"]))
            .unwrap_or_else(|e| panic!("{path}: {e:?}"));
        assert_eq!(st.requester.username, "mallory", "{path}");
        assert!(
            st.changed
                .starts_with(path.trim_start_matches('/').replace('/', ".").as_str()),
            "{path}: {}",
            st.changed
        );
        // ... and the editor's own rights decide.
        match verdict_of(&req) {
            Verdict::Authorize(q) => {
                assert_eq!(q.requester.username, "mallory", "{path}");
                assert_eq!(q.target, typed(&new["spec"]).target, "{path}");
            }
            v => panic!("{path}: {v:?}"),
        }
        let denied = Err(authz::missing_shell_access(&sender(&req), "team"));
        assert_eq!(finish(verdict_of(&req), denied.clone()), denied, "{path}");
    }
    // The policy still applies to the new spec.
    let mut new = old.clone();
    new["spec"]["ttl"] = json!("25h");
    assert!(
        finish(verdict_of(&update_as("alice", new, &old)), Ok(()))
            .unwrap_err()
            .contains("maximum")
    );
    let mut new = old.clone();
    new["spec"]["shell"] = json!({"image": "alpine:3"});
    assert!(
        finish(verdict_of(&update_as("alice", new, &old)), Ok(()))
            .unwrap_err()
            .contains("not allowed")
    );
    // A spec change that kept the old stamp (the mutating webhook bypassed) is refused.
    let mut new = old.clone();
    new["spec"]["ttl"] = json!("20m");
    let req = request("UPDATE", "alice", Some(new), Some(old.clone()));
    let err = finish(verdict_of(&req), Ok(())).unwrap_err();
    assert!(err.contains("does not cover it"), "{err}");
}

#[test]
fn metadata_updates_keep_the_stamp_and_the_finalizer() {
    let mut old = stamped("s", web(), &alice());
    old["metadata"]["finalizers"] = json!([FINALIZER]);
    let update = |user: &str, new: Value| request("UPDATE", user, Some(new), Some(old.clone()));
    // Labels and other annotations: allowed, by anyone.
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"team": "x"});
    assert_eq!(verdict_of(&update("mallory", new)), Verdict::Allow);
    // Changing, removing or adding a stamp annotation without a spec change: denied.
    for k in stamp::KEYS {
        for v in [json!("x"), Value::Null] {
            let mut new = old.clone();
            if v.is_null() {
                new["metadata"]["annotations"]
                    .as_object_mut()
                    .unwrap()
                    .remove(k);
            } else {
                new["metadata"]["annotations"][k] = v;
            }
            let err = finish(verdict_of(&update("alice", new)), Ok(())).unwrap_err();
            assert!(err.contains("immutable"), "{k}: {err}");
        }
    }
    // A stamp copied from another session (valid there) onto this one: denied.
    let other = stamped("other", web(), &alice());
    let mut new = old.clone();
    new["metadata"]["annotations"] = other["metadata"]["annotations"].clone();
    assert!(
        finish(verdict_of(&update("alice", new)), Ok(()))
            .unwrap_err()
            .contains("immutable")
    );
    // Dropping the finalizer: only once the workload is free, unless the operator does it.
    let mut new = old.clone();
    new["metadata"]["finalizers"] = json!([]);
    let held = HeldQuery {
        namespace: "team".into(),
        session: "s".into(),
        kind: TargetKind::Deployment,
        name: "web".into(),
    };
    assert_eq!(
        verdict_of(&update("mallory", new.clone())),
        Verdict::Released(held.clone())
    );
    let refusal = Err(still_holds(&held));
    assert_eq!(
        finish(verdict_of(&update("mallory", new.clone())), refusal.clone()),
        refusal
    );
    assert!(still_holds(&held).contains("still holds Deployment/web"));
    assert_eq!(verdict_of(&update(OPERATOR, new.clone())), Verdict::Allow);
    // The resolved target counts once started.
    let mut started = old.clone();
    started["status"] = json!({"target": {"kind": "StatefulSet", "name": "db", "uid": "u"}});
    let mut dropped = started.clone();
    dropped["metadata"]["finalizers"] = json!(null);
    let req = request("UPDATE", "mallory", Some(dropped), Some(started));
    assert!(matches!(
        verdict_of(&req),
        Verdict::Released(HeldQuery { kind: TargetKind::StatefulSet, ref name, .. }) if name == "db"
    ));
    // Spec change and finalizer removal at once: denied.
    let mut both = new.clone();
    both["spec"]["ttl"] = json!("20m");
    assert!(matches!(
        verdict_of(&update_as("alice", both, &old)),
        Verdict::Deny(m) if m.contains("separate requests")
    ));
    // Unstamped session (created while the webhook was down): metadata updates still pass.
    let unstamped = session("s", web(), None);
    let mut new = unstamped.clone();
    new["metadata"]["labels"] = json!({"a": "b"});
    let req = request("UPDATE", "alice", Some(new), Some(unstamped));
    assert_eq!(verdict_of(&req), Verdict::Allow);
}

#[test]
fn delete_and_other_objects_pass() {
    let old = stamped("s", web(), &alice());
    let req = request("DELETE", "mallory", None, Some(old));
    assert_eq!(decide(&req, Err("x".into())), Ok(()));
    let mut req = request("CREATE", "alice", Some(session("s", web(), None)), None);
    req.kind.group = "apps".into();
    req.kind.kind = "Deployment".into();
    assert_eq!(decide(&req, Err("x".into())), Ok(()));
    let mut req = request(
        "UPDATE",
        "alice",
        Some(session("s", web(), None)),
        Some(stamped("s", web(), &alice())),
    );
    req.sub_resource = Some("status".into());
    assert_eq!(decide(&req, Err("x".into())), Ok(()));
}

#[test]
fn malformed_reviews_are_refused() {
    assert!(parse(b"{}").unwrap_err().contains("not an AdmissionReview"));
    let empty = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
    assert!(parse(empty).unwrap_err().contains("no request"));
}

/// serve_tls end to end with a real certificate: needs `openssl` and `curl`
/// (`cargo test -p debugsession-operator --lib serve_tls -- --ignored`).
#[tokio::test]
#[ignore]
async fn serve_tls_answers_admission_reviews() {
    let dir = std::env::temp_dir().join(format!("dbgs-webhook-tls-{}", std::process::id()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/admission/make-certs.sh");
    let ok = std::process::Command::new(script)
        .arg(&dir)
        .status()
        .unwrap();
    assert!(ok.success());
    let (svc, _handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let state = Arc::new(WebhookState {
        client: kube::Client::new(svc, "default"),
        rules: rules(None),
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let dir = dir.clone();
        async move {
            serve_tls(
                addr,
                &dir.join("tls.crt"),
                &dir.join("tls.key"),
                router(state),
                async {
                    let _ = rx.await;
                },
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let req = request("CREATE", "alice", Some(session("s", web(), None)), None);
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": serde_json::to_value(&req).unwrap(),
    });
    let ca = dir.join("ca.crt");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(ca)
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(body.to_string())
            .arg(format!("https://127.0.0.1:{port}/mutate"))
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["response"]["allowed"], true, "{v}");
    assert_eq!(v["response"]["patchType"], "JSONPatch");
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

mod approvals;
mod finalizer;
