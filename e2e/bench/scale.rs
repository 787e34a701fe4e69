//! Scale on simulated nodes: N sessions (Patch mode) on N one-replica Deployments spread over
//! [`NAMESPACES`] namespaces, created at once. Measured: the time until all are Active; then every
//! session's TTL is set so that all expire at one common second, and the time from it until every
//! Deployment has lost the shell (each revert seen by a `kubectl get --watch` of the Deployments,
//! against the session's `expiresAt`: the expiry precision); the operator's peak RSS (VmHWM) and
//! CPU seconds; its API requests by verb and resource (its kube client's `requesting` debug lines,
//! `RUST_LOG=kube_client=debug`); its reconciles (`debugsession_reconciles_total`). Each size runs
//! with an operator of its own, started fresh.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use debugsession_e2e::*;

use crate::Bench;
use crate::usage::{count_requests, is_object, is_write, metric, proc_usage};
use crate::watch::Watch;

/// Namespaces the Deployments are spread over.
pub const NAMESPACES: usize = 50;
/// How many `kubectl apply` run at once when creating objects.
const APPLIERS: usize = 4;

/// The phases whose requests are counted apart.
pub const PHASES: [&str; 4] = ["start", "ttl-change", "expiry", "delete"];

#[derive(Debug, Default)]
pub struct ScaleResult {
    pub sessions: usize,
    pub to_active: f64,
    pub to_reverted: f64,
    /// Per session: the revert seen in the Deployment watch minus the session's `expiresAt`.
    pub expiry: Vec<f64>,
    pub peak_rss_kib: u64,
    pub cpu_seconds: f64,
    /// `verb resource` -> requests in each of [`PHASES`].
    pub requests: BTreeMap<String, [u64; 4]>,
    /// `debugsession_reconciles_total` at the end of each of [`PHASES`] (cumulative).
    pub reconciles: [f64; 4],
    /// How often a watch of the bench had to be started again (its replayed lines may then
    /// make a revert look later than it was).
    pub watch_restarts: usize,
}

impl ScaleResult {
    /// Requests per session of the phases `phases` (indices into [`PHASES`]) that `pick` selects.
    pub fn per_session(&self, phases: &[usize], pick: impl Fn(&str, &str) -> bool) -> f64 {
        let total: u64 = self
            .requests
            .iter()
            .filter(|(k, _)| {
                let (verb, res) = k.split_once(' ').unwrap_or((k, ""));
                pick(verb, res)
            })
            .map(|(_, c)| phases.iter().map(|&p| c[p]).sum::<u64>())
            .sum();
        total as f64 / self.sessions.max(1) as f64
    }

    /// Writes to objects (the sessions, their status and the workloads) per session over a
    /// lifecycle: start to Active, and the expiry (the TTL change the bench makes is left out).
    pub fn writes_per_session(&self) -> f64 {
        self.per_session(&[0, 2], |verb, res| is_write(verb) && is_object(res))
    }

    pub fn reconciles_per_session(&self) -> f64 {
        let r = self.reconciles;
        (r[0] + (r[2] - r[1])) / self.sessions.max(1) as f64
    }
}

fn ns_of(j: usize) -> String {
    format!("bench-scale-{}", j % NAMESPACES)
}

fn deployment(j: usize) -> Value {
    let app = format!("d-{j}");
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "namespace": ns_of(j), "labels": {"bench": "scale"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {
                    "nodeSelector": {"debugsession.dev/simulated": "true"},
                    "tolerations": [{"key": "debugsession.dev/simulated", "operator": "Exists", "effect": "NoSchedule"}],
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "app", "image": cluster().nginx(), "imagePullPolicy": "IfNotPresent"}],
                },
            },
        },
    })
}

fn session(size: usize, j: usize, ttl: &str) -> Value {
    json!({
        "apiVersion": "debugsession.dev/v1alpha1",
        "kind": "DebugSession",
        "metadata": {
            "name": format!("s{size}-{j}"),
            "namespace": ns_of(j),
            "labels": {"bench-size": size.to_string()},
        },
        "spec": {"target": {"kind": "Deployment", "name": format!("d-{j}")}, "ttl": ttl},
    })
}

