//! The mutating and validating admission webhook for DebugSessions.
//!
//! - `POST /mutate`: on CREATE, and on every UPDATE that changes the spec, stamps the sender of the
//!   request as the requester of the spec as it stands (overwriting anything a user wrote there).
//! - `POST /validate`: refuses a create or a spec change that the policy does not allow, with an
//!   invalid TTL or shell, without a valid stamp of the very user who sends the request, or whose
//!   sender may not exec/attach into pods or patch the target workload (SubjectAccessReviews).
//!   Refuses changes to the stamp without a spec change, and the removal of the operator's
//!   finalizer, by anyone but the operator, while the session's workload still carries its fields.
//!
//! The decision is made by pure functions ([`mutate`], [`verdict`], [`finish`]); only the
//! SubjectAccessReviews and the look at the workload need the cluster. The TLS listener is in
//! [`super::tls`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::response::StatusSummary;

use crate::api::{
    DebugSession, DebugSessionSpec, FINALIZER, GROUP, Target, TargetKind, session_manager,
};
use crate::authz;
use crate::session::policy::Policy;
use crate::session::settings::Settings;
use crate::session::stamp::{self, Requester, Stamp};
use crate::session::validate;

pub use super::tls::serve_tls;

/// What the decisions rest on: the policy, the settings, the stamp key and the operator's own
/// username.
pub struct Rules {
    pub policy: Policy,
    pub settings: Settings,
    pub key: Vec<u8>,
    /// The only user that may remove the finalizer of a session that still holds its workload.
    pub operator_username: Option<String>,
}

/// What the webhook needs: the rules, and a client for SubjectAccessReviews and workload reads.
pub struct WebhookState {
    pub client: kube::Client,
    pub rules: Rules,
}

/// `POST /mutate` and `POST /validate` (AdmissionReview admission.k8s.io/v1).
pub fn router(state: Arc<WebhookState>) -> Router {
    Router::new()
        .route("/mutate", post(mutate_handler))
        .route("/validate", post(validate_handler))
        .with_state(state)
}

type Request = AdmissionRequest<DynamicObject>;

fn parse(body: &[u8]) -> Result<Request, String> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|e| format!("not an AdmissionReview: {e}"))?;
    review
        .try_into()
        .map_err(|_| "the AdmissionReview has no request".to_string())
}

fn reply(resp: AdmissionResponse) -> Response {
    match serde_json::to_vec(&resp.into_review()) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn mutate_handler(State(s): State<Arc<WebhookState>>, body: Bytes) -> Response {
    let req = match parse(&body) {
        Ok(r) => r,
        Err(m) => return reply(AdmissionResponse::invalid(m)),
    };
    let resp = mutate(&req, &s.rules.key, Timestamp::now());
    if !resp.allowed {
        tracing::info!(uid = %req.uid, name = %req.name, message = %resp.result.message, "mutation refused");
    }
    reply(resp)
}

async fn validate_handler(State(s): State<Arc<WebhookState>>, body: Bytes) -> Response {
    let req = match parse(&body) {
        Ok(r) => r,
        Err(m) => return reply(AdmissionResponse::invalid(m)),
    };
    let v = verdict(&req, &s.rules);
    let outcome = match v {
        Verdict::Authorize(q) => {
            let r = authz::check(&s.client, &q.requester, &q.namespace, &q.target).await;
            finish(Verdict::Authorize(q), r)
        }
        Verdict::Released(q) => {
            let r = released(&s.client, &q).await;
            finish(Verdict::Released(q), r)
        }
        v => finish(v, Ok(())),
    };
    let resp = respond(&req, outcome);
    let user = req.user_info.username.as_deref().unwrap_or("");
    if resp.allowed {
        tracing::debug!(uid = %req.uid, name = %req.name, %user, operation = ?req.operation, "admitted");
    } else {
        tracing::info!(uid = %req.uid, name = %req.name, %user, operation = ?req.operation, message = %resp.result.message, "refused");
    }
    reply(resp)
}

/// Whether the session's workload is free of the session's fields; the error says why not.
async fn released(client: &kube::Client, q: &HeldQuery) -> Result<(), String> {
    let manager = session_manager(&q.namespace, &q.session);
    match crate::workload::fetch(client, &q.namespace, q.kind, &q.name).await {
        Ok(Some(w)) if w.is_managed_by(&manager) => Err(still_holds(q)),
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "removing the finalizer {FINALIZER} is refused: could not check whether DebugSession {} still holds {}/{} ({e})",
            q.session, q.kind, q.name
        )),
    }
}

/// The refusal of a finalizer removal while the workload is held.
pub fn still_holds(q: &HeldQuery) -> String {
    format!(
        "removing the finalizer {FINALIZER} is refused: DebugSession {} still holds {}/{} (field manager {}); delete the session and the operator reverts the workload, then removes the finalizer itself",
        q.session,
        q.kind,
        q.name,
        session_manager(&q.namespace, &q.session)
    )
}

