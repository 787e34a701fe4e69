//! Security profiles of the shell, with `kubectl debug --profile`'s meaning for the shell
//! container:
//!
//! | profile      | the shell's securityContext                                            |
//! |--------------|------------------------------------------------------------------------|
//! | `general`    | adds `SYS_PTRACE`                                                      |
//! | `baseline`   | adds nothing                                                           |
//! | `restricted` | `runAsNonRoot`, drops `ALL`, no privilege escalation, seccomp `RuntimeDefault` |
//! | `netadmin`   | adds `NET_ADMIN` and `NET_RAW`                                         |
//! | `sysadmin`   | `privileged: true`                                                     |
//!
//! What kubectl also does to a pod copy (`shareProcessNamespace`, stripped labels and probes)
//! belongs to the copy builder ([`super::copy`]), not to this module.

use k8s_openapi::api::core::v1::{Capabilities, SeccompProfile, SecurityContext};

use super::choice::{self, names};
use super::invalid::Invalid;
use crate::api::{Profile, reason};

/// The profiles an operator allows unless configured: those that add at most `SYS_PTRACE`.
pub const DEFAULT_ALLOWED: [Profile; 3] =
    [Profile::General, Profile::Baseline, Profile::Restricted];

/// The capabilities a profile adds by itself.
pub fn profile_capabilities(profile: Profile) -> &'static [&'static str] {
    match profile {
        Profile::General => &["SYS_PTRACE"],
        Profile::Netadmin => &["NET_ADMIN", "NET_RAW"],
        Profile::Baseline | Profile::Restricted | Profile::Sysadmin => &[],
    }
}

/// `CAP_SYS_ADMIN` and `SYS_ADMIN` name the same capability.
fn normalize_cap(c: &str) -> &str {
    c.strip_prefix("CAP_").unwrap_or(c)
}

