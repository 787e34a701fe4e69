//! Pure validation of a session's spec: the TTL, the shell and the target container.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Capabilities, Container, SecurityContext};

use crate::api::{DebugSessionSpec, reason};
use crate::settings::{DEFAULT_CAPABILITIES, DEFAULT_CONTAINER_NAME, MIN_TTL, Settings};
use crate::ttl;
use crate::workload::Workload;

/// A refusal: a stable condition reason and a sentence for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub reason: &'static str,
    pub message: String,
}

impl Invalid {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            reason,
            message: message.into(),
        }
    }
}

/// Resolves the session's TTL: the default when none is given, refused outside [30s, max].
pub fn session_ttl(spec: &DebugSessionSpec, settings: &Settings) -> Result<Duration, Invalid> {
    let Some(text) = spec.ttl.as_deref() else {
        return Ok(settings.default_ttl.min(settings.max_ttl));
    };
    let d = ttl::parse(text)
        .map_err(|e| Invalid::new(reason::INVALID_TTL, format!("spec.ttl: {e}")))?;
    if d < MIN_TTL {
        return Err(Invalid::new(
            reason::TTL_TOO_SHORT,
            format!(
                "spec.ttl {text} is shorter than the minimum of {}",
                ttl::format(MIN_TTL)
            ),
        ));
    }
    if d > settings.max_ttl {
        return Err(Invalid::new(
            reason::TTL_TOO_LONG,
            format!(
                "spec.ttl {text} is longer than the maximum of {} set by the operator",
                ttl::format(settings.max_ttl)
            ),
        ));
    }
    Ok(d)
}