/// Server-side applies `objects` as field manager `bench`, [`APPLIERS`] `kubectl apply` at once.
fn apply_all(objects: Vec<Value>) -> R<()> {
    if objects.is_empty() {
        return Ok(());
    }
    let chunk = objects.len().div_ceil(APPLIERS);
    let lists: Vec<String> = objects
        .chunks(chunk)
        .map(|c| json!({"apiVersion": "v1", "kind": "List", "items": c}).to_string())
        .collect();
    thread::scope(|sc| {
        let handles: Vec<_> = lists
            .iter()
            .map(|l| {
                sc.spawn(move || {
                    let out = debugsession_e2e::run(
                        "kubectl",
                        &["apply", "--server-side", "--field-manager=bench", "-f", "-"],
                        Some(l),
                        Duration::from_secs(600),
                    );
                    ensure(out.ok, || format!("kubectl apply: {}", out.stderr.trim()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("apply thread panicked".into()))
            })
            .collect::<R<Vec<()>>>()
    })?;
    Ok(())
}

/// The namespaces, once (with their default ServiceAccount, which pods need).
pub fn namespaces() -> R<()> {
    let items: Vec<Value> = (0..NAMESPACES)
        .map(|i| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("bench-scale-{i}"), "labels": {"bench": "scale", crate::admission::LABEL: crate::admission::VALUE}}}))
        .collect();
    apply_all(items)?;
    for i in 0..NAMESPACES {
        wait_for("default ServiceAccount", TIMEOUT, || {
            k(&[
                "get",
                "serviceaccount",
                "default",
                "-n",
                &format!("bench-scale-{i}"),
            ])
            .map(|_| ())
        })?;
    }
    Ok(())
}

/// Creates Deployments d-`from`..d-`to` and waits until all bench Deployments are rolled out.
fn deployments(from: usize, to: usize, b: &Bench) -> R<()> {
    apply_all((from..to).map(deployment).collect())?;
    let timeout = Duration::from_secs(120 + to as u64);
    Poller::every(Duration::from_secs(2)).until(
        &format!("{to} bench Deployments rolled out"),
        timeout,
        || {
            let out = k(&[
                "get",
                "deployments",
                "-A",
                "-l",
                "bench=scale",
                "-o",
                "jsonpath={range .items[*]}{.status.replicas},{.status.updatedReplicas},{.status.availableReplicas};{end}",
            ])?;
            let all: Vec<&str> = out.split(';').filter(|x| !x.is_empty()).collect();
            let done = all.iter().filter(|x| **x == "1,1,1").count();
            b.say(&format!("  deployments rolled out: {done}/{to}"));
            ensure(all.len() == to && done == to, || format!("{done}/{to}"))
        },
    )
}

#[derive(Default, Debug)]
struct SessionSeen {
    active_at: Option<f64>,
    started_at: String,
    expires_at: String,
    phase: String,
}

#[derive(Default, Debug)]
struct DeploySeen {
    shell: bool,
    reverted_at: Option<f64>,
}

struct Seen {
    sessions: HashMap<String, SessionSeen>,
    deploys: HashMap<String, DeploySeen>,
    s_pos: usize,
    d_pos: usize,
}

impl Seen {
    /// Reads the watches' new lines. A Deployment counts as reverted at the first line without
    /// the shell after one with it, no earlier than `revert_after`.
    fn update(&mut self, sw: &Watch, dw: &Watch, revert_after: f64) {
        let (lines, pos) = sw.since(self.s_pos);
        self.s_pos = pos;
        for (t, l) in lines {
            let f: Vec<&str> = l.split('|').collect();
            if f.len() < 5 {
                continue;
            }
            let s = self.sessions.entry(f[0].to_string()).or_default();
            s.phase = f[1].to_string();
            if s.active_at.is_none() && f[1] == "Active" && f[2] == "True" {
                s.active_at = Some(t);
            }
            if !f[3].is_empty() {
                s.started_at = f[3].to_string();
            }
            if !f[4].is_empty() {
                s.expires_at = f[4].to_string();
            }
        }
        let (lines, pos) = dw.since(self.d_pos);
        self.d_pos = pos;
        for (t, l) in lines {
            let Some((key, names)) = l.split_once('|') else {
                continue;
            };
            let d = self.deploys.entry(key.to_string()).or_default();
            let has = names.split_whitespace().any(|n| n == SHELL);
            if has {
                d.shell = true;
            } else if d.shell && d.reverted_at.is_none() && t >= revert_after {
                d.reverted_at = Some(t);
            }
        }
    }
}

/// The Deployment `ns/d-j` of session `ns/s<size>-j`.
fn deploy_key(session_key: &str) -> String {
    let (ns, name) = session_key.split_once('/').unwrap_or(("", session_key));
    let j = name.rsplit('-').next().unwrap_or("");
    format!("{ns}/d-{j}")
}

