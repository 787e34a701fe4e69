//! SubjectAccessReviews: the requester must be able to do by hand what the operator does for them.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use crate::api::{Mode, Target};
use crate::session::stamp::Requester;

/// One permission to ask the apiserver about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    pub name: Option<String>,
}

impl Permission {
    fn attributes(&self, namespace: &str) -> ResourceAttributes {
        ResourceAttributes {
            namespace: Some(namespace.to_string()),
            verb: Some(self.verb.to_string()),
            group: Some(self.group.to_string()),
            resource: Some(self.resource.to_string()),
            subresource: self.subresource.map(String::from),
            name: self.name.clone(),
            ..ResourceAttributes::default()
        }
    }
}

/// `create pods/exec` and `create pods/attach`: either lets a user into the shell.
pub fn shell_access() -> [Permission; 2] {
    let p = |sub| Permission {
        verb: "create",
        group: "",
        resource: "pods",
        subresource: Some(sub),
        name: None,
    };
    [p("exec"), p("attach")]
}

/// `patch` on the target workload.
pub fn workload_patch(target: &Target) -> Permission {
    Permission {
        verb: "patch",
        group: "apps",
        resource: target.kind.plural(),
        subresource: None,
        name: Some(target.name.clone()),
    }
}

/// The SubjectAccessReview asking whether `r` has `p` in `namespace`.
pub fn review(r: &Requester, namespace: &str, p: &Permission) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(r.username.clone()),
            uid: Some(r.uid.clone()).filter(|u| !u.is_empty()),
            groups: Some(r.groups.clone()),
            extra: Some(r.extra.clone()).filter(|e| !e.is_empty()),
            resource_attributes: Some(p.attributes(namespace)),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

async fn allowed(
    client: &kube::Client,
    r: &Requester,
    namespace: &str,
    p: &Permission,
) -> Result<bool, kube::Error> {
    let api = Api::<SubjectAccessReview>::all(client.clone());
    let out = api
        .create(&PostParams::default(), &review(r, namespace, p))
        .await?;
    Ok(out
        .status
        .is_some_and(|s| s.allowed && s.denied != Some(true)))
}

/// `get` on the target (a copy shows its template; an ephemeral shell sees its pods).
pub fn target_get(target: &Target) -> Permission {
    Permission {
        verb: "get",
        group: target.kind.group(),
        resource: target.kind.plural(),
        subresource: None,
        name: Some(target.name.clone()),
    }
}

/// `create pods`: what `kubectl debug --copy-to` needs.
pub fn pod_create() -> Permission {
    Permission {
        verb: "create",
        group: "",
        resource: "pods",
        subresource: None,
        name: None,
    }
}

/// `patch` and `update` on `pods/ephemeralcontainers` (either is what `kubectl debug` needs,
/// by API server version), on the named pod or on every pod of the namespace.
pub fn ephemeral_write(pod: Option<&str>) -> [Permission; 2] {
    let p = |verb| Permission {
        verb,
        group: "",
        resource: "pods",
        subresource: Some("ephemeralcontainers"),
        name: pod.map(String::from),
    };
    [p("patch"), p("update")]
}

/// What `mode` does on `target`, as needs: each inner list is one need, granted by any of its
/// permissions (the shell access of every mode is checked apart).
pub fn needs(target: &Target, mode: Mode) -> Vec<Vec<Permission>> {
    match mode {
        Mode::Patch => vec![vec![workload_patch(target)]],
        Mode::Copy => {
            let mut needs = vec![vec![target_get(target)], vec![pod_create()]];
            // A copy of a named pod shows that pod's spec.
            if let Some(pod) = target.pod.as_deref() {
                needs.push(vec![Permission {
                    verb: "get",
                    group: "",
                    resource: "pods",
                    subresource: None,
                    name: Some(pod.to_string()),
                }]);
            }
            needs
        }
        Mode::Ephemeral => {
            let pod = match target.kind {
                crate::api::TargetKind::Pod => Some(target.name.as_str()),
                _ => target.pod.as_deref(),
            };
            vec![vec![target_get(target)], ephemeral_write(pod).to_vec()]
        }
    }
}

