//! `make bench`: the operator beside what a user would do instead, and at scale, on the local
//! cluster (not a test: CI does not run it and nothing asserts a time).
//!
//! 1. Patch mode vs by hand (`kubectl patch` / a JSON-patch revert), alternating rounds on one
//!    2-replica nginx Deployment on the real node ([`patch`]);
//! 2. Copy and Ephemeral vs `kubectl debug` on the same pod, the operator asked by its own
//!    `kubectl debugsession` and by `kubectl apply` ([`debug`]);
//! 3. scale on simulated nodes: N sessions created at once, a common expiry (the expiry
//!    precision), the operator's peak RSS, CPU, API requests and reconciles ([`scale`], with
//!    [`usage`] reading what the operator process costs).
//!
//! Every operator of the bench serves the admission webhook, as a default install does
//! ([`admission`]).
//!
//! Every figure of 1-2 is a median with min and max over `BENCH_ROUNDS` rounds (default 9; 15 for
//! step 2), after one warm-up round, each side started at a random phase ([`random_pause`]),
//! measured in this run. Prints one table, writes `target/bench/results.json`,
//! and ends with one summary line (`bench: patch 1.02x manual, ...`).
//!
//! Env: `BENCH_ROUNDS` (9), `BENCH_DEBUG_ROUNDS` (15: a shell's start spreads over the kubelet's
//! 1 s relist), `BENCH_SIZES` (100,300,1000), `BENCH_STEPS` (patch,debug,scale),
//! `BENCH_QUIET=1` (no progress lines), `BENCH_MAX_MINUTES` (skip the scale sizes that would not
//! fit), `DEBUGSESSION_OPERATOR_BIN` and `DEBUGSESSION_PLUGIN_BIN` (default: the release builds).
//! Needs the local cluster with simulated nodes (`SIM_NODES=25 e2e/cluster/up`).

mod admission;
mod debug;
mod patch;
mod scale;
mod stats;
mod usage;
mod watch;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use debugsession_e2e::*;

use stats::{Stats, percentile, ratio, round3};

/// What the steps share.
pub struct Bench {
    pub rounds: usize,
    /// Rounds of the debug step: a shell's start is timed by the kubelet's 1 s relist on both
    /// sides, so its figures spread over a second and need more rounds for a steady median.
    pub debug_rounds: usize,
    pub quiet: bool,
    pub dir: PathBuf,
    pub clk_tck: f64,
    /// The admission webhook every operator of the bench serves.
    pub admission: admission::Admission,
}

impl Bench {
    pub fn say(&self, msg: &str) {
        if !self.quiet {
            println!("[{:.0}] {msg}", now_epoch() % 100_000.0);
        }
    }
}

/// Sleeps `base` and a random part of up to a second: the kubelet reports a started container at
/// its next relist (every second) and probes readiness on its own period, and with pauses of a
/// fixed length each side would meet those clocks at the same phase round after round; at
/// random phases both sides draw alike.
pub fn random_pause(base: Duration) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // The low digits of the clock, mixed: a phase between 0 and 1 s.
    let jitter = u64::from(nanos.wrapping_mul(2_654_435_761) % 1_000_000_000);
    std::thread::sleep(base + Duration::from_nanos(jitter));
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A namespace of its own for a real-node step, taken away afterwards.
fn in_namespace<T>(b: &Bench, step: &str, body: impl FnOnce(&str) -> R<T>) -> R<T> {
    let name = format!("bench-{step}-{}", (now_epoch() * 1000.0) as u64 % 100_000);
    create_namespace(&name, WAIT)?;
    let res = b.admission.label(&name).and_then(|()| body(&name));
    remove_namespace(&name, false);
    res
}

/// One figure of the side-by-side table: the other way, the operator, operator / other.
struct Row {
    what: &'static str,
    other: &'static str,
    other_s: Vec<f64>,
    operator_s: Vec<f64>,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        Some(ratio(
            &Stats::of(&self.operator_s)?,
            &Stats::of(&self.other_s)?,
        ))
    }
}

fn fmt_ratio(r: Option<f64>, of: &str) -> String {
    r.map_or_else(|| format!("n/a {of}"), |r| format!("{r:.2}x {of}"))
}

