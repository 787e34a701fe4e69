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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use debugsession_e2e::*;

const DEPLOY: &str = "e2e/fixtures/nginx-deployment.yaml";
const TABLE_DEPLOY: &str = "e2e/fixtures/faults-init-deployment.yaml";
const SHELL: &str = "debug-shell";
const HOLDER: &str = "debugsession.dev/session";
const HOLDER_PTR: &str = "/metadata/annotations/debugsession.dev~1session";
const WRITER_KEY: &str = "faults.e2e/writer";
const PAUSED: &str = "paused at fault point";
const LONG: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(60);
/// A session that never expires during the run (ended by deletion).
const NO_EXPIRY: &str = "15m";

// Fault rows.
const AFTER_HOLD: &str = "pause-after-hold";
const AFTER_SHELL: &str = "pause-after-shell";
const BEFORE_RELEASE: &str = "pause-before-release";
const AFTER_RELEASE: &str = "pause-after-release";
const CLEANUP_AFTER_RELEASE: &str = "pause-cleanup-after-release";
const RESTART_APISERVER: &str = "restart-kube-apiserver";
const RESTART_ETCD: &str = "restart-etcd";
const WRITER_APPLY: &str = "writer-during-apply";
const WRITER_REVERT: &str = "writer-during-revert";
const FAILOVER: &str = "failover-during-revert";
const DOWN_EXPIRY: &str = "down-across-expiry";
const DOWN_DELETE: &str = "down-across-delete";

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

// ---------------------------------------------------------------- results

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A fault injected into a running session.
    Fault,
    /// A row of the bad-input table.
    Input,
    /// Events and idle costs.
    Check,
}

struct RowResult {
    name: String,
    kind: Kind,
    injected: bool,
    modified: bool,
    res: R<()>,
    secs: f64,
    notes: Vec<String>,
}

struct Suite {
    op: Mutex<Option<Operator>>,
    log: PathBuf,
    logdir: PathBuf,
    verbose: bool,
    filter: String,
    external_cluster: bool,
    results: Mutex<Vec<RowResult>>,
}

impl Suite {
    fn selected(&self, row: &str) -> bool {
        row.contains(self.filter.as_str())
    }

    fn record(&self, r: RowResult) {
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

    /// SIGKILLs the suite's operator.
    fn kill_normal(&self) {
        if let Some(mut o) = self.op.lock().unwrap().take() {
            o.kill();
        }
    }

    /// Stops the suite's operator (SIGTERM, then SIGKILL after 10s).
    fn stop_normal(&self) {
        if let Some(mut o) = self.op.lock().unwrap().take() {
            o.stop();
        }
    }

    /// Starts the suite's operator (no pause points) unless it runs.
    fn start_normal(&self) -> R<()> {
        let mut op = self.op.lock().unwrap();
        if op.is_none() {
            *op = Some(Operator::start(&self.log)?);
        }
        Ok(())
    }

    fn metrics_addr(&self) -> R<String> {
        self.op
            .lock()
            .unwrap()
            .as_ref()
            .map(|o| o.metrics_addr.clone())
            .ok_or_else(|| "the suite's operator is not running".to_string())
    }

    /// `debugsession_reconciles_total` of the suite's operator.
    fn reconciles(&self) -> R<f64> {
        let addr = self.metrics_addr()?;
        let body = http_get(&addr, "/metrics")?;
        body.lines()
            .find_map(|l| l.strip_prefix("debugsession_reconciles_total "))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| "no debugsession_reconciles_total in /metrics".to_string())
    }

    /// Fails unless the suite's operator answers /healthz (and starts a new one when it died).
    fn normal_alive(&self) -> R<()> {
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

    /// An operator with `DEBUGSESSION_PAUSE_AT=points` (plus flags/env), logging to its own file.
    fn start_paused(
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

// ---------------------------------------------------------------- namespaces and helpers

static SEQ: AtomicU32 = AtomicU32::new(0);

/// `<prefix>-<5 digits>`, unique within the run.
fn unique(prefix: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::SeqCst) % 100;
    let base = (now_epoch() as u64) % 1000;
    format!("{prefix}-{base:03}{n:02}")
}

fn summary(v: &Value) -> String {
    format!(
        "phase={:?} message={:?} {} {}",
        s(v, "/status/phase"),
        s(v, "/status/message"),
        cond_summary(v, "Ready"),
        cond_summary(v, "Reverted"),
    )
}

fn ready_reason(v: &Value) -> String {
    condition(v, "Ready")
        .map(|c| s(c, "/reason").to_string())
        .unwrap_or_default()
}

fn has_shell(template: &Value) -> bool {
    template
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|c| c["name"] == SHELL))
}

fn managers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|m| s(m, "/manager").to_string()).collect())
        .unwrap_or_default()
}

fn our_managers(obj: &Value) -> Vec<String> {
    managers(obj)
        .into_iter()
        .filter(|m| m.starts_with("debugsession/"))
        .collect()
}

/// Differences between two JSON values as pointer paths (for failure messages).
fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => diff(u, v, &p, out),
                    (Some(u), None) => out.push(format!("{p}: removed (was {u})")),
                    (None, Some(v)) => out.push(format!("{p}: added {v}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff(u, v, &format!("{path}/{i}"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} -> {b}")),
        _ => {}
    }
}

fn template_diff(before: &Value, after: &Value) -> R<()> {
    let mut d = Vec::new();
    diff(before, after, "/spec/template", &mut d);
    ensure(d.is_empty(), || {
        format!("pod template differs from the original: {}", d.join("; "))
    })
}

