//! Whole reconciles against a mocked API server. Each scenario builds a DebugSession as the watch
//! would deliver it, runs `reconcile` once and plays the API server's side: every request must
//! come in the expected order (method, path, query, body) and gets a realistic answer. A request
//! that does not come fails after a timeout naming it; one that comes unexpectedly fails too.

use std::panic::resume_unwind;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::client::{Body, ClientBuilder};
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

use debugsession_operator::Error;
use debugsession_operator::api::{DebugSession, FINALIZER, HOLDER_ANNOTATION};
use debugsession_operator::controller::{Context, error_policy, reconcile};
use debugsession_operator::metrics::Metrics;
use debugsession_operator::session::policy::Policy;
use debugsession_operator::session::settings::Settings;
use debugsession_operator::session::stamp::{self, Requester, Stamp};

const DEPLOY: &str = "/apis/apps/v1/namespaces/team/deployments/web";
const NAMESPACE: &str = "/api/v1/namespaces/team";
const PODS: &str = "/api/v1/namespaces/team/pods";
const SESSION: &str = "/apis/debugsession.dev/v1alpha1/namespaces/team/debugsessions/dbg";
const FIRST: &str = "/apis/debugsession.dev/v1alpha1/namespaces/team/debugsessions/first";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/team/events";
const MANAGER: &str = "debugsession/team/dbg";
const AS_MANAGER: &str = "&fieldManager=debugsession%2Fteam%2Fdbg";
const FORCED: &str = "&force=true&fieldManager=debugsession%2Fteam%2Fdbg";
const DRY_RUN: &str = "&dryRun=All&force=true&fieldManager=debugsession%2Fteam%2Fdbg";
const APPLY: &str = "application/apply-patch+yaml";
const WEB_UID: &str = "6f1c2a9e-web";
const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const WAIT: Duration = Duration::from_secs(5);

/// The reconciles played: [`Scenario::session`] is what the watch delivers, [`ApiServer::run`]
/// the requests that must follow, the tests at the end the requeue each returns.
#[derive(Clone, Copy, Debug)]
enum Scenario {
    Start,
    Active,
    Steady,
    ExpiryRevert,
    DeleteRevert,
    HeldByFirst,
    Drift,
    UnstampedSpecChange,
    ForeignHolder,
    RejectedShell,
    LostRace,
}

impl Scenario {
    /// The session as the watch delivers it.
    fn session(self) -> DebugSession {
        match self {
            Scenario::Start
            | Scenario::HeldByFirst
            | Scenario::ForeignHolder
            | Scenario::RejectedShell
            | Scenario::LostRace => new_session("dbg"),
            Scenario::Active => started(60, false),
            Scenario::ExpiryRevert => started(15 * 60 + 5, true),
            Scenario::Steady | Scenario::Drift => started(60, true),
            Scenario::DeleteRevert => {
                let mut s = started(60, true);
                s.metadata.deletion_timestamp = Some(k8s_time(0));
                s
            }
            Scenario::UnstampedSpecChange => unstamped_change(),
        }
    }

    fn stamp_key(self) -> Option<Vec<u8>> {
        matches!(self, Scenario::UnstampedSpecChange).then(|| KEY.to_vec())
    }
}

// --- the API server's side ---

/// Takes the operator's requests one at a time, in order.
struct ApiServer(Handle<Request<Body>, Response<Body>>);

/// A request of the operator, waiting for its answer.
struct Call {
    /// `<method> <path>`, for messages.
    line: String,
    query: String,
    content_type: HeaderValue,
    body: Value,
    send: SendResponse<Response<Body>>,
}

impl Call {
    fn reply(self, body: Value) {
        self.answer(200, body)
    }

    fn answer(self, code: u16, body: Value) {
        let bytes = serde_json::to_vec(&body).unwrap();
        let response = Response::builder().status(code).body(Body::from(bytes));
        self.send.send_response(response.unwrap());
    }

    /// A `Status` of failure, as the API server refuses a request.
    fn fail(self, code: u16, reason: &str, message: &str) {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "code": code, "reason": reason, "message": message});
        self.answer(code, status)
    }

    #[track_caller]
    fn assert_query(&self, want: &str) {
        assert_eq!(self.query, want, "query of {}", self.line);
    }
}

