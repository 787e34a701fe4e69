//! The `Ephemeral` mode's shell: an ephemeral container whose command ends when the session
//! does, the request bodies of the `pods/{name}/ephemeralcontainers` subresource, and the
//! shell's state in a pod.
//!
//! An ephemeral container cannot be removed from a pod, so the session bounds its command
//! instead: the shell runs under `timeout -s KILL <seconds>`. The image therefore needs a
//! `timeout` that takes `-s` and, when the session names no command, an `sh` (busybox and
//! coreutils-based images have both).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod};
use serde_json::{Value, json};

use super::invalid::Invalid;
use crate::api::reason;

/// The command of a shell bounded by `lifetime`: `timeout -s KILL <seconds>` followed by the
/// shell's command, or by `sh` when it has none. Seconds are rounded up and at least 1
/// (`timeout 0` would never time out).
pub fn bounded_command(command: Option<&[String]>, lifetime: Duration) -> Vec<String> {
    let mut secs = lifetime.as_secs();
    if lifetime.subsec_nanos() > 0 {
        secs += 1;
    }
    let mut out: Vec<String> = ["timeout", "-s", "KILL"]
        .into_iter()
        .map(String::from)
        .collect();
    out.push(secs.max(1).to_string());
    match command.filter(|c| !c.is_empty()) {
        Some(c) => out.extend_from_slice(c),
        None => out.push("sh".to_string()),
    }
    out
}

/// The ephemeral container for `shell`: its name, image, imagePullPolicy, env, stdin, tty and
/// securityContext, with `targetContainerName` set to the app container, and its command
/// bounded by `lifetime` ([`bounded_command`]). A shell with `args` but no `command` keeps its
/// args, which then go to `sh`.
///
/// With a target container the shell joins that container's process namespace, where it is not
/// process 1, so the `KILL` reaches it; without one (and without `shareProcessNamespace`) it may
/// be process 1 of its own namespace, which ignores a `KILL` sent from inside.
///
/// The API server refuses resources, ports and probes on ephemeral containers: a shell with
/// resources (any request, limit or claim) is refused with `InvalidOptions`; the other fields
/// are not carried over.
pub fn build(
    shell: &Container,
    target_container: Option<&str>,
    lifetime: Duration,
) -> Result<EphemeralContainer, Invalid> {
    let has_resources = shell.resources.as_ref().is_some_and(|r| {
        r.requests.as_ref().is_some_and(|m| !m.is_empty())
            || r.limits.as_ref().is_some_and(|m| !m.is_empty())
            || r.claims.as_ref().is_some_and(|c| !c.is_empty())
    });
    if has_resources {
        return Err(Invalid {
            reason: reason::INVALID_OPTIONS,
            message: "spec.shell.resources are not allowed for Ephemeral mode: the API server refuses resources on ephemeral containers; remove them or use mode Copy or Patch".to_string(),
        });
    }
    Ok(EphemeralContainer {
        name: shell.name.clone(),
        image: shell.image.clone(),
        image_pull_policy: shell.image_pull_policy.clone(),
        command: Some(bounded_command(shell.command.as_deref(), lifetime)),
        args: shell.args.clone(),
        env: shell.env.clone(),
        stdin: shell.stdin,
        tty: shell.tty,
        security_context: shell.security_context.clone(),
        target_container_name: target_container.map(String::from),
        ..EphemeralContainer::default()
    })
}

fn to_value(c: &EphemeralContainer) -> Value {
    serde_json::to_value(c).unwrap_or(Value::Null)
}

/// The body of a `PUT` on `pods/{name}/ephemeralcontainers` for Kubernetes 1.20 and 1.21 (an
/// `EphemeralContainers` object; the feature gate was off by default there). The list replaces
/// the pod's, so it holds the `existing` ephemeral containers followed by `new`.
pub fn legacy_body(
    pod_name: &str,
    namespace: &str,
    existing: Vec<EphemeralContainer>,
    new: EphemeralContainer,
) -> Value {
    let list: Vec<Value> = existing
        .iter()
        .chain(std::iter::once(&new))
        .map(to_value)
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "EphemeralContainers",
        "metadata": {"name": pod_name, "namespace": namespace},
        "ephemeralContainers": list,
    })
}

/// The body of a strategic-merge `PATCH` on `pods/{name}/ephemeralcontainers` for Kubernetes
/// 1.22 and later: the list merges by name, so it holds only `new`.
pub fn patch_body(new: &EphemeralContainer) -> Value {
    json!({"spec": {"ephemeralContainers": [to_value(new)]}})
}