pub fn run(b: &Bench, size: usize, have: usize) -> R<ScaleResult> {
    let t_setup = Instant::now();
    if have < size {
        b.say(&format!(
            "scale {size}: creating Deployments d-{have}..d-{}",
            size - 1
        ));
    }
    deployments(have.min(size), size, b)?;
    b.say(&format!(
        "scale {size}: {size} Deployments ready after {:.0}s",
        t_setup.elapsed().as_secs_f64()
    ));
    let log = b.dir.join(format!("operator-scale-{size}.log"));
    let _ = fs::remove_file(&log);
    let mut op = b.admission.start_operator(&log)?;
    let label = format!("bench-size={size}");
    let measured = measure(b, size, &mut op, &log, &label);
    // 4. delete the sessions (their finalizers run: nothing left to undo), also after a failure
    let out = kubectl_for(
        Duration::from_secs(300 + size as u64),
        &[
            "delete",
            "debugsessions",
            "-A",
            "-l",
            &label,
            "--wait=true",
            &format!("--timeout={}s", 280 + size),
        ],
    );
    let (mut res, phase_counts) = measured?;
    ensure(out.ok, || format!("deleting the sessions: {}", out.both()))?;
    thread::sleep(Duration::from_secs(2));
    let mut phase_counts = phase_counts;
    phase_counts.push(count_requests(&log));
    res.reconciles[3] = metric(&op, "debugsession_reconciles_total");
    if let Some(pid) = op.pid() {
        let (hwm, cpu) = proc_usage(pid, b.clk_tck);
        res.peak_rss_kib = res.peak_rss_kib.max(hwm);
        res.cpu_seconds = res.cpu_seconds.max(cpu);
    }
    op.stop();

    let empty = BTreeMap::new();
    let keys: std::collections::BTreeSet<&String> =
        phase_counts.iter().flat_map(|m| m.keys()).collect();
    for key in keys {
        let mut c = [0u64; 4];
        for (i, slot) in c.iter_mut().enumerate() {
            let now = phase_counts[i].get(key).copied().unwrap_or(0);
            let before = if i == 0 { &empty } else { &phase_counts[i - 1] };
            *slot = now.saturating_sub(before.get(key).copied().unwrap_or(0));
        }
        res.requests.insert(key.clone(), c);
    }
    Ok(res)
}

type Counts = Vec<BTreeMap<String, u64>>;

