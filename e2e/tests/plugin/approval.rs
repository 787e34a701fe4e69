//! `approval-recorded`: a recorded shell that needs a second person's approval, through the
//! plugin as two people would use it. Approvals are signed by the operator's admission webhook,
//! so this scenario runs after the others under an operator of its own: with its webhook and
//! stamp key (e2e/src/webhook.rs) and `--approval-namespaces <the scenario's namespace>`.
//!
//! alice (sessions, exec/attach: create, and get for the plugin's websocket; patch Deployments) runs `kubectl debugsession deploy/nginx
//! --record` in a pseudo-terminal; while it waits, carol (the RBAC verb `approve`) runs
//! `kubectl debugsession approve NAME`; the prompt comes up, alice types `echo
//! recorded-$((6*7))` and sees `recorded-42`, and detaches. The shell container's log holds the
//! banner `This debug shell is recorded`, the command and its output. Each person is a kubeconfig
//! that impersonates them (`as:`), which kubectl and the plugin honour alike.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use debugsession_e2e::*;

use crate::{create_with_nginx, namespace_name, pty, run};

pub const SCENARIO: &str = "approval-recorded";
const NAME: &str = "plug-approval";
const LABEL: &str = "debugsession.dev/plugin-e2e";
const ALICE: &str = "plugin-e2e-alice";
const CAROL: &str = "plugin-e2e-carol";
const BANNER: &str = "This debug shell is recorded";
/// busybox's prompt, or the one a recorded shell sets.
const PROMPT: &str = r"(/|\[recorded\]) # ";
const TYPED: &str = "echo recorded-$((6*7))";
const SHOWN: &str = "recorded-42";

fn rbac_yaml(ns: &str) -> String {
    let role = |name: &str, rules: &str| {
        format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {name}\n  namespace: {ns}\nrules:\n{rules}"
        )
    };
    let binding = |role: &str, user: &str| {
        format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {role}-{user}\n  namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {role}\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: {user}\n"
        )
    };
    let mut out = role(
        "requester",
        "- apiGroups: [debugsession.dev]\n  resources: [debugsessions]\n  verbs: [create, get, list, watch, update, patch, delete]\n- apiGroups: [apps]\n  resources: [deployments]\n  verbs: [get, list, watch, patch]\n- apiGroups: [\"\"]\n  resources: [pods, events]\n  verbs: [get, list, watch]\n- apiGroups: [\"\"]\n  resources: [pods/exec, pods/attach]\n  verbs: [create, get]\n- apiGroups: [\"\"]\n  resources: [pods/log]\n  verbs: [get]\n",
    );
    out += &role(
        "approver",
        "- apiGroups: [debugsession.dev]\n  resources: [debugsessions]\n  verbs: [get, list, watch, patch, update, approve]\n- apiGroups: [\"\"]\n  resources: [events]\n  verbs: [get, list, watch]\n",
    );
    out += &binding("requester", ALICE);
    out += &binding("approver", CAROL);
    out
}

/// The scenario's namespace, webhook and operator, the body, then everything taken away (the
/// operator's stderr and stdout appended to `log`).
pub fn scenario(log: &Path) -> R<()> {
    let ns = namespace_name("approval");
    let dir = root().join(format!("target/e2e-plugin/{ns}"));
    let hooks = Webhooks::prepare(&format!("debugsession-{ns}"), LABEL, &ns, &dir)?;
    let mut op = None;
    let res = (|| {
        create_with_nginx(&ns)?;
        hooks.label_namespace(&ns)?;
        k_in(&rbac_yaml(&ns), &["apply", "-f", "-"])?;
        op = Some(start_operator(&hooks, &ns, log)?);
        body(&ns, &dir)
    })();
    // The sessions end while the operator (and its webhook) still run; then the webhook goes.
    let _ = delete_sessions(&ns);
    hooks.delete();
    if let Some(mut o) = op {
        o.stop();
    }
    remove_namespace(&ns, res.is_err());
    res
}