/// Like `wait_for`, polling every 500ms (several rows poll at once on a 2-core machine).
fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> R<T>) -> R<T> {
    let start = Instant::now();
    loop {
        let last = match f() {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if start.elapsed() >= timeout {
            return Err(format!(
                "timed out after {}s waiting for {what}; last seen: {last}",
                timeout.as_secs()
            ));
        }
        thread::sleep(Duration::from_millis(500));
    }
}

/// Waits for wall-clock time itself (a TTL running out), not for a condition.
fn sleep_until_epoch(t: f64) {
    let wait = t - now_epoch();
    if wait > 0.0 {
        thread::sleep(Duration::from_secs_f64(wait));
    }
}

fn session_doc(ns: &str, name: &str, target: &str, ttl: &str, shell: Option<&Value>) -> String {
    let mut spec = json!({"target": {"kind": "Deployment", "name": target}, "ttl": ttl});
    if let Some(sh) = shell {
        spec["shell"] = sh.clone();
    }
    json!({
        "apiVersion": "debugsession.dev/v1alpha1",
        "kind": "DebugSession",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
    .to_string()
}

/// Sum of the counts of events (a series counts `series.count`, else `count`, else 1).
fn event_total(e: &Value) -> u64 {
    let series = e.pointer("/series/count").and_then(Value::as_u64);
    let count = e.pointer("/count").and_then(Value::as_u64);
    series.into_iter().chain(count).max().unwrap_or(1).max(1)
}

/// The operator log's `paused at fault point` line for `point` in `ns`/`session`.
fn wait_paused(log: &Path, point: &str, ns: &str, session: &str, timeout: Duration) -> R<Value> {
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
fn run_logs(dir: &Path, needle: &str, n: usize) -> Vec<String> {
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
fn log_lines(log: &Path, needle: &str, n: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
    lines[lines.len().saturating_sub(n)..].join("\n      ")
}

struct Ns {
    name: String,
    row: String,
    verbose: bool,
}

impl Ns {
    fn new(name: String, row: &str, verbose: bool) -> Ns {
        Ns {
            name,
            row: row.to_string(),
            verbose,
        }
    }

    fn init(&self) -> R<()> {
        k(&["create", "namespace", &self.name])?;
        poll("the default ServiceAccount", TIMEOUT, || {
            k(&["get", "serviceaccount", "default", "-n", &self.name]).map(|_| ())
        })
    }

    fn say(&self, msg: &str) {
        if self.verbose {
            println!("  [{}] {msg}", self.row);
        }
    }

    fn k(&self, args: &[&str]) -> R<String> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        k(&a)
    }

    fn kubectl(&self, args: &[&str]) -> Out {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        kubectl(&a)
    }

    /// Applies a workload fixture (one replica, images of images.env) without waiting.
    fn apply_fixture(&self, file: &str) -> R<()> {
        let text = render(file, &[])?
            .replace("replicas: 2", "replicas: 1")
            .replace("registry.local/nginx:1.22.1", &cluster().nginx())
            .replace("registry.local/busybox:1.35.0", &cluster().busybox());
        k_in(&text, &["apply", "-n", &self.name, "-f", "-"]).map(|_| ())
    }

    fn rollout(&self, deploy: &str) -> R<()> {
        let out = run(
            "kubectl",
            &[
                "rollout",
                "status",
                "-n",
                &self.name,
                &format!("deployment/{deploy}"),
                "--timeout=110s",
            ],
            None,
            LONG,
        );
        ensure(out.ok, || {
            format!(
                "rollout of deployment/{deploy} did not finish: {}",
                out.both()
            )
        })
    }

    fn get(&self, resource: &str, name: &str) -> R<Value> {
        get_opt(&self.name, resource, name)?
            .ok_or_else(|| format!("{resource}/{name} not found in {}", self.name))
    }

    fn deployment(&self, name: &str) -> R<Value> {
        self.get("deployment", name)
    }

    fn template(&self, deploy: &str) -> R<Value> {
        Ok(self.deployment(deploy)?["spec"]["template"].clone())
    }

    fn dbgs(&self, name: &str) -> R<Value> {
        self.get("debugsession", name)
    }

    fn create_session(&self, name: &str, target: &str, ttl: &str, shell: Option<&Value>) -> Out {
        self.say(&format!("create session {name} ttl {ttl}"));
        let doc = session_doc(&self.name, name, target, ttl, shell);
        kubectl_in(&doc, &["create", "-f", "-"])
    }

    fn session(&self, name: &str, target: &str, ttl: &str) -> R<()> {
        let out = self.create_session(name, target, ttl, None);
        ensure(out.ok, || {
            format!("creating DebugSession {name}: {}", out.both().trim())
        })
    }

    fn wait_session(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> R<Value> {
        self.say(&format!("wait for {name}: {what}"));
        poll(&format!("DebugSession {name}: {what}"), timeout, || {
            let v = self.dbgs(name)?;
            if pred(&v) { Ok(v) } else { Err(summary(&v)) }
        })
    }

    fn wait_phase(&self, name: &str, phase: &str, timeout: Duration) -> R<Value> {
        self.wait_session(name, &format!("phase {phase}"), timeout, |v| {
            s(v, "/status/phase") == phase
        })
    }

    fn wait_active(&self, name: &str, timeout: Duration) -> R<Value> {
        self.wait_session(name, "Active and Ready=True", timeout, |v| {
            s(v, "/status/phase") == "Active"
                && condition(v, "Ready").is_some_and(|c| c["status"] == "True")
        })
    }

    fn wait_gone(&self, name: &str, timeout: Duration) -> R<()> {
        poll(
            &format!("DebugSession {name} to be gone"),
            timeout,
            || match get_opt(&self.name, "debugsession", name)? {
                None => Ok(()),
                Some(v) => Err(format!(
                    "still there, finalizers {}, {}",
                    v["metadata"]["finalizers"],
                    summary(&v)
                )),
            },
        )
    }

    /// Deletes the session and waits until the finalizer ran and it is gone.
    fn delete_session(&self, name: &str) -> R<()> {
        self.say(&format!("delete session {name}"));
        self.k(&["delete", "debugsession", name, "--wait=false"])?;
        self.wait_gone(name, TIMEOUT)
    }

    /// The shell of `session` is in the workload, under its annotation and field manager.
    fn assert_applied(&self, deploy: &str, session: &str) -> R<Value> {
        let w = self.deployment(deploy)?;
        ensure(has_shell(&w["spec"]["template"]), || {
            format!(
                "no {SHELL} container in the template: {}",
                w["spec"]["template"]["spec"]["containers"]
            )
        })?;
        let ann = s(&w, HOLDER_PTR);
        ensure(ann == session, || {
            format!("annotation {HOLDER}={ann:?}, want {session:?}")
        })?;
        let manager = format!("debugsession/{}/{session}", self.name);
        let ours = our_managers(&w);
        ensure(ours == [manager.clone()], || {
            format!("debugsession field managers {ours:?}, want exactly [{manager}]")
        })?;
        Ok(w)
    }

    /// The workload is back to `original` (its whole .spec.template), without our annotation or
    /// any `debugsession/` field manager, with the annotations others wrote.
    fn assert_reverted(&self, deploy: &str, original: &Value, kept: &[(String, String)]) -> R<()> {
        let w = self.deployment(deploy)?;
        template_diff(original, &w["spec"]["template"])?;
        let ann = w.pointer(HOLDER_PTR);
        ensure(ann.is_none(), || {
            format!("annotation {HOLDER}={} left on the workload", ann.unwrap())
        })?;
        let ours = our_managers(&w);
        ensure(ours.is_empty(), || {
            format!("debugsession field managers left: {ours:?}")
        })?;
        for (key, want) in kept {
            let got = w
                .pointer(&format!(
                    "/metadata/annotations/{}",
                    key.replace('~', "~0").replace('/', "~1")
                ))
                .and_then(Value::as_str)
                .unwrap_or("<absent>");
            ensure(got == want, || {
                format!("annotation {key}={got:?}, the other writer's last value was {want:?}")
            })?;
        }
        Ok(())
    }

    /// Events of the DebugSession `name` matching `pred`, counting series.
    fn event_count(&self, name: &str, pred: impl Fn(&Value) -> bool) -> R<u64> {
        let v = get_json(&["events", "-n", &self.name])?;
        Ok(v["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|e| {
                e["involvedObject"]["kind"] == "DebugSession"
                    && e["involvedObject"]["name"] == name
                    && pred(e)
            })
            .map(event_total)
            .sum())
    }

    fn wait_event(&self, name: &str, reason: &str, timeout: Duration) -> R<()> {
        poll(
            &format!("an event {reason} on DebugSession {name}"),
            timeout,
            || {
                let evs = events(&self.name, "DebugSession", name)?;
                if evs.iter().any(|e| e.1 == reason) {
                    Ok(())
                } else {
                    Err(format!(
                        "events: {:?}",
                        evs.iter().map(|e| &e.1).collect::<Vec<_>>()
                    ))
                }
            },
        )
    }

    fn cleanup(&self, failed: bool) {
        if failed && std::env::var("E2E_KEEP").is_ok_and(|v| v == "1") {
            println!("  (kept namespace {} for inspection)", self.name);
            return;
        }
        let out = run(
            "kubectl",
            &[
                "delete",
                "debugsessions",
                "--all",
                "-n",
                &self.name,
                "--timeout=60s",
            ],
            None,
            Duration::from_secs(70),
        );
        if !out.ok {
            // Do not leave the namespace stuck on finalizers the operator could not run.
            if let Ok(v) = get_json(&["debugsessions", "-n", &self.name]) {
                for item in v["items"].as_array().cloned().unwrap_or_default() {
                    let _ = self.kubectl(&[
                        "patch",
                        "debugsession",
                        s(&item, "/metadata/name"),
                        "--type=merge",
                        "-p",
                        r#"{"metadata":{"finalizers":null}}"#,
                    ]);
                }
            }
        }
        let _ = kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

fn check_expired(v: &Value) -> R<()> {
    ensure(
        s(v, "/status/phase") == "Expired"
            && ready_reason(v) == "Expired"
            && condition(v, "Reverted").is_some_and(|c| c["status"] == "True"),
        || {
            format!(
                "want phase Expired, Ready reason Expired, Reverted=True: {}",
                summary(v)
            )
        },
    )
}

// ---------------------------------------------------------------- fault rows

/// One fault row: its namespace, Deployment `nginx`, session, the template before the session.
struct Fault {
    row: &'static str,
    ns: Ns,
    session: String,
    original: Value,
    /// Annotations others wrote that must survive (key, last value).
    kept: Vec<(String, String)>,
    /// When the session expires (epoch seconds), for timed stages.
    expires: f64,
    injected: bool,
    err: Option<String>,
    notes: Vec<String>,
    started: Instant,
    ready: bool,
}

const TARGET: &str = "nginx";

impl Fault {
    fn new(row: &'static str, short: &str, verbose: bool) -> Fault {
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
    fn step(&mut self, what: &str, f: impl FnOnce(&mut Fault) -> R<()>) {
        if self.err.is_some() {
            return;
        }
        if let Err(e) = f(self) {
            self.err = Some(format!("{what}: {e}"));
        }
    }

    fn note(&mut self, n: String) {
        self.notes.push(n);
    }

    /// Creates the namespace and the Deployment (waits for the rollout in `prepare_wait`).
    fn prepare(&mut self) {
        self.step("prepare", |f| {
            f.ns.init()?;
            f.ns.apply_fixture(DEPLOY)
        });
    }

    fn prepare_wait(&mut self) {
        self.step("prepare", |f| {
            f.ns.rollout(TARGET)?;
            f.original = f.ns.template(TARGET)?;
            f.ready = true;
            Ok(())
        });
    }

    fn create(&mut self, ttl: &str) {
        let ttl = ttl.to_string();
        self.step("create the session", |f| {
            f.ns.session(&f.session, TARGET, &ttl)
        });
    }

    fn wait_active(&mut self) {
        self.step("session Active before the fault", |f| {
            let v = f.ns.wait_active(&f.session, LONG)?;
            f.expires = parse_time(s(&v, "/status/expiresAt"))?;
            f.ns.assert_applied(TARGET, &f.session).map(|_| ())
        });
    }

    /// The final check (always): the workload is as before; then the namespace goes.
    fn finish(mut self, suite: &Suite) {
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
fn check_pause_line(f: &mut Fault, line: &Value) {
    if s(line, "/span/session").is_empty() {
        f.note(format!(
            "the pause line carries no namespace/session of the reconcile span: {line}"
        ));
    }
}

/// after-hold / after-shell: a new session under an operator paused at `point`; SIGKILL; a fresh
/// operator without pause points must bring the session to Active.
fn stage_pause_new(suite: &Suite, f: &mut Fault, point: &'static str) {
    f.step(&format!("pause at {point}"), |f| {
        suite.kill_normal();
        let mut op = suite.start_paused(f.row, point, &[], &[])?;
        let res = (|| -> R<()> {
            f.ns.session(&f.session, TARGET, NO_EXPIRY)?;
            let line = wait_paused(&op.log, point, &f.ns.name, &f.session, SHORT)?;
            check_pause_line(f, &line);
            let w = f.ns.deployment(TARGET)?;
            let holder = s(&w, HOLDER_PTR);
            let shell = has_shell(&w["spec"]["template"]);
            match point {
                "after-hold" => ensure(holder == f.session && !shell, || {
                    format!("at after-hold: want the holder annotation and no shell; annotation {holder:?}, shell {shell}")
                })?,
                _ => ensure(holder == f.session && shell, || {
                    format!("at after-shell: want annotation and shell; annotation {holder:?}, shell {shell}")
                })?,
            }
            f.injected = true;
            Ok(())
        })();
        op.kill();
        suite.start_normal()?;
        res
    });
    f.step("recovery: Active under a fresh operator", |f| {
        let t = Instant::now();
        f.ns.wait_active(&f.session, LONG)?;
        f.ns.assert_applied(TARGET, &f.session)?;
        f.note(format!(
            "FIGURE {}-restart-to-active-seconds={:.1}",
            f.row,
            t.elapsed().as_secs_f64()
        ));
        Ok(())
    });
}

/// before-release / after-release: the session expires under an operator paused at `point`.
fn stage_pause_expiry(suite: &Suite, f: &mut Fault, point: &'static str) {
    f.step(&format!("pause at {point}"), |f| {
        let left = f.expires - now_epoch();
        ensure(left > 1.0, || {
            format!("stage began {:.1}s before the expiry (scheduling)", left)
        })?;
        suite.kill_normal();
        let mut op = suite.start_paused(f.row, point, &[], &[])?;
        let res = (|| -> R<()> {
            let timeout = Duration::from_secs_f64(f.expires - now_epoch() + 10.0);
            let line = wait_paused(&op.log, point, &f.ns.name, &f.session, timeout)?;
            check_pause_line(f, &line);
            let w = f.ns.deployment(TARGET)?;
            let v = f.ns.dbgs(&f.session)?;
            let shell = has_shell(&w["spec"]["template"]);
            let phase = s(&v, "/status/phase").to_string();
            match point {
                "before-release" => ensure(shell && phase != "Expired", || {
                    format!("at before-release: want the shell still there and no Expired status; shell {shell}, {}", summary(&v))
                })?,
                _ => ensure(!shell && our_managers(&w).is_empty() && phase != "Expired", || {
                    format!("at after-release: want the workload released and no Expired status yet; shell {shell}, managers {:?}, {}", our_managers(&w), summary(&v))
                })?,
            }
            f.injected = true;
            Ok(())
        })();
        op.kill();
        suite.start_normal()?;
        res
    });
    f.step("recovery: Expired under a fresh operator", |f| {
        let t = Instant::now();
        let v = f.ns.wait_phase(&f.session, "Expired", SHORT)?;
        check_expired(&v)?;
        f.note(format!(
            "FIGURE {}-restart-to-expired-seconds={:.1}",
            f.row,
            t.elapsed().as_secs_f64()
        ));
        Ok(())
    });
}

/// cleanup-after-release: the session is deleted under an operator paused there.
fn stage_pause_cleanup(suite: &Suite, f: &mut Fault) {
    let point = "cleanup-after-release";
    f.step(&format!("pause at {point}"), |f| {
        suite.kill_normal();
        let mut op = suite.start_paused(f.row, point, &[], &[])?;
        let res = (|| -> R<()> {
            f.ns.k(&["delete", "debugsession", &f.session, "--wait=false"])?;
            let line = wait_paused(&op.log, point, &f.ns.name, &f.session, SHORT)?;
            check_pause_line(f, &line);
            let w = f.ns.deployment(TARGET)?;
            let v = f.ns.dbgs(&f.session)?;
            ensure(
                !has_shell(&w["spec"]["template"]) && our_managers(&w).is_empty(),
                || "at cleanup-after-release: the workload is not released".to_string(),
            )?;
            ensure(v.pointer("/metadata/deletionTimestamp").is_some(), || {
                "at cleanup-after-release: the session is not being deleted".to_string()
            })?;
            f.injected = true;
            Ok(())
        })();
        op.kill();
        suite.start_normal()?;
        res
    });
    f.step("recovery: the session goes", |f| {
        f.ns.wait_gone(&f.session, SHORT)
    });
}

/// The operator stopped; the session deleted meanwhile; the operator started: cleanup reverts.
fn stage_down_delete(suite: &Suite, f: &mut Fault) {
    f.step("operator down across a delete", |f| {
        suite.stop_normal();
        let res = (|| -> R<()> {
            f.ns.k(&["delete", "debugsession", &f.session, "--wait=false"])?;
            let v = f.ns.dbgs(&f.session)?;
            ensure(v.pointer("/metadata/deletionTimestamp").is_some(), || {
                "the session is not being deleted".to_string()
            })?;
            ensure(has_shell(&f.ns.template(TARGET)?), || {
                "the shell went while the operator was down".to_string()
            })?;
            f.injected = true;
            Ok(())
        })();
        let t = Instant::now();
        suite.start_normal()?;
        res?;
        f.ns.wait_gone(&f.session, SHORT)?;
        f.note(format!(
            "FIGURE down-across-delete-start-to-gone-seconds={:.1}",
            t.elapsed().as_secs_f64()
        ));
        Ok(())
    });
}

/// The operator stopped before expiresAt and started after it: reverts at once.
fn stage_down_expiry(suite: &Suite, f: &mut Fault) {
    f.step("operator down across the expiry", |f| {
        let left = f.expires - now_epoch();
        ensure(left > 1.0, || {
            format!("stage began {left:.1}s before the expiry (scheduling)")
        })?;
        suite.stop_normal();
        sleep_until_epoch(f.expires + 2.0);
        let res = (|| -> R<()> {
            let v = f.ns.dbgs(&f.session)?;
            ensure(s(&v, "/status/phase") == "Active", || {
                format!("phase changed while the operator was down: {}", summary(&v))
            })?;
            ensure(has_shell(&f.ns.template(TARGET)?), || {
                "the shell went while the operator was down".to_string()
            })?;
            f.injected = true;
            Ok(())
        })();
        let t = Instant::now();
        suite.start_normal()?;
        res?;
        let v = f.ns.wait_phase(&f.session, "Expired", SHORT)?;
        let secs = t.elapsed().as_secs_f64();
        f.note(format!(
            "FIGURE down-across-expiry-start-to-expired-seconds={secs:.1}"
        ));
        check_expired(&v)?;
        ensure(secs <= 10.0, || {
            format!("reverted {secs:.1}s after the start, not at once")
        })
    });
}

/// Two operators with leader election; the leader pauses after the release on expiry and is
/// SIGKILLed; the standby takes the lease and finishes.
fn stage_failover(suite: &Suite, f: &mut Fault) {
    let point = "after-release";
    f.step("leader killed during the revert", |f| {
        let left = f.expires - now_epoch();
        ensure(left > 3.0, || {
            format!("stage began {left:.1}s before the expiry (scheduling)")
        })?;
        suite.kill_normal();
        let lease = unique("faults-failover");
        let ns = f.ns.name.clone();
        let flags = [
            "--leader-elect",
            "--lease-namespace",
            ns.as_str(),
            "--lease-name",
            lease.as_str(),
            "--lease-duration",
            "6",
        ];
        let holder = || -> R<String> {
            let v = get_json(&["lease", &lease, "-n", &ns])?;
            let h = s(&v, "/spec/holderIdentity").to_string();
            if h.is_empty() {
                Err("no holder yet".into())
            } else {
                Ok(h)
            }
        };
        let mut ops: Vec<Operator> = Vec::new();
        let res = (|| -> R<()> {
            ops.push(suite.start_paused(
                &format!("{}-a", f.row),
                point,
                &flags,
                &[("POD_NAME", "faults-a")],
            )?);
            poll("faults-a to hold the lease", SHORT, || {
                let h = holder()?;
                ensure(h == "faults-a", || format!("holder {h}"))
            })?;
            ops.push(suite.start_paused(
                &format!("{}-b", f.row),
                "",
                &flags,
                &[("POD_NAME", "faults-b")],
            )?);
            let timeout = Duration::from_secs_f64(f.expires - now_epoch() + 10.0);
            let line = wait_paused(&ops[0].log, point, &f.ns.name, &f.session, timeout)?;
            check_pause_line(f, &line);
            let w = f.ns.deployment(TARGET)?;
            let v = f.ns.dbgs(&f.session)?;
            ensure(
                !has_shell(&w["spec"]["template"]) && s(&v, "/status/phase") != "Expired",
                || {
                    format!(
                        "at after-release: shell {}, {}",
                        has_shell(&w["spec"]["template"]),
                        summary(&v)
                    )
                },
            )?;
            ops[0].kill();
            f.injected = true;
            let t = Instant::now();
            poll("the standby faults-b to take the lease", SHORT, || {
                let h = holder()?;
                ensure(h == "faults-b", || format!("holder still {h}"))
            })?;
            f.note(format!(
                "FIGURE failover-takeover-seconds={:.1}",
                t.elapsed().as_secs_f64()
            ));
            let v = f.ns.wait_phase(&f.session, "Expired", SHORT).map_err(|e| {
                format!(
                    "{e}; standby log: {}",
                    log_lines(&ops[1].log, &f.ns.name, 5)
                )
            })?;
            check_expired(&v)
        })();
        for mut o in ops {
            o.stop();
        }
        suite.start_normal()?;
        res
    });
}

/// kube-apiserver or etcd restarted while the session is Active; the operator keeps it running.
fn stage_restart(suite: &Suite, f: &mut Fault, component: &str) {
    f.step(&format!("restart {component}"), |f| {
        let t = Instant::now();
        let script = root().join("e2e/cluster/restart");
        let out = run(
            &script.to_string_lossy(),
            &[component],
            None,
            Duration::from_secs(200),
        );
        ensure(out.ok, || {
            format!("e2e/cluster/restart {component}: {}", out.both().trim())
        })?;
        f.injected = true;
        f.note(format!(
            "FIGURE restart-{component}-seconds={:.1}",
            t.elapsed().as_secs_f64()
        ));
        suite.normal_alive()?;
        f.ns.wait_active(&f.session, TIMEOUT)?;
        f.ns.assert_applied(TARGET, &f.session)?;
        // The operator that lived through the restart must still see changes: the delete.
        let t = Instant::now();
        f.ns.k(&["delete", "debugsession", &f.session, "--wait=false"])?;
        let res = f.ns.wait_gone(&f.session, LONG);
        f.note(format!(
            "FIGURE restart-{component}-then-delete-to-gone-seconds={:.1} (the operator that lived through the restart)",
            t.elapsed().as_secs_f64()
        ));
        res.map_err(|e| {
            format!(
                "{e}; the operator's last warnings:\n      {}",
                log_lines(&suite.log, "\"level\":\"WARN\"", 4)
            )
        })
    });
}

// ---------------------------------------------------------------- writer rows (phase 1)

struct Writer {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<(Option<u64>, u64, u64)>,
}

/// A concurrent writer: `kubectl annotate --overwrite` of the Deployment with a counter, in a
/// tight loop until stopped.
fn start_writer(ns: &str, deploy: &str) -> Writer {
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, ns, deploy) = (stop.clone(), ns.to_string(), deploy.to_string());
    let handle = thread::spawn(move || {
        let (mut i, mut last, mut ok, mut bad) = (0u64, None, 0u64, 0u64);
        while !flag.load(Ordering::SeqCst) {
            i += 1;
            let out = kubectl(&[
                "-n",
                &ns,
                "annotate",
                "--overwrite",
                &format!("deployment/{deploy}"),
                &format!("{WRITER_KEY}={i}"),
            ]);
            if out.ok {
                last = Some(i);
                ok += 1;
            } else {
                bad += 1;
            }
        }
        (last, ok, bad)
    });
    Writer { stop, handle }
}

impl Writer {
    fn finish(self) -> (Option<u64>, u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap_or((None, 0, 0))
    }
}

fn writer_during_apply(suite: &Suite) {
    let mut f = Fault::new(WRITER_APPLY, "wa", suite.verbose);
    f.prepare();
    f.prepare_wait();
    f.step("writer during apply", |f| {
        let w = start_writer(&f.ns.name, TARGET);
        let res = (|| -> R<()> {
            f.ns.session(&f.session, TARGET, NO_EXPIRY)?;
            f.ns.wait_active(&f.session, LONG)?;
            Ok(())
        })();
        let (last, ok, bad) = w.finish();
        res?;
        f.note(format!(
            "writer: {ok} writes ({bad} failed) from the create to Active"
        ));
        ensure(ok >= 2, || format!("only {ok} writes during the apply"))?;
        f.injected = true;
        let last = last.map(|l| l.to_string()).unwrap_or_default();
        f.kept.push((WRITER_KEY.into(), last));
        f.ns.assert_applied(TARGET, &f.session)?;
        f.ns.delete_session(&f.session)
    });
    f.finish(suite);
}

fn writer_during_revert(suite: &Suite) {
    let mut f = Fault::new(WRITER_REVERT, "wr", suite.verbose);
    f.prepare();
    f.prepare_wait();
    f.create("30s");
    f.wait_active();
    f.step("writer during the revert", |f| {
        sleep_until_epoch(f.expires - 4.0);
        let w = start_writer(&f.ns.name, TARGET);
        let res = f.ns.wait_phase(&f.session, "Expired", SHORT);
        let (last, ok, bad) = w.finish();
        let v = res?;
        check_expired(&v)?;
        f.note(format!(
            "writer: {ok} writes ({bad} failed) from 4s before expiresAt to Expired"
        ));
        ensure(ok >= 2, || format!("only {ok} writes during the revert"))?;
        f.injected = true;
        let last = last.map(|l| l.to_string()).unwrap_or_default();
        f.kept.push((WRITER_KEY.into(), last));
        Ok(())
    });
    f.finish(suite);
}

// ---------------------------------------------------------------- the bad-input table (phase 1)

enum Expect {
    /// Ends Failed with this Ready reason; the message contains the second string.
    Failed(&'static str, &'static str),
    /// Refused by the API server at create, with a message about a maximum.
    Refused,
    /// Either Failed with this reason, or refused at create.
    FailedOrRefused(&'static str),
}

struct TableState {
    ns: Ns,
    original: Value,
}

fn table(suite: &Suite) -> Option<TableState> {
    let t0 = Instant::now();
    // A namespace of 12 characters: with a 115-character session name, the field manager
    // debugsession/<ns>/<name> has 141.
    let ns = Ns::new(
        format!("f-table-{:04}", (now_epoch() as u64) % 10000),
        "table",
        suite.verbose,
    );
    let setup = (|| -> R<Value> {
        ns.init()?;
        ns.apply_fixture(TABLE_DEPLOY)?;
        ns.rollout("app")?;
        ns.deployment("app")
    })();
    let before = match setup {
        Ok(v) => v,
        Err(e) => {
            suite.record(RowResult {
                name: "table-setup".into(),
                kind: Kind::Input,
                injected: false,
                modified: false,
                res: Err(e),
                secs: t0.elapsed().as_secs_f64(),
                notes: vec![],
            });
            ns.cleanup(true);
            return None;
        }
    };
    let original = before["spec"]["template"].clone();
    let many = |prefix: &str| -> Vec<Value> {
        (0..200)
            .map(|i| json!(format!("{prefix}{i}")))
            .collect::<Vec<_>>()
    };
    let env200: Vec<Value> = (0..200)
        .map(|i| json!({"name": format!("VAR_{i}"), "value": "x"}))
        .collect();
    let long_name = format!("too-long-{}", "x".repeat(106));
    let cases: Vec<(&str, String, Option<Value>, Expect)> = vec![
        (
            "limits-cpu-lots",
            "bad-cpu".into(),
            Some(json!({"resources": {"limits": {"cpu": "lots"}}})),
            Expect::Failed("InvalidResources", "limits.cpu"),
        ),
        (
            "requests-over-limits",
            "bad-memory".into(),
            Some(
                json!({"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}),
            ),
            Expect::Failed("InvalidResources", "memory"),
        ),
        (
            "container-name-of-init-container",
            "bad-clash".into(),
            Some(json!({"containerName": "setup"})),
            Expect::Failed("ContainerNameClash", "setup"),
        ),
        (
            "session-name-115-chars",
            long_name,
            None,
            Expect::FailedOrRefused("NameTooLong"),
        ),
        (
            "env-200-items",
            "bad-env-many".into(),
            Some(json!({"env": env200})),
            Expect::Refused,
        ),
        (
            "args-200-items",
            "bad-args-many".into(),
            Some(json!({"args": many("a")})),
            Expect::Refused,
        ),
        (
            "env-name-1BAD=",
            "bad-env-name".into(),
            Some(json!({"env": [{"name": "1BAD=", "value": "x"}]})),
            Expect::Failed("InvalidEnv", "1BAD="),
        ),
        (
            "image-Busybox:Latest",
            "bad-image".into(),
            Some(json!({"image": "Busybox:Latest"})),
            Expect::Failed("InvalidImage", "Busybox:Latest"),
        ),
    ];
    let mut all_ok = true;
    for (row, name, shell, expect) in cases {
        if !suite.selected(row) && !suite.selected("table") {
            continue;
        }
        let t = Instant::now();
        let mut notes = Vec::new();
        let res = (|| -> R<()> {
            let out = ns.create_session(&name, "app", NO_EXPIRY, shell.as_ref());
            let reason = match (&expect, out.ok) {
                (Expect::Refused, true) => {
                    return Err(format!("the API server accepted it: {}", out.stdout.trim()));
                }
                (Expect::Refused | Expect::FailedOrRefused(_), false) => {
                    let msg = out.stderr.trim();
                    let low = msg.to_lowercase();
                    ensure(
                        ["at most", "too many", "too long", "maximum", "max"]
                            .iter()
                            .any(|m| low.contains(m)),
                        || format!("refused, but not with a message about a maximum: {msg}"),
                    )?;
                    notes.push(format!(
                        "refused at create: {}",
                        msg.lines()
                            .last()
                            .unwrap_or("")
                            .chars()
                            .take(300)
                            .collect::<String>()
                    ));
                    return Ok(());
                }
                (_, false) => {
                    return Err(format!("kubectl create failed: {}", out.stderr.trim()));
                }
                (Expect::Failed(r, _) | Expect::FailedOrRefused(r), true) => *r,
            };
            let v = ns.wait_phase(&name, "Failed", SHORT)?;
            let got = ready_reason(&v);
            ensure(got == reason, || {
                format!("Ready reason {got:?}, want {reason}: {}", summary(&v))
            })?;
            let msg = s(&v, "/status/message").to_string();
            if let Expect::Failed(_, part) = &expect {
                ensure(msg.contains(part), || {
                    format!("status.message does not name {part:?}: {msg:?}")
                })?;
            }
            ensure(!msg.is_empty(), || "empty status.message".to_string())?;
            ensure(v.pointer("/status/startedAt").is_none(), || {
                "startedAt set on a refused session".to_string()
            })?;
            if matches!(expect, Expect::FailedOrRefused(_)) {
                notes.push(format!("accepted at create, then Failed {reason}: {msg}"));
            }
            ns.wait_event(&name, reason, Duration::from_secs(30))?;
            // The workload is untouched.
            let after = ns.deployment("app")?;
            template_diff(&original, &after["spec"]["template"])?;
            ensure(
                after["metadata"]["generation"] == before["metadata"]["generation"],
                || {
                    format!(
                        "generation {} -> {}",
                        before["metadata"]["generation"], after["metadata"]["generation"]
                    )
                },
            )?;
            ensure(after.pointer(HOLDER_PTR).is_none(), || {
                format!(
                    "holder annotation left: {}",
                    after.pointer(HOLDER_PTR).unwrap()
                )
            })?;
            let ours = our_managers(&after);
            ensure(ours.is_empty(), || {
                format!("debugsession field managers on the workload: {ours:?}")
            })
        })();
        all_ok &= res.is_ok();
        if res.is_err() {
            notes.extend(run_logs(&suite.logdir, &format!("\"{name}\""), 4));
        }
        let expected = match &expect {
            Expect::Failed(r, _) => format!("Failed {r}"),
            Expect::Refused => "refused at create".to_string(),
            Expect::FailedOrRefused(r) => format!("Failed {r} or refused at create"),
        };
        suite.record(RowResult {
            name: format!("{row} -> {expected}"),
            kind: Kind::Input,
            injected: false,
            modified: false,
            res,
            secs: t.elapsed().as_secs_f64(),
            notes,
        });
    }
    // The wedge of the issue: with all of those sessions still there, a normal session on the same
    // workload starts, and its revert leaves the workload as it was.
    if suite.selected("table") || suite.selected("normal-session-after-table") {
        let t = Instant::now();
        let res = (|| -> R<()> {
            ns.session("after-table", "app", NO_EXPIRY)?;
            ns.wait_active("after-table", LONG)?;
            ns.assert_applied("app", "after-table")?;
            ns.delete_session("after-table")?;
            ns.assert_reverted("app", &original, &[])?;
            // The failed sessions go too; their cleanup touches nothing.
            let out = run(
                "kubectl",
                &[
                    "delete",
                    "debugsessions",
                    "--all",
                    "-n",
                    &ns.name,
                    "--timeout=60s",
                ],
                None,
                Duration::from_secs(70),
            );
            ensure(out.ok, || {
                format!("deleting the table's sessions: {}", out.both().trim())
            })?;
            ns.assert_reverted("app", &original, &[])
        })();
        all_ok &= res.is_ok();
        suite.record(RowResult {
            name: "normal-session-after-table -> Active, reverted".into(),
            kind: Kind::Input,
            injected: false,
            modified: false,
            res,
            secs: t.elapsed().as_secs_f64(),
            notes: vec![],
        });
    }
    if !all_ok {
        println!("    table namespace {}", ns.name);
    }
    Some(TableState { ns, original })
}

// ---------------------------------------------------------------- events said once (phase 1)

fn drift_events(suite: &Suite) {
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
            let tpl = ns.template(TARGET)?;
            let idx = tpl["spec"]["containers"]
                .as_array()
                .and_then(|a| a.iter().position(|c| c["name"] == SHELL))
                .ok_or_else(|| format!("drift {i}: no shell in the template"))?;
            let patch = format!(
                r#"[{{"op":"test","path":"/spec/template/spec/containers/{idx}/name","value":"{SHELL}"}},{{"op":"remove","path":"/spec/template/spec/containers/{idx}"}}]"#
            );
            ns.k(&["patch", "deployment", TARGET, "--type=json", "-p", &patch])?;
            poll(&format!("drift {i}: the shell back"), TIMEOUT, || {
                ensure(has_shell(&ns.template(TARGET)?), || "not yet".to_string())
            })?;
            ns.wait_active("drift", LONG)
                .map_err(|e| format!("drift {i}: {e}"))?;
            poll(
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
    suite.record(RowResult {
        name: "drift-events-once".into(),
        kind: Kind::Check,
        injected: false,
        modified: false,
        res,
        secs: t0.elapsed().as_secs_f64(),
        notes,
    });
}

// ---------------------------------------------------------------- phase 2: one at a time

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
fn phase_two(suite: &Suite, rows: &mut BTreeMap<&'static str, Fault>) {
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
fn phase_three(suite: &Suite, rows: BTreeMap<&'static str, Fault>) {
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

// ---------------------------------------------------------------- phase 4: quiet

fn foreign_holder(suite: &Suite, t: &TableState) {
    let t0 = Instant::now();
    let ns = &t.ns;
    let mut notes = Vec::new();
    let res = (|| -> R<()> {
        ns.k(&["annotate", "deployment", "app", &format!("{HOLDER}=ghost")])?;
        let before = ns.deployment("app")?;
        ns.session("fh", "app", NO_EXPIRY)?;
        let v = ns.wait_session("fh", "Pending with ForeignHolder", SHORT, |v| {
            s(v, "/status/phase") == "Pending" && ready_reason(v) == "ForeignHolder"
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
            s(&v, "/status/phase") == "Pending" && ready_reason(&v) == "ForeignHolder",
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
    suite.record(RowResult {
        name: "foreign-holder -> Pending ForeignHolder, then Active by itself".into(),
        kind: Kind::Input,
        injected: false,
        modified: false,
        res,
        secs: t0.elapsed().as_secs_f64(),
        notes,
    });
}

fn idle(suite: &Suite, ns: &Ns, original: &Value) {
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
        ensure(s(&v, "/status/phase") == "Active", || summary(&v))?;
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
    suite.record(RowResult {
        name: "idle-is-idle".into(),
        kind: Kind::Check,
        injected: false,
        modified: false,
        res,
        secs: t0.elapsed().as_secs_f64(),
        notes,
    });
}

/// Waits until the operator's reconcile count stands still for 3 s (the other rows are over).
fn wait_quiet(suite: &Suite) {
    let mut last = suite.reconciles().unwrap_or(-1.0);
    let res = poll(
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

// ---------------------------------------------------------------- main

fn main() {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .or_else(|| std::env::var("E2E_FILTER").ok())
        .unwrap_or_default();
    let verbose = std::env::var("E2E_VERBOSE").is_ok_and(|v| v == "1");
    let external_cluster = std::env::var("E2E_EXTERNAL_CLUSTER").is_ok_and(|v| v == "1");
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
            filter,
            external_cluster,
            results: Mutex::new(Vec::new()),
        })
    };
    let suite = match setup() {
        Ok(s) => s,
        Err(e) => {
            println!("FAIL setup: {e}");
            std::process::exit(1);
        }
    };

    // Rows of phase 2, prepared during phase 1.
    let mut staged: BTreeMap<&'static str, Fault> = BTreeMap::new();
    for (row, short) in STAGED {
        if !suite.selected(row) {
            continue;
        }
        if suite.external_cluster && (row == RESTART_APISERVER || row == RESTART_ETCD) {
            println!("SKIP fault/{row}: needs the local cluster (E2E_EXTERNAL_CLUSTER=1)");
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
        let tbl = table_sel.then(|| sc.spawn(move || table(suite)));
        if suite.selected("drift-events-once") {
            sc.spawn(move || drift_events(suite));
        }
        if suite.selected(WRITER_APPLY) {
            sc.spawn(move || writer_during_apply(suite));
        }
        if suite.selected(WRITER_REVERT) {
            sc.spawn(move || writer_during_revert(suite));
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
        phase_two(&suite, &mut staged);
        println!("   ({:.0}s)", t2.elapsed().as_secs_f64());
    }

    // Phase 3.
    println!("== phase 3: the fault rows end");
    let t3 = Instant::now();
    if let Some(f) = idle_row.as_mut() {
        f.create(NO_EXPIRY);
    }
    phase_three(&suite, staged);
    println!("   ({:.0}s)", t3.elapsed().as_secs_f64());

    // Phase 4.
    if table_state.is_some() || idle_row.is_some() {
        println!("== phase 4: foreign holder and idle (quiet, reconciles from /metrics)");
        let t4 = Instant::now();
        wait_quiet(&suite);
        if let Some(t) = &table_state
            && suite.selected("foreign-holder")
        {
            foreign_holder(&suite, t);
        }
        if let Some(f) = idle_row.take() {
            if let Some(e) = &f.err {
                suite.record(RowResult {
                    name: "idle-is-idle".into(),
                    kind: Kind::Check,
                    injected: false,
                    modified: false,
                    res: Err(e.clone()),
                    secs: 0.0,
                    notes: vec![],
                });
            } else {
                wait_quiet(&suite);
                idle(&suite, &f.ns, &f.original);
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
        std::process::exit(1);
    }
}
