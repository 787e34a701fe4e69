//! Every error a user meets, in one line with the fix.

use debugsession_operator::api::{DebugSession, Phase, condition, reason};

/// What the user was doing when the API server answered with an error.
pub enum Doing<'a> {
    Create,
    Read {
        name: &'a str,
        namespace: &'a str,
    },
    List,
    /// Approving or denying (`verb`: "approve" or "deny") a session.
    Decide {
        verb: &'a str,
        name: &'a str,
        namespace: &'a str,
    },
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
        return match doing {
            Doing::Decide { verb, name, .. } => {
                format!(
                    "admission refused to {verb} debugsession/{name}: {}",
                    s.message
                )
            }
            _ => format!("admission refused the session: {}", s.message),
        };
    }
    match (&doing, s.code) {
        (
            Doing::Read { name, namespace }
            | Doing::Decide {
                name, namespace, ..
            },
            404,
        ) => format!(
            "debugsession {name:?} not found in namespace {namespace:?} (see kubectl debugsession list -A)"
        ),
        (
            Doing::Decide {
                verb, namespace, ..
            },
            403,
        ) => format!(
            "forbidden: {} (to {verb} sessions, ask for the verbs get, patch and approve on debugsessions.debugsession.dev in namespace {namespace}, e.g. kubectl create role approver --verb=get,patch,approve --resource=debugsessions.debugsession.dev -n {namespace})",
            s.message
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
        (Doing::Decide { verb, name, .. }, _) => {
            format!("trying to {verb} debugsession/{name}: {}", s.message)
        }
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
            if why == reason::DENIED {
                // The operator's message: "denied by USER: REASON".
                return Some(match st.message.as_deref() {
                    Some(m) if m.starts_with("denied by ") => {
                        format!("debugsession/{name} was {m}")
                    }
                    Some(m) if !m.is_empty() => format!("debugsession/{name} was denied: {m}"),
                    _ => format!("debugsession/{name} was denied"),
                });
            }
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
    if c.reason == reason::AWAITING_APPROVAL {
        let namespace = s.metadata.namespace.as_deref().unwrap_or("default");
        let again = condition(s, condition::APPROVED)
            .filter(|a| a.reason == reason::APPROVAL_EXPIRED)
            .map(|_| " again (the approvals it had are too old)")
            .unwrap_or_default();
        return Some(format!(
            "debugsession/{name} is waiting for approval{again}: ask someone with the approve verb to run: kubectl debugsession approve {name} -n {namespace}"
        ));
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
    #[test]
    fn refusals_of_approve_and_deny() {
        let doing = |verb| Doing::Decide {
            verb,
            name: "dbg",
            namespace: "prod",
        };
        let m = "admission webhook \"validate.debugsession.dev\" denied the request: alice cannot approve her own session";
        assert_eq!(
            api(&api_err(403, m), doing("approve")),
            format!("admission refused to approve debugsession/dbg: {m}")
        );
        let m = "admission webhook \"validate.debugsession.dev\" denied the request: bob may not approve debugsessions in prod";
        assert_eq!(
            api(&api_err(403, m), doing("deny")),
            format!("admission refused to deny debugsession/dbg: {m}")
        );
        let rbac = api(
            &api_err(
                403,
                "debugsessions.debugsession.dev \"dbg\" is forbidden: User \"bob\" cannot patch resource",
            ),
            doing("approve"),
        );
        assert!(rbac.starts_with("forbidden: debugsessions"), "{rbac}");
        assert!(rbac.contains("--verb=get,patch,approve"), "{rbac}");
        let gone = api(
            &api_err(404, "debugsessions.debugsession.dev \"dbg\" not found"),
            doing("approve"),
        );
        assert!(
            gone.contains("\"dbg\" not found in namespace \"prod\""),
            "{gone}"
        );
    }

    #[test]
    fn awaiting_approval_says_who_can_go_on() {
        let mut s = session(
            Phase::Pending,
            reason::AWAITING_APPROVAL,
            "waiting for 1 more approval: kubectl debugsession approve dbg -n prod",
        );
        s.metadata.namespace = Some("prod".into());
        assert_eq!(
            waiting(&s).unwrap(),
            "debugsession/dbg is waiting for approval: ask someone with the approve verb to run: kubectl debugsession approve dbg -n prod"
        );
        assert!(stopped(&s).is_none());
        let mut expired = s.clone();
        let st = expired.status.as_mut().unwrap();
        let mut c = st.conditions[0].clone();
        c.type_ = condition::APPROVED.into();
        c.reason = reason::APPROVAL_EXPIRED.into();
        st.conditions.push(c);
        assert!(
            waiting(&expired)
                .unwrap()
                .contains("waiting for approval again (the approvals it had are too old)")
        );
    }

    #[test]
    fn denied_gives_the_denial() {
        let s = session(
            Phase::Failed,
            reason::DENIED,
            "denied by carol: not during the freeze",
        );
        assert_eq!(
            stopped(&s).unwrap(),
            "debugsession/dbg was denied by carol: not during the freeze"
        );
        let s = session(Phase::Failed, reason::DENIED, "");
        assert_eq!(stopped(&s).unwrap(), "debugsession/dbg was denied");
    }
}