impl ApiServer {
    /// The next request, which must be `method` on exactly `path`.
    async fn expect(&mut self, method: Method, path: &str) -> Call {
        let (req, send) = match tokio::time::timeout(WAIT, self.0.next_request()).await {
            Ok(Some(next)) => next,
            Ok(None) => panic!("expected {method} {path}, but the operator sent nothing more"),
            Err(_) => panic!("expected {method} {path}, but nothing came within {WAIT:?}"),
        };
        let content_type = req.headers().get("content-type").cloned();
        let (got, uri) = (req.method().clone(), req.uri().clone());
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(
            got == method && uri.path() == path,
            "expected {method} {path}, got {got} {uri}\n{body:#}"
        );
        let query = uri.query().unwrap_or_default().to_string();
        Call {
            line: format!("{method} {path}"),
            query,
            content_type: content_type.unwrap_or(HeaderValue::from_static("")),
            body,
            send,
        }
    }

    /// Nothing else comes: the operator drops its client once reconcile returns.
    async fn nothing_more(mut self, scenario: Scenario) {
        match tokio::time::timeout(WAIT, self.0.next_request()).await {
            Ok(None) => {}
            Ok(Some((req, _))) => panic!("{scenario:?}: unexpected {} {}", req.method(), req.uri()),
            Err(_) => panic!("{scenario:?}: reconcile neither returned nor sent a request"),
        }
    }

    async fn get(&mut self, path: &str, reply: Value) {
        let call = self.expect(Method::GET, path).await;
        call.assert_query("");
        call.reply(reply);
    }

    /// The pods of `web`, both carrying a ready shell.
    async fn list_pods(&mut self) {
        let call = self.expect(Method::GET, PODS).await;
        call.assert_query("&labelSelector=app%3Dweb");
        let items = [pod("web-5d8f-a"), pod("web-5d8f-b")];
        let meta = json!({"resourceVersion": "2210"});
        call.reply(
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": meta, "items": items}),
        );
    }

    /// A server-side apply to the workload under the session's field manager.
    async fn apply(&mut self, query: &str, intent: Value) -> Call {
        let call = self.expect(Method::PATCH, DEPLOY).await;
        call.assert_query(query);
        assert_eq!(call.content_type, APPLY);
        assert_eq!(call.body, intent, "intent of the {query} apply");
        call
    }

    async fn dry_run(&mut self) -> Call {
        self.apply(DRY_RUN, shell_intent()).await
    }

    /// Takes the workload: the holder annotation alone, without force.
    async fn hold(&mut self) -> Call {
        self.apply(AS_MANAGER, hold_intent()).await
    }

    async fn force_shell(&mut self) -> Call {
        self.apply(FORCED, shell_intent()).await
    }

    /// The empty intent, without force: the workload loses exactly the session's fields.
    async fn release(&mut self) {
        let call = self.apply(AS_MANAGER, release_intent()).await;
        call.reply(deployment(false, None));
    }

    /// An Event (events.k8s.io/v1) on `web` or on the session; echoed back as created.
    async fn event(&mut self, kind: &str, reason: &str, type_: &str) -> Value {
        let call = self.expect(Method::POST, EVENTS).await;
        let body = call.body.clone();
        let name = if kind == "Deployment" { "web" } else { "dbg" };
        let r = &body["regarding"];
        let seen = json!([r["kind"], r["name"], body["type"], body["reason"]]);
        assert_eq!(seen, json!([kind, name, type_, reason]), "{body:#}");
        assert_eq!(body["reportingController"], "debugsession-operator");
        call.answer(201, body.clone());
        body
    }

    async fn workload_event(&mut self, reason: &str) -> Value {
        self.event("Deployment", reason, "Normal").await
    }

    async fn note(&mut self, reason: &str) {
        self.event("DebugSession", reason, "Normal").await;
    }

    async fn warning(&mut self, reason: &str) {
        self.event("DebugSession", reason, "Warning").await;
    }

