//! Operator-wide settings that shape every session, and the one definition of each default. The
//! command line's defaults, the Helm chart's `values.yaml` and the kustomize manager read these
//! values (a test ties them together).

use std::time::Duration;

use super::ttl;
use crate::api::Mode;

/// Shortest session the operator accepts.
pub const MIN_TTL: Duration = Duration::from_secs(30);
/// Longest TTL a session may ask for, unless configured.
pub const DEFAULT_MAX_TTL: &str = "24h";
/// TTL of a session that names none, unless configured.
pub const DEFAULT_TTL: &str = "1h";
/// Shell image of a session that names none, unless configured.
pub const DEFAULT_IMAGE: &str = "busybox:1.36";
/// Default name of the shell container.
pub const DEFAULT_CONTAINER_NAME: &str = "debug-shell";
/// Globs of the shell images the policy allows, unless configured (comma-separated).
pub const DEFAULT_ALLOWED_IMAGES: &str =
    "busybox:*,docker.io/library/busybox:*,docker.io/busybox:*";
/// Capabilities the policy allows a shell to add, unless configured (comma-separated).
pub const DEFAULT_ALLOWED_CAPABILITIES: &str = "SYS_PTRACE";
/// Namespaces where the policy refuses sessions, unless configured (comma-separated).
pub const DEFAULT_DENIED_NAMESPACES: &str = "kube-system";
/// The modes the operator runs, unless configured (comma-separated).
pub const DEFAULT_MODES: &str = "Patch,Copy,Ephemeral";
/// The profiles the policy allows, unless configured (comma-separated): `sysadmin` and
/// `netadmin` are opt-ins.
pub const DEFAULT_ALLOWED_PROFILES: &str = "general,baseline,restricted";

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Longest TTL a session may ask for.
    pub max_ttl: Duration,
    /// TTL of a session that names none.
    pub default_ttl: Duration,
    /// Shell image of a session that names none.
    pub default_image: String,
    /// The modes this operator runs (and holds the rights for).
    pub modes: Vec<Mode>,
    /// Record every shell, whatever its session asks ([`super::record`]).
    pub record_shell: bool,
}

impl Default for Settings {
    /// The defaults above ([`DEFAULT_MAX_TTL`], [`DEFAULT_TTL`], [`DEFAULT_IMAGE`]).
    fn default() -> Self {
        Settings {
            max_ttl: ttl::parse(DEFAULT_MAX_TTL).unwrap_or(MIN_TTL),
            default_ttl: ttl::parse(DEFAULT_TTL).unwrap_or(MIN_TTL),
            default_image: DEFAULT_IMAGE.to_string(),
            modes: super::mode::parse_list(DEFAULT_MODES).unwrap_or_default(),
            record_shell: false,
        }
    }
}

/// The items of a comma-separated list, trimmed, without empty ones.
pub fn list(csv: &str) -> Vec<String> {
    csv.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_parse() {
        let s = Settings::default();
        assert_eq!(s.max_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(s.default_ttl, Duration::from_secs(3600));
        assert!(s.default_ttl >= MIN_TTL && s.default_ttl <= s.max_ttl);
        assert_eq!(list(DEFAULT_ALLOWED_IMAGES).len(), 3);
        assert_eq!(list(" a, ,b ,"), ["a", "b"]);
        assert_eq!(s.modes, super::super::mode::ALL);
        assert_eq!(
            super::super::profile::parse_list(DEFAULT_ALLOWED_PROFILES).unwrap(),
            super::super::profile::DEFAULT_ALLOWED
        );
    }
}
