//! A fault row: its namespace and Deployment, its session, its steps (the first error is the
//! row's), and the final check that the workload is as before.

use std::time::Instant;

use debugsession_e2e::*;

use crate::ns::{Ns, unique};
use crate::suite::{Kind, RowResult, Suite, run_logs};
use crate::{DEPLOY, TARGET};

/// One fault row: its namespace, Deployment `nginx`, session, the template before the session.
pub struct Fault {
    pub row: &'static str,
    pub ns: Ns,
    pub session: String,
    pub original: Value,
    /// Annotations others wrote that must survive (key, last value).
    pub kept: Vec<(String, String)>,
    /// When the session expires (epoch seconds), for timed stages.
    pub expires: f64,
    pub injected: bool,
    pub err: Option<String>,
    pub notes: Vec<String>,
    pub started: Instant,
    ready: bool,
}

impl Fault {
    pub fn new(row: &'static str, short: &str, verbose: bool) -> Fault {
        Fault {
            row,
            ns: Ns::new(unique(&format!("f-{short}")), row, verbose),
            session: "s".into(),
            original: Value::Null,
            kept: Vec::new(),
            expires: 0.0,
            injected: false,
            err: None,
            notes: Vec::new(),
            started: Instant::now(),
            ready: false,
        }
    }

    /// Runs `f` unless an earlier step failed; the first error is the row's.
    pub fn step(&mut self, what: &str, f: impl FnOnce(&mut Fault) -> R<()>) {
        if self.err.is_some() {
            return;
        }
        if let Err(e) = f(self) {
            self.err = Some(format!("{what}: {e}"));
        }
    }

    pub fn note(&mut self, n: String) {
        self.notes.push(n);
    }

    /// Creates the namespace and the Deployment (waits for the rollout in `prepare_wait`).
    pub fn prepare(&mut self) {
        self.step("prepare", |f| {
            f.ns.init()?;
            f.ns.apply_fixture(DEPLOY)
        });
    }

    pub fn prepare_wait(&mut self) {
        self.step("prepare", |f| {
            f.ns.rollout(TARGET)?;
            f.original = f.ns.template(TARGET)?;
            f.ready = true;
            Ok(())
        });
    }

    pub fn create(&mut self, ttl: &str) {
        let ttl = ttl.to_string();
        self.step("create the session", |f| {
            f.ns.session(&f.session, TARGET, &ttl)
        });
    }

    pub fn wait_active(&mut self) {
        self.step("session Active before the fault", |f| {
            let v = f.ns.wait_active(&f.session, LONG)?;
            f.expires = parse_time(s(&v, "/status/expiresAt"))?;
            f.ns.assert_applied(TARGET, &f.session).map(|_| ())
        });
    }

    /// The final check (always): the workload is as before; then the namespace goes.
    pub fn finish(mut self, suite: &Suite) {
        let mut modified = false;
        if self.ready
            && let Err(e) = self.ns.assert_reverted(TARGET, &self.original, &self.kept)
        {
            modified = true;
            if self.err.is_none() {
                self.err = Some(format!("final check: {e}"));
            } else {
                self.notes.push(format!("workload left modified: {e}"));
            }
        }
        if self.err.is_some() {
            self.notes.push(format!("namespace {}", self.ns.name));
            self.notes
                .extend(run_logs(&suite.logdir, &format!("\"{}\"", self.ns.name), 6));
        }
        self.ns.cleanup(self.err.is_some());
        suite.record(RowResult {
            name: self.row.to_string(),
            kind: Kind::Fault,
            injected: self.injected,
            modified,
            res: self.err.map_or(Ok(()), Err),
            secs: self.started.elapsed().as_secs_f64(),
            notes: self.notes,
        });
    }
}

/// The pause line names the session's namespace and name (contract: fields of the reconcile span).
pub fn check_pause_line(f: &mut Fault, line: &Value) {
    if s(line, "/span/session").is_empty() {
        f.note(format!(
            "the pause line carries no namespace/session of the reconcile span: {line}"
        ));
    }
}
