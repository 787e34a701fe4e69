//! End-to-end proof that the operator is no privilege escalation path (issue 5), and that a
//! session acts only for the people who asked for it (issue 8): the admission webhook served by
//! the operator stamps the requester (and a digest of the spec) at every create and spec change,
//! checks the policy and the sender's own RBAC, and the controller applies only stamped specs.
//!
//! Run: `cargo build -p debugsession-operator --bin debugsession-operator &&
//! cargo test -p debugsession-e2e --test admission [-- filter]` (the filter, else E2E_FILTER, runs
//! the scenarios whose name holds it). Env: DEBUGSESSION_OPERATOR_BIN overrides the operator
//! binary; E2E_KEEP=1 keeps everything on failure.
//!
//! The suite makes a CA and a serving certificate for 127.0.0.1 (e2e/admission/make-certs.sh),
//! starts the operator with its webhook listener, registers Mutating/ValidatingWebhookConfigurations
//! that call `https://127.0.0.1:<port>/mutate|/validate` for namespaces labelled with this run's id,
//! and tries a table of forbidden requests as impersonated users with ordinary RBAC. Each must be
//! refused with a clear message (or be undone by the controller) and leave every workload as it
//! was: the untouched ones untouched, the one a session of the `full` user holds exactly as that
//! session left it. Then the allowed path must work end to end, including `full` changing their own
//! session.
//!
//! The scenarios run one after the other (each needs what the ones before left), by topic:
//! - [`install`]: certificates, namespaces, workloads, users (the setup), and the cleanup;
//! - [`webhook`]: the operator with its webhook, and the webhook configurations;
//! - [`create`]: sessions created by the wrong people or against the policy;
//! - [`modes`]: the workloads, users and checks of the rows about modes and profiles:
//!   [`mode_rows`], sessions in each mode and profile that the webhook refuses;
//!   [`mode_controller`], those the controller refuses (including rights revoked after the
//!   stamp, and an operator running `--modes Patch`); [`mode_allowed`], the allowed path of
//!   each mode;
//! - [`victims`]: the `full` user's running and pending sessions, which the next rows attack;
//! - [`updates`]: an `editor` (sessions role only, like debugsession-edit) or a user without
//!   exec or patch rights changing a session of `full`;
//! - [`finalizer`]: finalizers stripped by the editor, or by the admin behind the operator's back
//!   (running, frozen and stopped);
//! - [`stamps`]: copied stamps, spec edits slipped past deleted webhook configurations, an
//!   operator without a stamp key;
//! - [`allowed`]: the allowed path;
//! - [`approvals`]: sessions that need a second person's approval (`--approval-namespaces`, in a
//!   namespace of their own): started before approval, approved by the wrong people, approvals
//!   carried over a spec change or past `--approval-valid-for`, forged, denied;
//!   [`approvals_audit`], their allowed path and the operator's audit trail (its stdout).

mod allowed;
mod approvals;
mod approvals_audit;
mod create;
mod finalizer;
mod install;
mod mode_allowed;
mod mode_controller;
mod mode_rows;
mod modes;
mod rows;
mod sessions;
mod stamps;
mod updates;
mod victims;
mod webhook;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use debugsession_e2e::*;

use sessions::Snapshot;

/// The state of one run of the suite, handed from scenario to scenario.
pub struct Run {
    id: String,
    ns: String,
    denied_ns: String,
    /// The namespace whose sessions need approval (`--approval-namespaces`).
    appr_ns: String,
    dir: PathBuf,
    port: u16,
    ca_b64: String,
    op: Option<Operator>,
    log: PathBuf,
    /// The operator's stdout: its audit trail.
    audit: PathBuf,
    /// The harness's own user, as the webhook stamps it: the operator runs with these credentials,
    /// so it is the operator's username (--operator-username).
    operator_user: String,
    /// Deployment in kube-system that a session there names as its target.
    ks_deploy: String,
    /// Workloads no request may change, with their generation before any request.
    watched: Vec<(String, String, i64)>,
    /// Deployments before any session: the orphan cases must bring them back to this.
    pre_session: BTreeMap<String, Snapshot>,
    /// The victim deployment while RUNNING is Active: every forbidden request must leave it so.
    held: Option<Snapshot>,
    /// Forbidden requests tried and refused so far.
    tried: usize,
    refused: usize,
    /// How workloads changed that no request may change.
    changed: Vec<String>,
}