/// Whether an API server of this version (`/version`'s `major` and `minor`) takes the legacy
/// `EphemeralContainers` body: 1.x before 1.22. Minors such as `20+` parse by their leading
/// digits; a version that does not parse is taken as current.
pub fn uses_legacy_api(major: &str, minor: &str) -> bool {
    let leading = |s: &str| -> Option<u32> {
        let digits: String = s.trim().chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    leading(major) == Some(1) && leading(minor).is_some_and(|m| m < 22)
}

/// Where an ephemeral shell is in a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShellState {
    /// The pod has no ephemeral container of that name.
    Missing,
    /// Added but not running: the kubelet's reason (`ContainerCreating`, `ImagePullBackOff`...),
    /// or `Pending` when the container has no status yet or its status names no reason.
    Waiting(String),
    Running,
    /// Ended: the exit code and the kubelet's reason (`Completed`, `Error`...; `Terminated`
    /// when it names none). A shell bounded by the session ends with 137 (`KILL`).
    Terminated {
        exit_code: i32,
        reason: String,
    },
}

/// The state of the ephemeral container `container` in `pod`, from
/// `status.ephemeralContainerStatuses`. A container in `spec.ephemeralContainers` that has no
/// status yet is `Waiting("Pending")`, not `Missing`: it was added and cannot be added again.
pub fn state(pod: &Pod, container: &str) -> ShellState {
    const PENDING: &str = "Pending";
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref())
        .and_then(|l| l.iter().find(|c| c.name == container));
    let Some(status) = status else {
        let in_spec = pod
            .spec
            .as_ref()
            .and_then(|s| s.ephemeral_containers.as_ref())
            .is_some_and(|l| l.iter().any(|c| c.name == container));
        return if in_spec {
            ShellState::Waiting(PENDING.to_string())
        } else {
            ShellState::Missing
        };
    };
    let st = status.state.clone().unwrap_or_default();
    if let Some(t) = st.terminated {
        return ShellState::Terminated {
            exit_code: t.exit_code,
            reason: t.reason.unwrap_or_else(|| "Terminated".to_string()),
        };
    }
    if st.running.is_some() {
        return ShellState::Running;
    }
    ShellState::Waiting(
        st.waiting
            .and_then(|w| w.reason)
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| PENDING.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Capabilities, EnvVar, Probe, ResourceRequirements, SecurityContext,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn shell() -> Container {
        Container {
            name: "debug-shell".into(),
            image: Some("busybox:1.36".into()),
            image_pull_policy: Some("IfNotPresent".into()),
            env: Some(vec![EnvVar {
                name: "A".into(),
                value: Some("1".into()),
                value_from: None,
            }]),
            stdin: Some(true),
            tty: Some(true),
            security_context: Some(SecurityContext {
                capabilities: Some(Capabilities {
                    add: Some(vec!["SYS_PTRACE".into()]),
                    drop: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_container_carries_the_shell_and_targets_the_app() {
        let s = shell();
        let e = build(&s, Some("nginx"), Duration::from_secs(3600)).unwrap();
        assert_eq!(e.name, "debug-shell");
        assert_eq!(e.image, s.image);
        assert_eq!(e.image_pull_policy, s.image_pull_policy);
        assert_eq!(e.env, s.env);
        assert_eq!((e.stdin, e.tty), (Some(true), Some(true)));
        assert_eq!(e.security_context, s.security_context);
        assert_eq!(e.target_container_name.as_deref(), Some("nginx"));
        assert_eq!(
            e.command,
            Some(strings(&["timeout", "-s", "KILL", "3600", "sh"]))
        );
        assert_eq!(e.args, None);
        assert!(e.resources.is_none() && e.ports.is_none() && e.readiness_probe.is_none());
        assert_eq!(
            build(&s, None, Duration::from_secs(60))
                .unwrap()
                .target_container_name,
            None
        );
    }

    #[test]
    fn commands_and_args_are_bounded_by_the_lifetime() {
        let mut s = shell();
        s.command = Some(strings(&["/bin/bash", "-l"]));
        s.args = Some(strings(&["-x"]));
        let e = build(&s, Some("app"), Duration::from_secs(90)).unwrap();
        assert_eq!(
            e.command,
            Some(strings(&["timeout", "-s", "KILL", "90", "/bin/bash", "-l"]))
        );
        assert_eq!(e.args, Some(strings(&["-x"])));
        // Args without a command go to sh.
        let mut s = shell();
        s.args = Some(strings(&["-c", "sleep 5"]));
        let e = build(&s, Some("app"), Duration::from_secs(90)).unwrap();
        assert_eq!(
            e.command,
            Some(strings(&["timeout", "-s", "KILL", "90", "sh"]))
        );
        assert_eq!(e.args, Some(strings(&["-c", "sleep 5"])));
        // An empty command counts as none; fractions round up; zero is at least one second.
        assert_eq!(
            bounded_command(Some(&[]), Duration::from_millis(1500)),
            strings(&["timeout", "-s", "KILL", "2", "sh"])
        );
        assert_eq!(bounded_command(None, Duration::ZERO)[3], "1");
    }

    #[test]
    fn resources_are_refused_and_other_fields_dropped() {
        let mut s = shell();
        s.resources = Some(ResourceRequirements {
            limits: Some([("memory".to_string(), Quantity("64Mi".into()))].into()),
            ..Default::default()
        });
        let e = build(&s, Some("app"), Duration::from_secs(60)).unwrap_err();
        assert_eq!(e.reason, reason::INVALID_OPTIONS);
        assert!(
            e.message
                .contains("resources are not allowed for Ephemeral mode"),
            "{}",
            e.message
        );
        // Empty resources ask for nothing and are left out.
        s.resources = Some(ResourceRequirements::default());
        s.readiness_probe = Some(Probe::default());
        let e = build(&s, Some("app"), Duration::from_secs(60)).unwrap();
        assert!(e.resources.is_none() && e.readiness_probe.is_none());
    }

    #[test]
    fn request_bodies() {
        let new = build(&shell(), Some("app"), Duration::from_secs(60)).unwrap();
        let old = EphemeralContainer {
            name: "debugger-1".into(),
            image: Some("busybox".into()),
            ..Default::default()
        };
        let body = legacy_body("web-0", "team", vec![old], new.clone());
        assert_eq!(body["apiVersion"], "v1");
        assert_eq!(body["kind"], "EphemeralContainers");
        assert_eq!(
            body["metadata"],
            json!({"name": "web-0", "namespace": "team"})
        );
        let list = body["ephemeralContainers"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["name"], "debugger-1");
        assert_eq!(list[1]["name"], "debug-shell");
        assert_eq!(list[1]["targetContainerName"], "app");
        assert_eq!(list[1]["command"][0], "timeout");

        let patch = patch_body(&new);
        assert_eq!(
            patch,
            json!({"spec": {"ephemeralContainers": [serde_json::to_value(&new).unwrap()]}})
        );
        assert_eq!(patch["spec"]["ephemeralContainers"][0]["stdin"], true);
        // No null fields: the API server's schema has none.
        assert!(!patch.to_string().contains("null"), "{patch}");
    }

    #[test]
    fn legacy_api_versions() {
        let split = |v: &'static str| v.split_once('.').unwrap_or((v, ""));
        for v in ["1.16", "1.20", "1.21", "1.20+", "1.21+", "1.21.3"] {
            let (major, minor) = split(v);
            assert!(uses_legacy_api(major, minor), "{v}");
        }
        for v in ["1.22", "1.23+", "1.31", "2.0", "1.", "", "v1.20"] {
            let (major, minor) = split(v);
            assert!(!uses_legacy_api(major, minor), "{v}");
        }
    }

    #[test]
    fn states_come_from_the_ephemeral_container_statuses() {
        let pod = |spec_names: &[&str], status: Value| -> Pod {
            let containers: Vec<Value> = spec_names.iter().map(|n| json!({"name": n})).collect();
            serde_json::from_value(json!({
                "metadata": {"name": "web-0"},
                "spec": {"containers": [{"name": "app"}], "ephemeralContainers": containers},
                "status": {"ephemeralContainerStatuses": status},
            }))
            .unwrap()
        };
        let st = |state: Value| {
            json!([{"name": "debug-shell", "image": "busybox", "imageID": "", "ready": false,
                    "restartCount": 0, "state": state}])
        };
        assert_eq!(
            state(&pod(&[], json!([])), "debug-shell"),
            ShellState::Missing
        );
        assert_eq!(state(&Pod::default(), "debug-shell"), ShellState::Missing);
        assert_eq!(
            state(&pod(&["debug-shell"], json!([])), "debug-shell"),
            ShellState::Waiting("Pending".into())
        );
        let shell = &["debug-shell"];
        assert_eq!(
            state(&pod(shell, st(json!({"running": {}}))), "debug-shell"),
            ShellState::Running
        );
        assert_eq!(
            state(
                &pod(
                    shell,
                    st(json!({"waiting": {"reason": "ImagePullBackOff"}}))
                ),
                "debug-shell"
            ),
            ShellState::Waiting("ImagePullBackOff".into())
        );
        assert_eq!(
            state(&pod(shell, st(json!({}))), "debug-shell"),
            ShellState::Waiting("Pending".into())
        );
        assert_eq!(
            state(
                &pod(
                    shell,
                    st(json!({"terminated": {"exitCode": 137, "reason": "Error"}}))
                ),
                "debug-shell"
            ),
            ShellState::Terminated {
                exit_code: 137,
                reason: "Error".into()
            }
        );
        assert_eq!(
            state(
                &pod(shell, st(json!({"terminated": {"exitCode": 0}}))),
                "debug-shell"
            ),
            ShellState::Terminated {
                exit_code: 0,
                reason: "Terminated".into()
            }
        );
        // Another container's status is not ours.
        let other = pod(&["other"], st(json!({"running": {}})));
        assert_eq!(
            state(&other, "other"),
            ShellState::Waiting("Pending".into())
        );
        assert_eq!(state(&other, "third"), ShellState::Missing);
    }
}
