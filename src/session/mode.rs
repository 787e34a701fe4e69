//! The mode of a session (how the shell gets in), resolved from the spec and checked against the
//! target and the modes the operator enables.

use super::choice::{self, names};
use super::invalid::Invalid;
use crate::api::{DebugSessionSpec, Mode, TargetKind, reason};

/// Every mode, in the order of the `--modes` flag's default.
pub const ALL: [Mode; 3] = Mode::ALL;

/// The session's mode: `spec.mode`, or the target kind's default (`Patch` for Deployments,
/// StatefulSets and DaemonSets, `Ephemeral` for Pods).
///
/// Refused, in this order:
/// - `Patch` on a Pod target (`ModeNotSupported`): a Pod's containers cannot change;
/// - a mode the operator does not enable (`ModeDisabled`), naming the enabled ones;
/// - `spec.copy` with a mode other than `Copy` (`InvalidOptions`);
/// - `target.pod` with `Patch`, which changes the template of every pod (`InvalidOptions`);
/// - `target.pod` with a Pod target, which already names its pod (`InvalidOptions`).
pub fn resolve(spec: &DebugSessionSpec, enabled: &[Mode]) -> Result<Mode, Invalid> {
    let target = &spec.target;
    let mode = spec.mode.unwrap_or(target.kind.default_mode());
    if mode == Mode::Patch && target.kind == TargetKind::Pod {
        return Err(Invalid::new(
            reason::MODE_NOT_SUPPORTED,
            format!(
                "mode Patch cannot act on Pod {}: a Pod's containers cannot change: use mode Copy or Ephemeral",
                target.name
            ),
        ));
    }
    if !enabled.contains(&mode) {
        let how = if spec.mode.is_some() {
            format!("spec.mode {mode}")
        } else {
            format!("mode {mode} (the default for a {})", target.kind)
        };
        return Err(Invalid::new(
            reason::MODE_DISABLED,
            format!(
                "{how} is disabled: the operator enables the modes {}; set spec.mode to one of them",
                names(enabled)
            ),
        ));
    }
    if spec.copy.is_some() && mode != Mode::Copy {
        return Err(Invalid::new(
            reason::INVALID_OPTIONS,
            format!(
                "spec.copy applies to mode Copy only, and the mode is {mode}: remove spec.copy or set spec.mode to Copy"
            ),
        ));
    }
    if let Some(pod) = target.pod.as_deref() {
        if mode == Mode::Patch {
            return Err(Invalid::new(
                reason::INVALID_OPTIONS,
                format!(
                    "spec.target.pod {pod:?} does not apply to mode Patch, which changes the pod template of every pod: remove it or use mode Copy or Ephemeral"
                ),
            ));
        }
        if target.kind == TargetKind::Pod {
            return Err(Invalid::new(
                reason::INVALID_OPTIONS,
                format!(
                    "spec.target.pod {pod:?} is for the pods of a workload: a Pod target names its pod in spec.target.name ({:?})",
                    target.name
                ),
            ));
        }
    }
    Ok(mode)
}

/// Parses a mode name, in any case.
pub fn parse(name: &str) -> Option<Mode> {
    choice::parse(name)
}