impl Run {
    fn new() -> Run {
        let id = format!("{}", std::process::id());
        let dir = root().join(format!("target/e2e-admission/{id}"));
        Run {
            ns: format!("adm-e2e-{id}"),
            denied_ns: format!("adm-e2e-denied-{id}"),
            appr_ns: format!("adm-e2e-appr-{id}"),
            ks_deploy: format!("adm-e2e-{id}"),
            id,
            port: free_port(),
            ca_b64: String::new(),
            op: None,
            log: dir.join("operator.log"),
            audit: dir.join("operator.stdout.log"),
            dir,
            operator_user: String::new(),
            watched: Vec::new(),
            pre_session: BTreeMap::new(),
            held: None,
            tried: 0,
            refused: 0,
            changed: Vec::new(),
        }
    }

    fn user(&self, role: &str) -> String {
        format!("adm-{role}-{}", self.id)
    }

    /// The suite's verdict on the forbidden requests.
    fn tally(&self) -> String {
        format!(
            "{} forbidden requests tried, {} refused, {} workloads changed",
            self.tried,
            self.refused,
            self.changed.len()
        )
    }
}

/// A step of the setup, printed.
fn step(msg: &str) {
    println!("  .. {msg}");
}

fn main() -> ExitCode {
    let runner = Runner::new().filtered();
    let mut run = Run::new();
    if runner.setup(|| install::install(&mut run)).is_some() {
        scenarios(&runner, &mut run);
    }
    if !runner.failed().is_empty() && env_flag("E2E_KEEP") {
        println!("E2E_KEEP=1: leaving namespaces, webhooks and the operator log in place");
        webhook::stop_operator(&mut run);
    } else {
        install::cleanup(&mut run);
    }
    println!("operator log: {}", run.log.display());
    println!("operator stdout (audit): {}", run.audit.display());
    runner.finish(&format!("; {}", run.tally()))
}

/// A scenario that needs nothing but the setup and the scenarios before it.
type Step = fn(&mut Run) -> R<()>;

/// The scenarios, in the order their state needs; with a filter (the first argument, else
/// E2E_FILTER) only those whose name holds it, and the victim sessions when one of the
/// scenarios that need them runs.
fn scenarios(runner: &Runner, run: &mut Run) {
    let on = |name: &str| runner.selects(name);
    if on("create") {
        runner.run("create", || rows::attempt(run, create::rows()));
    }
    if on("modes") {
        runner.run("modes", || rows::attempt(run, mode_rows::rows()));
    }
    if on("modes-controller") {
        runner.run("modes-controller", || {
            let rows = mode_controller::rows()?;
            rows::attempt(run, rows)
        });
    }
    if on("modes-disabled") {
        runner.run("modes-disabled", || mode_controller::disabled(run));
    }
    let behind_victims = [
        "updates",
        "finalizer",
        "stamps",
        "orphans",
        "victims-intact",
    ];
    if on("victims") || behind_victims.iter().any(|n| on(n)) {
        if runner.run("victims", || victims::start(run)).is_some() {
            if on("updates") {
                runner.run("updates", || rows::attempt(run, updates::rows()));
            }
            if on("finalizer") {
                runner.run("finalizer", || rows::attempt(run, finalizer::rows()));
            }
            if on("stamps") {
                runner.run("stamps", || rows::attempt(run, stamps::rows()));
            }
            if on("orphans") {
                runner.run("orphans", || rows::attempt(run, finalizer::orphan_rows()));
            }
            // The victim sessions end here, whatever ran.
            runner.run("victims-intact", || victims::intact_then_release(run));
        } else {
            for name in behind_victims {
                runner.skip(name, "the victim sessions did not start");
            }
        }
    }
    let late: [(&str, Step); 6] = [
        ("stamp-required", |run| {
            rows::attempt(run, stamps::late_rows())
        }),
        ("approvals", approvals::scenario),
        ("workloads-untouched", victims::workloads_untouched),
        ("allowed-path", allowed::allowed_path),
        ("modes-allowed", mode_allowed::allowed_modes),
        ("approvals-allowed", approvals_audit::allowed),
    ];
    for (name, f) in late {
        if on(name) {
            runner.run(name, || f(run));
        }
    }
}