/// Starts the operator with its webhook, approvals in `ns`, and the harness's username as the
/// operator's (learnt from the webhook's stamp, restarting once when the kubeconfig's guess was
/// wrong), and registers the webhook configurations.
fn start_operator(hooks: &Webhooks, ns: &str, log: &Path) -> R<Operator> {
    let start = |user: &str| {
        let mut args = hooks.operator_args();
        args.extend(["--operator-username", user, "--approval-namespaces", ns].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        println!(
            "  .. starting the operator with its webhook: {}",
            args.join(" ")
        );
        Operator::start_exact(
            log,
            &args,
            &[("DEBUGSESSION_INSECURE_ALLOW_UNSTAMPED", "false")],
        )
    };
    let guess = kubeconfig_user()?;
    let mut op = start(&guess)?;
    let me = hooks.register(ns)?;
    if me != guess {
        op.stop();
        op = start(&me)?;
        hooks.register(ns)?;
    }
    Ok(op)
}

/// The plugin as `kubeconfig`'s user, without a terminal.
fn plugin_as(kubeconfig: &Path, args: &[&str]) -> R<crate::Run> {
    let mut all: Vec<&str> = args.to_vec();
    let kc = kubeconfig.to_string_lossy();
    all.extend(["--kubeconfig", &kc]);
    run(&all)
}

/// Carol approves once the session waits for approval (None when `stop` is set first).
fn approve_when_waiting(ns: &str, carol: &Path, stop: &AtomicBool) -> R<Option<String>> {
    let start = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        if let Some(v) = get_opt(ns, "debugsession", NAME)?
            && phase_is(&v, "Pending")
            && cond_is(&v, "Approved", "False", Some("AwaitingApproval"))
        {
            break;
        }
        ensure(start.elapsed() < LONG, || {
            format!("{NAME} did not come to wait for approval within {LONG:?}")
        })?;
        thread::sleep(POLL);
    }
    let r = plugin_as(carol, &["approve", NAME, "-n", ns])?;
    ensure(r.rc == 0, || {
        format!(
            "carol's `approve {NAME}`: rc {}: {}{}",
            r.rc, r.stdout, r.stderr
        )
    })?;
    Ok(Some(format!("{}{}", r.stdout, r.stderr).trim().to_string()))
}

fn body(ns: &str, dir: &Path) -> R<()> {
    let alice = kubeconfig_as(ALICE, &dir.join("alice.kubeconfig"))?;
    let carol = kubeconfig_as(CAROL, &dir.join("carol.kubeconfig"))?;
    // The kubeconfigs act as their users: the webhook stamps alice's dry run with her name.
    let kc = alice.to_string_lossy().into_owned();
    let who = dry_run_as_kubeconfig(ns, &kc)?;
    ensure(who.as_deref() == Some(ALICE), || {
        format!("a dry run with alice's kubeconfig was stamped {who:?}")
    })?;
    let stop = AtomicBool::new(false);
    let (terminal, approved) = thread::scope(|sc| {
        let approver = sc.spawn(|| approve_when_waiting(ns, &carol, &stop));
        let t = pty(
            json!([
                {"expect": PROMPT, "timeout": 240, "mark": "prompt"},
                {"send": format!("{TYPED}\r")},
                {"expect": SHOWN, "timeout": 30},
                {"expect": PROMPT, "timeout": 10},
                {"send": "\u{10}\u{11}"},
                {"exit": 30},
            ]),
            &[
                "deploy/nginx",
                "-n",
                ns,
                "--record",
                "--name",
                NAME,
                "--ttl",
                "15m",
                "--kubeconfig",
                &kc,
            ],
        );
        stop.store(true, Ordering::SeqCst);
        let a = approver
            .join()
            .unwrap_or_else(|_| Err("the approver thread panicked".into()));
        (t, a)
    });
    let approved = approved?.ok_or("the plugin session never waited for approval")?;
    println!("  carol: {approved}");
    let t = terminal.map_err(|e| format!("alice's terminal: {e}"))?;
    println!(
        "FIGURE plugin-enter-to-prompt-seconds mode=patch-approved {:.2}",
        t.marks["prompt"].as_f64().unwrap_or(-1.0)
    );
    ensure(t.rc == Some(0), || {
        format!("rc {:?} after detaching:\n{}", t.rc, t.output)
    })?;
    let v = get_obj(ns, "debugsession", NAME)?;
    ensure(v["spec"]["shell"]["record"] == true, || {
        format!("--record did not reach spec.shell.record: {}", v["spec"])
    })?;
    ensure(
        v["metadata"]["annotations"][REQUESTER_ANNOTATION] == ALICE
            && v["status"]["approval"]["approvedBy"] == json!([CAROL]),
        || {
            format!(
                "requester {} approvedBy {}, want {ALICE} and [{CAROL}]",
                v["metadata"]["annotations"][REQUESTER_ANNOTATION],
                v["status"]["approval"]["approvedBy"]
            )
        },
    )?;
    let pod = recorded_log(ns, &v)?;
    println!("  the shell log of {pod} holds the banner, {TYPED:?} and {SHOWN:?}");
    let end = plugin_as(&alice, &["end", NAME, "-n", ns])?;
    ensure(end.rc == 0, || {
        format!("alice's `end {NAME}`: rc {}: {}", end.rc, end.stderr)
    })?;
    let d = get_obj(ns, "deployment", "nginx")?;
    ensure(!has_shell(&d["spec"]["template"]), || {
        "the template still has the shell after end".into()
    })?;
    unnamed_session_is_stamped(ns, &alice)
}

