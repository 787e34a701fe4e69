//! Pure validation of a session's spec: the TTL, the shell and the target container.

use std::time::Duration;

use k8s_openapi::api::core::v1::Container;

use super::syntax::{self, is_dns_label};
use super::{mode, profile};
use crate::api::{DebugSessionSpec, Mode, Profile, reason};
use crate::session::settings::{DEFAULT_CONTAINER_NAME, MIN_TTL, Settings};
use crate::session::ttl;
use crate::workload::Workload;

pub use super::invalid::Invalid;

/// What a session asks for, resolved once with the operator's defaults: the mode, the TTL, the
/// profile and the shell container it adds.
#[derive(Clone, Debug, PartialEq)]
pub struct Asked {
    pub mode: Mode,
    pub ttl: Duration,
    pub profile: Profile,
    pub shell: Container,
}

/// Resolves and checks the spec's mode, TTL and shell (everything that needs no cluster).
pub fn resolve(spec: &DebugSessionSpec, settings: &Settings) -> Result<Asked, Invalid> {
    Ok(Asked {
        mode: mode::resolve(spec, &settings.modes)?,
        ttl: session_ttl(spec, settings)?,
        profile: spec.profile.unwrap_or(Profile::General),
        shell: shell_container(spec, settings)?,
    })
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
    // The profile brings its own capabilities; these are the ones asked for on top.
    let caps = shell.capabilities.unwrap_or_default();
    if let Some(bad) = caps
        .iter()
        .find(|c| c.is_empty() || !c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'))
    {
        return Err(Invalid::new(
            reason::INVALID_SHELL,
            format!("spec.shell.capabilities: {bad:?} is not a capability name such as SYS_PTRACE"),
        ));
    }
    if let Some(why) = syntax::image_reference_error(&image) {
        return Err(Invalid::new(
            reason::INVALID_IMAGE,
            format!("spec.shell.image {image:?} is not an image reference: {why}"),
        ));
    }
    env_vars(shell.env.as_deref().unwrap_or_default())?;
    if let Some(r) = &shell.resources {
        resources(r)?;
    }
    let record = shell.record.unwrap_or(false) || settings.record_shell;
    let (command, args) = if record {
        super::record::wrap(shell.command.as_deref(), shell.args.as_deref())
    } else {
        (shell.command, shell.args)
    };
    // A recorded shell keeps its terminal: without a TTY nothing echoes what is typed.
    let (stdin, tty) = if record {
        (true, true)
    } else {
        (shell.stdin.unwrap_or(true), shell.tty.unwrap_or(true))
    };
    Ok(Container {
        name,
        image: Some(image),
        image_pull_policy: Some("IfNotPresent".into()),
        command,
        args,
        env: shell.env,
        resources: shell.resources,
        stdin: Some(stdin),
        tty: Some(tty),
        security_context: Some(profile::security_context(
            spec.profile.unwrap_or(Profile::General),
            &caps,
        )),
        ..Container::default()
    })
}

/// The API server's rules for environment variables: a valid name, and `value` or `valueFrom`.
fn env_vars(env: &[k8s_openapi::api::core::v1::EnvVar]) -> Result<(), Invalid> {
    for (i, e) in env.iter().enumerate() {
        if !syntax::is_env_var_name(&e.name) {
            return Err(Invalid::new(
                reason::INVALID_ENV,
                format!(
                    "spec.shell.env[{i}].name {:?} is not a valid environment variable name (letters, digits, '_', '-', '.'; not starting with a digit)",
                    e.name
                ),
            ));
        }
        if e.value.as_deref().is_some_and(|v| !v.is_empty()) && e.value_from.is_some() {
            return Err(Invalid::new(
                reason::INVALID_ENV,
                format!(
                    "spec.shell.env[{i}] ({}) sets both value and valueFrom",
                    e.name
                ),
            ));
        }
    }
    Ok(())
}

/// Every quantity parses and is not negative, and no request exceeds its limit.
fn resources(r: &k8s_openapi::api::core::v1::ResourceRequirements) -> Result<(), Invalid> {
    let parse = |kind: &str,
                 map: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| {
        let mut out = std::collections::BTreeMap::new();
        for (name, q) in map.iter().flatten() {
            let field = format!("spec.shell.resources.{kind}.{name}");
            let v = syntax::quantity(&q.0).ok_or_else(|| {
                Invalid::new(
                    reason::INVALID_RESOURCES,
                    format!(
                        "{field} {:?} is not a quantity (such as 100m, 64Mi, 1)",
                        q.0
                    ),
                )
            })?;
            if v < 0.0 {
                return Err(Invalid::new(
                    reason::INVALID_RESOURCES,
                    format!("{field} {:?} is negative", q.0),
                ));
            }
            out.insert(name.clone(), (v, q.0.clone()));
        }
        Ok(out)
    };
    let requests = parse("requests", &r.requests)?;
    let limits = parse("limits", &r.limits)?;
    for (name, (req, text)) in &requests {
        if let Some((lim, lim_text)) = limits.get(name)
            && req > lim
        {
            return Err(Invalid::new(
                reason::INVALID_RESOURCES,
                format!(
                    "spec.shell.resources.requests.{name} {text} is more than limits.{name} {lim_text}"
                ),
            ));
        }
    }
    Ok(())
}

/// The longest field manager name the API server accepts.
pub const MAX_FIELD_MANAGER: usize = 128;

/// A session's name must leave its field manager (`debugsession/<namespace>/<name>`) within the
/// API server's 128 characters.
pub fn session_name(namespace: &str, name: &str) -> Result<(), Invalid> {
    let manager = crate::api::session_manager(namespace, name);
    if manager.len() > MAX_FIELD_MANAGER {
        let room =
            MAX_FIELD_MANAGER.saturating_sub(crate::api::session_manager(namespace, "").len());
        return Err(Invalid::new(
            reason::NAME_TOO_LONG,
            format!(
                "the session name is {} characters long; in namespace {namespace:?} it may have at most {room}, so that its field manager {manager:?} fits the API server's {MAX_FIELD_MANAGER} characters",
                name.len()
            ),
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Shell, TargetKind};

    fn spec(ttl: Option<&str>, shell: Option<Shell>) -> DebugSessionSpec {
        DebugSessionSpec {
            ttl: ttl.map(String::from),
            shell,
            ..DebugSessionSpec::new(TargetKind::Deployment, "web")
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
        // Recorded (asked for, or by the operator): wrapped, and always on a terminal.
        let quiet = Some(Shell {
            tty: Some(false),
            stdin: Some(false),
            ..Shell::default()
        });
        let forced = Settings {
            record_shell: true,
            ..Settings::default()
        };
        let c = shell_container(&spec(None, quiet), &forced).unwrap();
        assert_eq!(
            (c.stdin, c.tty, c.command.unwrap()[1].as_str()),
            (Some(true), Some(true), "-c")
        );
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
    fn what_the_api_server_would_refuse_is_caught() {
        use k8s_openapi::api::core::v1::{
            EnvVar, EnvVarSource, ResourceRequirements, SecretKeySelector,
        };
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let s = Settings::default();
        let res = |requests: &[(&str, &str)], limits: &[(&str, &str)]| {
            let m = |kv: &[(&str, &str)]| {
                Some(
                    kv.iter()
                        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                        .collect(),
                )
            };
            Shell {
                resources: Some(ResourceRequirements {
                    requests: m(requests),
                    limits: m(limits),
                    ..Default::default()
                }),
                ..Shell::default()
            }
        };
        let env = |name: &str, value: Option<&str>, from: bool| Shell {
            env: Some(vec![EnvVar {
                name: name.into(),
                value: value.map(String::from),
                value_from: from.then(|| EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "db".into(),
                        key: "pw".into(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
            }]),
            ..Shell::default()
        };
        let image = |i: &str| Shell {
            image: Some(i.into()),
            ..Shell::default()
        };
        // (case, shell, expected reason or None, text the message must contain)
        let cases: Vec<(&str, Shell, Option<&str>, &str)> = vec![
            (
                "cpu lots",
                res(&[], &[("cpu", "lots")]),
                Some(reason::INVALID_RESOURCES),
                "spec.shell.resources.limits.cpu \"lots\"",
            ),
            (
                "negative",
                res(&[("memory", "-1Mi")], &[]),
                Some(reason::INVALID_RESOURCES),
                "negative",
            ),
            (
                "requests above limits",
                res(&[("memory", "2Gi")], &[("memory", "1Gi")]),
                Some(reason::INVALID_RESOURCES),
                "requests.memory 2Gi is more than limits.memory 1Gi",
            ),
            (
                "milli vs whole",
                res(&[("cpu", "1500m")], &[("cpu", "1")]),
                Some(reason::INVALID_RESOURCES),
                "requests.cpu",
            ),
            (
                "valid resources",
                res(
                    &[("cpu", "100m"), ("memory", "64Mi")],
                    &[("cpu", "0.5"), ("memory", "1Gi")],
                ),
                None,
                "",
            ),
            (
                "env name",
                env("1BAD", Some("x"), false),
                Some(reason::INVALID_ENV),
                "spec.shell.env[0].name \"1BAD\"",
            ),
            (
                "env value and valueFrom",
                env("A", Some("x"), true),
                Some(reason::INVALID_ENV),
                "both value and valueFrom",
            ),
            ("env from a secret", env("A", None, true), None, ""),
            (
                "image upper case",
                image("Busybox:Latest"),
                Some(reason::INVALID_IMAGE),
                "spec.shell.image",
            ),
            (
                "image empty tag",
                image("busybox:"),
                Some(reason::INVALID_IMAGE),
                "tag",
            ),
            (
                "image with a space",
                image("bad image"),
                Some(reason::INVALID_IMAGE),
                "not an image reference",
            ),
            ("image ok", image("registry.local/busybox:1.35.0"), None, ""),
        ];
        for (case, shell, want, text) in cases {
            let got = shell_container(&spec(None, Some(shell)), &s);
            match want {
                None => assert!(got.is_ok(), "{case}: {got:?}"),
                Some(r) => {
                    let e = got.expect_err(case);
                    assert_eq!(e.reason, r, "{case}: {}", e.message);
                    assert!(e.message.contains(text), "{case}: {}", e.message);
                }
            }
        }
    }

    #[test]
    fn session_names_fit_the_field_manager_limit() {
        // debugsession/ (13) + namespace + / + name <= 128
        let ns = "team-payments"; // 13
        assert_eq!(session_name(ns, &"a".repeat(101)), Ok(()));
        let e = session_name(ns, &"a".repeat(102)).unwrap_err();
        assert_eq!(e.reason, reason::NAME_TOO_LONG);
        assert!(e.message.contains("at most 101"), "{}", e.message);
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