    /// The status apply, answered with the session carrying it; returns the status.
    async fn status(&mut self, session: &DebugSession) -> Value {
        let path = format!("{SESSION}/status");
        let call = self.expect(Method::PATCH, &path).await;
        call.assert_query("&force=true&fieldManager=debugsession-operator");
        assert_eq!(call.content_type, APPLY);
        assert_eq!(call.body["apiVersion"], "debugsession.dev/v1alpha1");
        assert_eq!(call.body["kind"], "DebugSession");
        let status = call.body["status"].clone();
        let mut updated = serde_json::to_value(session).unwrap();
        updated["status"] = status.clone();
        call.reply(updated);
        status
    }

    /// Plays the scenario's requests in order, then checks that nothing else comes.
    async fn run(mut self, scenario: Scenario, s: DebugSession) {
        match scenario {
            Scenario::Start => self.start(&s).await,
            Scenario::Active => self.active(&s).await,
            Scenario::Steady => self.steady().await,
            Scenario::ExpiryRevert => self.expiry(&s).await,
            Scenario::DeleteRevert => self.delete(&s).await,
            Scenario::HeldByFirst => self.held_by_first(&s).await,
            Scenario::Drift => self.drift(&s).await,
            Scenario::UnstampedSpecChange => self.unstamped_spec_change(&s).await,
            Scenario::ForeignHolder => self.foreign_holder(&s).await,
            Scenario::RejectedShell => self.rejected_shell(&s).await,
            Scenario::LostRace => self.lost_race(&s).await,
        }
        self.nothing_more(scenario).await
    }

    async fn start(&mut self, s: &DebugSession) {
        self.get(DEPLOY, deployment(false, None)).await;
        self.get(NAMESPACE, namespace()).await;
        self.dry_run().await.reply(ours(true));
        self.hold().await.reply(ours(false));
        self.force_shell().await.reply(ours(true));
        let event = self.workload_event("DebugShellAdded").await;
        assert_eq!(event["regarding"]["uid"], WEB_UID);
        let note = event["note"].as_str().unwrap();
        contains(note, "field manager debugsession/team/dbg");
        let status = self.status(s).await;
        assert_eq!(status["phase"], "Applying");
        assert_condition(&status, "Ready", "False", "RollingOut");
        assert_condition(&status, "Reverted", "False", "NotReverted");
        assert_condition(&status, "SpecApplied", "True", "Applied");
        let target = json!({"kind": "Deployment", "name": "web", "uid": WEB_UID});
        assert_eq!(status["target"], target);
        assert_eq!(status["readyPods"], "0/2");
        assert_eq!(status["shellGeneration"], 1);
        let at = |key: &str| status[key].as_str().unwrap().parse::<Timestamp>().unwrap();
        let ttl = at("expiresAt").duration_since(at("startedAt"));
        assert_eq!(ttl, SignedDuration::from_mins(15));
        self.note("Applied").await;
    }

    async fn active(&mut self, s: &DebugSession) {
        self.get(DEPLOY, ours(true)).await;
        self.list_pods().await;
        let status = self.status(s).await;
        assert_eq!(status["phase"], "Active");
        assert_condition(&status, "Ready", "True", "ShellReady");
        assert_eq!(status["readyPods"], "2/2");
        let attach = "kubectl attach -it -n team web-5d8f-a -c debug-shell";
        assert_eq!(status["pods"][0]["attach"], attach);
        let started = &s.status.as_ref().unwrap().started_at;
        assert_eq!(status["startedAt"], json!(started));
        self.note("Active").await;
    }

    /// Looking again at an unchanged active session only reads: no status write, no event.
    async fn steady(&mut self) {
        self.get(DEPLOY, ours(true)).await;
        self.list_pods().await;
    }

    async fn expiry(&mut self, s: &DebugSession) {
        self.get(DEPLOY, ours(true)).await;
        // Listed although an expired session never looks at its pods.
        self.list_pods().await;
        self.release().await;
        self.workload_event("DebugShellRemoved").await;
        let status = self.status(s).await;
        assert_eq!(status["phase"], "Expired");
        assert_condition(&status, "Reverted", "True", "Expired");
        assert_condition(&status, "Ready", "False", "Expired");
        assert!(status["endedAt"].is_string(), "{status:#}");
        assert!(status.get("pods").is_none(), "{status:#}");
        self.note("Expired").await;
        self.note("Reverted").await;
    }

