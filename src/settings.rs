//! Operator-wide settings that shape every session.

use std::time::Duration;

/// Shortest session the operator accepts.
pub const MIN_TTL: Duration = Duration::from_secs(30);
/// Default name of the shell container.
pub const DEFAULT_CONTAINER_NAME: &str = "debug-shell";
/// Capabilities the shell gets when the session names none.
pub const DEFAULT_CAPABILITIES: &[&str] = &["SYS_PTRACE"];

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Longest TTL a session may ask for.
    pub max_ttl: Duration,
    /// TTL of a session that names none.
    pub default_ttl: Duration,
    /// Shell image of a session that names none.
    pub default_image: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_ttl: Duration::from_secs(24 * 3600),
            default_ttl: Duration::from_secs(3600),
            default_image: "busybox:1.36".to_string(),
        }
    }
}