/// A refusal: HTTP-like code 403 and the message, which kubectl shows to the user.
pub fn deny(req: &Request, message: impl Into<String>) -> AdmissionResponse {
    let mut resp = AdmissionResponse::from(req).deny(message.into());
    resp.result.status = Some(StatusSummary::Failure);
    resp.result.code = 403;
    resp.result.reason = "Forbidden".into();
    resp
}

/// The response for a final outcome.
pub fn respond(req: &Request, outcome: Result<(), String>) -> AdmissionResponse {
    match outcome {
        Ok(()) => AdmissionResponse::from(req),
        Err(m) => deny(req, m),
    }
}

/// Whether the request is about a DebugSession itself (not a subresource such as status).
fn is_session(req: &Request) -> bool {
    req.kind.group == GROUP
        && req.kind.kind == "DebugSession"
        && req.sub_resource.as_deref().is_none_or(str::is_empty)
}

/// The sender of the request, as the API server authenticated it.
fn sender(req: &Request) -> Requester {
    let u = &req.user_info;
    Requester {
        username: u.username.clone().unwrap_or_default(),
        uid: u.uid.clone().unwrap_or_default(),
        groups: u.groups.clone().unwrap_or_default(),
        extra: u.extra.clone().unwrap_or_default(),
    }
}

fn namespace(req: &Request, obj: &DynamicObject) -> String {
    req.namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| obj.metadata.namespace.clone())
        .unwrap_or_default()
}

fn name(req: &Request, obj: &DynamicObject) -> String {
    Some(req.name.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| obj.metadata.name.clone())
        .unwrap_or_default()
}

fn annotations(obj: &DynamicObject) -> BTreeMap<String, String> {
    obj.metadata.annotations.clone().unwrap_or_default()
}

fn spec(obj: &DynamicObject) -> Result<DebugSessionSpec, String> {
    let raw = obj.data.get("spec").cloned().unwrap_or_default();
    serde_json::from_value(raw).map_err(|e| format!("spec is not a valid DebugSession spec: {e}"))
}

fn spec_changed(new: &DynamicObject, old: &DynamicObject) -> bool {
    new.data.get("spec") != old.data.get("spec")
}

fn has_finalizer(obj: &DynamicObject) -> bool {
    obj.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

/// The JSON patch that writes the stamp annotations: the whole annotations map when the object
/// has none, else one `add` per stamp key (which replaces a value a user may have put there).
pub fn stamp_patch(
    existing: Option<&BTreeMap<String, String>>,
    stamp: &BTreeMap<String, String>,
) -> Patch {
    match existing {
        Some(a) if !a.is_empty() => Patch(
            stamp
                .iter()
                .map(|(k, v)| {
                    PatchOperation::Add(AddOperation {
                        path: PointerBuf::from_tokens(["metadata", "annotations", k.as_str()]),
                        value: serde_json::Value::String(v.clone()),
                    })
                })
                .collect(),
        ),
        _ => Patch(vec![PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["metadata", "annotations"]),
            value: serde_json::json!(stamp),
        })]),
    }
}

/// `/mutate`: on CREATE of a DebugSession, and on an UPDATE that changes its spec, stamp the
/// sender as the requester of the spec. Everything else passes unchanged.
pub fn mutate(req: &Request, key: &[u8], now: Timestamp) -> AdmissionResponse {
    if !is_session(req) {
        return AdmissionResponse::from(req);
    }
    let Some(obj) = req.object.as_ref() else {
        return AdmissionResponse::from(req);
    };
    let changed = match (&req.operation, req.old_object.as_ref()) {
        (Operation::Create, _) => "created".to_string(),
        (Operation::Update, Some(old)) if spec_changed(obj, old) => stamp::changed_paths(
            old.data.get("spec").unwrap_or(&serde_json::Value::Null),
            obj.data.get("spec").unwrap_or(&serde_json::Value::Null),
        ),
        _ => return AdmissionResponse::from(req),
    };
    let (ns, name) = (namespace(req, obj), name(req, obj));
    if name.is_empty() {
        return deny(
            req,
            "metadata.name is required: the requester stamp binds the session's name, so generateName is not supported",
        );
    }
    let who = sender(req);
    if who.username.is_empty() {
        return deny(
            req,
            "the request names no user, so the session cannot be stamped with its requester",
        );
    }
    // An unreadable spec gets no stamp; the validating webhook refuses it with the reason.
    let Ok(spec) = spec(obj) else {
        return AdmissionResponse::from(req);
    };
    let stamp = Stamp {
        requester: who,
        digest: stamp::spec_digest(&spec),
        stamped_at: now.to_string(),
        changed,
    };
    let stamp = stamp::annotations(key, &ns, &name, &stamp);
    let patch = stamp_patch(obj.metadata.annotations.as_ref(), &stamp);
    match AdmissionResponse::from(req).with_patch(patch) {
        Ok(resp) => resp,
        Err(e) => deny(req, format!("could not build the stamp patch: {e}")),
    }
}

/// A SubjectAccessReview question still to ask before admitting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthzQuery {
    pub requester: Requester,
    pub namespace: String,
    pub target: Target,
}