/// Without `--name` the plugin names the session itself (a mutating webhook sees no name that
/// `generateName` would make, and the stamp binds the name): the webhook admits and stamps it.
/// It then waits for approval, which does not come within `--timeout`.
fn unnamed_session_is_stamped(ns: &str, alice: &Path) -> R<()> {
    let r = plugin_as(
        alice,
        &["deploy/nginx", "-n", ns, "--no-attach", "--timeout", "3s"],
    )?;
    let sessions = get_json(&["debugsessions", "-n", ns])?;
    let made: Vec<&Value> = sessions["items"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|v| s(v, "/metadata/name").starts_with("nginx-debug-"))
                .collect()
        })
        .unwrap_or_default();
    let [v] = made.as_slice() else {
        return Err(format!(
            "want one session nginx-debug-*, got {}; the plugin said (rc {}): {}{}",
            made.len(),
            r.rc,
            r.stdout,
            r.stderr
        ));
    };
    let name = s(v, "/metadata/name").to_string();
    println!("  without --name: {name}, then: {}", r.stderr.trim());
    ensure(
        name.len() == "nginx-debug-".len() + 5
            && v["metadata"]["annotations"][REQUESTER_ANNOTATION] == ALICE,
        || {
            format!(
                "session {name}: requester {}, want {ALICE}",
                v["metadata"]["annotations"][REQUESTER_ANNOTATION]
            )
        },
    )?;
    let end = plugin_as(alice, &["end", &name, "-n", ns])?;
    ensure(end.rc == 0, || {
        format!("alice's `end {name}`: rc {}: {}", end.rc, end.stderr)
    })
}

/// The requester a server-side dry run of a session in `ns` with `kubeconfig` is stamped with.
fn dry_run_as_kubeconfig(ns: &str, kubeconfig: &str) -> R<Option<String>> {
    let probe = json!({
        "apiVersion": "debugsession.dev/v1alpha1",
        "kind": "DebugSession",
        "metadata": {"name": "kubeconfig-probe"},
        "spec": {"target": {"kind": "Deployment", "name": "nginx"}},
    });
    let out = kubectl_in(
        &probe.to_string(),
        &[
            "create",
            "--dry-run=server",
            "-o",
            "json",
            "-n",
            ns,
            "-f",
            "-",
            "--kubeconfig",
            kubeconfig,
        ],
    );
    ensure(out.ok, || format!("dry run: {}", out.both().trim()))?;
    let v: Value = serde_json::from_str(&out.stdout).map_err(|e| e.to_string())?;
    Ok(v["metadata"]["annotations"][REQUESTER_ANNOTATION]
        .as_str()
        .map(str::to_string))
}

/// Text without terminal escape sequences (CSI `ESC [ ... letter`, and `ESC x`) and carriage
/// returns.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' if chars.peek() == Some(&'[') => {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() || d == '~' {
                        break;
                    }
                }
            }
            '\u{1b}' => {
                chars.next();
            }
            '\r' => {}
            _ => out.push(c),
        }
    }
    out
}

/// The pod whose shell container's log (`kubectl logs POD -c CONTAINER`) holds the banner, the
/// typed command and its output.
fn recorded_log(ns: &str, session: &Value) -> R<String> {
    let pods: Vec<(String, String)> = session["status"]["pods"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (s(p, "/name").to_string(), s(p, "/container").to_string()))
        .collect();
    ensure(!pods.is_empty(), || {
        format!("status.pods is empty: {}", summary(session))
    })?;
    wait_for(
        "a shell container log with the banner, the command and its output",
        Duration::from_secs(30),
        || {
            let mut seen = Vec::new();
            for (pod, container) in &pods {
                let log = plain(&k(&["logs", "-n", ns, pod, "-c", container])?);
                let missing: Vec<&str> = [BANNER, TYPED, SHOWN]
                    .into_iter()
                    .filter(|w| !log.contains(w))
                    .collect();
                if missing.is_empty() {
                    return Ok(pod.clone());
                }
                seen.push(format!(
                    "{pod}/{container} lacks {missing:?}; its log:\n{log}"
                ));
            }
            Err(seen.join("\n"))
        },
    )
}