/// Whether the requester may do by hand what the session's mode does for them: `create
/// pods/exec` or `pods/attach` in `namespace`, and
/// - Patch: `patch` the target workload;
/// - Copy: `get` the target (and the pod `target.pod` names) and `create pods`;
/// - Ephemeral: `get` the target and `patch` or `update` `pods/ephemeralcontainers` (of the
///   named pod, else of any pod).
///
/// `Ok(Err(message))` names the missing permission; `Err` is a failed review (transient, retry).
pub async fn decide(
    client: &kube::Client,
    r: &Requester,
    namespace: &str,
    target: &Target,
    mode: Mode,
) -> Result<Result<(), String>, kube::Error> {
    let [exec, attach] = shell_access();
    if !allowed(client, r, namespace, &exec).await?
        && !allowed(client, r, namespace, &attach).await?
    {
        return Ok(Err(missing_shell_access(r, namespace)));
    }
    // Each group is one need: any permission of the group grants it.
    for any_of in needs(target, mode) {
        let mut granted = false;
        for p in &any_of {
            if allowed(client, r, namespace, p).await? {
                granted = true;
                break;
            }
        }
        if !granted {
            return Ok(Err(missing(r, namespace, &any_of, mode)));
        }
    }
    Ok(Ok(()))
}

/// The message for a need none of `any_of` grants.
fn missing(r: &Requester, namespace: &str, any_of: &[Permission], mode: Mode) -> String {
    let what: Vec<String> = any_of
        .iter()
        .map(|p| {
            let resource = match (p.group, p.subresource) {
                ("", Some(sub)) => format!("{}/{sub}", p.resource),
                ("", None) => p.resource.to_string(),
                (g, _) => format!("{}.{g}", p.resource),
            };
            match &p.name {
                Some(n) => format!("{} {resource} {n:?}", p.verb),
                None => format!("{} {resource}", p.verb),
            }
        })
        .collect();
    format!(
        "user {:?} may not {} in namespace {namespace:?}, so may not have a debug shell there in {mode} mode",
        r.username,
        what.join(" or ")
    )
}

/// The custom verb `approve` on the session: what approving or denying it takes.
pub fn session_approve(session: &str) -> Permission {
    Permission {
        verb: crate::session::approval::VERB,
        group: crate::api::GROUP,
        resource: "debugsessions",
        subresource: None,
        name: Some(session.to_string()),
    }
}

/// Whether `r` may approve or deny session `name` in `namespace`. `Ok(Err(message))` says
/// why not; `Err` is a failed review.
pub async fn decide_approve(
    client: &kube::Client,
    r: &Requester,
    namespace: &str,
    name: &str,
) -> Result<Result<(), String>, kube::Error> {
    if allowed(client, r, namespace, &session_approve(name)).await? {
        return Ok(Ok(()));
    }
    Ok(Err(format!(
        "user {:?} may not approve debugsessions.{} {name:?} in namespace {namespace:?} (it takes the verb {:?} on debugsessions, e.g. kubectl create role debugsession-approver --verb={} --resource=debugsessions.{})",
        r.username,
        crate::api::GROUP,
        crate::session::approval::VERB,
        crate::session::approval::VERB,
        crate::api::GROUP,
    )))
}

/// [`decide_approve`] for the webhook: a failed review refuses too (fail closed).
pub async fn check_approve(
    client: &kube::Client,
    r: &Requester,
    namespace: &str,
    name: &str,
) -> Result<(), String> {
    decide_approve(client, r, namespace, name)
        .await
        .unwrap_or_else(|e| {
            Err(format!(
                "could not check the approver's permissions (SubjectAccessReview): {e}"
            ))
        })
}

/// [`decide`] for the webhook: a failed review refuses too (fail closed).
pub async fn check(
    client: &kube::Client,
    r: &Requester,
    namespace: &str,
    target: &Target,
    mode: Mode,
) -> Result<(), String> {
    decide(client, r, namespace, target, mode)
        .await
        .unwrap_or_else(|e| {
            Err(format!(
                "could not check the requester's permissions (SubjectAccessReview): {e}"
            ))
        })
}

