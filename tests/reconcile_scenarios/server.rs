//! The API server's side: takes the operator's requests one at a time, in order, and answers.

use super::*;

/// Takes the operator's requests one at a time, in order.
pub(crate) struct ApiServer(pub(crate) Handle<Request<Body>, Response<Body>>);

/// A request of the operator, waiting for its answer.
pub(crate) struct Call {
    /// `<method> <path>`, for messages.
    line: String,
    query: String,
    content_type: HeaderValue,
    body: Value,
    send: SendResponse<Response<Body>>,
}

impl Call {
    pub(crate) fn reply(self, body: Value) {
        self.answer(200, body)
    }

    pub(crate) fn answer(self, code: u16, body: Value) {
        let bytes = serde_json::to_vec(&body).unwrap();
        let response = Response::builder().status(code).body(Body::from(bytes));
        self.send.send_response(response.unwrap());
    }

    /// A `Status` of failure, as the API server refuses a request.
    pub(crate) fn fail(self, code: u16, reason: &str, message: &str) {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "code": code, "reason": reason, "message": message});
        self.answer(code, status)
    }

    #[track_caller]
    pub(crate) fn assert_query(&self, want: &str) {
        assert_eq!(self.query, want, "query of {}", self.line);
    }
}

impl ApiServer {
    /// The next request, which must be `method` on exactly `path`.
    pub(crate) async fn expect(&mut self, method: Method, path: &str) -> Call {
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
    pub(crate) async fn nothing_more(mut self, scenario: Scenario) {
        match tokio::time::timeout(WAIT, self.0.next_request()).await {
            Ok(None) => {}
            Ok(Some((req, _))) => panic!("{scenario:?}: unexpected {} {}", req.method(), req.uri()),
            Err(_) => panic!("{scenario:?}: reconcile neither returned nor sent a request"),
        }
    }

    pub(crate) async fn get(&mut self, path: &str, reply: Value) {
        let call = self.expect(Method::GET, path).await;
        call.assert_query("");
        call.reply(reply);
    }

    /// The pods of `web`, both carrying a ready shell.
    pub(crate) async fn list_pods(&mut self) {
        let call = self.expect(Method::GET, PODS).await;
        call.assert_query("&labelSelector=app%3Dweb");
        let items = [pod("web-5d8f-a"), pod("web-5d8f-b")];
        let meta = json!({"resourceVersion": "2210"});
        call.reply(
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": meta, "items": items}),
        );
    }

    /// A server-side apply to the workload under the session's field manager.
    pub(crate) async fn apply(&mut self, query: &str, intent: Value) -> Call {
        let call = self.expect(Method::PATCH, DEPLOY).await;
        call.assert_query(query);
        assert_eq!(call.content_type, APPLY);
        assert_eq!(call.body, intent, "intent of the {query} apply");
        call
    }

    pub(crate) async fn dry_run(&mut self) -> Call {
        self.apply(DRY_RUN, shell_intent()).await
    }

    /// Takes the workload: the holder annotation alone, without force.
    pub(crate) async fn hold(&mut self) -> Call {
        self.apply(AS_MANAGER, hold_intent()).await
    }

    pub(crate) async fn force_shell(&mut self) -> Call {
        self.apply(FORCED, shell_intent()).await
    }

    /// The empty intent, without force: the workload loses exactly the session's fields.
    pub(crate) async fn release(&mut self) {
        let call = self.apply(AS_MANAGER, release_intent()).await;
        call.reply(deployment(false, None));
    }

    /// An Event (events.k8s.io/v1) on `web` or on the session; echoed back as created.
    pub(crate) async fn event(&mut self, kind: &str, reason: &str, type_: &str) -> Value {
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

    pub(crate) async fn workload_event(&mut self, reason: &str) -> Value {
        self.event("Deployment", reason, "Normal").await
    }

    pub(crate) async fn note(&mut self, reason: &str) {
        self.event("DebugSession", reason, "Normal").await;
    }

    pub(crate) async fn warning(&mut self, reason: &str) {
        self.event("DebugSession", reason, "Warning").await;
    }

    /// The status apply, answered with the session carrying it; returns the status.
    pub(crate) async fn status(&mut self, session: &DebugSession) -> Value {
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
    pub(crate) async fn run(mut self, scenario: Scenario, s: DebugSession) {
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

    pub(crate) async fn start(&mut self, s: &DebugSession) {
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
        // A first reconcile says who asked.
        self.note("Requested").await;
        self.note("Applied").await;
    }

    pub(crate) async fn active(&mut self, s: &DebugSession) {
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
    pub(crate) async fn steady(&mut self) {
        self.get(DEPLOY, ours(true)).await;
        self.list_pods().await;
    }

    pub(crate) async fn expiry(&mut self, s: &DebugSession) {
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

    pub(crate) async fn delete(&mut self, s: &DebugSession) {
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

    pub(crate) async fn held_by_first(&mut self, s: &DebugSession) {
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
        // A first reconcile says who asked.
        self.note("Requested").await;
        self.note("HeldByOtherSession").await;
    }

    pub(crate) async fn drift(&mut self, s: &DebugSession) {
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

    pub(crate) async fn unstamped_spec_change(&mut self, s: &DebugSession) {
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

    pub(crate) async fn foreign_holder(&mut self, s: &DebugSession) {
        let ghost = ("ghost", "kubectl-annotate");
        self.get(DEPLOY, deployment(false, Some(ghost))).await;
        self.get(NAMESPACE, namespace()).await;
        let status = self.status(s).await;
        assert_eq!(status["phase"], "Pending");
        let message = assert_condition(&status, "Ready", "False", "ForeignHolder");
        contains(&message, "field manager kubectl-annotate");
        contains(&message, "debugsession.dev/session=\"ghost\"");
        // A first reconcile says who asked.
        self.note("Requested").await;
        self.warning("ForeignHolder").await;
    }

    pub(crate) async fn rejected_shell(&mut self, s: &DebugSession) {
        self.get(DEPLOY, deployment(false, None)).await;
        self.get(NAMESPACE, namespace()).await;
        self.dry_run().await.fail(422, "Invalid", INVALID);
        // No hold, and so nothing to release.
        let status = self.status(s).await;
        assert_eq!(status["phase"], "Failed");
        let message = assert_condition(&status, "Ready", "False", "ApplyRejected");
        contains(&message, "must be less than or equal to memory limit");
        assert_condition(&status, "Reverted", "True", "NothingToRevert");
        // A first reconcile says who asked.
        self.note("Requested").await;
        self.warning("ApplyRejected").await;
    }

    pub(crate) async fn lost_race(&mut self, s: &DebugSession) {
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
pub(crate) fn contains(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} is not in {text:?}");
}

/// The condition `type_` of a status JSON, with `status` and `reason`; returns its message.
#[track_caller]
pub(crate) fn assert_condition(status: &Value, type_: &str, want: &str, reason: &str) -> String {
    let conditions = status["conditions"].as_array().into_iter().flatten();
    let found = conditions.clone().find(|c| c["type"] == type_);
    let c = found.unwrap_or_else(|| panic!("no {type_} condition in {status:#}"));
    let seen = json!([c["status"], c["reason"]]);
    assert_eq!(seen, json!([want, reason]), "{c:#}");
    c["message"].as_str().unwrap_or_default().to_string()
}
