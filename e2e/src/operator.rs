//! The one way to run the operator binary against the cluster: start it (and wait for /healthz),
//! signal it, stop it.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{R, TIMEOUT, cluster, ensure, root, wait_for};

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
    /// Where its stdout goes (the audit trail): `log` unless [`Operator::start_split`] said.
    pub stdout_log: PathBuf,
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
        Self::start_split(log, None, extra_args, extra_env)
    }

    /// Like [`Operator::start_exact`], with the operator's stdout (its audit trail) appended to
    /// `stdout_log` apart from its stderr (the diagnostic log, appended to `log`); None: both to
    /// `log`.
    pub fn start_split(
        log: &Path,
        stdout_log: Option<&Path>,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> R<Operator> {
        let bin = Self::binary();
        if !bin.exists() {
            return Err(format!(
                "operator binary {} not found: run `cargo build` first (or set DEBUGSESSION_OPERATOR_BIN)",
                bin.display()
            ));
        }
        let err = append_to(log)?;
        let stdout_log = stdout_log.unwrap_or(log);
        let out = if stdout_log == log {
            err.try_clone().map_err(|e| e.to_string())?
        } else {
            append_to(stdout_log)?
        };
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
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut op = Operator {
            child: Some(child),
            log: log.to_path_buf(),
            stdout_log: stdout_log.to_path_buf(),
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

    /// Sends a signal such as `-STOP` or `-CONT` to the running operator.
    pub fn signal(&self, sig: &str) -> R<()> {
        let pid = self.pid().ok_or("the operator is not running")?;
        send_signal(pid, sig)
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

/// `path` opened for appending (created with its directory when missing).
fn append_to(path: &Path) -> R<fs::File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `kill <sig> <pid>`.
fn send_signal(pid: u32, sig: &str) -> R<()> {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map_err(|e| format!("kill {sig} {pid}: {e}"))?;
    ensure(st.success(), || format!("kill {sig} {pid}: {st}"))
}

/// Stops a child process: SIGTERM, then SIGKILL when it has not exited after 10s.
pub fn terminate(mut c: Child) {
    if let Ok(Some(_)) = c.try_wait() {
        return;
    }
    let _ = send_signal(c.id(), "-TERM");
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