/// The shell container's securityContext under `profile`.
///
/// `extra_caps` are the capabilities the session names in `spec.shell.capabilities` (empty when
/// it names none: the operator's default capabilities are not extra), added after the
/// profile's own; a capability already present (with or without the `CAP_` prefix) is not
/// added twice. Under `restricted` the extra capabilities are ignored and nothing is added, so
/// that the shell stays within Pod Security `restricted`; [`check`] refuses a session that asks
/// for them, so none is ever silently lost. Under `sysadmin` the container is privileged, which
/// holds every capability; extra ones are still listed so that the securityContext shows what
/// was asked.
pub fn security_context(profile: Profile, extra_caps: &[String]) -> SecurityContext {
    if profile == Profile::Restricted {
        return SecurityContext {
            run_as_non_root: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                add: None,
                drop: Some(vec!["ALL".to_string()]),
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_string(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        };
    }
    let mut add: Vec<String> = Vec::new();
    let own = profile_capabilities(profile).iter().copied();
    for cap in own.chain(extra_caps.iter().map(String::as_str)) {
        if !add.iter().any(|c| normalize_cap(c) == normalize_cap(cap)) {
            add.push(cap.to_string());
        }
    }
    SecurityContext {
        privileged: (profile == Profile::Sysadmin).then_some(true),
        capabilities: (!add.is_empty()).then_some(Capabilities {
            add: Some(add),
            drop: None,
        }),
        ..SecurityContext::default()
    }
}

/// Checks a session's profile against the operator's allowed profiles, and refuses capabilities
/// asked for (`spec.shell.capabilities`, `None` when unset) under `restricted`, which adds none.
pub fn check(
    profile: Profile,
    shell_caps: Option<&[String]>,
    allowed: &[Profile],
) -> Result<(), Invalid> {
    if !allowed.contains(&profile) {
        return Err(Invalid {
            reason: reason::PROFILE_NOT_ALLOWED,
            message: format!(
                "spec.profile {profile} is not allowed: the operator's policy allows the profiles {}",
                names(allowed)
            ),
        });
    }
    if profile == Profile::Restricted
        && let Some(caps) = shell_caps.filter(|c| !c.is_empty())
    {
        return Err(Invalid {
            reason: reason::INVALID_OPTIONS,
            message: format!(
                "spec.shell.capabilities ({}) cannot be added under spec.profile restricted, which drops every capability: remove them or choose another profile",
                caps.join(", ")
            ),
        });
    }
    Ok(())
}

/// Parses a profile name, in any case.
pub fn parse(name: &str) -> Option<Profile> {
    choice::parse(name)
}

/// Parses a comma-separated list of profiles such as `general,baseline` (any case, spaces and
/// repeats allowed). An unknown name, or a list that names none, is an error.
pub fn parse_list(csv: &str) -> Result<Vec<Profile>, String> {
    choice::parse_list(csv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|c| c.to_string()).collect()
    }

    fn added(sc: &SecurityContext) -> Vec<String> {
        sc.capabilities
            .as_ref()
            .and_then(|c| c.add.clone())
            .unwrap_or_default()
    }

    #[test]
    fn each_profile_has_kubectls_security_context() {
        let general = security_context(Profile::General, &[]);
        assert_eq!(added(&general), ["SYS_PTRACE"]);
        assert_eq!(general.privileged, None);

        assert_eq!(
            security_context(Profile::Baseline, &[]),
            SecurityContext::default()
        );

        let restricted = security_context(Profile::Restricted, &[]);
        assert_eq!(restricted.run_as_non_root, Some(true));
        assert_eq!(restricted.allow_privilege_escalation, Some(false));
        assert_eq!(
            restricted.capabilities,
            Some(Capabilities {
                add: None,
                drop: Some(caps(&["ALL"]))
            })
        );
        assert_eq!(
            restricted.seccomp_profile.map(|s| s.type_).as_deref(),
            Some("RuntimeDefault")
        );
        assert_eq!(restricted.privileged, None);

        assert_eq!(
            added(&security_context(Profile::Netadmin, &[])),
            ["NET_ADMIN", "NET_RAW"]
        );

        let sysadmin = security_context(Profile::Sysadmin, &[]);
        assert_eq!(sysadmin.privileged, Some(true));
        assert_eq!(sysadmin.capabilities, None);
    }

    #[test]
    fn extra_capabilities_come_after_the_profiles_own_without_repeats() {
        let sc = security_context(
            Profile::General,
            &caps(&[
                "CAP_SYS_PTRACE",
                "NET_BIND_SERVICE",
                "SYS_PTRACE",
                "NET_BIND_SERVICE",
            ]),
        );
        assert_eq!(added(&sc), ["SYS_PTRACE", "NET_BIND_SERVICE"]);
        assert_eq!(
            added(&security_context(Profile::Baseline, &caps(&["KILL"]))),
            ["KILL"]
        );
        assert_eq!(
            added(&security_context(
                Profile::Netadmin,
                &caps(&["NET_RAW", "SYS_PTRACE"])
            )),
            ["NET_ADMIN", "NET_RAW", "SYS_PTRACE"]
        );
        let sys = security_context(Profile::Sysadmin, &caps(&["SYS_ADMIN"]));
        assert_eq!(
            (sys.privileged, added(&sys)),
            (Some(true), caps(&["SYS_ADMIN"]))
        );
    }

    #[test]
    fn restricted_stays_restricted_whatever_is_asked() {
        let sc = security_context(Profile::Restricted, &caps(&["SYS_PTRACE", "SYS_ADMIN"]));
        assert_eq!(sc, security_context(Profile::Restricted, &[]));
        // It passes the Pod Security `restricted` level.
        let shell = k8s_openapi::api::core::v1::Container {
            name: "debug-shell".into(),
            security_context: Some(sc),
            ..Default::default()
        };
        let labels = [(
            super::super::podsecurity::ENFORCE_LABEL.to_string(),
            "restricted".to_string(),
        )]
        .into();
        assert_eq!(
            super::super::podsecurity::violation("ns", &labels, &shell),
            None
        );
    }

    #[test]
    fn check_refuses_profiles_the_operator_does_not_allow() {
        for p in DEFAULT_ALLOWED {
            assert_eq!(check(p, None, &DEFAULT_ALLOWED), Ok(()), "{p}");
        }
        let e = check(Profile::Sysadmin, None, &DEFAULT_ALLOWED).unwrap_err();
        assert_eq!(e.reason, reason::PROFILE_NOT_ALLOWED);
        assert!(
            e.message.contains("sysadmin")
                && e.message.contains("general, baseline, restricted")
                && e.message.contains("operator's policy"),
            "{}",
            e.message
        );
        let e = check(Profile::General, None, &[]).unwrap_err();
        assert!(
            e.message.contains("allows the profiles none"),
            "{}",
            e.message
        );
        assert_eq!(check(Profile::Sysadmin, None, &Profile::ALL), Ok(()));
    }

    #[test]
    fn check_refuses_capabilities_under_restricted() {
        let asked = caps(&["SYS_PTRACE"]);
        let e = check(Profile::Restricted, Some(&asked), &DEFAULT_ALLOWED).unwrap_err();
        assert_eq!(e.reason, reason::INVALID_OPTIONS);
        assert!(
            e.message.contains("SYS_PTRACE") && e.message.contains("restricted"),
            "{}",
            e.message
        );
        // None asked, or an empty list, is fine.
        assert_eq!(
            check(Profile::Restricted, Some(&[]), &DEFAULT_ALLOWED),
            Ok(())
        );
        assert_eq!(check(Profile::Restricted, None, &DEFAULT_ALLOWED), Ok(()));
        // Other profiles take extra capabilities.
        assert_eq!(
            check(Profile::Baseline, Some(&asked), &DEFAULT_ALLOWED),
            Ok(())
        );
        // The allowed list is checked first.
        let e = check(Profile::Restricted, Some(&asked), &[Profile::General]).unwrap_err();
        assert_eq!(e.reason, reason::PROFILE_NOT_ALLOWED);
    }

    #[test]
    fn lists_parse() {
        assert_eq!(
            parse_list("general,baseline"),
            Ok(vec![Profile::General, Profile::Baseline])
        );
        assert_eq!(
            parse_list(" Sysadmin , NETADMIN,,sysadmin "),
            Ok(vec![Profile::Sysadmin, Profile::Netadmin])
        );
        assert_eq!(
            parse_list("general,baseline,restricted,netadmin,sysadmin"),
            Ok(Profile::ALL.to_vec())
        );
        let e = parse_list("general,root").unwrap_err();
        assert!(e.contains("\"root\"") && e.contains("netadmin"), "{e}");
        assert!(parse_list(" , ").unwrap_err().contains("no profile"));
        assert_eq!(
            parse_list(&names(&DEFAULT_ALLOWED)),
            Ok(DEFAULT_ALLOWED.to_vec())
        );
    }

    #[test]
    fn names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(parse(p.as_str()), Some(p));
            assert_eq!(
                serde_json::to_value(p).unwrap(),
                serde_json::json!(p.as_str())
            );
        }
        assert_eq!(parse("legacy"), None);
    }
}
