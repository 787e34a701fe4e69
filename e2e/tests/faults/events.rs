//! A drifting session's events, said once per drift (phase 1).

use std::thread;
use std::time::{Duration, Instant};

use debugsession_e2e::*;

use crate::ns::{Ns, SLOW, unique};
use crate::suite::{Kind, Suite, run_logs};
use crate::{DEPLOY, NO_EXPIRY, TARGET};

pub fn drift_events(suite: &Suite) {
    let t0 = Instant::now();
    let ns = Ns::new(unique("f-drift"), "drift-events", suite.verbose);
    let mut notes = Vec::new();
    let res = (|| -> R<()> {
        ns.init()?;
        ns.apply_fixture(DEPLOY)?;
        ns.rollout(TARGET)?;
        let original = ns.template(TARGET)?;
        ns.session("drift", TARGET, NO_EXPIRY)?;
        ns.wait_active("drift", LONG)?;
        const DRIFTS: u64 = 3;
        for i in 1..=DRIFTS {
            let patch = shell_removal_patch(&ns.template(TARGET)?)
                .map_err(|e| format!("drift {i}: {e}"))?;
            ns.k(&["patch", "deployment", TARGET, "--type=json", "-p", &patch])?;
            SLOW.until(&format!("drift {i}: the shell back"), TIMEOUT, || {
                ensure(has_shell(&ns.template(TARGET)?), || "not yet".to_string())
            })?;
            ns.wait_active("drift", LONG)
                .map_err(|e| format!("drift {i}: {e}"))?;
            SLOW.until(
                &format!("drift {i}: {i} Drifted events"),
                Duration::from_secs(20),
                || {
                    let n = ns.event_count("drift", |e| e["reason"] == "Drifted")?;
                    ensure(n >= i, || format!("{n} Drifted events"))
                },
            )?;
        }
        // A deliberately idle window: repeated events would show up here (the old code
        // recorded one per 5 s requeue while drifted).
        thread::sleep(Duration::from_secs(6));
        let n = ns.event_count("drift", |e| e["reason"] == "Drifted")?;
        notes.push(format!("FIGURE drifted-events={n} for {DRIFTS} drifts"));
        ensure(n == DRIFTS, || {
            format!("{n} Drifted events for {DRIFTS} drifts, want exactly one per drift")
        })?;
        ns.delete_session("drift")?;
        ns.assert_reverted(TARGET, &original, &[])
    })();
    if res.is_err() {
        notes.push(format!("namespace {}", ns.name));
        notes.extend(run_logs(&suite.logdir, &format!("\"{}\"", ns.name), 6));
    }
    ns.cleanup(res.is_err());
    suite.record_row(
        "drift-events-once",
        Kind::Check,
        res,
        t0.elapsed().as_secs_f64(),
        notes,
    );
}
