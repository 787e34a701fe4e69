//! Fault-injection suite of debugsession-operator against the local cluster (issue 9: no input and
//! no fault leaves a workload wedged).
//!
//! Run: `cargo build -p debugsession-operator --bin debugsession-operator &&
//! cargo test -p debugsession-e2e --test faults -- [filter]` (filter = substring of row names, also
//! from env E2E_FILTER). Env: E2E_KEEP=1 keeps the namespaces of failed rows, E2E_VERBOSE=1 prints
//! each step, DEBUGSESSION_OPERATOR_BIN overrides the operator binary, E2E_EXTERNAL_CLUSTER=1 skips
//! the rows that restart kube-apiserver/etcd (they need e2e/cluster/restart).
//!
//! Every fault row runs a real session on its own 1-replica nginx Deployment and must end with the
//! session in a terminal phase (Expired with its reason, or deleted), the pod template exactly as
//! before, no holder annotation and no `debugsession/` field manager left.
//!
//! The run has four phases:
//! 1. in parallel, with the suite's operator: the bad-input table, a drifting session's events,
//!    concurrent writers during apply and revert; the workloads of the other rows are prepared;
//! 2. alone, one stage at a time: the faults that stop, kill or pause the operator, fail over its
//!    leader, or restart kube-apiserver/etcd (after which the operator that lived through the
//!    restart must act on a delete). Stages that need a session to expire under a given operator
//!    wait for that moment; the untimed stages run in the gaps (the apiserver restart runs last);
//! 3. in parallel: the fault rows end (deletes, final checks), and the idle session starts;
//! 4. alone and quiet: a session waiting on a foreign holder and an idle Active session, whose
//!    costs are read from the operator's `debugsession_reconciles_total`.
//!
//! The phases keep their own schedule (the library's `Runner` serves only for the filter: its
//! pool of 7 would queue phase 3's rows, and its lines and summary have neither the row kinds nor
//! the fault tally). The topics:
//! - [`suite`]: the rows' results, the suite's operator, operators with pause points, their logs;
//! - [`ns`]: a row's namespace, sessions and waits in it, the checks of applied and reverted;
//! - [`fault`]: a fault row (prepared, its session started, checked at the end);
//! - [`pauses`]: operators paused at a fault point, then SIGKILLed;
//! - [`downtime`]: the operator down across a delete or an expiry;
//! - [`failover`]: the leader killed during the revert;
//! - [`restarts`]: kube-apiserver or etcd restarted;
//! - [`writers`]: a concurrent writer during the apply or the revert;
//! - [`table`]: the bad-input table;
//! - [`events`]: a drifting session's events, said once;
//! - [`phases`]: the schedule of phase 2 and the end of the rows in phase 3;
//! - [`idle`]: the quiet phase 4 (foreign holder, idle Active session).

mod downtime;
mod events;
mod failover;
mod fault;
mod idle;
mod ns;
mod pauses;
mod phases;
mod restarts;
mod suite;
mod table;
mod writers;

use std::collections::BTreeMap;
use std::fs;
use std::process::ExitCode;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use debugsession_e2e::*;

use fault::Fault;
use suite::{Kind, RowResult, Suite};

pub const DEPLOY: &str = "e2e/fixtures/nginx-deployment.yaml";
pub const TABLE_DEPLOY: &str = "e2e/fixtures/faults-init-deployment.yaml";
pub const SHORT: Duration = Duration::from_secs(60);
/// A session that never expires during the run (ended by deletion).
pub const NO_EXPIRY: &str = "15m";
/// The Deployment of a fault row.
pub const TARGET: &str = "nginx";

// Fault rows.
pub const AFTER_HOLD: &str = "pause-after-hold";
pub const AFTER_SHELL: &str = "pause-after-shell";
pub const BEFORE_RELEASE: &str = "pause-before-release";
pub const AFTER_RELEASE: &str = "pause-after-release";
pub const CLEANUP_AFTER_RELEASE: &str = "pause-cleanup-after-release";
pub const RESTART_APISERVER: &str = "restart-kube-apiserver";
pub const RESTART_ETCD: &str = "restart-etcd";
pub const WRITER_APPLY: &str = "writer-during-apply";
pub const WRITER_REVERT: &str = "writer-during-revert";
pub const FAILOVER: &str = "failover-during-revert";
pub const DOWN_EXPIRY: &str = "down-across-expiry";
pub const DOWN_DELETE: &str = "down-across-delete";

/// Rows of phase 2, each with the short name of its namespace.
const STAGED: [(&str, &str); 10] = [
    (AFTER_HOLD, "ah"),
    (AFTER_SHELL, "as"),
    (BEFORE_RELEASE, "br"),
    (AFTER_RELEASE, "ar"),
    (CLEANUP_AFTER_RELEASE, "cl"),
    (RESTART_APISERVER, "api"),
    (RESTART_ETCD, "etcd"),
    (FAILOVER, "fo"),
    (DOWN_EXPIRY, "de"),
    (DOWN_DELETE, "dd"),
];

