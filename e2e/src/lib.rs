//! End-to-end tests of debugsession-operator against a real cluster (see tests/operator.rs).
//!
//! Helpers only: run kubectl (with a timeout, capturing stdout and stderr), read objects as JSON,
//! poll for a condition with a timeout and a useful failure message, render samples and fixtures,
//! and start/stop the operator binary.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use serde_json::{Value, json};

pub type R<T> = Result<T, String>;

/// Generous default timeout: the test machine has 2 cores and runs scenarios in parallel.
pub const TIMEOUT: Duration = Duration::from_secs(90);
pub const POLL: Duration = Duration::from_millis(250);

/// The repository root (parent of e2e/).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e has a parent")
        .to_path_buf()
}

/// Environment of the local cluster: kubeconfig and the images imported into the node.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub env: BTreeMap<String, String>,
    pub images: BTreeMap<String, String>,
}

impl Cluster {
    pub fn image(&self, key: &str, default: &str) -> String {
        self.images
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }
    pub fn busybox(&self) -> String {
        self.image("BUSYBOX_IMAGE", "registry.local/busybox:1.35.0")
    }
    pub fn nginx(&self) -> String {
        self.image("NGINX_IMAGE", "registry.local/nginx:1.22.1")
    }
}

fn parse_env_lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("export ").unwrap_or(l);
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            let v = v.trim().trim_matches('"').trim_matches('\'');
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// Reads `e2e/cluster/env` (KUBECONFIG, KUBECACHEDIR) and `$DBGS_CLUSTER_STATE/images.env`.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let mut env = BTreeMap::new();
        if let Ok(out) = Command::new(root().join("e2e/cluster/env")).output()
            && out.status.success()
        {
            env = parse_env_lines(&String::from_utf8_lossy(&out.stdout));
        }
        if !env.contains_key("KUBECONFIG")
            && let Ok(k) = std::env::var("KUBECONFIG")
        {
            env.insert("KUBECONFIG".into(), k);
        }
        let state = std::env::var("DBGS_CLUSTER_STATE")
            .unwrap_or_else(|_| "/var/tmp/debugsession-e2e".to_string());
        let images = fs::read_to_string(Path::new(&state).join("images.env"))
            .map(|t| parse_env_lines(&t))
            .unwrap_or_default();
        Cluster { env, images }
    })
}

/// Output of a command.
#[derive(Debug, Clone)]
pub struct Out {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Out {
    pub fn both(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs a command with the cluster env, optional stdin, and a timeout (killing it when exceeded).
pub fn run(program: &str, args: &[&str], input: Option<&str>, timeout: Duration) -> Out {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(&cluster().env)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Out {
                ok: false,
                code: None,
                stdout: String::new(),
                stderr: format!("cannot run {program}: {e}"),
                timed_out: false,
            };
        }
    };
    if let Some(text) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        let text = text.to_string();
        thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        });
    }
    let mut so = child.stdout.take().expect("piped stdout");
    let mut se = child.stderr.take().expect("piped stderr");
    let t_out = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let t_err = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() > timeout => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let mut stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    if timed_out {
        stderr.push_str(&format!("\n[timed out after {timeout:?}]"));
    }
    Out {
        ok: !timed_out && status.is_some_and(|s| s.success()),
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
        timed_out,
    }
}

/// `kubectl <args>` (60s timeout).
pub fn kubectl(args: &[&str]) -> Out {
    run("kubectl", args, None, Duration::from_secs(60))
}

/// `kubectl <args>` with `input` on stdin.
pub fn kubectl_in(input: &str, args: &[&str]) -> Out {
    run("kubectl", args, Some(input), Duration::from_secs(60))
}

/// `kubectl <args>`, stdout on success, an error naming the command and its stderr otherwise.
pub fn k(args: &[&str]) -> R<String> {
    stdout_or_error(kubectl(args), args)
}

/// Like [`k`] with stdin.
pub fn k_in(input: &str, args: &[&str]) -> R<String> {
    stdout_or_error(kubectl_in(input, args), args)
}

fn stdout_or_error(out: Out, args: &[&str]) -> R<String> {
    if out.ok {
        Ok(out.stdout)
    } else {
        Err(format!(
            "`kubectl {}` failed: {}",
            args.join(" "),
            out.both().trim()
        ))
    }
}

