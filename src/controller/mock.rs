//! A mocked API server for the controller's tests: each request is seen and answered in turn.

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::Value;

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

#[derive(Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub accept: String,
    pub body: Value,
}

/// Answers the next request with `status` and `reply`; `None` as reply echoes the body.
pub async fn next(handle: &mut Handle, status: u16, reply: Option<Value>) -> Seen {
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

/// The Status body with which the API server refuses a request with `code`.
pub fn refusal(code: u16) -> Value {
    let reason = match code {
        409 => "Conflict",
        422 => "Invalid",
        _ => "BadRequest",
    };
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                       "reason": reason, "message": "refused"})
}
