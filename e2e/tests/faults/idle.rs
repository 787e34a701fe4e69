//! Phase 4, alone and quiet: what waiting on a foreign holder and an idle Active session cost,
//! read from the operator's `debugsession_reconciles_total`.

use std::thread;
use std::time::{Duration, Instant};

use debugsession_e2e::*;

use crate::ns::{Ns, SLOW};
use crate::suite::{Kind, Suite, run_logs};
use crate::table::TableState;
use crate::{NO_EXPIRY, SHORT, TARGET};

pub fn foreign_holder(suite: &Suite, t: &TableState) {
    let t0 = Instant::now();
    let ns = &t.ns;
    let mut notes = Vec::new();
    let res = (|| -> R<()> {
        ns.k(&["annotate", "deployment", "app", &format!("{HOLDER}=ghost")])?;
        let before = ns.deployment("app")?;
        ns.session("fh", "app", NO_EXPIRY)?;
        let v = ns.wait_session("fh", "Pending with ForeignHolder", SHORT, |v| {
            phase_is(v, "Pending") && ready_reason(v) == "ForeignHolder"
        })?;
        let msg = s(condition(&v, "Ready").unwrap(), "/message").to_string();
        ensure(msg.contains(HOLDER) && msg.contains("kubectl"), || {
            format!(
                "ForeignHolder message names neither the annotation nor its writer (kubectl-annotate): {msg:?}"
            )
        })?;
        let warnings = || ns.event_count("fh", |e| e["type"] == "Warning");
        let m0 = suite.reconciles()?;
        // A deliberately idle window: what waiting on a foreign holder costs.
        thread::sleep(Duration::from_secs(20));
        let m1 = suite.reconciles()?;
        let w = warnings()?;
        notes.push(format!(
            "FIGURE foreign-holder-reconciles-20s={} warning-events={w}",
            m1 - m0
        ));
        let v = ns.dbgs("fh")?;
        ensure(
            phase_is(&v, "Pending") && ready_reason(&v) == "ForeignHolder",
            || format!("no longer waiting: {}", summary(&v)),
        )?;
        ensure(w <= 2, || format!("{w} Warning events in 20 s, want <= 2"))?;
        ensure(m1 - m0 <= 6.0, || {
            format!("{} reconciles in 20 s, want <= 6", m1 - m0)
        })?;
        let after = ns.deployment("app")?;
        ensure(
            after["metadata"]["generation"] == before["metadata"]["generation"]
                && our_managers(&after).is_empty()
                && s(&after, HOLDER_PTR) == "ghost",
            || "the workload was touched while a foreign holder held it".to_string(),
        )?;
        ns.k(&["annotate", "deployment", "app", &format!("{HOLDER}-")])?;
        let removed = Instant::now();
        ns.wait_active("fh", TIMEOUT)?;
        notes.push(format!(
            "FIGURE foreign-holder-removed-to-active-seconds={:.1}",
            removed.elapsed().as_secs_f64()
        ));
        ns.assert_applied("app", "fh")?;
        ns.delete_session("fh")?;
        ns.assert_reverted("app", &t.original, &[])
    })();
    if res.is_err() {
        notes.extend(run_logs(&suite.logdir, "\"fh\"", 6));
    }
    suite.record_row(
        "foreign-holder -> Pending ForeignHolder, then Active by itself",
        Kind::Input,
        res,
        t0.elapsed().as_secs_f64(),
        notes,
    );
}

pub fn idle(suite: &Suite, ns: &Ns, original: &Value) {
    let t0 = Instant::now();
    let mut notes = Vec::new();
    let res = (|| -> R<()> {
        ns.wait_active("idle", LONG)?;
        ns.rollout(TARGET)?;
        let m0 = suite.reconciles()?;
        // A deliberately idle window of 65 s: an Active session with nothing changing.
        thread::sleep(Duration::from_secs(65));
        let m1 = suite.reconciles()?;
        notes.push(format!("FIGURE idle-active-reconciles-65s={}", m1 - m0));
        let v = ns.dbgs("idle")?;
        ensure(phase_is(&v, "Active"), || summary(&v))?;
        ensure(m1 - m0 <= 3.0, || {
            format!(
                "{} reconciles in 65 s of an idle Active session, want <= 3",
                m1 - m0
            )
        })?;
        ns.delete_session("idle")?;
        ns.assert_reverted(TARGET, original, &[])
    })();
    if res.is_err() {
        notes.extend(run_logs(&suite.logdir, &format!("\"{}\"", ns.name), 6));
    }
    suite.record_row(
        "idle-is-idle",
        Kind::Check,
        res,
        t0.elapsed().as_secs_f64(),
        notes,
    );
}

/// Waits until the operator's reconcile count stands still for 3 s (the other rows are over).
pub fn wait_quiet(suite: &Suite) {
    let mut last = suite.reconciles().unwrap_or(-1.0);
    let res = SLOW.until(
        "the operator to be quiet (no reconcile for 3 s)",
        TIMEOUT,
        || {
            thread::sleep(Duration::from_millis(2500));
            let now = suite.reconciles()?;
            let quiet = now == last;
            last = now;
            ensure(quiet, || format!("reconciles_total {now}"))
        },
    );
    if let Err(e) = res {
        println!("  {e}");
    }
}