/// `kubectl get <args> -o json` parsed.
pub fn get_json(args: &[&str]) -> R<Value> {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    let text = k(&a)?;
    serde_json::from_str(&text).map_err(|e| format!("bad JSON from kubectl get {args:?}: {e}"))
}

/// A namespaced object, or None when it does not exist.
pub fn get_opt(ns: &str, resource: &str, name: &str) -> R<Option<Value>> {
    let out = kubectl(&[
        "get",
        "-n",
        ns,
        resource,
        name,
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    if out.ok {
        return serde_json::from_str(&out.stdout)
            .map(Some)
            .map_err(|e| format!("bad JSON: {e}"));
    }
    if out.stderr.contains("NotFound") || out.stderr.contains("not found") {
        return Ok(None);
    }
    Err(format!(
        "kubectl get -n {ns} {resource} {name}: {}",
        out.stderr.trim()
    ))
}

/// Polls `f` every 250ms until it returns Ok, or fails after `timeout` with the last Err it gave.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> R<T>) -> R<T> {
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
        thread::sleep(POLL);
    }
}

/// Fails with `msg` unless `cond`.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> R<()> {
    if cond { Ok(()) } else { Err(msg()) }
}

/// String at a JSON pointer ("" when absent).
pub fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The condition of `type_` in `obj.status.conditions`.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// "status/reason" of a condition, for messages.
pub fn cond_summary(obj: &Value, type_: &str) -> String {
    match condition(obj, type_) {
        Some(c) => format!(
            "{type_}={} reason={} message={:?}",
            s(c, "/status"),
            s(c, "/reason"),
            s(c, "/message")
        ),
        None => format!("{type_} absent"),
    }
}

/// Seconds since the Unix epoch.
pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Parses an RFC 3339 UTC timestamp such as `2024-05-01T10:00:00Z` (fractions allowed) to epoch seconds.
pub fn parse_time(t: &str) -> R<f64> {
    let bad = || format!("bad timestamp {t:?}");
    let t = t.trim();
    let (date, time) = t.split_once('T').ok_or_else(bad)?;
    let time = time.strip_suffix('Z').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<R<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let h: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<R<_>>()?;
    if d.len() != 3 || h.len() != 3 {
        return Err(bad());
    }
    // days from civil (Howard Hinnant)
    let (y, m, dd) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let frac: f64 = format!("0.{frac}").parse().unwrap_or(0.0);
    Ok((days * 86400 + h[0] * 3600 + h[1] * 60 + h[2]) as f64 + frac)
}

