//! Phase 2 (the stages one at a time: timed ones at their moment, the others in the gaps) and
//! phase 3 (the fault rows end).

use std::collections::{BTreeMap, VecDeque};
use std::thread;
use std::time::Instant;

use debugsession_e2e::*;

use crate::downtime::{stage_down_delete, stage_down_expiry};
use crate::failover::stage_failover;
use crate::fault::Fault;
use crate::pauses::{stage_pause_cleanup, stage_pause_expiry, stage_pause_new};
use crate::restarts::stage_restart;
use crate::suite::Suite;
use crate::{
    AFTER_HOLD, AFTER_RELEASE, AFTER_SHELL, BEFORE_RELEASE, CLEANUP_AFTER_RELEASE, DOWN_DELETE,
    DOWN_EXPIRY, FAILOVER, NO_EXPIRY, RESTART_APISERVER, RESTART_ETCD, TARGET,
};

/// A stage without a moment of its own, run in the gaps between timed ones.
struct Filler {
    row: &'static str,
    /// Seconds it may take (it runs only when this much time is left before the next timed stage).
    budget: f64,
    /// Runs after the timed stages: the operator that lives through an apiserver restart may
    /// take a minute to see changes again, and no timed stage may wait behind it.
    last: bool,
}

/// Stage that must see its session expire under a given operator: begins `lead` seconds before.
struct Timed {
    row: &'static str,
    lead: f64,
}

fn run_filler(suite: &Suite, f: &mut Fault) {
    match f.row {
        AFTER_HOLD => stage_pause_new(suite, f, "after-hold"),
        AFTER_SHELL => stage_pause_new(suite, f, "after-shell"),
        CLEANUP_AFTER_RELEASE => stage_pause_cleanup(suite, f),
        DOWN_DELETE => stage_down_delete(suite, f),
        RESTART_APISERVER => stage_restart(suite, f, "kube-apiserver"),
        RESTART_ETCD => stage_restart(suite, f, "etcd"),
        _ => {}
    }
}

fn run_timed(suite: &Suite, f: &mut Fault) {
    match f.row {
        BEFORE_RELEASE => stage_pause_expiry(suite, f, "before-release"),
        AFTER_RELEASE => stage_pause_expiry(suite, f, "after-release"),
        FAILOVER => stage_failover(suite, f),
        DOWN_EXPIRY => stage_down_expiry(suite, f),
        _ => {}
    }
}

/// Phase 2. `rows` are prepared (namespace, Deployment rolled out).
pub fn phase_two(suite: &Suite, rows: &mut BTreeMap<&'static str, Fault>) {
    // Sessions of the untimed rows that need a running session; the timed ones expire in turn,
    // 15-20 s apart (a stage takes < 10 s; failover < 20 s).
    let plan: [(&str, &str); 8] = [
        (CLEANUP_AFTER_RELEASE, NO_EXPIRY),
        (DOWN_DELETE, NO_EXPIRY),
        (RESTART_APISERVER, NO_EXPIRY),
        (RESTART_ETCD, NO_EXPIRY),
        (BEFORE_RELEASE, "35s"),
        (DOWN_EXPIRY, "50s"),
        (AFTER_RELEASE, "65s"),
        (FAILOVER, "85s"),
    ];
    for (row, ttl) in plan {
        if let Some(f) = rows.get_mut(row) {
            f.create(ttl);
        }
    }
    for (row, _) in plan {
        if let Some(f) = rows.get_mut(row) {
            f.wait_active();
        }
    }
    // Budgets: about twice what a stage takes on the 2-core machine (restart: ~5 s for etcd, ~20 s
    // for the apiserver, whose stop waits 15 s for it to exit).
    let filler = |row, budget, last| Filler { row, budget, last };
    let fillers = [
        filler(DOWN_DELETE, 5.0, false),
        filler(CLEANUP_AFTER_RELEASE, 5.0, false),
        filler(AFTER_HOLD, 12.0, false),
        filler(AFTER_SHELL, 9.0, false),
        filler(RESTART_ETCD, 15.0, false),
        filler(RESTART_APISERVER, 40.0, true),
    ];
    let timed = [
        Timed {
            row: BEFORE_RELEASE,
            lead: 3.0,
        },
        Timed {
            row: DOWN_EXPIRY,
            lead: 3.0,
        },
        Timed {
            row: AFTER_RELEASE,
            lead: 3.0,
        },
        Timed {
            row: FAILOVER,
            lead: 6.0,
        },
    ];
    let mut pending: VecDeque<&Filler> = fillers
        .iter()
        .filter(|f| rows.get(f.row).is_some_and(|r| r.err.is_none()))
        .collect();
    let run_stage = |row: &str, rows: &mut BTreeMap<&'static str, Fault>, timed: bool| {
        if let Some(f) = rows.get_mut(row) {
            if f.err.is_some() {
                return;
            }
            let t = Instant::now();
            println!("  stage {row} ...");
            if timed {
                run_timed(suite, f);
            } else {
                run_filler(suite, f);
            }
            println!(
                "  stage {row} {} ({:.1}s)",
                if f.err.is_none() { "done" } else { "FAILED" },
                t.elapsed().as_secs_f64()
            );
            // Whatever happened, the next stage starts with the suite's operator running.
            if let Err(e) = suite.start_normal() {
                println!("  cannot start the suite's operator: {e}");
            }
        }
    };
    for t in &timed {
        let Some(f) = rows.get(t.row) else { continue };
        if f.err.is_some() {
            continue;
        }
        let begin = f.expires - t.lead;
        while let Some(pos) = pending
            .iter()
            .position(|x| !x.last && now_epoch() + x.budget < begin - 1.0)
        {
            let x = pending.remove(pos).expect("position is valid");
            run_stage(x.row, rows, false);
        }
        sleep_until_epoch(begin);
        run_stage(t.row, rows, true);
    }
    while let Some(x) = pending.pop_front() {
        run_stage(x.row, rows, false);
    }
}

/// Phase 3: the rows end (those still running a session delete it) and are checked.
pub fn phase_three(suite: &Suite, rows: BTreeMap<&'static str, Fault>) {
    thread::scope(|sc| {
        for (_, mut f) in rows {
            sc.spawn(move || {
                if matches!(f.row, AFTER_HOLD | AFTER_SHELL) {
                    f.step("end: delete the session", |f| {
                        f.ns.assert_applied(TARGET, &f.session)?;
                        f.ns.delete_session(&f.session)
                    });
                }
                f.finish(suite);
            });
        }
    });
}