/// Builds the shell container the session adds to the pod template.
pub fn shell_container(spec: &DebugSessionSpec, settings: &Settings) -> Result<Container, Invalid> {
    let shell = spec.shell.clone().unwrap_or_default();
    let image = shell
        .image
        .unwrap_or_else(|| settings.default_image.clone());
    if image.trim().is_empty() {
        return Err(Invalid::new(
            reason::EMPTY_IMAGE,
            "spec.shell.image is empty: name an image for the debug shell",
        ));
    }
    if image.trim() != image {
        return Err(Invalid::new(
            reason::INVALID_SHELL,
            format!("spec.shell.image {image:?} has surrounding spaces"),
        ));
    }
    let name = shell
        .container_name
        .unwrap_or_else(|| DEFAULT_CONTAINER_NAME.to_string());
    if !is_dns_label(&name) {
        return Err(Invalid::new(
            reason::INVALID_SHELL,
            format!(
                "spec.shell.containerName {name:?} is not a valid container name (lowercase letters, digits and '-', at most 63)"
            ),
        ));
    }
    let caps = shell
        .capabilities
        .unwrap_or_else(|| DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect());
    if let Some(bad) = caps
        .iter()
        .find(|c| c.is_empty() || !c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'))
    {
        return Err(Invalid::new(
            reason::INVALID_SHELL,
            format!("spec.shell.capabilities: {bad:?} is not a capability name such as SYS_PTRACE"),
        ));
    }
    Ok(Container {
        name,
        image: Some(image),
        image_pull_policy: Some("IfNotPresent".into()),
        command: shell.command,
        args: shell.args,
        env: shell.env,
        resources: shell.resources,
        stdin: Some(shell.stdin.unwrap_or(true)),
        tty: Some(shell.tty.unwrap_or(true)),
        security_context: Some(SecurityContext {
            capabilities: Some(Capabilities {
                add: Some(caps),
                drop: None,
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    })
}

/// Checks the session against its workload: the named app container exists and the shell's
/// name is free among containers, initContainers and ephemeralContainers. `own` names the
/// container that is this session's own shell, already in the workload.
pub fn against_workload(
    spec: &DebugSessionSpec,
    shell: &Container,
    workload: &Workload,
    own: Option<&str>,
) -> Result<(), Invalid> {
    let names = workload.container_names();
    if let Some(app) = spec.target.container.as_deref()
        && (!names.iter().any(|n| n == app) || own == Some(app))
    {
        return Err(Invalid::new(
            reason::CONTAINER_NOT_FOUND,
            format!(
                "{} {} has no container {app:?} (it has: {})",
                spec.target.kind,
                spec.target.name,
                names.join(", ")
            ),
        ));
    }
    let taken = workload
        .all_container_names()
        .into_iter()
        .any(|n| n == shell.name && own != Some(n.as_str()));
    if taken {
        return Err(Invalid::new(
            reason::CONTAINER_NAME_CLASH,
            format!(
                "{} {} already has a container or initContainer named {:?}: set spec.shell.containerName to another name",
                spec.target.kind, spec.target.name, shell.name
            ),
        ));
    }
    Ok(())
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Shell, Target, TargetKind};

    fn spec(ttl: Option<&str>, shell: Option<Shell>) -> DebugSessionSpec {
        DebugSessionSpec {
            target: Target {
                kind: TargetKind::Deployment,
                name: "web".into(),
                container: None,
            },
            ttl: ttl.map(String::from),
            shell,
        }
    }

    #[test]
    fn ttl_defaults_bounds_and_errors() {
        let s = Settings::default();
        assert_eq!(
            session_ttl(&spec(None, None), &s),
            Ok(Duration::from_secs(3600))
        );
        assert_eq!(
            session_ttl(&spec(Some("1h30m"), None), &s),
            Ok(Duration::from_secs(5400))
        );
        assert_eq!(
            session_ttl(&spec(Some("30s"), None), &s),
            Ok(Duration::from_secs(30))
        );
        let cases = [
            ("29s", reason::TTL_TOO_SHORT, "minimum of 30s"),
            ("25h", reason::TTL_TOO_LONG, "maximum of 24h"),
            ("soon", reason::INVALID_TTL, "not a duration"),
        ];
        for (ttl, want_reason, want_text) in cases {
            let err = session_ttl(&spec(Some(ttl), None), &s).unwrap_err();
            assert_eq!(err.reason, want_reason, "{ttl}");
            assert!(err.message.contains(want_text), "{ttl}: {}", err.message);
        }
    }

    #[test]
    fn default_shell_is_the_share_process_namespace_page_shell() {
        let c = shell_container(&spec(None, None), &Settings::default()).unwrap();
        assert_eq!(c.name, "debug-shell");
        assert_eq!(c.image.as_deref(), Some("busybox:1.36"));
        assert_eq!((c.stdin, c.tty), (Some(true), Some(true)));
        let caps = c
            .security_context
            .unwrap()
            .capabilities
            .unwrap()
            .add
            .unwrap();
        assert_eq!(caps, vec!["SYS_PTRACE".to_string()]);
    }

    #[test]
    fn shell_errors() {
        let s = Settings::default();
        let cases = [
            (
                Shell {
                    image: Some(String::new()),
                    ..Shell::default()
                },
                reason::EMPTY_IMAGE,
            ),
            (
                Shell {
                    image: Some("  ".into()),
                    ..Shell::default()
                },
                reason::EMPTY_IMAGE,
            ),
            (
                Shell {
                    container_name: Some("Debug_Shell".into()),
                    ..Shell::default()
                },
                reason::INVALID_SHELL,
            ),
            (
                Shell {
                    capabilities: Some(vec!["sys_ptrace".into()]),
                    ..Shell::default()
                },
                reason::INVALID_SHELL,
            ),
        ];
        for (shell, want) in cases {
            assert_eq!(
                shell_container(&spec(None, Some(shell.clone())), &s)
                    .unwrap_err()
                    .reason,
                want,
                "{shell:?}"
            );
        }
    }

    #[test]
    fn workload_checks() {
        let s = Settings::default();
        let mut w = Workload::default();
        w.template.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            containers: vec![Container {
                name: "nginx".into(),
                ..Container::default()
            }],
            ..Default::default()
        });
        let shell = shell_container(&spec(None, None), &s).unwrap();
        assert_eq!(
            against_workload(&spec(None, None), &shell, &w, None),
            Ok(())
        );
        let mut wrong = spec(None, None);
        wrong.target.container = Some("app".into());
        assert_eq!(
            against_workload(&wrong, &shell, &w, None)
                .unwrap_err()
                .reason,
            reason::CONTAINER_NOT_FOUND
        );
        let clash = Container {
            name: "nginx".into(),
            ..shell
        };
        assert_eq!(
            against_workload(&spec(None, None), &clash, &w, None)
                .unwrap_err()
                .reason,
            reason::CONTAINER_NAME_CLASH
        );
        // A running session renaming its shell to the app container's name still clashes.
        assert_eq!(
            against_workload(&spec(None, None), &clash, &w, Some("debug-shell"))
                .unwrap_err()
                .reason,
            reason::CONTAINER_NAME_CLASH
        );
        // initContainers and ephemeralContainers count too.
        let mut spec_with_init = w.template.spec.clone().unwrap();
        spec_with_init.init_containers = Some(vec![Container {
            name: "migrate".into(),
            ..Container::default()
        }]);
        spec_with_init.ephemeral_containers =
            Some(vec![k8s_openapi::api::core::v1::EphemeralContainer {
                name: "debugger-1".into(),
                ..Default::default()
            }]);
        w.template.spec = Some(spec_with_init);
        for name in ["migrate", "debugger-1"] {
            let clash = Container {
                name: name.into(),
                ..shell_container(&spec(None, None), &s).unwrap()
            };
            assert_eq!(
                against_workload(&spec(None, None), &clash, &w, Some("debug-shell"))
                    .unwrap_err()
                    .reason,
                reason::CONTAINER_NAME_CLASH,
                "{name}"
            );
        }
        // Our own shell, already there, is no clash.
        let own = shell_container(&spec(None, None), &s).unwrap();
        let mut with_own = w.clone();
        if let Some(ps) = with_own.template.spec.as_mut() {
            ps.containers.push(own.clone());
        }
        assert_eq!(
            against_workload(&spec(None, None), &own, &with_own, Some("debug-shell")),
            Ok(())
        );
    }
}
