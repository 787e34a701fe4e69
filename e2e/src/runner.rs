//! The one scenario runner of the e2e suites.
//!
//! A [`Scenario`] is a name and a body returning `R<()>`. A [`Runner`] runs scenarios on a bounded
//! pool of threads ([`Runner::parallel`]) or one after the other ([`Runner::sequential`], or
//! [`Runner::run`] for a body that borrows the suite's state mutably), prints `OK <name> (<s>s)` or
//! `FAIL <name>: <why>` as each one ends, and [`Runner::finish`] prints
//! `summary: N passed, M failed in Xs` and returns the exit code.
//!
//! ```ignore
//! let runner = Runner::new().filtered();
//! runner.parallel(vec![Scenario::new("expiry", || expiry(&ctx))]);
//! runner.sequential(vec![Scenario::new("restart", || restart(&ctx))]);
//! runner.finish("")
//! ```

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Mutex;
use std::thread;
use std::time::Instant;

use crate::R;

/// How many scenarios [`Runner::parallel`] runs at once unless `E2E_PARALLEL` says otherwise.
const DEFAULT_WORKERS: usize = 7;

/// A named piece of a suite.
pub struct Scenario<'a> {
    pub name: String,
    body: Box<dyn FnOnce() -> R<()> + Send + 'a>,
}

impl<'a> Scenario<'a> {
    pub fn new(name: impl Into<String>, body: impl FnOnce() -> R<()> + Send + 'a) -> Scenario<'a> {
        Scenario {
            name: name.into(),
            body: Box::new(body),
        }
    }
}

/// Runs scenarios and keeps their results.
pub struct Runner {
    filter: String,
    workers: usize,
    started: Instant,
    results: Mutex<Vec<(String, bool)>>,
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

impl Runner {
    /// A runner of every scenario it is given; [`Runner::parallel`] uses `E2E_PARALLEL` workers
    /// (default 7). The clock of the summary starts now.
    pub fn new() -> Runner {
        Runner {
            filter: String::new(),
            workers: std::env::var("E2E_PARALLEL")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_WORKERS)
                .max(1),
            started: Instant::now(),
            results: Mutex::new(Vec::new()),
        }
    }

    /// Only the scenarios whose name contains the filter: the first command-line argument that is
    /// not a flag, else `E2E_FILTER`.
    pub fn filtered(mut self) -> Runner {
        self.filter = std::env::args()
            .skip(1)
            .find(|a| !a.starts_with('-'))
            .or_else(|| std::env::var("E2E_FILTER").ok())
            .unwrap_or_default();
        self
    }

    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Whether the filter lets scenario `name` run.
    pub fn selects(&self, name: &str) -> bool {
        name.contains(self.filter.as_str())
    }

    /// Runs `body` now as scenario `name` (whatever the filter) and records it; Some(its value)
    /// when it passed.
    pub fn run<T>(&self, name: &str, body: impl FnOnce() -> R<T>) -> Option<T> {
        let t = Instant::now();
        let res = body();
        let secs = t.elapsed().as_secs_f64();
        match res {
            Ok(v) => {
                self.record(name, &Ok(()), secs);
                Some(v)
            }
            Err(e) => {
                self.record(name, &Err(e), secs);
                None
            }
        }
    }

    /// Prepares the suite: on failure prints `FAIL setup: <why>` and counts a failure; a setup that
    /// passes is no scenario of its own.
    pub fn setup<T>(&self, body: impl FnOnce() -> R<T>) -> Option<T> {
        body().map_err(|e| self.record("setup", &Err(e), 0.0)).ok()
    }

    /// Prints `SKIP <name>: <why>` (not counted).
    pub fn skip(&self, name: &str, why: &str) {
        println!("SKIP {name}: {why}");
    }

    /// Prints the result of a scenario and keeps it for the summary.
    pub fn record(&self, name: &str, res: &R<()>, secs: f64) {
        match res {
            Ok(()) => println!("OK {name} ({secs:.1}s)"),
            Err(e) => println!("FAIL {name}: {e}"),
        }
        self.lock().push((name.to_string(), res.is_ok()));
    }

    /// Runs the scenarios the filter selects, in their order, at most `E2E_PARALLEL` at a time;
    /// returns when all have ended.
    pub fn parallel(&self, scenarios: Vec<Scenario<'_>>) {
        let queue: Mutex<VecDeque<Scenario<'_>>> = Mutex::new(self.selected(scenarios).collect());
        let next = || queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
        thread::scope(|sc| {
            for _ in 0..self.workers {
                sc.spawn(|| {
                    while let Some(s) = next() {
                        self.run(&s.name, s.body);
                    }
                });
            }
        });
    }

    /// Runs the scenarios the filter selects, one after the other.
    pub fn sequential(&self, scenarios: Vec<Scenario<'_>>) {
        for s in self.selected(scenarios) {
            self.run(&s.name, s.body);
        }
    }

    fn selected<'a>(&self, scenarios: Vec<Scenario<'a>>) -> impl Iterator<Item = Scenario<'a>> {
        scenarios.into_iter().filter(|s| self.selects(&s.name))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, bool)>> {
        self.results.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The names of the scenarios that failed so far.
    pub fn failed(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Prints `summary: N passed, M failed in Xs` (naming the failed scenarios), then `note`;
    /// success when nothing failed.
    pub fn finish(&self, note: &str) -> ExitCode {
        let failed = self.failed();
        let total = self.lock().len();
        let names = if failed.is_empty() {
            String::new()
        } else {
            format!(" (failed: {})", failed.join(", "))
        };
        println!(
            "\nsummary: {} passed, {} failed in {:.0}s{names}{note}",
            total - failed.len(),
            failed.len(),
            self.started.elapsed().as_secs_f64(),
        );
        if failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
