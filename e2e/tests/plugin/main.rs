//! End-to-end tests of the `kubectl debugsession` plugin against the local cluster, driven through
//! a pseudo-terminal as a person would type (pty_expect.py).
//!
//! Run: `cargo build -p debugsession-operator --bin debugsession-operator && cargo build -p kubectl-debugsession
//! && cargo test -p debugsession-e2e --test plugin -- [filter]`. Env: KUBECTL_DEBUGSESSION_BIN
//! overrides the plugin binary, DEBUGSESSION_OPERATOR_BIN the operator's, E2E_PARALLEL and
//! E2E_KEEP as in the operator suite.
//!
//! - `mode-patch`, `mode-copy`, `mode-ephemeral`: one command from a fresh namespace to a shell
//!   prompt in which `ps ax` shows the nginx master and the window size follows a resize (prints
//!   `FIGURE plugin-enter-to-prompt-seconds mode=<m> <secs>`); Ctrl-D (Patch, Ephemeral) or Ctrl-P
//!   Ctrl-Q (Copy) leaves the session running; Patch attaches again; `extend` moves `expiresAt`
//!   (Ephemeral refuses, saying why); `end` returns only once the workload is back.
//! - `no-attach-golden`: `--no-attach`, `list` and `end` without a terminal, against golden files.
//! - `errors`: a missing target (Failed, with the reason) and a session Pending behind another.
//! - `approval-recorded` ([`approval`]): after the others, under an operator with its webhook
//!   and `--approval-namespaces`: alice's recorded shell comes up once carol ran `approve`, and
//!   its log holds what alice saw.

mod approval;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use debugsession_e2e::*;

const DEPLOY: &str = "e2e/fixtures/nginx-deployment.yaml";
const PROMPT: &str = r"/ # ";

fn plugin() -> PathBuf {
    std::env::var_os("KUBECTL_DEBUGSESSION_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/debug/kubectl-debugsession"))
}