fn main() -> ExitCode {
    let runner = Runner::new().filtered();
    let verbose = env_flag("E2E_VERBOSE");
    let external_cluster = env_flag("E2E_EXTERNAL_CLUSTER");
    let started = Instant::now();
    let stamp = now_epoch() as u64;
    let logdir = root().join(format!("target/e2e-logs/faults-{stamp}"));
    let setup = || -> R<Suite> {
        wait_cluster_up(Duration::from_secs(300))?;
        install_crd()?;
        fs::create_dir_all(&logdir).map_err(|e| e.to_string())?;
        let log = logdir.join("operator.log");
        let op = Operator::start(&log)?;
        println!(
            "operator pid {:?}, logs {}, metrics {}",
            op.pid(),
            logdir.display(),
            op.metrics_addr
        );
        Ok(Suite {
            op: Mutex::new(Some(op)),
            log,
            logdir: logdir.clone(),
            verbose,
            runner,
            external_cluster,
            results: Mutex::new(Vec::new()),
        })
    };
    let suite = match setup() {
        Ok(s) => s,
        Err(e) => {
            println!("FAIL setup: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Rows of phase 2, prepared during phase 1.
    let mut staged: BTreeMap<&'static str, Fault> = BTreeMap::new();
    for (row, short) in STAGED {
        if !suite.selected(row) {
            continue;
        }
        if suite.external_cluster && (row == RESTART_APISERVER || row == RESTART_ETCD) {
            suite.runner.skip(
                &format!("fault/{row}"),
                "needs the local cluster (E2E_EXTERNAL_CLUSTER=1)",
            );
            continue;
        }
        staged.insert(row, Fault::new(row, short, verbose));
    }
    let idle_sel = suite.selected("idle-is-idle");
    let mut idle_row = idle_sel.then(|| {
        let mut f = Fault::new("idle-is-idle", "idle", verbose);
        f.session = "idle".into();
        f
    });
    let table_sel = suite.selected("table")
        || suite.selected("foreign-holder")
        || [
            "limits-cpu-lots",
            "requests-over-limits",
            "container-name-of-init-container",
            "session-name-115-chars",
            "env-200-items",
            "args-200-items",
            "env-name-1BAD=",
            "image-Busybox:Latest",
            "normal-session-after-table",
        ]
        .iter()
        .any(|r| suite.selected(r));

    // Phase 1.
    println!("== phase 1: bad-input table, drift events, concurrent writers (parallel)");
    let t1 = Instant::now();
    let mut table_state = None;
    thread::scope(|sc| {
        let suite = &suite;
        let tbl = table_sel.then(|| sc.spawn(move || table::table(suite)));
        if suite.selected("drift-events-once") {
            sc.spawn(move || events::drift_events(suite));
        }
        if suite.selected(WRITER_APPLY) {
            sc.spawn(move || writers::writer_during_apply(suite));
        }
        if suite.selected(WRITER_REVERT) {
            sc.spawn(move || writers::writer_during_revert(suite));
        }
        let staged = &mut staged;
        let idle_row = &mut idle_row;
        sc.spawn(move || {
            for f in staged.values_mut().chain(idle_row.iter_mut()) {
                f.prepare();
            }
            for f in staged.values_mut().chain(idle_row.iter_mut()) {
                f.prepare_wait();
            }
        });
        if let Some(h) = tbl {
            table_state = h.join().ok().flatten();
        }
    });
    println!("   ({:.0}s)", t1.elapsed().as_secs_f64());

    // Phase 2.
    if !staged.is_empty() {
        println!(
            "== phase 2: faults that stop, kill or pause the operator or restart the control plane (one at a time)"
        );
        let t2 = Instant::now();
        if let Err(e) = suite.start_normal() {
            println!("FAIL cannot start the operator: {e}");
        }
        phases::phase_two(&suite, &mut staged);
        println!("   ({:.0}s)", t2.elapsed().as_secs_f64());
    }

    // Phase 3.
    println!("== phase 3: the fault rows end");
    let t3 = Instant::now();
    if let Some(f) = idle_row.as_mut() {
        f.create(NO_EXPIRY);
    }
    phases::phase_three(&suite, staged);
    println!("   ({:.0}s)", t3.elapsed().as_secs_f64());

    // Phase 4.
    if table_state.is_some() || idle_row.is_some() {
        println!("== phase 4: foreign holder and idle (quiet, reconciles from /metrics)");
        let t4 = Instant::now();
        idle::wait_quiet(&suite);
        if let Some(t) = &table_state
            && suite.selected("foreign-holder")
        {
            idle::foreign_holder(&suite, t);
        }
        if let Some(f) = idle_row.take() {
            if let Some(e) = &f.err {
                suite.record_row("idle-is-idle", Kind::Check, Err(e.clone()), 0.0, Vec::new());
            } else {
                idle::wait_quiet(&suite);
                idle::idle(&suite, &f.ns, &f.original);
            }
            f.ns.cleanup(false);
        }
        if let Some(t) = &table_state {
            let failed = suite
                .results
                .lock()
                .unwrap()
                .iter()
                .any(|r| r.kind == Kind::Input && r.res.is_err());
            t.ns.cleanup(failed);
        }
        println!("   ({:.0}s)", t4.elapsed().as_secs_f64());
    }

    if let Some(mut op) = suite.op.lock().unwrap().take() {
        op.stop();
    }
    let results = suite.results.into_inner().unwrap();
    let faults: Vec<&RowResult> = results.iter().filter(|r| r.kind == Kind::Fault).collect();
    let injected = faults.iter().filter(|r| r.injected).count();
    let recovered = faults
        .iter()
        .filter(|r| r.injected && r.res.is_ok())
        .count();
    let modified = faults.iter().filter(|r| r.modified).count();
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r.res.is_err())
        .map(|r| r.name.as_str())
        .collect();
    println!(
        "\nsummary: {} rows, {} passed, {} failed in {:.0}s{}; logs {}",
        results.len(),
        results.len() - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" (failed: {})", failed.join(", "))
        },
        suite.logdir.display()
    );
    println!(
        "{injected} faults injected, {recovered} recovered, {modified} workloads left modified"
    );
    if !failed.is_empty() || injected != faults.len() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