/// A session whose workload must be free of the session's fields before its finalizer may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldQuery {
    pub namespace: String,
    pub session: String,
    pub kind: TargetKind,
    pub name: String,
}

/// What [`verdict`] decided without the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny(String),
    /// Admit only if the requester has the permissions (see [`authz::check`]).
    Authorize(AuthzQuery),
    /// Admit only if the workload no longer carries the session's fields.
    Released(HeldQuery),
}

/// Combines a verdict with the outcome of the check it asked for (ignored unless it asked).
pub fn finish(v: Verdict, check: Result<(), String>) -> Result<(), String> {
    match v {
        Verdict::Allow => Ok(()),
        Verdict::Deny(m) => Err(m),
        Verdict::Authorize(_) | Verdict::Released(_) => check,
    }
}

/// Policy, TTL and shell checks of a spec; the error is the message for the user.
fn check_spec(
    ns: &str,
    spec: &DebugSessionSpec,
    policy: &Policy,
    settings: &Settings,
) -> Result<(), String> {
    let asked = validate::resolve(spec, settings).map_err(|e| e.message)?;
    policy.check(ns, &asked.shell).map_err(|e| e.message)
}

/// `/validate`, the part that needs no cluster.
pub fn verdict(req: &Request, rules: &Rules) -> Verdict {
    if !is_session(req) {
        return Verdict::Allow;
    }
    match req.operation {
        Operation::Create => match req.object.as_ref() {
            Some(obj) => spec_verdict(req, obj, rules),
            None => Verdict::Deny("the admission request carries no object".into()),
        },
        Operation::Update => update_verdict(req, rules),
        Operation::Delete | Operation::Connect => Verdict::Allow,
    }
}

/// A create or a spec change: the policy, then a stamp of the very sender over this very spec,
/// then the sender's own permissions.
fn spec_verdict(req: &Request, obj: &DynamicObject, rules: &Rules) -> Verdict {
    let (ns, name) = (namespace(req, obj), name(req, obj));
    let spec = match spec(obj) {
        Ok(s) => s,
        Err(m) => return Verdict::Deny(m),
    };
    if let Err(m) = check_spec(&ns, &spec, &rules.policy, &rules.settings) {
        return Verdict::Deny(m);
    }
    if let Err(e) = validate::session_name(&ns, &name) {
        return Verdict::Deny(e.message);
    }
    // The mutating webhook ran before us: the stamp must be there, valid for this spec, and name
    // the very user who sends this request.
    let who = sender(req);
    match stamp::verify(&rules.key, &ns, &name, &annotations(obj), &spec) {
        Err(e) => return Verdict::Deny(e.message),
        Ok(stamped) if stamped.requester != who => {
            return Verdict::Deny(format!(
                "the requester stamp names user {:?} but the request comes from user {:?}",
                stamped.requester.username, who.username
            ));
        }
        Ok(_) => {}
    }
    Verdict::Authorize(AuthzQuery {
        requester: who,
        namespace: ns,
        target: spec.target,
    })
}

fn update_verdict(req: &Request, rules: &Rules) -> Verdict {
    let operator = rules.operator_username.as_deref();
    let (Some(new), Some(old)) = (req.object.as_ref(), req.old_object.as_ref()) else {
        return Verdict::Deny("the admission request lacks the object or the old object".into());
    };
    let by_operator = operator.is_some_and(|op| req.user_info.username.as_deref() == Some(op));
    let drops_finalizer = has_finalizer(old) && !has_finalizer(new) && !by_operator;
    if spec_changed(new, old) {
        if drops_finalizer {
            return Verdict::Deny(format!(
                "change the spec and remove the finalizer {FINALIZER} in separate requests"
            ));
        }
        // Every spec change (target, TTL up or down, shell) is authorized like a create, for
        // the user who sends it; the mutating webhook re-stamped it for them.
        return spec_verdict(req, new, rules);
    }
    if stamp::changed(&annotations(old), &annotations(new)) {
        return Verdict::Deny(format!(
            "the requester stamp ({}) is immutable: it records who asked for the spec as it stands, and changes only with the spec",
            stamp::KEYS.join(", ")
        ));
    }
    if drops_finalizer {
        let (kind, name) = held_target(old);
        return Verdict::Released(HeldQuery {
            namespace: namespace(req, old),
            session: self::name(req, old),
            kind,
            name,
        });
    }
    // Other metadata-only updates (labels, annotations, adding finalizers) pass.
    Verdict::Allow
}

/// The workload a session may hold: the resolved target once started, else the spec's.
fn held_target(obj: &DynamicObject) -> (TargetKind, String) {
    match obj.clone().try_parse::<DebugSession>() {
        Ok(s) => s.target_in_force(),
        Err(_) => (TargetKind::Deployment, String::new()),
    }
}

#[cfg(test)]
mod tests {
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
                with(
                    json!({"target": {"kind": "Deployment", "name": "web"}, "shell": {"image": ""}}),
                ),
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
}