/// A run of the plugin without a terminal: exit code, stdout, stderr.
struct Run {
    rc: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> R<Run> {
    let out = Command::new(plugin())
        .args(args)
        .envs(&cluster().env)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", plugin().display()))?;
    Ok(Run {
        rc: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn run_ok(args: &[&str]) -> R<Run> {
    let r = run(args)?;
    ensure(r.rc == 0, || {
        format!("kubectl-debugsession {args:?}: rc {}: {}", r.rc, r.stderr)
    })?;
    Ok(r)
}

/// What a pty session showed.
struct Pty {
    rc: Option<i64>,
    marks: Value,
    output: String,
}

/// Runs the plugin on a pseudo-terminal through `steps` (see pty_expect.py).
fn pty(steps: Value, args: &[&str]) -> R<Pty> {
    let script = root().join("e2e/tests/plugin/pty_expect.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(steps.to_string())
        .arg("--")
        .arg(plugin())
        .args(args)
        .envs(&cluster().env)
        .output()
        .map_err(|e| format!("python3 {}: {e}", script.display()))?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "pty_expect.py: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let output = v["output"].as_str().unwrap_or_default().to_string();
    if v["ok"] != json!(true) {
        return Err(format!(
            "on the terminal: {}; it showed:\n{output}",
            v["error"].as_str().unwrap_or("?")
        ));
    }
    Ok(Pty {
        rc: v["rc"].as_i64(),
        marks: v["marks"].clone(),
        output,
    })
}

/// A fresh namespace `e2e-plugin-<scenario>-<suffix>` with the nginx Deployment rolled out.
fn namespace(scenario: &str) -> R<String> {
    let ns = namespace_name(scenario);
    create_with_nginx(&ns)?;
    Ok(ns)
}

/// The name of a fresh namespace for `scenario`.
fn namespace_name(scenario: &str) -> String {
    let suffix = (now_epoch() * 1000.0) as u64 % 100_000;
    format!("e2e-plugin-{scenario}-{suffix}")
}

/// Creates namespace `ns` with the nginx Deployment, and waits for its rollout.
fn create_with_nginx(ns: &str) -> R<()> {
    create_namespace(ns, WAIT)?;
    let text = render_fixture(DEPLOY, &[])?;
    k_in(&text, &["apply", "-n", ns, "-f", "-"])?;
    k(&[
        "rollout",
        "status",
        "deploy/nginx",
        "-n",
        ns,
        "--timeout=110s",
    ])?;
    Ok(())
}

fn in_namespace(scenario: &str, body: impl FnOnce(&str) -> R<()>) -> R<()> {
    let ns = namespace(scenario)?;
    let res = body(&ns);
    remove_namespace(&ns, res.is_err());
    res
}

fn session(ns: &str, name: &str) -> R<Value> {
    get_obj(ns, "debugsession", name)
}

fn phase(s: &Value) -> String {
    s["status"]["phase"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// One mode, from nothing to a shell prompt and back.
fn mode(ns: &str, mode: &str) -> R<()> {
    let name = format!("plug-{mode}");
    let leave = if mode == "copy" {
        "\u{10}\u{11}"
    } else {
        "\u{4}"
    };
    let t = pty(
        json!([
            {"expect": PROMPT, "timeout": 180, "mark": "prompt"},
            {"send": "ps ax\r"},
            {"expect": "nginx: master process", "timeout": 30},
            {"expect": PROMPT, "timeout": 10},
            {"resize": [40, 120]},
            {"send": "stty size\r"},
            {"expect": "40 120", "timeout": 10},
            {"expect": PROMPT, "timeout": 10},
            {"send": leave},
            {"exit": 30},
        ]),
        &[
            "deploy/nginx",
            "-n",
            ns,
            "--mode",
            mode,
            "--ttl",
            "15m",
            "--name",
            &name,
        ],
    )?;
    let secs = t.marks["prompt"].as_f64().unwrap_or(-1.0);
    println!("FIGURE plugin-enter-to-prompt-seconds mode={mode} {secs:.2}");
    ensure(t.rc == Some(0), || {
        format!("rc {:?} after leaving the shell:\n{}", t.rc, t.output)
    })?;
    ensure(t.output.contains("keeps running"), || {
        format!("no word that the session keeps running:\n{}", t.output)
    })?;
    let s = session(ns, &name)?;
    let p = phase(&s);
    ensure(!matches!(p.as_str(), "Expired" | "Failed"), || {
        format!("leaving the shell ended the session: phase {p}")
    })?;
    if mode == "patch" {
        wait_for("the shell to restart", TIMEOUT, || {
            let s = session(ns, &name)?;
            ensure(phase(&s) == "Active", || format!("phase {}", phase(&s)))
        })?;
        let again = pty(
            json!([
                {"expect": "try pressing enter", "timeout": 30},
                {"send": "\r"},
                {"expect": PROMPT, "timeout": 30},
                {"send": "\u{10}\u{11}"},
                {"exit": 30},
            ]),
            &["attach", &name, "-n", ns],
        )?;
        ensure(again.output.contains("Detached"), || again.output.clone())?;
    }
    // extend
    let before = session(ns, &name)?["status"]["expiresAt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ext = run(&["extend", &name, "30m", "-n", ns])?;
    if mode == "ephemeral" {
        ensure(
            ext.rc == 1 && ext.stderr.contains("Ephemeral mode and cannot be extended"),
            || {
                format!(
                    "extend of an Ephemeral session: rc {}: {}",
                    ext.rc, ext.stderr
                )
            },
        )?;
    } else {
        ensure(ext.rc == 0, || {
            format!("extend: rc {}: {}", ext.rc, ext.stderr)
        })?;
        let after = session(ns, &name)?["status"]["expiresAt"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let moved = parse_time(&after)? - parse_time(&before)?;
        ensure((moved - 1800.0).abs() < 1.5, || {
            format!("expiresAt moved {moved}s ({before} -> {after})")
        })?;
    }
    // end
    run_ok(&["end", &name, "-n", ns])?;
    ensure(get_opt(ns, "debugsession", &name)?.is_none(), || {
        "end returned while the session still exists".into()
    })?;
    match mode {
        "patch" => {
            let d = get_obj(ns, "deployment", "nginx")?;
            let shells = d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .map(|cs| cs.iter().filter(|c| c["name"] == "debug-shell").count())
                .unwrap_or(0);
            ensure(shells == 0, || "the template still has the shell".into())?;
            let pods = get_json(&["pods", "-n", ns, "-l", "app=nginx"])?;
            let with = pods["items"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| {
                            p["spec"]["containers"]
                                .as_array()
                                .is_some_and(|cs| cs.iter().any(|c| c["name"] == "debug-shell"))
                        })
                        .count()
                })
                .unwrap_or(0);
            ensure(with == 0, || {
                format!("{with} pods still carry the shell after end")
            })
        }
        "copy" => ensure(
            get_opt(ns, "pod", &format!("{name}-copy"))?.is_none(),
            || "the copy is still there after end".into(),
        ),
        _ => Ok(()),
    }
}

/// Scripts' view: `--no-attach`, `list` and `end` without a terminal.
fn golden(ns: &str) -> R<()> {
    let dir = root().join("e2e/tests/plugin/golden");
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .map(|t| t.replace("{NS}", ns))
            .map_err(|e| format!("{f}: {e}"))
    };
    let r = run_ok(&[
        "deploy/nginx",
        "-n",
        ns,
        "--mode",
        "copy",
        "--name",
        "golden",
        "--no-attach",
    ])?;
    ensure(r.stdout == read("no-attach.stdout")?, || {
        format!("--no-attach stdout:\n{}", r.stdout)
    })?;
    ensure(
        r.stderr
            .lines()
            .all(|l| l.starts_with("debugsession/golden: ") && !l.contains('\u{1b}')),
        || {
            format!(
                "progress without a terminal is not plain lines:\n{}",
                r.stderr
            )
        },
    )?;
    let l = run_ok(&["list", "-n", ns])?;
    let lines: Vec<Vec<&str>> = l
        .stdout
        .lines()
        .map(|x| x.split_whitespace().collect())
        .collect();
    ensure(
        lines.len() == 2
            && lines[0] == ["NAME", "TARGET", "MODE", "PHASE", "EXPIRES", "READY", "AGE"]
            && lines[1][..4] == ["golden", "Deployment/nginx", "Copy", "Active"]
            && lines[1][5] == "1/1",
        || format!("list:\n{}", l.stdout),
    )?;
    let n = run_ok(&["list", "-n", ns, "-o", "name"])?;
    ensure(n.stdout == "debugsession.debugsession.dev/golden\n", || {
        n.stdout.clone()
    })?;
    let st = run_ok(&["status", "golden", "-n", ns])?;
    ensure(
        st.stdout.contains("Phase:      Active") && st.stdout.contains("golden-copy"),
        || format!("status:\n{}", st.stdout),
    )?;
    let e = run_ok(&["end", "golden", "-n", ns])?;
    ensure(e.stdout == read("end.stdout")?, || {
        format!("end stdout:\n{}", e.stdout)
    })
}

/// The errors a user meets, each in one line.
fn errors(ns: &str) -> R<()> {
    let r = run(&[
        "deploy/missing",
        "-n",
        ns,
        "--name",
        "missing",
        "--no-attach",
    ])?;
    ensure(
        r.rc == 1
            && r.stderr
                .contains("error: debugsession/missing failed: TargetNotFound"),
        || format!("missing target: rc {}: {}", r.rc, r.stderr),
    )?;
    run_ok(&["deploy/nginx", "-n", ns, "--name", "first", "--no-attach"])?;
    let r = run(&[
        "deploy/nginx",
        "-n",
        ns,
        "--name",
        "second",
        "--no-attach",
        "--timeout",
        "5s",
    ])?;
    ensure(
        r.rc == 1
            && r.stderr.contains("Pending behind debugsession/first")
            && r.stderr.contains("kubectl debugsession end first"),
        || format!("second session: rc {}: {}", r.rc, r.stderr),
    )?;
    let r = run(&["status", "nope", "-n", ns])?;
    ensure(r.rc == 1 && r.stderr.contains("\"nope\" not found"), || {
        r.stderr.clone()
    })?;
    run_ok(&["end", "second", "-n", ns, "--no-wait"])?;
    run_ok(&["end", "first", "-n", ns])?;
    Ok(())
}

fn main() -> ExitCode {
    let runner = Runner::new().filtered();
    if !plugin().exists() {
        println!(
            "FAIL setup: {} not found: cargo build -p kubectl-debugsession",
            plugin().display()
        );
        return ExitCode::FAILURE;
    }
    let log = root().join(format!(
        "target/e2e-logs/operator-plugin-{}.log",
        now_epoch() as u64
    ));
    let Some(mut op) = runner.setup(|| {
        wait_cluster_up(Duration::from_secs(300))?;
        install_crd()?;
        Operator::start(&log)
    }) else {
        return runner.finish("");
    };
    runner.parallel(vec![
        Scenario::new("mode-patch", || {
            in_namespace("patch", |ns| mode(ns, "patch"))
        }),
        Scenario::new("mode-copy", || in_namespace("copy", |ns| mode(ns, "copy"))),
        Scenario::new("mode-ephemeral", || {
            in_namespace("ephemeral", |ns| mode(ns, "ephemeral"))
        }),
        Scenario::new("no-attach-golden", || in_namespace("golden", golden)),
        Scenario::new("errors", || in_namespace("errors", errors)),
    ]);
    op.stop();
    if runner.selects(approval::SCENARIO) {
        runner.run(approval::SCENARIO, || approval::scenario(&log));
    }
    runner.finish(&format!("; operator log {}", log.display()))
}