    async fn delete(&mut self, s: &DebugSession) {
        self.get(DEPLOY, ours(true)).await;
        self.release().await;
        self.workload_event("DebugShellRemoved").await;
        self.note("Reverted").await;
        // kube-runtime's finalizer helper: a JSON patch that tests the index, then removes it.
        let call = self.expect(Method::PATCH, SESSION).await;
        call.assert_query("");
        assert_eq!(call.content_type, "application/json-patch+json");
        let at = "/metadata/finalizers/0";
        let test = json!({"op": "test", "path": at, "value": FINALIZER});
        assert_eq!(call.body, json!([test, {"op": "remove", "path": at}]));
        let mut gone = s.clone();
        gone.metadata.finalizers = None;
        call.reply(serde_json::to_value(gone).unwrap());
    }

    async fn held_by_first(&mut self, s: &DebugSession) {
        let first = ("first", "debugsession/team/first");
        self.get(DEPLOY, deployment(true, Some(first))).await;
        let mut holder = serde_json::to_value(started(120, true)).unwrap();
        holder["metadata"]["name"] = json!("first");
        self.get(FIRST, holder).await;
        // Read although a held workload is not judged against Pod Security yet.
        self.get(NAMESPACE, namespace()).await;
        let status = self.status(s).await;
        assert_eq!(status["phase"], "Pending");
        let message = assert_condition(&status, "Ready", "False", "HeldByOtherSession");
        contains(&message, "DebugSession first");
        assert!(status.get("startedAt").is_none(), "{status:#}");
        self.note("HeldByOtherSession").await;
    }

    async fn drift(&mut self, s: &DebugSession) {
        // A GitOps tool stripped the shell; the holder annotation is still ours.
        self.get(DEPLOY, ours(false)).await;
        // Listed although a drifted session re-applies before it looks at pods.
        self.list_pods().await;
        self.force_shell().await.reply(ours(true));
        self.workload_event("DebugShellAdded").await;
        let status = self.status(s).await;
        assert_eq!(status["phase"], "Applying");
        let message = assert_condition(&status, "Ready", "False", "Drifted");
        contains(&message, "container debug-shell was removed");
        self.warning("Drifted").await;
    }

    async fn unstamped_spec_change(&mut self, s: &DebugSession) {
        self.get(DEPLOY, ours(true)).await;
        self.get(NAMESPACE, namespace()).await;
        self.list_pods().await;
        let status = self.status(s).await;
        let message = assert_condition(&status, "SpecApplied", "False", "SpecNotStamped");
        contains(&message, "generation 2 is not applied");
        assert_eq!(status["shellGeneration"], 1);
        assert_eq!(status["observedGeneration"], 2);
        let old = s.status.as_ref().unwrap();
        assert_eq!(status["expiresAt"], json!(old.expires_at), "expiry kept");
        assert_eq!(status["phase"], "Active", "the old shell keeps running");
        assert_eq!(status["requester"], "alice");
        self.warning("SpecNotStamped").await;
    }

    async fn foreign_holder(&mut self, s: &DebugSession) {
        let ghost = ("ghost", "kubectl-annotate");
        self.get(DEPLOY, deployment(false, Some(ghost))).await;
        self.get(NAMESPACE, namespace()).await;
        let status = self.status(s).await;
        assert_eq!(status["phase"], "Pending");
        let message = assert_condition(&status, "Ready", "False", "ForeignHolder");
        contains(&message, "field manager kubectl-annotate");
        contains(&message, "debugsession.dev/session=\"ghost\"");
        self.warning("ForeignHolder").await;
    }

    async fn rejected_shell(&mut self, s: &DebugSession) {
        self.get(DEPLOY, deployment(false, None)).await;
        self.get(NAMESPACE, namespace()).await;
        self.dry_run().await.fail(422, "Invalid", INVALID);
        // No hold, and so nothing to release.
        let status = self.status(s).await;
        assert_eq!(status["phase"], "Failed");
        let message = assert_condition(&status, "Ready", "False", "ApplyRejected");
        contains(&message, "must be less than or equal to memory limit");
        assert_condition(&status, "Reverted", "True", "NothingToRevert");
        self.warning("ApplyRejected").await;
    }