fn main() -> ExitCode {
    if std::env::var_os("DEBUGSESSION_OPERATOR_BIN").is_none() {
        let release = root().join("target/release/debugsession-operator");
        // SAFETY: no other thread runs yet.
        unsafe { std::env::set_var("DEBUGSESSION_OPERATOR_BIN", release) };
    }
    let dir = root().join("target/bench");
    let _ = fs::create_dir_all(&dir);
    let admission = match admission::Admission::prepare(&dir.join("webhook")) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: could not prepare the admission webhook: {e}");
            return ExitCode::FAILURE;
        }
    };
    let b = Bench {
        rounds: env_or("BENCH_ROUNDS", "9").parse().unwrap_or(9).max(1),
        debug_rounds: env_or("BENCH_DEBUG_ROUNDS", "15")
            .parse()
            .unwrap_or(15)
            .max(1),
        quiet: env_flag("BENCH_QUIET"),
        dir,
        clk_tck: clk_tck(),
        admission,
    };
    let steps = env_or("BENCH_STEPS", "patch,debug,scale");
    let sizes: Vec<usize> = env_or("BENCH_SIZES", "100,300,1000")
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    let started = std::time::Instant::now();
    let budget: Option<f64> = std::env::var("BENCH_MAX_MINUTES")
        .ok()
        .and_then(|m| m.parse::<f64>().ok())
        .map(|m| m * 60.0);
    let mut errors: Vec<String> = Vec::new();
    if let Err(e) = wait_cluster_up(Duration::from_secs(300)).and_then(|()| install_crd()) {
        eprintln!("bench: the cluster is not usable: {e}");
        return ExitCode::FAILURE;
    }

    // 1-2: on the real node, with one operator
    let mut patch_t = None;
    let mut debug_t = None;
    if steps.contains("patch") || steps.contains("debug") {
        let log = b.dir.join("operator-real-node.log");
        let _ = fs::remove_file(&log);
        // Each API request in the log, timed, as the scale step has it.
        match b.admission.start_operator(&log) {
            Ok(mut op) => {
                if steps.contains("patch") {
                    match in_namespace(&b, "patch", |ns| patch::run(&b, ns)) {
                        Ok(t) => patch_t = Some(t),
                        Err(e) => errors.push(format!("patch: {e}")),
                    }
                }
                if steps.contains("debug") {
                    match in_namespace(&b, "debug", |ns| debug::run(&b, ns)) {
                        Ok(t) => debug_t = Some(t),
                        Err(e) => errors.push(format!("debug: {e}")),
                    }
                }
                op.stop();
            }
            Err(e) => errors.push(format!("operator: {e}")),
        }
        report(&b, &patch_t, &debug_t, &[], &errors, false);
    }

    // 3: scale on simulated nodes, one operator per size
    let mut scale_r: Vec<scale::ScaleResult> = Vec::new();
    if steps.contains("scale") && !sizes.is_empty() {
        match scale::namespaces() {
            Ok(()) => {
                let mut have = 0;
                let mut last: Option<(usize, f64)> = None;
                for &size in &sizes {
                    // the cost of a size: the last one's, scaled (the controller-manager's
                    // rollouts rule it), else a rough guess for 2 cores
                    let need = last.map_or(60.0 + 1.2 * size as f64, |(n, secs)| {
                        1.2 * secs * size as f64 / n.max(1) as f64
                    });
                    let t_size = std::time::Instant::now();
                    if let Some(budget) = budget
                        && started.elapsed().as_secs_f64() + need > budget
                    {
                        errors.push(format!(
                            "scale {size}: skipped, BENCH_MAX_MINUTES leaves too little time (about {need:.0}s needed)"
                        ));
                        break;
                    }
                    match scale::run(&b, size, have) {
                        Ok(r) => {
                            have = have.max(size);
                            last = Some((size, t_size.elapsed().as_secs_f64()));
                            scale_r.push(r);
                            report(&b, &patch_t, &debug_t, &scale_r, &errors, false);
                        }
                        Err(e) => {
                            errors.push(format!("scale {size}: {e}"));
                            break;
                        }
                    }
                }
            }
            Err(e) => errors.push(format!("scale namespaces: {e}")),
        }
    }
    // No operator runs now: the webhook goes before anything else changes a session.
    b.admission.remove();
    if steps.contains("scale") {
        scale::cleanup();
    }

    // partial results are written after each step (a run cut short keeps what it measured)
    report(&b, &patch_t, &debug_t, &scale_r, &errors, true)
}

