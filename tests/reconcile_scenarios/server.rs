//! The API server's side: takes the operator's requests one at a time, in order, and answers.
//! Events come from the operator's background lanes, at any point: each is answered as it comes,
//! and they are checked at the end, in order per object.

use super::*;

/// Takes the operator's requests one at a time, in order.
pub(crate) struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
    /// The Events created so far.
    events: Vec<Value>,
    /// The Events the scenario expects: `[kind, name, type, reason]` of each.
    want: Vec<Value>,
}

/// A request: method, URI, content type, body, and where its answer goes.
type Seen = (
    Method,
    http::Uri,
    Option<HeaderValue>,
    Value,
    SendResponse<Response<Body>>,
);

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
    pub(crate) fn new(handle: Handle<Request<Body>, Response<Body>>) -> Self {
        ApiServer {
            handle,
            events: Vec::new(),
            want: Vec::new(),
        }
    }

    /// The next request that is not an Event (Events are answered and kept on the way), or
    /// `None` once the operator has dropped its client.
    async fn next(&mut self) -> Option<Seen> {
        loop {
            let (req, send) = tokio::time::timeout(WAIT, self.handle.next_request())
                .await
                .unwrap_or_else(|_| panic!("nothing came within {WAIT:?}"))?;
            let content_type = req.headers().get("content-type").cloned();
            let (method, uri) = (req.method().clone(), req.uri().clone());
            let bytes = req.into_body().collect_bytes().await.unwrap();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if method == Method::POST && uri.path() == EVENTS {
                assert_eq!(body["reportingController"], "debugsession-operator");
                let bytes = serde_json::to_vec(&body).unwrap();
                send.send_response(
                    Response::builder()
                        .status(201)
                        .body(Body::from(bytes))
                        .unwrap(),
                );
                self.events.push(body);
                continue;
            }
            return Some((method, uri, content_type, body, send));
        }
    }

    pub(crate) async fn expect(&mut self, method: Method, path: &str) -> Call {
        let Some((got, uri, content_type, body, send)) = self.next().await else {
            panic!("expected {method} {path}, but the operator sent nothing more")
        };
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

    /// Nothing else comes but the expected Events: the operator drops its client once reconcile
    /// returns and its Events are sent. Returns the Events.
    pub(crate) async fn nothing_more(mut self, scenario: Scenario) -> Vec<Value> {
        if let Some((method, uri, ..)) = self.next().await {
            panic!("{scenario:?}: unexpected {method} {uri}");
        }
        for kind in ["Deployment", "DebugSession"] {
            let of = |events: &[Value]| -> Vec<Value> {
                events.iter().filter(|e| e[0] == kind).cloned().collect()
            };
            let seen: Vec<Value> = self
                .events
                .iter()
                .map(|b| {
                    let r = &b["regarding"];
                    json!([r["kind"], r["name"], b["type"], b["reason"]])
                })
                .collect();
            assert_eq!(
                of(&seen),
                of(&self.want),
                "{scenario:?}: Events on the {kind}"
            );
        }
        self.events
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

    /// Takes a free workload: the holder annotation and the shell, without force.
    pub(crate) async fn take(&mut self) -> Call {
        self.apply(AS_MANAGER, shell_intent()).await
    }

    pub(crate) async fn force_shell(&mut self) -> Call {
        self.apply(FORCED, shell_intent()).await
    }

    /// The empty intent, without force: the workload loses exactly the session's fields.
    pub(crate) async fn release(&mut self) {
        let call = self.apply(AS_MANAGER, release_intent()).await;
        call.reply(deployment(false, None));
    }

    /// An Event (events.k8s.io/v1) expected on `web` or on the session, after the ones expected
    /// on it before.
    fn event(&mut self, kind: &str, reason: &str, type_: &str) {
        let name = if kind == "Deployment" { "web" } else { "dbg" };
        self.want.push(json!([kind, name, type_, reason]));
    }

    pub(crate) fn workload_event(&mut self, reason: &str) {
        self.event("Deployment", reason, "Normal")
    }

    pub(crate) fn note(&mut self, reason: &str) {
        self.event("DebugSession", reason, "Normal")
    }

    pub(crate) fn warning(&mut self, reason: &str) {
        self.event("DebugSession", reason, "Warning")
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
        let events = self.nothing_more(scenario).await;
        if let Scenario::Start = scenario {
            // The Event on the workload says who changed it.
            let added = events.iter().find(|e| e["reason"] == "DebugShellAdded");
            let event = added.expect("a DebugShellAdded event");
            assert_eq!(event["regarding"]["uid"], WEB_UID);
            contains(
                event["note"].as_str().unwrap(),
                "field manager debugsession/team/dbg",
            );
        }
    }

    pub(crate) async fn start(&mut self, s: &DebugSession) {
        self.get(DEPLOY, deployment(false, None)).await;
        self.get(NAMESPACE, namespace()).await;
        // One apply without force takes a free workload.
        self.take().await.reply(ours(true));
        self.workload_event("DebugShellAdded");
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
        self.note("Requested");
        self.note("Applied");
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
        self.note("Active");
    }

    /// Looking again at an unchanged active session only reads: no status write, no event.
    pub(crate) async fn steady(&mut self) {
        self.get(DEPLOY, ours(true)).await;
        self.list_pods().await;
    }

    pub(crate) async fn expiry(&mut self, s: &DebugSession) {
        self.get(DEPLOY, ours(true)).await;
        // No list of the pods: an expired session reports none.
        self.release().await;
        self.workload_event("DebugShellRemoved");
        let status = self.status(s).await;
        assert_eq!(status["phase"], "Expired");
        assert_condition(&status, "Reverted", "True", "Expired");
        assert_condition(&status, "Ready", "False", "Expired");
        assert!(status["endedAt"].is_string(), "{status:#}");
        assert!(status.get("pods").is_none(), "{status:#}");
        self.note("Expired");
        self.note("Reverted");
    }

    pub(crate) async fn delete(&mut self, s: &DebugSession) {
        self.get(DEPLOY, ours(true)).await;
        self.release().await;
        self.workload_event("DebugShellRemoved");
        self.note("Reverted");
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
        self.note("Requested");
        self.note("HeldByOtherSession");
    }

    pub(crate) async fn drift(&mut self, s: &DebugSession) {
        // A GitOps tool stripped the shell; the holder annotation is still ours.
        self.get(DEPLOY, ours(false)).await;
        // Listed although a drifted session re-applies before it looks at pods.
        self.list_pods().await;
        self.force_shell().await.reply(ours(true));
        self.workload_event("DebugShellAdded");
        let status = self.status(s).await;
        assert_eq!(status["phase"], "Applying");
        let message = assert_condition(&status, "Ready", "False", "Drifted");
        contains(&message, "container debug-shell was removed");
        self.warning("Drifted");
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
        self.warning("SpecNotStamped");
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
        self.note("Requested");
        self.warning("ForeignHolder");
    }

    pub(crate) async fn rejected_shell(&mut self, s: &DebugSession) {
        self.get(DEPLOY, deployment(false, None)).await;
        self.get(NAMESPACE, namespace()).await;
        self.take().await.fail(422, "Invalid", INVALID);
        // Refused as a whole: nothing held, nothing to release.
        let status = self.status(s).await;
        assert_eq!(status["phase"], "Failed");
        let message = assert_condition(&status, "Ready", "False", "ApplyRejected");
        contains(&message, "must be less than or equal to memory limit");
        assert_condition(&status, "Reverted", "True", "NothingToRevert");
        // A first reconcile says who asked.
        self.note("Requested");
        self.warning("ApplyRejected");
    }

    pub(crate) async fn lost_race(&mut self, s: &DebugSession) {
        self.get(DEPLOY, deployment(false, None)).await;
        self.get(NAMESPACE, namespace()).await;
        // Another session's holder annotation conflicts: the careful way, whose hold loses.
        self.take().await.fail(409, "Conflict", CONFLICT);
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