    async fn lost_race(&mut self, s: &DebugSession) {
        self.get(DEPLOY, deployment(false, None)).await;
        self.get(NAMESPACE, namespace()).await;
        self.dry_run().await.reply(ours(true));
        self.hold().await.fail(409, "Conflict", CONFLICT);
        // The first reconcile failed, and still leaves a phase.
        let status = self.status(s).await;
        assert_eq!(status["phase"], "Pending");
        assert_condition(&status, "Ready", "False", "Retrying");
    }
}

#[track_caller]
fn contains(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} is not in {text:?}");
}

/// The condition `type_` of a status JSON, with `status` and `reason`; returns its message.
#[track_caller]
fn assert_condition(status: &Value, type_: &str, want: &str, reason: &str) -> String {
    let conditions = status["conditions"].as_array().into_iter().flatten();
    let found = conditions.clone().find(|c| c["type"] == type_);
    let c = found.unwrap_or_else(|| panic!("no {type_} condition in {status:#}"));
    let seen = json!([c["status"], c["reason"]]);
    assert_eq!(seen, json!([want, reason]), "{c:#}");
    c["message"].as_str().unwrap_or_default().to_string()
}

// --- objects as the API server returns them ---

/// A whole second `ago` seconds before now (the operator reads the clock itself).
fn k8s_time(ago: i64) -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second() - ago).unwrap())
}

/// A session that already carries the finalizer (an earlier reconcile added it) and no status.
fn new_session(name: &str) -> DebugSession {
    serde_json::from_value(json!({
        "apiVersion": "debugsession.dev/v1alpha1", "kind": "DebugSession",
        "metadata": {"name": name, "namespace": "team", "uid": format!("uid-{name}"),
            "generation": 1, "resourceVersion": "1500", "finalizers": [FINALIZER]},
        "spec": {"target": {"kind": "Deployment", "name": "web"}, "ttl": "15m"},
    }))
    .unwrap()
}

/// A session whose shell went out `ago` seconds ago (TTL 15m): rolling, or ready in both pods
/// with the status exactly as the operator writes it.
fn started(ago: i64, active: bool) -> DebugSession {
    let mut s = new_session("dbg");
    let (started, expires) = (k8s_time(ago), k8s_time(ago - 15 * 60));
    let condition = |type_: &str, ok: bool, reason: &str, message: &str| {
        json!({"type": type_, "status": if ok { "True" } else { "False" }, "reason": reason,
            "message": message, "observedGeneration": 1, "lastTransitionTime": started})
    };
    let attach = |pod: &str| format!("kubectl attach -it -n team {pod} -c debug-shell");
    let pod = |pod: &str| json!({"name": pod, "ready": true, "attach": attach(pod)});
    let ready = format!(
        "2/2 pods carry a ready debug shell; attach with: {}",
        attach("web-5d8f-a")
    );
    let mut status = json!({
        "phase": "Active", "message": ready,
        "conditions": [condition("Ready", true, "ShellReady", &ready),
            condition("Reverted", false, "NotReverted", "the debug shell is in the workload"),
            condition("SpecApplied", true, "Applied",
                "generation 1 applied (the operator runs without stamps)")],
        "observedGeneration": 1, "shellGeneration": 1, "shellContainer": "debug-shell",
        "startedAt": started, "expiresAt": expires, "targetRef": "Deployment/web",
        "target": {"kind": "Deployment", "name": "web", "uid": WEB_UID},
        "readyPods": "2/2", "pods": [pod("web-5d8f-a"), pod("web-5d8f-b")],
    });
    if !active {
        let rolling =
            "waiting for the pods of Deployment/web to roll: 0/2 carry a ready debug shell";
        status["conditions"][0] = condition("Ready", false, "RollingOut", rolling);
        status["phase"] = json!("Applying");
        status["message"] = json!(rolling);
        status["readyPods"] = json!("0/2");
        status["pods"] = json!([]);
    }
    s.status = Some(serde_json::from_value(status).unwrap());
    s
}