/// The table (printed when `print`), `target/bench/results.json`, and the summary line; success
/// when nothing failed.
fn report(
    b: &Bench,
    patch_t: &Option<patch::PatchTimes>,
    debug_t: &Option<debug::DebugTimes>,
    scale_r: &[scale::ScaleResult],
    errors: &[String],
    print: bool,
) -> ExitCode {
    let mut errors = errors.to_vec();
    let mut text = String::new();
    macro_rules! outln {
        ($($arg:tt)*) => {{
            text.push_str(&format!($($arg)*));
            text.push('\n');
        }};
    }
    let mut rows = Vec::new();
    if let Some(t) = patch_t {
        rows.push(Row {
            what: "patch: to Ready (op) / rollout complete (manual)",
            other: "kubectl patch",
            other_s: t.manual_apply.clone(),
            operator_s: t.operator_ready.clone(),
        });
        rows.push(Row {
            what: "patch: to rollout complete",
            other: "kubectl patch",
            other_s: t.manual_apply.clone(),
            operator_s: t.operator_rolled.clone(),
        });
        rows.push(Row {
            what: "revert: to rollout complete",
            other: "JSON patch",
            other_s: t.manual_revert.clone(),
            operator_s: t.operator_revert.clone(),
        });
    }
    if let Some(t) = debug_t {
        rows.push(Row {
            what: "copy: to a running shell (kubectl debugsession)",
            other: "kubectl debug",
            other_s: t.copy_kubectl.clone(),
            operator_s: t.copy_plugin.clone(),
        });
        rows.push(Row {
            what: "copy: to a running shell (kubectl apply)",
            other: "kubectl debug",
            other_s: t.copy_kubectl.clone(),
            operator_s: t.copy_operator.clone(),
        });
        rows.push(Row {
            what: "ephemeral: to a running shell (kubectl debugsession)",
            other: "kubectl debug",
            other_s: t.ephemeral_kubectl.clone(),
            operator_s: t.ephemeral_plugin.clone(),
        });
        rows.push(Row {
            what: "ephemeral: to a running shell (kubectl apply)",
            other: "kubectl debug",
            other_s: t.ephemeral_kubectl.clone(),
            operator_s: t.ephemeral_operator.clone(),
        });
    }
    outln!(
        "\n== side by side (median [min-max] of {} rounds, {} for copy and ephemeral)",
        b.rounds,
        b.debug_rounds
    );
    outln!(
        "{:<54} {:>24} {:>24} {:>7}",
        "figure",
        "by hand / kubectl debug",
        "operator",
        "ratio"
    );
    let mut json_rows = Vec::new();
    for r in &rows {
        let (o, k) = (Stats::of(&r.operator_s), Stats::of(&r.other_s));
        outln!(
            "{:<54} {:>24} {:>24} {:>7}",
            r.what,
            k.as_ref().map_or("n/a".into(), Stats::show),
            o.as_ref().map_or("n/a".into(), Stats::show),
            r.ratio().map_or("n/a".into(), |x| format!("{x:.2}x")),
        );
        json_rows.push(json!({
            "figure": r.what,
            "other": r.other,
            "other_seconds": k.map(|s| s.json(&r.other_s)),
            "operator_seconds": o.map(|s| s.json(&r.operator_s)),
            "ratio": r.ratio().map(round3),
        }));
    }

    outln!(
        "\n== scale on simulated nodes (Patch mode, one 1-replica Deployment per session, {} namespaces)",
        scale::NAMESPACES
    );
    outln!(
        "{:>8} {:>10} {:>12} {:>10} {:>10} {:>10} {:>9} {:>8} {:>10} {:>10} {:>11}",
        "sessions",
        "to-active",
        "to-reverted",
        "expiry-p50",
        "expiry-p99",
        "expiry-max",
        "peak-rss",
        "cpu-s",
        "writes/ses",
        "reads/ses",
        "reconc/ses"
    );
    let mut json_scale = Vec::new();
    for r in scale_r {
        let p50 = percentile(&r.expiry, 50.0).unwrap_or(f64::NAN);
        let p99 = percentile(&r.expiry, 99.0).unwrap_or(f64::NAN);
        let max = r.expiry.iter().copied().fold(f64::NAN, f64::max);
        let reads = r.per_session(&[0, 2], |v, _| v == "get" || v == "list");
        outln!(
            "{:>8} {:>9.1}s {:>11.2}s {:>9.2}s {:>9.2}s {:>9.2}s {:>6}MiB {:>8.1} {:>10.1} {:>10.1} {:>11.1}",
            r.sessions,
            r.to_active,
            r.to_reverted,
            p50,
            p99,
            max,
            r.peak_rss_kib / 1024,
            r.cpu_seconds,
            r.writes_per_session(),
            reads,
            r.reconciles_per_session(),
        );
        let requests: serde_json::Map<String, Value> = r
            .requests
            .iter()
            .map(|(k, c)| {
                let by_phase: serde_json::Map<String, Value> = scale::PHASES
                    .iter()
                    .zip(c)
                    .map(|(p, n)| (p.to_string(), json!(n)))
                    .collect();
                (k.clone(), Value::Object(by_phase))
            })
            .collect();
        json_scale.push(json!({
            "sessions": r.sessions,
            "to_active_seconds": round3(r.to_active),
            "to_reverted_seconds": round3(r.to_reverted),
            "expiry_seconds": {"p50": round3(p50), "p99": round3(p99), "max": round3(max), "n": r.expiry.len()},
            "peak_rss_mib": round3(r.peak_rss_kib as f64 / 1024.0),
            "cpu_seconds": round3(r.cpu_seconds),
            "writes_per_session": round3(r.writes_per_session()),
            "reads_per_session": round3(reads),
            "events_per_session": round3(r.per_session(&[0, 2], |v, res| v == "create" && res.starts_with("events"))),
            "subjectaccessreviews_per_session": round3(r.per_session(&[0, 2], |_, res| res.starts_with("subjectaccessreviews"))),
            "reconciles_per_session": round3(r.reconciles_per_session()),
            "watch_restarts": r.watch_restarts,
            "reconciles_total_by_phase_end": r.reconciles,
            "requests_by_phase": requests,
        }));
    }
    for r in scale_r {
        outln!(
            "\nrequests of the {}-session run, per phase ({}):",
            r.sessions,
            scale::PHASES.join(" / ")
        );
        for (k, c) in &r.requests {
            outln!("  {k:<45} {:>6} {:>6} {:>6} {:>6}", c[0], c[1], c[2], c[3]);
        }
    }

    let ratio_of = |i: usize| {
        rows.iter()
            .find(|r| r.what == rows_names()[i])
            .and_then(Row::ratio)
    };
    let expiry_p99 = scale_r
        .iter()
        .find(|r| r.sessions == 100)
        .or(scale_r.first())
        .and_then(|r| percentile(&r.expiry, 99.0));
    let biggest = scale_r.iter().max_by_key(|r| r.sessions);
    let scale_part = biggest.map_or("scale n/a".to_string(), |r| {
        format!(
            "{} sessions peak-rss {}MiB writes/session {:.1}",
            r.sessions,
            r.peak_rss_kib / 1024,
            r.writes_per_session()
        )
    });
    let summary = format!(
        "bench: patch {}, revert {}, copy {}, ephemeral {}, expiry p99 {}, {}",
        fmt_ratio(ratio_of(0), "manual"),
        fmt_ratio(ratio_of(1), "manual"),
        fmt_ratio(ratio_of(2), "kubectl-debug"),
        fmt_ratio(ratio_of(3), "kubectl-debug"),
        expiry_p99.map_or("n/a".into(), |p| format!("{p:.2}s")),
        scale_part,
    );
    let results = json!({
        "machine": machine(),
        "rounds": b.rounds,
        "debug_rounds": b.debug_rounds,
        "side_by_side": json_rows,
        "scale": json_scale,
        "errors": errors,
        "summary": summary,
        "timestamp": now_epoch() as u64,
    });
    let path = b.dir.join("results.json");
    if let Err(e) = fs::write(
        &path,
        serde_json::to_string_pretty(&results).unwrap_or_default(),
    ) {
        errors.push(format!("writing {}: {e}", path.display()));
    }
    outln!("\nresults: {}", path.display());
    for e in &errors {
        outln!("ERROR {e}");
    }
    outln!("{summary}");
    if print {
        print!("{text}");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The rows the summary line names: patch, revert, copy, ephemeral.
fn rows_names() -> [&'static str; 4] {
    [
        "patch: to Ready (op) / rollout complete (manual)",
        "revert: to rollout complete",
        "copy: to a running shell (kubectl debugsession)",
        "ephemeral: to a running shell (kubectl debugsession)",
    ]
}

/// Cores and memory of this machine, for the record.
fn machine() -> Value {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib: u64 = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    json!({
        "cores": cores,
        "memory_gib": round3(mem_kib as f64 / 1024.0 / 1024.0),
        "cluster": "local Kubernetes v1.20.2 (e2e/cluster): real node-1 + simulated nodes",
    })
}