/// Parses a comma-separated list of modes such as `patch,copy,ephemeral` (any case, spaces and
/// repeats allowed). An unknown name, or a list that names none, is an error.
pub fn parse_list(csv: &str) -> Result<Vec<Mode>, String> {
    choice::parse_list(csv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CopyOptions;

    fn spec(kind: TargetKind, mode: Option<Mode>) -> DebugSessionSpec {
        DebugSessionSpec {
            mode,
            ..DebugSessionSpec::new(kind, "web")
        }
    }

    const WORKLOADS: [TargetKind; 3] = [
        TargetKind::Deployment,
        TargetKind::StatefulSet,
        TargetKind::DaemonSet,
    ];

    #[test]
    fn defaults_follow_the_target_kind() {
        for kind in WORKLOADS {
            assert_eq!(resolve(&spec(kind, None), &ALL), Ok(Mode::Patch), "{kind}");
        }
        assert_eq!(
            resolve(&spec(TargetKind::Pod, None), &ALL),
            Ok(Mode::Ephemeral)
        );
        for mode in ALL {
            assert_eq!(
                resolve(&spec(TargetKind::Deployment, Some(mode)), &ALL),
                Ok(mode)
            );
        }
        for mode in [Mode::Copy, Mode::Ephemeral] {
            assert_eq!(resolve(&spec(TargetKind::Pod, Some(mode)), &ALL), Ok(mode));
        }
    }

    #[test]
    fn patch_cannot_act_on_a_pod() {
        let e = resolve(&spec(TargetKind::Pod, Some(Mode::Patch)), &ALL).unwrap_err();
        assert_eq!(e.reason, reason::MODE_NOT_SUPPORTED);
        assert!(
            e.message
                .contains("cannot change: use mode Copy or Ephemeral"),
            "{}",
            e.message
        );
        // Even when Patch is disabled, the mode's impossibility is what is reported.
        let e = resolve(&spec(TargetKind::Pod, Some(Mode::Patch)), &[Mode::Copy]).unwrap_err();
        assert_eq!(e.reason, reason::MODE_NOT_SUPPORTED);
    }

    #[test]
    fn disabled_modes_are_refused_naming_the_enabled_ones() {
        let enabled = [Mode::Patch, Mode::Ephemeral];
        let e = resolve(&spec(TargetKind::Deployment, Some(Mode::Copy)), &enabled).unwrap_err();
        assert_eq!(e.reason, reason::MODE_DISABLED);
        assert!(
            e.message.contains("spec.mode Copy") && e.message.contains("Patch, Ephemeral"),
            "{}",
            e.message
        );
        // A default mode that is disabled says it was the default.
        let e = resolve(&spec(TargetKind::Pod, None), &[Mode::Patch, Mode::Copy]).unwrap_err();
        assert_eq!(e.reason, reason::MODE_DISABLED);
        assert!(e.message.contains("the default for a Pod"), "{}", e.message);
        let e = resolve(&spec(TargetKind::Deployment, None), &[]).unwrap_err();
        assert!(e.message.contains("modes none"), "{}", e.message);
    }

    #[test]
    fn copy_options_need_the_copy_mode() {
        let mut s = spec(TargetKind::Deployment, None);
        s.copy = Some(CopyOptions::default());
        let e = resolve(&s, &ALL).unwrap_err();
        assert_eq!(e.reason, reason::INVALID_OPTIONS);
        assert!(e.message.contains("spec.copy"), "{}", e.message);
        s.mode = Some(Mode::Ephemeral);
        assert_eq!(
            resolve(&s, &ALL).unwrap_err().reason,
            reason::INVALID_OPTIONS
        );
        s.mode = Some(Mode::Copy);
        assert_eq!(resolve(&s, &ALL), Ok(Mode::Copy));
    }

    #[test]
    fn target_pod_needs_a_workload_and_a_per_pod_mode() {
        let mut s = spec(TargetKind::StatefulSet, Some(Mode::Patch));
        s.target.pod = Some("web-0".into());
        let e = resolve(&s, &ALL).unwrap_err();
        assert_eq!(e.reason, reason::INVALID_OPTIONS);
        assert!(
            e.message.contains("\"web-0\"") && e.message.contains("Patch"),
            "{}",
            e.message
        );
        for mode in [Mode::Copy, Mode::Ephemeral] {
            s.mode = Some(mode);
            assert_eq!(resolve(&s, &ALL), Ok(mode));
        }
        let mut p = spec(TargetKind::Pod, None);
        p.target.pod = Some("other".into());
        let e = resolve(&p, &ALL).unwrap_err();
        assert_eq!(e.reason, reason::INVALID_OPTIONS);
        assert!(
            e.message.contains("spec.target.name (\"web\")"),
            "{}",
            e.message
        );
    }

    #[test]
    fn lists_parse() {
        assert_eq!(parse_list("patch,copy,ephemeral"), Ok(ALL.to_vec()));
        assert_eq!(
            parse_list(" Ephemeral, COPY ,,copy"),
            Ok(vec![Mode::Ephemeral, Mode::Copy])
        );
        let e = parse_list("patch,exec").unwrap_err();
        assert!(
            e.contains("\"exec\"") && e.contains("Patch, Copy, Ephemeral"),
            "{e}"
        );
        assert!(parse_list("").unwrap_err().contains("no mode"));
        for m in ALL {
            assert_eq!(parse(&m.as_str().to_lowercase()), Some(m));
        }
    }
}
