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

use crate::api::Mode;
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
            let r = authz::check(&s.client, &q.requester, &q.namespace, &q.target, q.mode).await;
            finish(Verdict::Authorize(q), r)
        }
        Verdict::Released(q) => {
            let r = released(&s.client, &q).await;
            finish(Verdict::Released(q), r)
        }
        Verdict::Approve(q) => {
            let r = authz::check_approve(&s.client, &q.approver, &q.namespace, &q.name).await;
            finish(Verdict::Approve(q), r)
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

/// The JSON patch that adds the operator's finalizer to `obj`, when it lacks it: the whole list
/// when it has none, else appended to the finalizers already there.
pub fn finalizer_patch(obj: &DynamicObject) -> Option<PatchOperation> {
    if has_finalizer(obj) {
        return None;
    }
    let op = match obj.metadata.finalizers.as_ref().filter(|f| !f.is_empty()) {
        Some(_) => AddOperation {
            path: PointerBuf::from_tokens(["metadata", "finalizers", "-"]),
            value: serde_json::Value::String(FINALIZER.into()),
        },
        None => AddOperation {
            path: PointerBuf::from_tokens(["metadata", "finalizers"]),
            value: serde_json::json!([FINALIZER]),
        },
    };
    Some(PatchOperation::Add(op))
}

/// `/mutate`: on CREATE of a DebugSession, and on an UPDATE that changes its spec, stamp the
/// sender as the requester of the spec; a CREATE also gets the operator's finalizer. Everything
/// else passes unchanged.
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
        (Operation::Update, Some(old)) => {
            return match approve::decide(req, obj, old, key, now) {
                None => AdmissionResponse::from(req),
                Some(Err(m)) => deny(req, m),
                Some(Ok(ops)) => match AdmissionResponse::from(req).with_patch(Patch(ops)) {
                    Ok(resp) => resp,
                    Err(e) => deny(req, format!("could not build the approval patch: {e}")),
                },
            };
        }
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
    let mut patch = stamp_patch(obj.metadata.annotations.as_ref(), &stamp);
    match req.operation {
        // Approvals were about the spec before; the new one needs its own.
        Operation::Update => patch.0.extend(approve::drop_approvals(obj)),
        // A session is born with the finalizer that makes its deletion revert the workload: no
        // window before the operator's first write, and one write less per session.
        _ => patch.0.extend(finalizer_patch(obj)),
    }
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
    /// The mode the session asks for: what it is authorized for.
    pub mode: Mode,
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
    /// Admit only if the sender may approve the session (see [`authz::check_approve`]).
    Approve(ApproveQuery),
}

/// Combines a verdict with the outcome of the check it asked for (ignored unless it asked).
pub fn finish(v: Verdict, check: Result<(), String>) -> Result<(), String> {
    match v {
        Verdict::Allow => Ok(()),
        Verdict::Deny(m) => Err(m),
        Verdict::Authorize(_) | Verdict::Released(_) | Verdict::Approve(_) => check,
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
    policy.check(ns, spec, &asked).map_err(|e| e.message)
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
    if req.operation == Operation::Create
        && let Some(v) = approve::at_create(obj)
    {
        return v;
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
        mode: spec.mode.unwrap_or(spec.target.kind.default_mode()),
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
    let decision = approve::verdict(req, new, old, rules, spec_changed(new, old));
    if spec_changed(new, old) {
        if let Some(v) = decision {
            return v;
        }
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
    if let Some(v) = decision {
        if drops_finalizer {
            return Verdict::Deny(format!(
                "approve or deny and remove the finalizer {FINALIZER} in separate requests"
            ));
        }
        return v;
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

mod approve;
#[cfg(test)]
mod tests;

pub use approve::ApproveQuery;