pub fn missing_shell_access(r: &Requester, namespace: &str) -> String {
    format!(
        "user {:?} may not create pods/exec or pods/attach in namespace {namespace:?}, so may not have a debug shell there",
        r.username
    )
}

pub fn missing_patch(r: &Requester, namespace: &str, target: &Target) -> String {
    format!(
        "user {:?} may not patch {}.apps {:?} in namespace {namespace:?}, so may not add a debug shell to it",
        r.username,
        target.kind.plural(),
        target.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TargetKind;

    #[test]
    fn reviews_ask_the_right_questions() {
        let r = Requester {
            username: "alice".into(),
            uid: "u-1".into(),
            groups: vec!["team".into()],
            extra: std::collections::BTreeMap::from([("scopes".into(), vec!["x".into()])]),
        };
        let target = Target {
            kind: TargetKind::StatefulSet,
            name: "db".into(),
            container: None,
            pod: None,
        };
        let v = serde_json::to_value(review(&r, "team", &workload_patch(&target))).unwrap();
        assert_eq!(
            v["spec"],
            serde_json::json!({
                "user": "alice",
                "uid": "u-1",
                "groups": ["team"],
                "extra": {"scopes": ["x"]},
                "resourceAttributes": {
                    "namespace": "team", "verb": "patch", "group": "apps",
                    "resource": "statefulsets", "name": "db"
                }
            })
        );
        let [exec, attach] = shell_access();
        let v = serde_json::to_value(review(&r, "team", &exec)).unwrap();
        assert_eq!(v["spec"]["resourceAttributes"]["subresource"], "exec");
        assert_eq!(v["spec"]["resourceAttributes"]["resource"], "pods");
        assert_eq!(v["spec"]["resourceAttributes"]["verb"], "create");
        assert_eq!(attach.subresource, Some("attach"));
        assert_eq!(
            missing_shell_access(&r, "team"),
            r#"user "alice" may not create pods/exec or pods/attach in namespace "team", so may not have a debug shell there"#
        );
        assert!(
            missing_patch(&r, "team", &target)
                .contains(r#"may not patch statefulsets.apps "db" in namespace "team""#)
        );
    }

    #[test]
    fn each_mode_needs_what_kubectl_debug_needs() {
        let flat = |target: &Target, mode| -> Vec<Vec<String>> {
            needs(target, mode)
                .iter()
                .map(|any| {
                    any.iter()
                        .map(|p| {
                            format!(
                                "{} {}/{}{} {}",
                                p.verb,
                                p.group,
                                p.resource,
                                p.subresource.map(|s| format!("/{s}")).unwrap_or_default(),
                                p.name.clone().unwrap_or_default()
                            )
                        })
                        .collect()
                })
                .collect()
        };
        let mut web = Target {
            kind: TargetKind::Deployment,
            name: "web".into(),
            container: None,
            pod: None,
        };
        assert_eq!(flat(&web, Mode::Patch), [["patch apps/deployments web"]]);
        assert_eq!(
            flat(&web, Mode::Copy),
            [vec!["get apps/deployments web"], vec!["create /pods "]]
        );
        assert_eq!(
            flat(&web, Mode::Ephemeral),
            [
                vec!["get apps/deployments web"],
                vec![
                    "patch /pods/ephemeralcontainers ",
                    "update /pods/ephemeralcontainers "
                ]
            ]
        );
        web.pod = Some("web-1".into());
        assert_eq!(flat(&web, Mode::Copy)[2], ["get /pods web-1"]);
        assert_eq!(
            flat(&web, Mode::Ephemeral)[1],
            [
                "patch /pods/ephemeralcontainers web-1",
                "update /pods/ephemeralcontainers web-1"
            ]
        );
        let pod = Target {
            kind: TargetKind::Pod,
            name: "p".into(),
            container: None,
            pod: None,
        };
        assert_eq!(flat(&pod, Mode::Ephemeral)[0], ["get /pods p"]);
        assert_eq!(
            flat(&pod, Mode::Ephemeral)[1][0],
            "patch /pods/ephemeralcontainers p"
        );
    }
}
