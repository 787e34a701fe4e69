//! The mutating and validating admission webhook for DebugSessions, served over TLS.
//!
//! - `POST /mutate`: on CREATE, stamps the requester from the request's userInfo into the
//!   session's annotations (overwriting anything a user wrote there).
//! - `POST /validate`: on CREATE, refuses sessions the policy does not allow, with an invalid TTL
//!   or shell, without a valid stamp of the very user who sends the request, or whose requester
//!   may not exec/attach into pods or patch the target workload (SubjectAccessReviews). On UPDATE,
//!   refuses changes to the stamp and spec changes the policy does not allow.
//!
//! The decision is made by pure functions ([`mutate`], [`verdict`], [`finish`]); only the
//! SubjectAccessReviews need the cluster.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::response::StatusSummary;

use super::authz;
use super::policy::Policy;
use super::stamp::{self, Requester};
use crate::api::{DebugSessionSpec, GROUP, Target};
use crate::controller::validate;
use crate::settings::Settings;

/// What the webhook needs: a client for SubjectAccessReviews, the policy, the settings and the
/// stamp key.
pub struct WebhookState {
    pub client: kube::Client,
    pub policy: Policy,
    pub settings: Settings,
    pub key: Vec<u8>,
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
    let resp = mutate(&req, &s.key);
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
    let v = verdict(&req, &s.policy, &s.settings, &s.key);
    let outcome = match v {
        Verdict::Authorize(q) => {
            let r = authz::check(&s.client, &q.requester, &q.namespace, &q.target).await;
            finish(Verdict::Authorize(q), r)
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

fn requester(req: &Request) -> Requester {
    Requester {
        username: req.user_info.username.clone().unwrap_or_default(),
        groups: req.user_info.groups.clone().unwrap_or_default(),
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

/// The JSON patch that stamps `r` on the object: the whole annotations map when the object has
/// none, else one `add` per stamp key (which replaces a value a user may have put there).
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

/// `/mutate`: on CREATE of a DebugSession, stamp the requester. Everything else passes unchanged.
pub fn mutate(req: &Request, key: &[u8]) -> AdmissionResponse {
    if !is_session(req) || req.operation != Operation::Create {
        return AdmissionResponse::from(req);
    }
    let Some(obj) = req.object.as_ref() else {
        return deny(req, "the admission request carries no object");
    };
    let (ns, name) = (namespace(req, obj), name(req, obj));
    if name.is_empty() {
        return deny(
            req,
            "metadata.name is required: the requester stamp binds the session's name, so generateName is not supported",
        );
    }
    let who = requester(req);
    if who.username.is_empty() {
        return deny(
            req,
            "the request names no user, so the session cannot be stamped with its requester",
        );
    }
    let stamp = stamp::annotations(key, &ns, &name, &who);
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

/// What [`verdict`] decided without the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny(String),
    /// Admit only if the requester has the permissions (see [`authz::check`]).
    Authorize(AuthzQuery),
}

/// Combines a verdict with the outcome of the authorization check (ignored unless the verdict
/// asks for it).
pub fn finish(v: Verdict, authz: Result<(), String>) -> Result<(), String> {
    match v {
        Verdict::Allow => Ok(()),
        Verdict::Deny(m) => Err(m),
        Verdict::Authorize(_) => authz,
    }
}

/// Policy, TTL and shell checks of a spec; the error is the message for the user.
fn check_spec(
    ns: &str,
    spec: &DebugSessionSpec,
    policy: &Policy,
    settings: &Settings,
) -> Result<(), String> {
    policy.check(ns, spec, settings).map_err(|e| e.message)?;
    validate::session_ttl(spec, settings).map_err(|e| e.message)?;
    validate::shell_container(spec, settings).map_err(|e| e.message)?;
    Ok(())
}

/// `/validate`, the part that needs no cluster.
pub fn verdict(req: &Request, policy: &Policy, settings: &Settings, key: &[u8]) -> Verdict {
    if !is_session(req) {
        return Verdict::Allow;
    }
    match req.operation {
        Operation::Create => create_verdict(req, policy, settings, key),
        Operation::Update => update_verdict(req, policy, settings, key),
        Operation::Delete | Operation::Connect => Verdict::Allow,
    }
}

fn create_verdict(req: &Request, policy: &Policy, settings: &Settings, key: &[u8]) -> Verdict {
    let Some(obj) = req.object.as_ref() else {
        return Verdict::Deny("the admission request carries no object".into());
    };
    let (ns, name) = (namespace(req, obj), name(req, obj));
    let spec = match spec(obj) {
        Ok(s) => s,
        Err(m) => return Verdict::Deny(m),
    };
    if let Err(m) = check_spec(&ns, &spec, policy, settings) {
        return Verdict::Deny(m);
    }
    // The mutating webhook ran before us: the stamp must be there, valid, and name the very user
    // who sends this request.
    let who = requester(req);
    match stamp::verify(key, &ns, &name, &annotations(obj)) {
        Err(m) => return Verdict::Deny(m),
        Ok(stamped) if stamped != who => {
            return Verdict::Deny(format!(
                "the requester stamp names user {:?} but the request comes from user {:?}",
                stamped.username, who.username
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

fn update_verdict(req: &Request, policy: &Policy, settings: &Settings, key: &[u8]) -> Verdict {
    let (Some(new), Some(old)) = (req.object.as_ref(), req.old_object.as_ref()) else {
        return Verdict::Deny("the admission request lacks the object or the old object".into());
    };
    if stamp::changed(&annotations(old), &annotations(new)) {
        return Verdict::Deny(format!(
            "the requester stamp ({}) is immutable: it records who created the session",
            stamp::KEYS.join(", ")
        ));
    }
    // Metadata-only updates (finalizers, labels, deletion) always pass, so that a session that
    // slipped past admission can still be cleaned up.
    if new.data.get("spec") == old.data.get("spec") {
        return Verdict::Allow;
    }
    let ns = namespace(req, new);
    let (new_spec, old_spec) = match (spec(new), spec(old)) {
        (Ok(n), Ok(o)) => (n, o),
        (Err(m), _) => return Verdict::Deny(m),
        (_, Err(_)) => return Verdict::Allow,
    };
    if let Err(m) = check_spec(&ns, &new_spec, policy, settings) {
        return Verdict::Deny(m);
    }
    // A new target must be one the stamped requester may patch too. Without a valid stamp the
    // controller refuses the session anyway.
    if new_spec.target != old_spec.target
        && let Ok(stamped) = stamp::verify(key, &ns, &name(req, new), &annotations(new))
    {
        return Verdict::Authorize(AuthzQuery {
            requester: stamped,
            namespace: ns,
            target: new_spec.target,
        });
    }
    Verdict::Allow
}

/// Loads a PEM certificate chain and private key into a rustls server config (ring provider).
fn tls_config(cert: &Path, key: &Path) -> std::io::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let io = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{what} {}: {e}", path.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| io("reading certificate", cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io("reading certificate", cert, &e))?;
    if certs.is_empty() {
        return Err(io(
            "reading certificate",
            cert,
            &"no certificate in the file",
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| io("reading key", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io("configuring TLS for", cert, &e))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| io("configuring TLS with", cert, &e))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

fn modified(paths: &[PathBuf]) -> Vec<Option<SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// Serves `router` over TLS (rustls, ring) until `shutdown` resolves. The certificate and key
/// are reloaded when their files change (cert-manager rotation, mounted Secret updates).
pub async fn serve_tls(
    addr: SocketAddr,
    cert: &Path,
    key: &Path,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config =
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls_config(cert, key)?));
    let handle = axum_server::Handle::new();
    let paths = vec![cert.to_path_buf(), key.to_path_buf()];
    let reloader = {
        let config = config.clone();
        tokio::spawn(async move {
            let mut seen = modified(&paths);
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let now = modified(&paths);
                if now == seen {
                    continue;
                }
                match tls_config(&paths[0], &paths[1]) {
                    Ok(c) => {
                        config.reload_from_config(Arc::new(c));
                        seen = now;
                        tracing::info!("reloaded the webhook's serving certificate");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not reload the webhook's serving certificate")
                    }
                }
            }
        })
    };
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            handle.graceful_shutdown(Some(Duration::from_secs(10)));
        });
    }
    tracing::info!(%addr, "serving the admission webhook (/mutate, /validate) over TLS");
    let result = axum_server::bind_rustls(addr, config)
        .handle(handle)
        .serve(router.into_make_service())
        .await;
    reloader.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TargetKind;
    use serde_json::{Value, json};

    const KEY: &[u8] = b"test key";

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
        }
    }

    fn stamped(name: &str, spec: Value, r: &Requester) -> Value {
        let a = stamp::annotations(KEY, "team", name, r);
        session(name, spec, Some(json!(a)))
    }

    /// Applies the mutating response's patch to the request's object.
    fn mutated(req: &Request) -> Value {
        let resp = mutate(req, KEY);
        assert!(resp.allowed, "{:?}", resp.result);
        let mut obj = serde_json::to_value(req.object.as_ref().unwrap()).unwrap();
        if let Some(p) = resp.patch {
            let patch: Patch = serde_json::from_slice(&p).unwrap();
            json_patch::patch(&mut obj, &patch).unwrap();
        }
        obj
    }

    fn decide(req: &Request, authz: Result<(), String>) -> Result<(), String> {
        finish(
            verdict(req, &Policy::default(), &Settings::default(), KEY),
            authz,
        )
    }

    #[test]
    fn patch_creates_annotations_or_adds_escaped_keys() {
        let stamp = stamp::annotations(KEY, "team", "s", &alice());
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
        assert_eq!(
            paths,
            [
                "/metadata/annotations/debugsession.dev~1requester",
                "/metadata/annotations/debugsession.dev~1requester-groups",
                "/metadata/annotations/debugsession.dev~1requester-signature",
            ]
        );
        assert!(keys.as_array().unwrap().iter().all(|op| op["op"] == "add"));
        assert_eq!(keys[0]["value"], "alice");
    }

    #[test]
    fn mutate_stamps_and_overwrites_forged_stamps() {
        // No annotations at all.
        let req = request("CREATE", "alice", Some(session("s", web(), None)), None);
        let obj = mutated(&req);
        let a: BTreeMap<String, String> =
            serde_json::from_value(obj["metadata"]["annotations"].clone()).unwrap();
        assert_eq!(stamp::verify(KEY, "team", "s", &a), Ok(alice()));
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
        assert_eq!(stamp::verify(KEY, "team", "s", &a), Ok(alice()));
        // The mutated object passes validation (authz permitting).
        let obj_req = request("CREATE", "alice", Some(obj), None);
        assert_eq!(decide(&obj_req, Ok(())), Ok(()));
    }

    #[test]
    fn mutate_leaves_updates_and_others_alone() {
        let old = stamped("s", web(), &alice());
        let mut new = old.clone();
        new["metadata"]["annotations"]["debugsession.dev/requester"] = json!("bob");
        let resp = mutate(&request("UPDATE", "bob", Some(new), Some(old)), KEY);
        assert!(resp.allowed && resp.patch.is_none());
        let mut req = request("CREATE", "alice", Some(session("s", web(), None)), None);
        req.kind.kind = "Pod".into();
        req.kind.group = String::new();
        let resp = mutate(&req, KEY);
        assert!(resp.allowed && resp.patch.is_none());
        // generateName: no name to bind the stamp to.
        let mut obj = session("", web(), None);
        obj["metadata"]["generateName"] = json!("s-");
        let resp = mutate(&request("CREATE", "alice", Some(obj), None), KEY);
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
                    Some(json!(stamp::annotations(KEY, "team", "other", &alice()))),
                ),
                Ok(()),
                Some("signature is invalid"),
            ),
            (
                stamped(
                    "s",
                    web(),
                    &Requester {
                        username: "bob".into(),
                        groups: alice().groups,
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
            verdict(
                &create(with(web())),
                &Policy::default(),
                &Settings::default(),
                KEY
            ),
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

    #[test]
    fn update_decisions() {
        let old = stamped("s", web(), &alice());
        let update = |new: Value| request("UPDATE", "alice", Some(new), Some(old.clone()));
        // Metadata-only change (finalizer): allowed, even by someone else.
        let mut new = old.clone();
        new["metadata"]["finalizers"] = json!(["debugsession.dev/revert"]);
        assert_eq!(decide(&update(new), Err("no authz needed".into())), Ok(()));
        // Changing, removing or adding stamp annotations: denied.
        for (k, v) in [
            ("debugsession.dev/requester", json!("bob")),
            ("debugsession.dev/requester-groups", json!("system:masters")),
            ("debugsession.dev/requester-signature", Value::Null),
        ] {
            let mut new = old.clone();
            if v.is_null() {
                new["metadata"]["annotations"]
                    .as_object_mut()
                    .unwrap()
                    .remove(k);
            } else {
                new["metadata"]["annotations"][k] = v;
            }
            let err = decide(&update(new), Ok(())).unwrap_err();
            assert!(err.contains("immutable"), "{k}: {err}");
        }
        let unstamped = session("s", web(), None);
        let req = request(
            "UPDATE",
            "alice",
            Some(old.clone()),
            Some(unstamped.clone()),
        );
        assert!(decide(&req, Ok(())).unwrap_err().contains("immutable"));
        // Unstamped session (webhook was down): metadata updates still pass.
        let mut new = unstamped.clone();
        new["metadata"]["finalizers"] = json!([]);
        let req = request("UPDATE", "alice", Some(new), Some(unstamped));
        assert_eq!(decide(&req, Ok(())), Ok(()));
        // Spec changes: the policy applies; raising the TTL within the maximum passes.
        let mut new = old.clone();
        new["spec"]["ttl"] = json!("2h");
        assert_eq!(decide(&update(new), Err("no authz needed".into())), Ok(()));
        let mut new = old.clone();
        new["spec"]["ttl"] = json!("25h");
        assert!(
            decide(&update(new), Ok(()))
                .unwrap_err()
                .contains("maximum")
        );
        let mut new = old.clone();
        new["spec"]["shell"] = json!({"image": "alpine:3"});
        assert!(
            decide(&update(new), Ok(()))
                .unwrap_err()
                .contains("not allowed")
        );
        // A new target needs the stamped requester's permissions on it.
        let mut new = old.clone();
        new["spec"]["target"]["name"] = json!("db");
        let req = update(new);
        assert!(matches!(
            verdict(&req, &Policy::default(), &Settings::default(), KEY),
            Verdict::Authorize(AuthzQuery { ref target, .. }) if target.name == "db"
        ));
        assert_eq!(decide(&req, Err("denied".into())), Err("denied".into()));
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
            policy: Policy::default(),
            settings: Settings::default(),
            key: KEY.to_vec(),
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