/// Reads a file of the repository and applies textual edits; each `from` must occur in the text.
pub fn render(rel: &str, edits: &[(&str, &str)]) -> R<String> {
    let path = root().join(rel);
    let mut text = fs::read_to_string(&path).map_err(|e| format!("reading {rel}: {e}"))?;
    for (from, to) in edits {
        if !text.contains(from) {
            return Err(format!("{rel} does not contain {from:?}"));
        }
        text = text.replace(from, to);
    }
    Ok(text)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

/// `GET path` on addr; returns the status line.
pub fn http_get(addr: &str, path: &str) -> R<String> {
    let mut s = TcpStream::connect_timeout(
        &addr.parse().map_err(|e| format!("{addr}: {e}"))?,
        Duration::from_secs(2),
    )
    .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// The operator binary running against the cluster.
pub struct Operator {
    child: Option<Child>,
    pub log: PathBuf,
    pub metrics_addr: String,
    pub started: Instant,
}

impl Operator {
    pub fn binary() -> PathBuf {
        std::env::var_os("DEBUGSESSION_OPERATOR_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target/debug/debugsession-operator"))
    }

    /// Starts `debugsession-operator run`, appending its output to `log`, and waits for /healthz.
    pub fn start(log: &Path) -> R<Operator> {
        Self::start_with(log, &[], &[])
    }

    /// Like [`Operator::start`], with extra flags and environment variables. Without
    /// `--stamp-key-file` among them (these suites run no webhook), the operator is told to start
    /// unstamped sessions.
    pub fn start_with(log: &Path, extra_args: &[&str], extra_env: &[(&str, &str)]) -> R<Operator> {
        let mut args = extra_args.to_vec();
        if !args.contains(&"--stamp-key-file") {
            args.push("--insecure-allow-unstamped");
        }
        Self::start_exact(log, &args, extra_env)
    }

    /// Starts `debugsession-operator run` with exactly these extra flags (besides the default
    /// image, metrics address and log format) and environment variables.
    pub fn start_exact(log: &Path, extra_args: &[&str], extra_env: &[(&str, &str)]) -> R<Operator> {
        let bin = Self::binary();
        if !bin.exists() {
            return Err(format!(
                "operator binary {} not found: run `cargo build` first (or set DEBUGSESSION_OPERATOR_BIN)",
                bin.display()
            ));
        }
        if let Some(dir) = log.parent() {
            fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(&bin)
            .args([
                "run",
                "--default-image",
                &cluster().busybox(),
                "--metrics-addr",
                &metrics_addr,
                "--log-format",
                "json",
            ])
            .args(extra_args)
            .envs(&cluster().env)
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut op = Operator {
            child: Some(child),
            log: log.to_path_buf(),
            metrics_addr,
            started: Instant::now(),
        };
        op.wait_http("/healthz", TIMEOUT)?;
        Ok(op)
    }

    /// Waits until `GET path` answers 200 (fails at once when the process exited).
    pub fn wait_http(&mut self, path: &str, timeout: Duration) -> R<()> {
        let addr = self.metrics_addr.clone();
        let log = self.log.clone();
        wait_for(
            &format!("the operator's {path} to answer 200"),
            timeout,
            || {
                if let Some(c) = self.child.as_mut()
                    && let Ok(Some(st)) = c.try_wait()
                {
                    return Ok(Err(format!(
                        "operator exited ({st}); see {}",
                        log.display()
                    )));
                }
                let r = http_get(&addr, path)?;
                if r.starts_with("HTTP/1.1 200") {
                    Ok(Ok(()))
                } else {
                    Err(r.lines().next().unwrap_or("").to_string())
                }
            },
        )?
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then SIGKILL after 10s.
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            terminate(c);
        }
    }
}

/// Stops a child process: SIGTERM, then SIGKILL when it has not exited after 10s.
pub fn terminate(mut c: Child) {
    if let Ok(Some(_)) = c.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let _ = c.kill();
    let _ = c.wait();
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Applies the CRD from crds/ with server-side apply and waits for it to be Established.
pub fn install_crd() -> R<()> {
    let crds = root().join("crds");
    // crds/ may carry a kustomization.yaml (not a Kubernetes object): then apply it with -k.
    let flag = if crds.join("kustomization.yaml").exists() {
        "-k"
    } else {
        "-f"
    };
    k(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        flag,
        &crds.to_string_lossy(),
    ])?;
    k(&[
        "wait",
        "--for=condition=Established",
        "crd/debugsessions.debugsession.dev",
        "--timeout=90s",
    ])?;
    Ok(())
}

/// Waits until `e2e/cluster/status` reports the cluster up.
pub fn wait_cluster_up(timeout: Duration) -> R<()> {
    let status = root().join("e2e/cluster/status");
    wait_for("the local cluster (e2e/cluster/status)", timeout, || {
        let out = run(
            &status.to_string_lossy(),
            &[],
            None,
            Duration::from_secs(30),
        );
        if out.stdout.contains("cluster: up") {
            Ok(())
        } else {
            Err(out.both().lines().last().unwrap_or("").to_string())
        }
    })?;
    wait_for("the apiserver", timeout, || {
        k(&["get", "--raw", "/readyz"]).map(|_| ())
    })
}

/// An event as `(type, reason, message)`.
pub type Ev = (String, String, String);

/// Events whose involved object is `kind/name` in `ns`.
pub fn events(ns: &str, kind: &str, name: &str) -> R<Vec<Ev>> {
    let v = get_json(&["events", "-n", ns])?;
    Ok(v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["involvedObject"]["kind"] == kind && e["involvedObject"]["name"] == name)
        .map(|e| {
            (
                s(e, "/type").to_string(),
                s(e, "/reason").to_string(),
                s(e, "/message").to_string(),
            )
        })
        .collect())
}