/// A running session stamped by the webhook for generation 1, whose generation 2 (TTL raised to
/// 2h) bypassed the webhook: the stamp does not cover the spec.
fn unstamped_change() -> DebugSession {
    let mut s = started(60, true);
    let requester = Requester {
        username: "alice".into(),
        uid: "u-alice".into(),
        groups: vec!["dev".into()],
        ..Requester::default()
    };
    let stamp = Stamp {
        requester,
        digest: stamp::spec_digest(&s.spec),
        stamped_at: "2026-01-01T00:00:00Z".into(),
        changed: "created".into(),
    };
    s.metadata.annotations = Some(stamp::annotations(KEY, "team", "dbg", &stamp));
    s.spec.ttl = Some("2h".into());
    s.metadata.generation = Some(2);
    s.status.as_mut().unwrap().requester = Some("alice".into());
    s
}

fn shell_container() -> Value {
    json!({"name": "debug-shell", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent",
        "stdin": true, "tty": true, "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}})
}

fn hold_intent() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {HOLDER_ANNOTATION: "dbg"}}})
}

fn shell_intent() -> Value {
    let mut intent = hold_intent();
    let pod_spec = json!({"shareProcessNamespace": true, "containers": [shell_container()]});
    intent["spec"] = json!({"template": {"spec": pod_spec}});
    intent
}

fn release_intent() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}})
}

/// `web` as this session left it: held, with or without the shell.
fn ours(shell: bool) -> Value {
    deployment(shell, Some(("dbg", MANAGER)))
}

/// Deployment `web` (2 replicas, rolled out); `shell` adds the debug shell and
/// shareProcessNamespace; `holder` is the holder annotation's value and the manager owning it.
fn deployment(shell: bool, holder: Option<(&str, &str)>) -> Value {
    let entry = |manager: &str, operation: &str, fields: Value| {
        json!({"manager": manager, "operation": operation, "apiVersion": "apps/v1",
            "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields})
    };
    let app = json!({"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]});
    let mut containers = vec![app];
    containers.extend(shell.then(shell_container));
    let mut annotations = json!({"deployment.kubernetes.io/revision": "3"});
    let spec_fields = json!({"f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {}}});
    let mut managed = vec![entry("kubectl-client-side-apply", "Update", spec_fields)];
    if let Some((value, manager)) = holder {
        annotations[HOLDER_ANNOTATION] = json!(value);
        let key = format!("f:{HOLDER_ANNOTATION}");
        let mut fields = json!({"f:metadata": {"f:annotations": {key: {}}}});
        let session = manager.starts_with("debugsession/");
        if session && shell {
            let shell_key = r#"k:{"name":"debug-shell"}"#;
            fields["f:spec"] = json!({"f:template": {"f:spec": {"f:shareProcessNamespace": {},
                "f:containers": {shell_key: {".": {}, "f:name": {}}}}}});
        }
        let operation = if session { "Apply" } else { "Update" };
        managed.push(entry(manager, operation, fields));
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team", "uid": WEB_UID, "generation": 3,
            "resourceVersion": "2207", "annotations": annotations, "managedFields": managed},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"shareProcessNamespace": shell, "containers": containers}}},
        "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2,
            "readyReplicas": 2, "availableReplicas": 2},
    })
}

fn namespace() -> Value {
    let labels = json!({"kubernetes.io/metadata.name": "team",
        "pod-security.kubernetes.io/enforce": "privileged"});
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": labels},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

/// A running pod of `web` whose debug shell is ready.
fn pod(name: &str) -> Value {
    let status = |c: &str| {
        json!({"name": c, "ready": true, "restartCount": 0, "started": true, "image": c,
            "imageID": "", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}})
    };
    let app = json!({"name": "nginx", "image": "nginx:1.27"});
    json!({"metadata": {"name": name, "namespace": "team", "labels": {"app": "web"}},
        "spec": {"containers": [app, shell_container()], "shareProcessNamespace": true},
        "status": {"phase": "Running", "containerStatuses": [status("nginx"), status("debug-shell")]}})
}

