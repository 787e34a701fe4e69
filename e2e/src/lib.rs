//! End-to-end tests of debugsession-operator against a real cluster: the helpers the suites share.
//!
//! - [`cluster`]: the local cluster's environment, the CRD, waiting for the cluster;
//! - [`debug`]: timing a usable shell, the operator's way and `kubectl debug`'s (the side-by-side
//!   scenario and `make bench`);
//! - [`kubectl`]: the one kubectl wrapper (with a timeout, capturing stdout and stderr), objects
//!   as JSON, events, sessions and namespaces taken away after a scenario;
//! - [`objects`]: reading objects (JSON pointers, conditions, containers, field managers, diffs);
//! - [`operator`]: the one way to start, signal and stop the operator binary;
//! - [`runner`]: the one scenario runner (named scenarios, in parallel or one after the other, a
//!   summary line and the exit code);
//! - [`session`]: a DebugSession read, summed up in one line, tested, and waited for (a state, its
//!   deletion, its events);
//! - [`webhook`]: the operator's admission webhook for a suite besides the admission suite
//!   (certificates, stamp key, configurations) and kubeconfigs that act as another user.
//!
//! Besides them: polling with a timeout and a useful failure message ([`Poller`], [`wait_for`]),
//! time stamps, and rendering samples and fixtures. Everything is re-exported at the crate root
//! (`use debugsession_e2e::*`).

pub mod cluster;
pub mod debug;
pub mod kubectl;
pub mod objects;
pub mod operator;
pub mod runner;
pub mod session;
pub mod webhook;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use cluster::*;
pub use debug::*;
pub use kubectl::*;
pub use objects::*;
pub use operator::*;
pub use runner::*;
pub use serde_json::{Value, json};
pub use session::*;
pub use webhook::*;

pub type R<T> = Result<T, String>;

/// Generous default timeout: the test machine has 2 cores and runs scenarios in parallel.
pub const TIMEOUT: Duration = Duration::from_secs(90);
/// For kubectl's own waits (`--timeout=110s`) and slow phases.
pub const LONG: Duration = Duration::from_secs(120);
/// How often [`wait_for`] and the other waits of [`WAIT`] try.
pub const POLL: Duration = Duration::from_millis(250);
/// The waits that try every [`POLL`].
pub const WAIT: Poller = Poller::every(POLL);

/// How often a wait tries: every [`POLL`] ([`WAIT`]) unless a suite whose waits run many at a time
/// on a small machine tries less often.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Poller {
    pub every: Duration,
}

impl Poller {
    pub const fn every(every: Duration) -> Poller {
        Poller { every }
    }

    /// Calls `f` until it returns Ok, sleeping `every` after each Err; fails once `timeout` has
    /// passed, with the last Err it gave.
    pub fn until<T>(&self, what: &str, timeout: Duration, mut f: impl FnMut() -> R<T>) -> R<T> {
        let start = Instant::now();
        loop {
            let last = match f() {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if start.elapsed() >= timeout {
                return Err(format!(
                    "timed out after {}s waiting for {what}; last seen: {last}",
                    timeout.as_secs()
                ));
            }
            thread::sleep(self.every);
        }
    }
}

/// The repository root (parent of e2e/).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e has a parent")
        .to_path_buf()
}

/// Whether the environment variable `name` is set to `1`.
pub fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// Polls `f` every 250ms until it returns Ok, or fails after `timeout` with the last Err it gave.
pub fn wait_for<T>(what: &str, timeout: Duration, f: impl FnMut() -> R<T>) -> R<T> {
    WAIT.until(what, timeout, f)
}

/// Prints step `msg` of scenario or row `label` when `verbose` (E2E_VERBOSE=1).
pub fn say(verbose: bool, label: &str, msg: &str) {
    if verbose {
        println!("  [{label}] {msg}");
    }
}

/// Fails with `msg` unless `cond`.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> R<()> {
    if cond { Ok(()) } else { Err(msg()) }
}

/// Seconds since the Unix epoch.
pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Sleeps until the epoch second `t` (a TTL running out): waits for wall-clock time itself, not
/// for a condition.
pub fn sleep_until_epoch(t: f64) {
    let wait = t - now_epoch();
    if wait > 0.0 {
        thread::sleep(Duration::from_secs_f64(wait));
    }
}

/// Parses an RFC 3339 UTC timestamp such as `2024-05-01T10:00:00Z` (fractions allowed) to epoch seconds.
pub fn parse_time(t: &str) -> R<f64> {
    let bad = || format!("bad timestamp {t:?}");
    let t = t.trim();
    let (date, time) = t.split_once('T').ok_or_else(bad)?;
    let time = time.strip_suffix('Z').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<R<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let h: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<R<_>>()?;
    if d.len() != 3 || h.len() != 3 {
        return Err(bad());
    }
    // days from civil (Howard Hinnant)
    let (y, m, dd) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let frac: f64 = format!("0.{frac}").parse().unwrap_or(0.0);
    Ok((days * 86400 + h[0] * 3600 + h[1] * 60 + h[2]) as f64 + frac)
}

/// Reads a file of the repository and applies textual edits; each `from` must occur in the text.
pub fn render(rel: &str, edits: &[(&str, &str)]) -> R<String> {
    let path = root().join(rel);
    let mut text = fs::read_to_string(&path).map_err(|e| format!("reading {rel}: {e}"))?;
    for (from, to) in edits {
        if !text.contains(from) {
            return Err(format!("{rel} does not contain {from:?}"));
        }
        text = text.replace(from, to);
    }
    Ok(text)
}

/// Like [`render`], with the fixture images swapped for those of the cluster (images.env).
pub fn render_fixture(rel: &str, edits: &[(&str, &str)]) -> R<String> {
    Ok(render(rel, edits)?
        .replace("registry.local/nginx:1.22.1", &cluster().nginx())
        .replace("registry.local/busybox:1.35.0", &cluster().busybox()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_tries_every_interval_up_to_the_timeout() {
        let mut tries = 0;
        let start = Instant::now();
        let res: R<()> = Poller::every(Duration::from_millis(20)).until(
            "nothing",
            Duration::from_millis(50),
            || {
                tries += 1;
                Err(format!("try {tries}"))
            },
        );
        assert!(start.elapsed() >= Duration::from_millis(50));
        // Tries at 0, 20, 40 and 60ms, unless a loaded machine sleeps longer.
        assert!((2..=4).contains(&tries), "{tries} tries");
        assert_eq!(
            res.unwrap_err(),
            format!("timed out after 0s waiting for nothing; last seen: try {tries}")
        );
    }
}
