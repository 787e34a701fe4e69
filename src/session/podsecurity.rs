//! Pod Security Admission, checked before the workload is touched: a patched workload would be
//! accepted but its pods refused, so a violation must fail the session up front.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;

/// The namespace label that sets the enforced Pod Security level.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// Capabilities the `baseline` level allows containers to add.
const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Returns a sentence naming the level and what violates it, or `None` when the shell may run.
pub fn violation(
    namespace: &str,
    labels: &BTreeMap<String, String>,
    shell: &Container,
) -> Option<String> {
    let level = labels.get(ENFORCE_LABEL)?.as_str();
    let caps: Vec<&str> = shell
        .security_context
        .as_ref()
        .and_then(|s| s.capabilities.as_ref())
        .and_then(|c| c.add.as_ref())
        .map(|a| a.iter().map(|s| s.trim_start_matches("CAP_")).collect())
        .unwrap_or_default();
    let mut problems = Vec::new();
    let privileged = shell
        .security_context
        .as_ref()
        .and_then(|s| s.privileged)
        .unwrap_or(false);
    if privileged && matches!(level, "baseline" | "restricted") {
        problems.push("privileged containers are not allowed".to_string());
    }
    match level {
        "baseline" => {
            let bad: Vec<&str> = caps
                .iter()
                .copied()
                .filter(|c| !BASELINE_CAPS.contains(c))
                .collect();
            if !bad.is_empty() {
                problems.push(format!(
                    "adding capability {} is not allowed",
                    bad.join(", ")
                ));
            }
        }
        "restricted" => {
            let bad: Vec<&str> = caps
                .iter()
                .copied()
                .filter(|c| *c != "NET_BIND_SERVICE")
                .collect();
            if !bad.is_empty() {
                problems.push(format!(
                    "adding capability {} is not allowed (only NET_BIND_SERVICE)",
                    bad.join(", ")
                ));
            }
            let sc = shell.security_context.clone().unwrap_or_default();
            if sc.run_as_non_root != Some(true) {
                problems.push("runAsNonRoot must be true".into());
            }
            if sc.allow_privilege_escalation != Some(false) {
                problems.push("allowPrivilegeEscalation must be false".into());
            }
            let drops_all = sc
                .capabilities
                .and_then(|c| c.drop)
                .is_some_and(|d| d.iter().any(|c| c == "ALL"));
            if !drops_all {
                problems.push("capabilities must drop ALL".into());
            }
            if sc.seccomp_profile.map(|p| p.type_) != Some("RuntimeDefault".into()) {
                problems.push("seccompProfile must be RuntimeDefault".into());
            }
        }
        _ => return None,
    }
    (!problems.is_empty()).then(|| {
        format!(
            "namespace {namespace} enforces Pod Security level {level:?} ({ENFORCE_LABEL}={level}): for the debug shell {}; the workload was not changed",
            problems.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Capabilities, SecurityContext};

    fn shell(caps: &[&str]) -> Container {
        Container {
            name: "debug-shell".into(),
            security_context: Some(SecurityContext {
                capabilities: Some(Capabilities {
                    add: Some(caps.iter().map(|c| c.to_string()).collect()),
                    drop: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ns(level: Option<&str>) -> BTreeMap<String, String> {
        level
            .map(|l| (ENFORCE_LABEL.to_string(), l.to_string()))
            .into_iter()
            .collect()
    }

    #[test]
    fn levels() {
        let ptrace = shell(&["SYS_PTRACE"]);
        assert_eq!(violation("a", &ns(None), &ptrace), None);
        assert_eq!(violation("a", &ns(Some("privileged")), &ptrace), None);
        let msg = violation("a", &ns(Some("baseline")), &ptrace).unwrap();
        assert!(
            msg.contains("\"baseline\"") && msg.contains("SYS_PTRACE"),
            "{msg}"
        );
        assert_eq!(
            violation("a", &ns(Some("baseline")), &shell(&["KILL", "CAP_CHOWN"])),
            None
        );
        let mut sysadmin = shell(&[]);
        sysadmin.security_context = Some(crate::session::profile::security_context(
            crate::api::Profile::Sysadmin,
            &[],
        ));
        let msg = violation("a", &ns(Some("baseline")), &sysadmin).unwrap();
        assert!(msg.contains("privileged containers"), "{msg}");
        assert_eq!(violation("a", &ns(Some("privileged")), &sysadmin), None);
        let restricted = Container {
            security_context: Some(crate::session::profile::security_context(
                crate::api::Profile::Restricted,
                &[],
            )),
            ..shell(&[])
        };
        assert_eq!(violation("a", &ns(Some("restricted")), &restricted), None);
        let msg = violation("a", &ns(Some("restricted")), &shell(&[])).unwrap();
        assert!(
            msg.contains("runAsNonRoot") && msg.contains("drop ALL") && !msg.contains("adding"),
            "{msg}"
        );
    }
}