const INVALID: &str = "Deployment.apps \"web\" is invalid: spec.template.spec.containers[1].resources.requests: Invalid value: \"2Gi\": must be less than or equal to memory limit";
const CONFLICT: &str = "Apply failed with 1 conflict: conflict with \"debugsession/team/other\": .metadata.annotations.debugsession.dev/session";

// --- the reconciles ---

fn context(stamp_key: Option<Vec<u8>>) -> (Arc<Context>, ApiServer) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = ClientBuilder::new(svc, "default").build();
    let (insecure, metrics) = (stamp_key.is_none(), Arc::new(Metrics::default()));
    let (settings, policy) = (Settings::default(), Policy::default());
    let ctx = Context::new(client, settings, policy, stamp_key, insecure, metrics, None);
    (Arc::new(ctx), ApiServer(handle))
}

/// One reconcile of the scenario's session while the API server plays the scenario; fails unless
/// every expected request came, in order, and nothing else.
async fn play(scenario: Scenario) -> Result<Action, Error> {
    let session = scenario.session();
    let (ctx, server) = context(scenario.stamp_key());
    let verifier = tokio::spawn(server.run(scenario, session.clone()));
    // The context holds the only client: it goes when reconcile returns.
    let reconciled = tokio::time::timeout(3 * WAIT, reconcile(Arc::new(session), ctx)).await;
    // The verifier's complaint first: a wrong answer can make reconcile fail or wait.
    if let Err(e) = verifier.await {
        resume_unwind(e.into_panic());
    }
    reconciled.unwrap_or_else(|_| panic!("{scenario:?}: reconcile did not return"))
}

fn secs(n: u64) -> Action {
    Action::requeue(Duration::from_secs(n))
}

/// No requeue: only a change of the session (or of its workload) wakes it.
const DONE: Action = Action::await_change();

/// One test per scenario: its requests are checked by the verifier, its requeue here.
macro_rules! scenario_tests {
    ($($test:ident: $scenario:ident => $requeue:expr,)*) => {$(
        #[tokio::test]
        async fn $test() {
            let action = play(Scenario::$scenario).await.expect("reconcile succeeds");
            assert_eq!(action, $requeue);
        }
    )*};
}

scenario_tests! {
    start_dry_runs_takes_the_workload_applies_the_shell_and_reports: Start => secs(5),
    a_session_whose_pods_all_carry_a_ready_shell_is_active: Active => secs(60),
    an_unchanged_active_session_is_only_read: Steady => secs(60),
    an_expired_session_releases_its_fields_and_ends: ExpiryRevert => DONE,
    deleting_a_session_releases_its_fields_then_removes_the_finalizer: DeleteRevert => DONE,
    a_second_session_waits_for_the_live_holder: HeldByFirst => secs(10),
    a_stripped_shell_is_force_applied_again_without_dry_run_or_hold: Drift => secs(5),
    an_unstamped_spec_change_never_reaches_the_workload: UnstampedSpecChange => secs(60),
    a_hand_written_holder_annotation_makes_the_session_wait: ForeignHolder => secs(30),
    a_shell_the_dry_run_refuses_fails_the_session_without_holding: RejectedShell => DONE,
}

#[tokio::test]
async fn a_lost_race_for_the_workload_is_an_error_that_leaves_a_phase() {
    let err = play(Scenario::LostRace).await.unwrap_err();
    assert_eq!(err.metric_label(), "taken");
    let (ctx, _) = context(None);
    let action = error_policy(Arc::new(Scenario::LostRace.session()), &err, ctx);
    assert_ne!(action, DONE, "retried");
}

/// `error_policy` retries a lost race after 500 ms, but it matches `Error::Taken` while
/// `reconcile` hands it `Error::Finalizer(ApplyFailed(Taken))`, so the race backs off like any
/// other error (1 s, 2 s, ...).
#[tokio::test]
async fn a_lost_race_for_the_workload_is_retried_at_once() {
    let err = play(Scenario::LostRace).await.unwrap_err();
    let (ctx, _) = context(None);
    let action = error_policy(Arc::new(Scenario::LostRace.session()), &err, ctx);
    assert_eq!(action, Action::requeue(Duration::from_millis(500)));
}
