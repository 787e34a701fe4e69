//! Fault points for crash tests: `DEBUGSESSION_PAUSE_AT=<point>[,<point>...]` makes the
//! operator log `paused at fault point` and block the reconcile that reaches one of those points,
//! so that a test can kill the process exactly there and prove that a fresh operator recovers.
//! Unset (always, outside tests), a fault point does nothing.

use std::sync::OnceLock;

/// The holder annotation was applied: alone on the careful way of a take, with the shell when
/// one apply took the workload (see `act::patch::take`).
pub const AFTER_HOLD: &str = "after-hold";
/// The shell was applied; the status was not written.
pub const AFTER_SHELL: &str = "after-shell";
/// The session expired; nothing was released yet.
pub const BEFORE_RELEASE: &str = "before-release";
/// The workload was released on expiry; the status was not written.
pub const AFTER_RELEASE: &str = "after-release";
/// On delete, the workload was released; the finalizer was not removed.
pub const CLEANUP_AFTER_RELEASE: &str = "cleanup-after-release";

fn points() -> &'static [String] {
    static POINTS: OnceLock<Vec<String>> = OnceLock::new();
    POINTS.get_or_init(|| parse(&std::env::var("DEBUGSESSION_PAUSE_AT").unwrap_or_default()))
}

fn parse(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

/// Blocks forever when `point` is enabled.
pub async fn reach(point: &'static str) {
    if points().iter().any(|p| p == point) {
        tracing::warn!(point, "paused at fault point");
        futures::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_lists() {
        assert_eq!(super::parse(""), Vec::<String>::new());
        assert_eq!(
            super::parse("after-hold, after-shell,"),
            ["after-hold", "after-shell"]
        );
    }
}
