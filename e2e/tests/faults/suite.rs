//! The suite's state: the rows' results (each printed as it ends), the suite's operator (stopped,
//! killed and started again by the stages of phase 2, asked for its reconcile count), operators
//! with pause points, and the operator logs.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use debugsession_e2e::*;

const PAUSED: &str = "paused at fault point";

/// What a row is, for its line and the tally.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A fault injected into a running session.
    Fault,
    /// A row of the bad-input table.
    Input,
    /// Events and idle costs.
    Check,
}

/// A row that ended.
pub struct RowResult {
    pub name: String,
    pub kind: Kind,
    pub injected: bool,
    pub modified: bool,
    pub res: R<()>,
    pub secs: f64,
    pub notes: Vec<String>,
}

/// What the rows share.
pub struct Suite {
    pub op: Mutex<Option<Operator>>,
    pub log: PathBuf,
    pub logdir: PathBuf,
    pub verbose: bool,
    /// Only its filter serves (`selected`): the rows are recorded by [`Suite::record`], with the
    /// kind, the seconds on failure too, notes, and the fault tally the runner does not keep.
    pub runner: Runner,
    pub external_cluster: bool,
    pub results: Mutex<Vec<RowResult>>,
}

impl Suite {
    pub fn selected(&self, row: &str) -> bool {
        self.runner.selects(row)
    }

    pub fn record(&self, r: RowResult) {
        let tag = match r.kind {
            Kind::Fault => "fault",
            Kind::Input => "input",
            Kind::Check => "check",
        };
        match &r.res {
            Ok(()) => println!("OK {tag}/{} ({:.1}s)", r.name, r.secs),
            Err(e) => println!("FAIL {tag}/{} ({:.1}s): {e}", r.name, r.secs),
        }
        for n in &r.notes {
            println!("    {n}");
        }
        self.results.lock().unwrap().push(r);
    }

    /// Records a row that injects no fault (an input or a check).
    pub fn record_row(
        &self,
        name: impl Into<String>,
        kind: Kind,
        res: R<()>,
        secs: f64,
        notes: Vec<String>,
    ) {
        self.record(RowResult {
            name: name.into(),
            kind,
            injected: false,
            modified: false,
            res,
            secs,
            notes,
        });
    }

    /// SIGKILLs the suite's operator.
    pub fn kill_normal(&self) {
        if let Some(mut o) = self.op.lock().unwrap().take() {
            o.kill();
        }
    }

    /// Stops the suite's operator (SIGTERM, then SIGKILL after 10s).
    pub fn stop_normal(&self) {
        if let Some(mut o) = self.op.lock().unwrap().take() {
            o.stop();
        }
    }

    /// Starts the suite's operator (no pause points) unless it runs.
    pub fn start_normal(&self) -> R<()> {
        let mut op = self.op.lock().unwrap();
        if op.is_none() {
            *op = Some(Operator::start(&self.log)?);
        }
        Ok(())
    }

    pub fn metrics_addr(&self) -> R<String> {
        self.op
            .lock()
            .unwrap()
            .as_ref()
            .map(|o| o.metrics_addr.clone())
            .ok_or_else(|| "the suite's operator is not running".to_string())
    }

    /// `debugsession_reconciles_total` of the suite's operator.
    pub fn reconciles(&self) -> R<f64> {
        let addr = self.metrics_addr()?;
        let body = http_get(&addr, "/metrics")?;
        body.lines()
            .find_map(|l| l.strip_prefix("debugsession_reconciles_total "))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| "no debugsession_reconciles_total in /metrics".to_string())
    }

    /// Fails unless the suite's operator answers /healthz (and starts a new one when it died).
    pub fn normal_alive(&self) -> R<()> {
        let addr = self.metrics_addr()?;
        match http_get(&addr, "/healthz") {
            Ok(r) if r.starts_with("HTTP/1.1 200") => Ok(()),
            other => {
                self.kill_normal();
                self.start_normal()?;
                Err(format!(
                    "the operator did not answer /healthz: {:?} (restarted it)",
                    other.map(|r| r.lines().next().unwrap_or("").to_string())
                ))
            }
        }
    }

    /// Runs `body` with the suite's operator stopped (SIGTERM), then starts it again; returns
    /// `body`'s error, else the moment the operator was started.
    pub fn while_stopped(&self, body: impl FnOnce() -> R<()>) -> R<Instant> {
        self.stop_normal();
        let res = body();
        let t = Instant::now();
        self.start_normal()?;
        res.map(|()| t)
    }

    /// Runs `body` in place of the suite's operator (SIGKILLed) with an operator paused at
    /// `point` (logging to `<tag>.log`), then SIGKILLs that one and starts the suite's again.
    pub fn while_paused(
        &self,
        tag: &str,
        point: &str,
        body: impl FnOnce(&Operator) -> R<()>,
    ) -> R<()> {
        self.kill_normal();
        let mut op = self.start_paused(tag, point, &[], &[])?;
        let res = body(&op);
        op.kill();
        self.start_normal()?;
        res
    }

    /// An operator with `DEBUGSESSION_PAUSE_AT=points` (plus flags/env), logging to its own file.
    pub fn start_paused(
        &self,
        tag: &str,
        points: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> R<Operator> {
        let log = self.logdir.join(format!("{tag}.log"));
        let mut env = env.to_vec();
        if !points.is_empty() {
            env.push(("DEBUGSESSION_PAUSE_AT", points));
        }
        Operator::start_with(&log, args, &env)
    }
}

/// The operator log's `paused at fault point` line for `point` in `ns`/`session`.
pub fn wait_paused(
    log: &Path,
    point: &str,
    ns: &str,
    session: &str,
    timeout: Duration,
) -> R<Value> {
    wait_for(
        &format!(
            "the operator to log {PAUSED:?} at {point} for {ns}/{session} ({})",
            log.display()
        ),
        timeout,
        || {
            let text = fs::read_to_string(log).unwrap_or_default();
            let mut seen = Vec::new();
            for line in text.lines() {
                let Ok(v) = serde_json::from_str::<Value>(line) else {
                    continue;
                };
                if s(&v, "/message") != PAUSED {
                    continue;
                }
                let (p, n, sess) = (
                    s(&v, "/point"),
                    s(&v, "/span/namespace"),
                    s(&v, "/span/session"),
                );
                if p == point && ((n == ns && sess == session) || sess.is_empty()) {
                    return Ok(v);
                }
                seen.push(format!("{p} {n}/{sess}"));
            }
            Err(format!("pause lines so far: {seen:?}"))
        },
    )
}

/// The last `n` lines of the run's operator logs that mention `needle` (for failure reports).
pub fn run_logs(dir: &Path, needle: &str, n: usize) -> Vec<String> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = fs::read_to_string(&f).unwrap_or_default();
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
        for l in &lines[lines.len().saturating_sub(n)..] {
            out.push(format!(
                "log {name}: {}",
                l.chars().take(600).collect::<String>()
            ));
        }
    }
    out
}

/// Log lines of `log` that mention `needle` (for failure messages), at most `n`, the last ones.
pub fn log_lines(log: &Path, needle: &str, n: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
    lines[lines.len().saturating_sub(n)..].join("\n      ")
}
