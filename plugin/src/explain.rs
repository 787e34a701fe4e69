//! Every error a user meets, in one line with the fix.

use debugsession_operator::api::{DebugSession, Phase, condition, reason};

/// What the user was doing when the API server answered with an error.
pub enum Doing<'a> {
    Create,
    Read { name: &'a str, namespace: &'a str },
    List,
    Other(&'a str),
}

/// An API error, explained.
pub fn api(e: &kube::Error, doing: Doing<'_>) -> String {
    let kube::Error::Api(s) = e else {
        return format!("talking to the cluster: {e}");
    };
    if s.code == 404 && s.message.contains("could not find the requested resource") {
        return "the DebugSession CRD (debugsessions.debugsession.dev) is not installed in this cluster: install the operator (helm install debugsession-operator charts/debugsession-operator -n debugsession-system --create-namespace) or its CRD (kubectl apply -f crds/debugsession.dev_debugsessions.yaml)".to_string();
    }
    if s.message.contains("admission webhook") {
        return format!("admission refused the session: {}", s.message);
    }
    match (&doing, s.code) {
        (Doing::Read { name, namespace }, 404) => format!(
            "debugsession {name:?} not found in namespace {namespace:?} (see kubectl debugsession list -A)"
        ),
        (_, 403) => format!(
            "forbidden: {} (ask for the debugsession-edit role in this namespace)",
            s.message
        ),
        (Doing::Create, 409) => format!("{} (choose another --name)", s.message),
        (Doing::Create, 422) => format!("the API server refused the session: {}", s.message),
        (Doing::Create, _) => format!("creating the session: {}", s.message),
        (Doing::List, _) => format!("listing sessions: {}", s.message),
        (Doing::Read { .. }, _) => s.message.clone(),
        (Doing::Other(what), _) => format!("{what}: {}", s.message),
    }
}

/// No operator wrote a status within `secs` seconds after the session was created.
pub fn no_operator(name: &str, namespace: &str, secs: u64) -> String {
    format!(
        "the operator is not running: debugsession/{name} has no status after {secs}s; start it (kubectl get pods -n debugsession-system) — the session starts by itself once it runs, or remove it with kubectl debugsession end {name} -n {namespace}"
    )
}

/// The condition of this type, if any.
pub fn condition<'a>(
    s: &'a DebugSession,
    kind: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    s.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
}

/// A session that cannot go on: Failed, or Expired before anyone attached.
pub fn stopped(s: &DebugSession) -> Option<String> {
    let st = s.status.as_ref()?;
    let name = s.metadata.name.as_deref().unwrap_or_default();
    match st.phase? {
        Phase::Failed => {
            let why = condition(s, condition::READY)
                .map(|c| c.reason.clone())
                .unwrap_or_else(|| "Failed".into());
            Some(format!(
                "debugsession/{name} failed: {why}: {}",
                st.message.as_deref().unwrap_or("no message")
            ))
        }
        Phase::Expired => Some(format!(
            "debugsession/{name} has expired: {} (start a new one)",
            st.message.as_deref().unwrap_or("the TTL ran out")
        )),
        _ => None,
    }
}

/// A session that waits behind another session or a foreign holder: the line that says so.
pub fn waiting(s: &DebugSession) -> Option<String> {
    let c = condition(s, condition::READY)?;
    let name = s.metadata.name.as_deref().unwrap_or_default();
    if c.reason == reason::HELD_BY_OTHER_SESSION {
        // "waiting: Deployment/nginx is held by DebugSession other; ..."
        let holder = c
            .message
            .split("held by DebugSession ")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .unwrap_or("another session");
        return Some(format!(
            "debugsession/{name} is Pending behind debugsession/{holder}, which holds the target: it starts when that one ends (kubectl debugsession end {holder})"
        ));
    }
    if c.reason == reason::FOREIGN_HOLDER {
        return Some(format!("debugsession/{name} is Pending: {}", c.message));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use debugsession_operator::api::{DebugSessionStatus, TargetKind};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn api_err(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: message.into(),
            ..Default::default()
        }))
    }

    fn session(phase: Phase, reason: &str, message: &str) -> DebugSession {
        let mut s = DebugSession::new(
            "dbg",
            debugsession_operator::api::DebugSessionSpec::new(TargetKind::Deployment, "nginx"),
        );
        s.status = Some(DebugSessionStatus {
            phase: Some(phase),
            message: Some(message.into()),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: reason.into(),
                message: message.into(),
                last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
                observed_generation: None,
            }],
            ..Default::default()
        });
        s
    }

    #[test]
    fn crd_missing() {
        let e = api_err(404, "the server could not find the requested resource");
        assert!(
            api(&e, Doing::List).contains("CRD (debugsessions.debugsession.dev) is not installed")
        );
    }

    #[test]
    fn admission_message_as_it_is() {
        let m = "admission webhook \"sessions.debugsession.dev\" denied the request: spec.ttl 48h is longer than the maximum of 24h";
        assert_eq!(
            api(&api_err(400, m), Doing::Create),
            format!("admission refused the session: {m}")
        );
    }

    #[test]
    fn not_found_names_the_session() {
        let e = api_err(404, "debugsessions.debugsession.dev \"x\" not found");
        let m = api(
            &e,
            Doing::Read {
                name: "x",
                namespace: "team",
            },
        );
        assert!(m.contains("\"x\" not found in namespace \"team\""), "{m}");
    }

    #[test]
    fn pending_names_the_holder() {
        let s = session(
            Phase::Pending,
            reason::HELD_BY_OTHER_SESSION,
            "waiting: Deployment/nginx is held by DebugSession first; this session starts when that one ends",
        );
        let m = waiting(&s).unwrap();
        assert!(m.contains("behind debugsession/first,"), "{m}");
        assert!(m.contains("kubectl debugsession end first"), "{m}");
    }

    #[test]
    fn failed_gives_reason_and_message() {
        let s = session(
            Phase::Failed,
            "TargetNotFound",
            "Deployment/nginx not found",
        );
        assert_eq!(
            stopped(&s).unwrap(),
            "debugsession/dbg failed: TargetNotFound: Deployment/nginx not found"
        );
        assert!(stopped(&session(Phase::Active, "ShellReady", "")).is_none());
    }

    #[test]
    fn no_operator_says_how_to_go_on() {
        let m = no_operator("dbg", "team", 10);
        assert!(m.starts_with("the operator is not running"));
        assert!(m.contains("after 10s"));
    }
}
