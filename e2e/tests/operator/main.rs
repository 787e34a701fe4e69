//! End-to-end scenarios of debugsession-operator against the local cluster (e2e/cluster/).
//!
//! Run: `cargo build -p debugsession-operator --bin debugsession-operator &&
//! cargo test -p debugsession-e2e --test operator -- [filter]` (filter = substring of scenario
//! names, also from env E2E_FILTER). Env: E2E_PARALLEL (default 7), E2E_KEEP=1 keeps the namespace
//! of a failed scenario, E2E_VERBOSE=1 prints each step, DEBUGSESSION_OPERATOR_BIN overrides the
//! operator binary, E2E_EXTERNAL_OPERATOR=1 uses the operator already running in the cluster (the
//! chart suite does; the scenarios that stop and start the operator process are left out).
//!
//! Each scenario runs in a namespace of its own ([`ns::Ns`]); the scenarios run side by side, then
//! those that stop the suite's operator run alone. The topics:
//! - [`happy_path`]: the README's walk-through, step by step;
//! - [`lifecycle`]: expiry, delete, a second session waiting for the first;
//! - [`ownership`]: the workload stays its owner's (the user's edits, the owner's fields, drift);
//! - [`targets`]: StatefulSets (rolling and OnDelete), DaemonSets, a target that may not change;
//! - [`input`]: Pod Security, bad input, `kubectl explain`;
//! - [`modes`]: the Copy and Ephemeral modes (a copy of the pod; an ephemeral shell in every pod,
//!   in the pod `target.pod` names, in a bare Pod): the shell reaches the app, the workload and
//!   its pods stay as they were, the session ends at its TTL;
//! - [`profiles`]: the shell's securityContext under each allowed profile, and Pod Security;
//! - [`modes_input`]: what the modes refuse, nothing created;
//! - [`kubectl_debug`]: the Copy and Ephemeral modes beside `kubectl debug` on the same pod
//!   (FIGURE lines: how long each takes to a usable shell);
//! - [`resilience`]: the operator down across an expiry, a leader failover.
//!
//! [`shell`] holds what a shell does in its pod (see, signal and read the app), [`pods`] the
//! workload, its pods and the check that a session left them alone.

mod happy_path;
mod input;
mod kubectl_debug;
mod lifecycle;
mod modes;
mod modes_input;
mod ns;
mod ownership;
mod pods;
mod profiles;
mod resilience;
mod shell;
mod targets;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use debugsession_e2e::*;

use ns::Ns;

/// What the scenarios share: the suite's operator (None with E2E_EXTERNAL_OPERATOR=1, or while a
/// scenario replaces it) and the log it writes to.
pub struct Suite {
    pub op: Mutex<Option<Operator>>,
    pub log: PathBuf,
    pub verbose: bool,
}

type Body = fn(&Ns, &Suite) -> R<()>;

/// Scenarios that run side by side.
const PARALLEL: [(&str, Body); 23] = [
    ("happy-path", happy_path::happy_path),
    ("mode-copy", modes::copy),
    ("mode-ephemeral", modes::ephemeral),
    ("mode-ephemeral-target-pod", modes::ephemeral_target_pod),
    ("mode-ephemeral-pod-target", modes::ephemeral_pod),
    ("expiry", lifecycle::expiry),
    ("delete-reverts", lifecycle::delete_reverts),
    ("user-edit-survives", ownership::user_edit_survives),
    ("preexisting-share-pns", ownership::preexisting_share_pns),
    (
        "preexisting-share-pns-off",
        ownership::preexisting_share_pns_off,
    ),
    ("second-session-waits", lifecycle::second_session_waits),
    ("statefulset", targets::statefulset),
    ("statefulset-ondelete", targets::statefulset_ondelete),
    ("daemonset", targets::daemonset),
    ("pod-security", input::pod_security),
    ("bad-input", input::bad_input),
    ("drift", ownership::drift),
    ("target-locked", targets::target_locked),
    ("explain", input::explain),
    ("mode-profiles", profiles::profiles),
    ("mode-profile-psa", profiles::profile_pod_security),
    ("mode-refused-input", modes_input::mode_bad_input),
    ("mode-vs-kubectl-debug", kubectl_debug::versus_kubectl_debug),
];

/// Scenarios that stop or replace the suite's operator: alone, after the others.
const ALONE: [(&str, Body); 2] = [
    ("restart", resilience::restart),
    ("failover", resilience::failover),
];

fn main() -> ExitCode {
    let runner = Runner::new().filtered();
    let external = env_flag("E2E_EXTERNAL_OPERATOR");
    let mut alone: Vec<(&str, Body)> = ALONE
        .into_iter()
        .filter(|(n, _)| runner.selects(n))
        .collect();
    if external {
        for (name, _) in &alone {
            runner.skip(
                name,
                "needs to control the operator process (E2E_EXTERNAL_OPERATOR=1)",
            );
        }
        alone.clear();
    }
    if alone.is_empty() && !PARALLEL.iter().any(|(n, _)| runner.selects(n)) {
        eprintln!("no scenario matches {:?}", runner.filter());
        return ExitCode::from(2);
    }
    let Some(suite) = runner.setup(|| setup(&runner, external)) else {
        return runner.finish("");
    };
    runner.parallel(scenarios(&PARALLEL, &suite));
    runner.sequential(scenarios(&alone, &suite));
    if let Some(mut op) = suite.op.lock().unwrap_or_else(|e| e.into_inner()).take() {
        op.stop();
    }
    runner.finish(&format!("; operator log {}", suite.log.display()))
}

fn scenarios<'a>(table: &[(&'static str, Body)], suite: &'a Suite) -> Vec<Scenario<'a>> {
    table
        .iter()
        .map(|&(name, body)| Scenario::new(name, move || in_namespace(name, body, suite)))
        .collect()
}

/// Runs a scenario in a namespace of its own, taken away afterwards.
fn in_namespace(name: &str, body: Body, suite: &Suite) -> R<()> {
    let ns = Ns::create(name, suite.verbose)?;
    let res = body(&ns, suite);
    remove_namespace(&ns.name, res.is_err());
    res
}

/// The cluster, the CRD and the suite's operator (whose /readyz is a scenario of its own, so that
/// a readiness bug does not hide the rest).
fn setup(runner: &Runner, external: bool) -> R<Suite> {
    wait_cluster_up(Duration::from_secs(300))?;
    install_crd()?;
    let stamp = now_epoch() as u64;
    let log = root().join(format!("target/e2e-logs/operator-{stamp}.log"));
    let verbose = env_flag("E2E_VERBOSE");
    if external {
        println!("using the operator already running in the cluster");
        return Ok(Suite {
            op: Mutex::new(None),
            log,
            verbose,
        });
    }
    let mut op = Operator::start(&log)?;
    println!(
        "operator pid {:?}, log {}, metrics {}",
        op.pid(),
        log.display(),
        op.metrics_addr
    );
    runner.run("operator-readyz", || {
        op.wait_http("/readyz", Duration::from_secs(30))
    });
    Ok(Suite {
        op: Mutex::new(Some(op)),
        log,
        verbose,
    })
}