/// Phases 1-3 of a size with operator `op` (logging to `log`): the result so far and the request
/// counts at the end of each phase.
fn measure(
    b: &Bench,
    size: usize,
    op: &mut Operator,
    log: &Path,
    label: &str,
) -> R<(ScaleResult, Counts)> {
    op.wait_http("/readyz", Duration::from_secs(60))?;
    let pid = op.pid().ok_or("no operator pid")?;
    let log = log.to_path_buf();
    let op = &*op;
    let sw = Watch::start(
        &[
            "get",
            "debugsessions",
            "-A",
            "-l",
            label,
            "--watch",
            "-o",
            "jsonpath={.metadata.namespace}/{.metadata.name}|{.status.phase}|{.status.conditions[?(@.type==\"Ready\")].status}|{.status.startedAt}|{.status.expiresAt}{\"\\n\"}",
        ],
        &b.dir.join(format!("watch-sessions-{size}.err")),
    )?;
    let dw = Watch::start(
        &[
            "get",
            "deployments",
            "-A",
            "-l",
            "bench=scale",
            "--watch",
            "-o",
            "jsonpath={.metadata.namespace}/{.metadata.name}|{.spec.template.spec.containers[*].name}{\"\\n\"}",
        ],
        &b.dir.join(format!("watch-deployments-{size}.err")),
    )?;
    thread::sleep(Duration::from_secs(2));
    let mut seen = Seen {
        sessions: HashMap::new(),
        deploys: HashMap::new(),
        s_pos: 0,
        d_pos: 0,
    };
    let mut phase_counts: Vec<BTreeMap<String, u64>> = Vec::new();
    let mut res = ScaleResult {
        sessions: size,
        ..ScaleResult::default()
    };

    // 1. all at once, to Active
    let t_create = now_epoch();
    apply_all((0..size).map(|j| session(size, j, "30m")).collect())?;
    b.say(&format!(
        "scale {size}: sessions created in {:.1}s",
        now_epoch() - t_create
    ));
    let active_timeout = Duration::from_secs(120 + size as u64);
    Poller::every(Duration::from_millis(500)).until(
        &format!("{size} sessions Active"),
        active_timeout,
        || {
            seen.update(&sw, &dw, f64::MAX);
            let n = seen
                .sessions
                .values()
                .filter(|s| s.active_at.is_some())
                .count();
            ensure(n == size, || format!("{n}/{size} Active"))
        },
    )?;
    res.to_active = seen
        .sessions
        .values()
        .filter_map(|s| s.active_at)
        .fold(0.0, f64::max)
        - t_create;
    b.say(&format!(
        "scale {size}: all Active after {:.1}s",
        res.to_active
    ));
    phase_counts.push(count_requests(&log));
    res.reconciles[0] = metric(op, "debugsession_reconciles_total");

    // 2. one common expiry: each session's TTL set so that expiresAt is the same second
    let latest_start = seen
        .sessions
        .values()
        .filter_map(|s| parse_time(&s.started_at).ok())
        .fold(0.0, f64::max);
    let common = (now_epoch() + 15.0 + size as f64 / 40.0)
        .max(latest_start + 31.0)
        .ceil();
    let mut ttls = Vec::new();
    for j in 0..size {
        let key = format!("{}/s{size}-{j}", ns_of(j));
        let started = seen
            .sessions
            .get(&key)
            .and_then(|s| parse_time(&s.started_at).ok())
            .ok_or_else(|| format!("{key}: no startedAt"))?;
        let ttl = (common - started).round() as u64;
        ttls.push(session(size, j, &format!("{ttl}s")));
    }
    apply_all(ttls)?;
    b.say(&format!(
        "scale {size}: TTLs set, common expiry in {:.1}s",
        common - now_epoch()
    ));
    sleep_until_epoch(common - 1.0);
    seen.update(&sw, &dw, f64::MAX);
    let off: Vec<&String> = seen
        .sessions
        .iter()
        .filter(|(_, s)| parse_time(&s.expires_at).ok() != Some(common))
        .map(|(k, _)| k)
        .collect();
    if !off.is_empty() {
        b.say(&format!(
            "scale {size}: {} sessions do not expire at the common second yet (e.g. {})",
            off.len(),
            off[0]
        ));
    }
    phase_counts.push(count_requests(&log));
    res.reconciles[1] = metric(op, "debugsession_reconciles_total");

    // 3. the expiry: every Deployment reverted, every session Expired
    let revert_timeout = Duration::from_secs(120 + size as u64 / 2);
    Poller::every(Duration::from_millis(500)).until(
        &format!("{size} Deployments reverted"),
        revert_timeout,
        || {
            seen.update(&sw, &dw, common - 5.0);
            let reverted = seen
                .sessions
                .keys()
                .filter(|k| {
                    seen.deploys
                        .get(&deploy_key(k))
                        .is_some_and(|d| d.reverted_at.is_some())
                })
                .count();
            let expired = seen
                .sessions
                .values()
                .filter(|s| s.phase == "Expired")
                .count();
            ensure(reverted == size && expired == size, || {
                format!("{reverted}/{size} reverted, {expired}/{size} Expired")
            })
        },
    )?;
    let mut last = 0.0f64;
    for (key, s) in &seen.sessions {
        let at = seen.deploys[&deploy_key(key)].reverted_at.unwrap_or(0.0);
        last = last.max(at);
        if let Ok(exp) = parse_time(&s.expires_at) {
            res.expiry.push(at - exp);
        }
    }
    res.to_reverted = last - common;
    b.say(&format!(
        "scale {size}: all reverted {:.2}s after the common expiry",
        res.to_reverted
    ));
    phase_counts.push(count_requests(&log));
    res.reconciles[2] = metric(op, "debugsession_reconciles_total");
    let (hwm, cpu) = proc_usage(pid, b.clk_tck);
    res.peak_rss_kib = hwm;
    res.cpu_seconds = cpu;

    res.watch_restarts = sw.restarts() + dw.restarts();
    drop(sw);
    drop(dw);
    Ok((res, phase_counts))
}

/// Deletes the bench's scale namespaces (not waited for).
pub fn cleanup() {
    // sessions left by a failed size (no operator runs now): without their finalizers
    let left = k(&[
        "get",
        "debugsessions",
        "-A",
        "-l",
        "bench-size",
        "-o",
        "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}",
    ])
    .unwrap_or_default();
    for key in left.split_whitespace() {
        if let Some((ns, name)) = key.split_once('/') {
            let _ = strip_finalizers(ns, name);
        }
    }
    let names: Vec<String> = (0..NAMESPACES)
        .map(|i| format!("bench-scale-{i}"))
        .collect();
    let mut args = vec!["delete", "namespace", "--ignore-not-found", "--wait=false"];
    args.extend(names.iter().map(String::as_str));
    let _ = kubectl(&args);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_map_to_their_deployments() {
        assert_eq!(deploy_key("bench-scale-3/s100-53"), "bench-scale-3/d-53");
    }
}
