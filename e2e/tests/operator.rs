//! End-to-end scenarios of debugsession-operator against the local cluster (e2e/cluster/).
//!
//! Run: `cargo build && cargo test -p debugsession-e2e --test operator -- [filter]`
//! (filter = substring of scenario names, also from env E2E_FILTER). Env: E2E_PARALLEL (default 7),
//! E2E_KEEP=1 keeps the namespace of a failed scenario, E2E_VERBOSE=1 prints each step,
//! DEBUGSESSION_OPERATOR_BIN overrides the operator binary.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use debugsession_e2e::*;

const SAMPLE: &str = "config/samples/debugsession_v1alpha1_debugsession.yaml";
const SAMPLE_STS: &str = "config/samples/debugsession_v1alpha1_debugsession_statefulset.yaml";
const SAMPLE_DS: &str = "config/samples/debugsession_v1alpha1_debugsession_daemonset.yaml";
const DEPLOY: &str = "e2e/fixtures/nginx-deployment.yaml";
const STS: &str = "e2e/fixtures/nginx-statefulset.yaml";
const DS: &str = "e2e/fixtures/nginx-daemonset.yaml";
const SHELL: &str = "debug-shell";
const LONG: Duration = Duration::from_secs(120);

struct Suite {
    op: Mutex<Option<Operator>>,
    log: PathBuf,
    verbose: bool,
}

type Scenario = fn(&Ns, &Suite) -> R<()>;

static READY: Mutex<Option<R<()>>> = Mutex::new(None);

/// A scenario's namespace and the helpers that work in it.
struct Ns {
    name: String,
    scenario: String,
    verbose: bool,
}

fn summary(v: &Value) -> String {
    format!(
        "phase={:?} message={:?} {} readyPods={:?}",
        s(v, "/status/phase"),
        s(v, "/status/message"),
        cond_summary(v, "Ready"),
        s(v, "/status/readyPods")
    )
}

fn containers(template: &Value) -> Vec<Value> {
    template
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn has_shell(template: &Value) -> bool {
    containers(template).iter().any(|c| c["name"] == SHELL)
}

fn managers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|m| s(m, "/manager").to_string())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
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

impl Ns {
    fn create(scenario: &str, verbose: bool) -> R<Ns> {
        let suffix = (now_epoch() * 1000.0) as u64 % 100_000;
        let name = format!("e2e-{scenario}-{suffix}");
        k(&["create", "namespace", &name])?;
        // The default ServiceAccount must exist before pods can be created.
        wait_for("the default ServiceAccount", TIMEOUT, || {
            k(&["get", "serviceaccount", "default", "-n", &name]).map(|_| ())
        })?;
        Ok(Ns {
            name,
            scenario: scenario.to_string(),
            verbose,
        })
    }

    fn say(&self, msg: &str) {
        if self.verbose {
            println!("  [{}] {msg}", self.scenario);
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

    fn apply_text(&self, text: &str) -> Out {
        kubectl_in(text, &["apply", "-n", &self.name, "-f", "-"])
    }

    /// Applies a workload fixture (images swapped for those of images.env) and waits for its rollout.
    fn fixture(&self, file: &str, edits: &[(&str, &str)]) -> R<()> {
        let mut text = render(file, edits)?;
        text = text
            .replace("registry.local/nginx:1.22.1", &cluster().nginx())
            .replace("registry.local/busybox:1.35.0", &cluster().busybox());
        k_in(&text, &["apply", "-n", &self.name, "-f", "-"])?;
        Ok(())
    }

    fn rollout(&self, kind: &str, name: &str) -> R<()> {
        let out = run(
            "kubectl",
            &[
                "rollout",
                "status",
                "-n",
                &self.name,
                &format!("{kind}/{name}"),
                "--timeout=110s",
            ],
            None,
            LONG,
        );
        ensure(out.ok, || {
            format!("rollout of {kind}/{name} did not finish: {}", out.both())
        })
    }

    /// Applies a sample session with edits; the apply must succeed.
    fn session_from(&self, file: &str, edits: &[(&str, &str)]) -> R<()> {
        let text = render(file, edits)?;
        let out = self.apply_text(&text);
        ensure(out.ok, || {
            format!("kubectl apply of {file} failed: {}", out.both())
        })
    }

    /// Applies the README sample as session `name` with `ttl`, targeting Deployment nginx.
    fn session(&self, name: &str, ttl: &str) -> R<()> {
        self.say(&format!("apply session {name} ttl {ttl}"));
        self.session_from(
            SAMPLE,
            &[
                ("name: nginx-debug", &format!("name: {name}")),
                ("ttl: 15m", &format!("ttl: {ttl}")),
            ],
        )
    }

    fn get(&self, resource: &str, name: &str) -> R<Value> {
        get_opt(&self.name, resource, name)?
            .ok_or_else(|| format!("{resource}/{name} not found in {}", self.name))
    }

    fn dbgs(&self, name: &str) -> R<Value> {
        self.get("debugsession", name)
    }

    fn template(&self, kind: &str, name: &str) -> R<Value> {
        Ok(self.get(kind, name)?["spec"]["template"].clone())
    }

    /// Waits until the session satisfies `pred`; fails with its last status.
    fn wait_session(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> R<Value> {
        self.say(&format!("wait for {name}: {what}"));
        wait_for(&format!("DebugSession {name}: {what}"), timeout, || {
            let v = self.dbgs(name)?;
            if pred(&v) { Ok(v) } else { Err(summary(&v)) }
        })
    }

    fn wait_phase(&self, name: &str, phase: &str, timeout: Duration) -> R<Value> {
        self.wait_session(name, &format!("phase {phase}"), timeout, |v| {
            s(v, "/status/phase") == phase
        })
    }

    fn events(&self, name: &str) -> R<Vec<Ev>> {
        events(&self.name, "DebugSession", name)
    }

    fn wait_event(&self, name: &str, reason: &str) -> R<Ev> {
        wait_for(
            &format!("an event with reason {reason} on DebugSession {name}"),
            TIMEOUT,
            || {
                let evs = self.events(name)?;
                evs.iter().find(|e| e.1 == reason).cloned().ok_or_else(|| {
                    format!("events: {:?}", evs.iter().map(|e| &e.1).collect::<Vec<_>>())
                })
            },
        )
    }

    /// Live (not terminating) pods matching a label selector.
    fn pods(&self, selector: &str) -> R<Vec<Value>> {
        let v = get_json(&["pods", "-n", &self.name, "-l", selector])?;
        Ok(v["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
            .collect())
    }

    fn all_pod_names(&self, selector: &str) -> R<Vec<String>> {
        let v = get_json(&["pods", "-n", &self.name, "-l", selector])?;
        Ok(v["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| s(p, "/metadata/name").to_string())
            .collect())
    }

    /// Deletes the session and waits until it is gone (the finalizer ran).
    fn delete_session(&self, name: &str) -> R<()> {
        self.say(&format!("delete session {name}"));
        let out = run(
            "kubectl",
            &[
                "delete",
                "-n",
                &self.name,
                "debugsession",
                name,
                "--timeout=110s",
            ],
            None,
            LONG,
        );
        ensure(out.ok, || {
            format!("deleting DebugSession {name}: {}", out.both())
        })?;
        wait_for(
            &format!("DebugSession {name} to be gone"),
            TIMEOUT,
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

    /// Checks that the workload is back to `original` (template), without our annotation or manager.
    fn assert_reverted(&self, kind: &str, name: &str, original: &Value) -> R<()> {
        let w = self.get(kind, name)?;
        template_diff(original, &w["spec"]["template"])?;
        let ann = w.pointer("/metadata/annotations/debugsession.dev~1session");
        ensure(ann.is_none(), || {
            format!(
                "{kind}/{name} still has annotation debugsession.dev/session={}",
                ann.unwrap()
            )
        })?;
        let m = managers(&w);
        ensure(!m.iter().any(|m| m.starts_with("debugsession/")), || {
            format!("{kind}/{name} still has a debugsession field manager: {m:?}")
        })
    }

    /// Checks the shell the session put in the workload's template.
    fn assert_applied(&self, kind: &str, name: &str, session: &str) -> R<Value> {
        let w = self.get(kind, name)?;
        let tpl = &w["spec"]["template"];
        let shell = containers(tpl)
            .into_iter()
            .find(|c| c["name"] == SHELL)
            .ok_or_else(|| {
                format!(
                    "{kind}/{name} template has no {SHELL} container: {}",
                    tpl["spec"]["containers"]
                )
            })?;
        ensure(s(&shell, "/image") == cluster().busybox(), || {
            format!(
                "shell image {} != default image {}",
                shell["image"],
                cluster().busybox()
            )
        })?;
        ensure(shell["stdin"] == true && shell["tty"] == true, || {
            format!("shell has no stdin/tty: {shell}")
        })?;
        let caps = shell
            .pointer("/securityContext/capabilities/add")
            .cloned()
            .unwrap_or(Value::Null);
        ensure(
            caps.as_array()
                .is_some_and(|a| a.iter().any(|c| c == "SYS_PTRACE")),
            || format!("shell capabilities.add lacks SYS_PTRACE: {caps}"),
        )?;
        ensure(tpl["spec"]["shareProcessNamespace"] == true, || {
            "template lacks shareProcessNamespace: true".into()
        })?;
        let ann = s(&w, "/metadata/annotations/debugsession.dev~1session");
        ensure(ann == session, || {
            format!("annotation debugsession.dev/session = {ann:?}, want {session:?}")
        })?;
        let manager = format!("debugsession/{}/{session}", self.name);
        ensure(managers(&w).contains(&manager), || {
            format!("no field manager {manager} in {:?}", managers(&w))
        })?;
        Ok(w)
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
            // Do not leave the namespace stuck on finalizers when the operator could not run them.
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

/// Creates Deployment nginx (`replicas`) and returns its rolled-out template.
fn nginx(ns: &Ns, replicas: u32) -> R<Value> {
    let r = format!("replicas: {replicas}");
    ns.fixture(DEPLOY, &[("replicas: 2", &r)])?;
    ns.rollout("deployment", "nginx")?;
    ns.template("deployment", "nginx")
}

/// Waits until every live pod of `selector` has the shell and the old ones are gone.
fn wait_pods_with_shell(ns: &Ns, selector: &str, want: usize, old: &[String]) -> R<Vec<Value>> {
    wait_for(
        &format!("{want} pods ({selector}) with {SHELL}, old pods gone"),
        TIMEOUT,
        || {
            let pods = ns.pods(selector)?;
            let names = ns.all_pod_names(selector)?;
            let with = pods
                .iter()
                .filter(|p| {
                    p["spec"]["containers"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["name"] == SHELL))
                })
                .count();
            let lingering: Vec<&String> = names.iter().filter(|n| old.contains(n)).collect();
            if pods.len() == want && with == want && lingering.is_empty() {
                Ok(pods)
            } else {
                Err(format!(
                    "{} live pods, {with} with shell, old pods still present: {lingering:?}",
                    pods.len()
                ))
            }
        },
    )
}

fn wait_pods_without_shell(ns: &Ns, selector: &str) -> R<()> {
    wait_for(
        &format!("pods ({selector}) without {SHELL}"),
        TIMEOUT,
        || {
            let names = ns.all_pod_names(selector)?;
            let pods = get_json(&["pods", "-n", &ns.name, "-l", selector])?;
            let with: Vec<String> = pods["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter(|p| {
                    p["spec"]["containers"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["name"] == SHELL))
                })
                .map(|p| s(p, "/metadata/name").to_string())
                .collect();
            if with.is_empty() && !names.is_empty() {
                Ok(())
            } else {
                Err(format!("pods with shell: {with:?}; all pods {names:?}"))
            }
        },
    )
}

/// `(pid, rest of the line)` of `ps ax` lines (busybox's columns vary; the command is at the end).
fn ps(ns: &Ns, pod: &str) -> R<Vec<(String, String)>> {
    let out = ns.k(&["exec", pod, "-c", SHELL, "--", "ps", "ax"])?;
    Ok(out
        .lines()
        .skip(1)
        .filter_map(|l| {
            let l = l.trim_start();
            let (pid, rest) = l.split_once(char::is_whitespace)?;
            Some((pid.to_string(), rest.trim().to_string()))
        })
        .collect())
}

// ---------------------------------------------------------------- scenarios

fn happy_path(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 2)?;
    let old = ns.all_pod_names("app=nginx")?;
    let uid = s(&ns.get("deployment", "nginx")?, "/metadata/uid").to_string();
    let t0 = Instant::now();
    ns.session("nginx-debug", "15m")?;
    let out = run(
        "kubectl",
        &[
            "wait",
            "-n",
            &ns.name,
            "--for=condition=Ready",
            "debugsession/nginx-debug",
            "--timeout=110s",
        ],
        None,
        LONG,
    );
    let secs = t0.elapsed().as_secs_f64();
    ensure(out.ok, || {
        format!(
            "kubectl wait --for=condition=Ready failed: {}; session: {}",
            out.both().trim(),
            ns.dbgs("nginx-debug")
                .map(|v| summary(&v))
                .unwrap_or_default()
        )
    })?;
    println!("FIGURE apply-to-ready-seconds={secs:.1}");

    let v = ns.dbgs("nginx-debug")?;
    ensure(s(&v, "/status/phase") == "Active", || {
        format!("not Active after Ready: {}", summary(&v))
    })?;
    ensure(s(&v, "/status/readyPods") == "2/2", || {
        format!("readyPods: {}", summary(&v))
    })?;
    ensure(s(&v, "/status/targetRef") == "Deployment/nginx", || {
        format!("targetRef {}", v["status"]["targetRef"])
    })?;
    ensure(
        s(&v, "/status/target/kind") == "Deployment"
            && s(&v, "/status/target/name") == "nginx"
            && s(&v, "/status/target/uid") == uid,
        || {
            format!(
                "status.target {} (deployment uid {uid})",
                v["status"]["target"]
            )
        },
    )?;
    for f in ["startedAt", "expiresAt"] {
        parse_time(s(&v, &format!("/status/{f}")))?;
    }
    let reverted = cond_summary(&v, "Reverted");
    ensure(reverted.starts_with("Reverted=False"), || {
        format!("while Active: {reverted}")
    })?;
    ns.assert_applied("deployment", "nginx", "nginx-debug")?;

    // Pods rolled: new pods carry the shell, the old ones are gone; status lists them.
    let pods = wait_pods_with_shell(ns, "app=nginx", 2, &old)?;
    let mut names: Vec<String> = pods
        .iter()
        .map(|p| s(p, "/metadata/name").to_string())
        .collect();
    names.sort();
    let v = ns.wait_session("nginx-debug", "status.pods = the live pods", TIMEOUT, |v| {
        let mut listed: Vec<String> = v["status"]["pods"]
            .as_array()
            .map(|a| a.iter().map(|p| s(p, "/name").to_string()).collect())
            .unwrap_or_default();
        listed.sort();
        listed == names
    })?;
    for p in v["status"]["pods"].as_array().cloned().unwrap_or_default() {
        let want = format!(
            "kubectl attach -it -n {} {} -c {SHELL}",
            ns.name,
            s(&p, "/name")
        );
        ensure(p["ready"] == true && s(&p, "/attach") == want, || {
            format!("status.pods entry {p}, want ready and attach {want:?}")
        })?;
    }

    // kubectl get columns.
    let table = ns.k(&["get", "debugsessions"])?;
    let header = table.lines().next().unwrap_or("");
    for col in ["NAME", "TARGET", "PHASE", "EXPIRES", "READY", "AGE"] {
        ensure(header.contains(col), || {
            format!("kubectl get header lacks {col}: {table}")
        })?;
    }
    let row = table
        .lines()
        .find(|l| l.starts_with("nginx-debug"))
        .unwrap_or("");
    let cols: Vec<&str> = row.split_whitespace().collect();
    ensure(
        cols.get(1) == Some(&"Deployment/nginx")
            && cols.get(2) == Some(&"Active")
            && cols.contains(&"2/2"),
        || format!("kubectl get row wrong: {table}"),
    )?;
    let wide = ns.k(&["get", "dbgs", "-o", "wide"])?;
    let message = s(&v, "/status/message");
    ensure(
        wide.lines().next().unwrap_or("").contains("MESSAGE")
            && !message.is_empty()
            && wide.contains(message),
        || format!("-o wide lacks MESSAGE column / message {message:?}: {wide}"),
    )?;

    // Events and describe.
    ns.wait_event("nginx-debug", "Applied")?;
    ns.wait_event("nginx-debug", "Active")?;
    let describe = ns.k(&["describe", "debugsession", "nginx-debug"])?;
    ensure(
        describe.contains("Applied") && describe.contains("Active"),
        || format!("describe lacks Applied/Active events: {describe}"),
    )?;

    // Inside the shell: the app's processes, signals, its filesystem.
    let pod = names[0].clone();
    let procs = ps(ns, &pod)?;
    ensure(procs.iter().any(|p| p.1.contains("/pause")), || {
        format!("ps ax lacks /pause: {procs:?}")
    })?;
    let master = procs
        .iter()
        .find(|p| p.1.contains("nginx: master process"))
        .ok_or_else(|| format!("ps ax lacks nginx: master process: {procs:?}"))?
        .0
        .clone();
    let workers = |procs: &[(String, String)]| -> BTreeSet<String> {
        procs
            .iter()
            .filter(|p| p.1.contains("nginx: worker process"))
            .map(|p| p.0.clone())
            .collect()
    };
    let before = workers(&procs);
    ensure(!before.is_empty(), || {
        format!("no nginx workers: {procs:?}")
    })?;
    ns.k(&["exec", &pod, "-c", SHELL, "--", "kill", "-HUP", &master])?;
    wait_for(
        "new nginx worker PIDs after kill -HUP of the master",
        TIMEOUT,
        || {
            let now = workers(&ps(ns, &pod)?);
            if !now.is_empty() && now.is_disjoint(&before) {
                Ok(())
            } else {
                Err(format!("workers before {before:?}, now {now:?}"))
            }
        },
    )?;
    let conf = ns.k(&[
        "exec",
        &pod,
        "-c",
        SHELL,
        "--",
        "head",
        "-n",
        "40",
        &format!("/proc/{master}/root/etc/nginx/nginx.conf"),
    ])?;
    ensure(
        conf.contains("worker_processes") && conf.contains("events"),
        || {
            format!(
                "/proc/{master}/root/etc/nginx/nginx.conf does not look like nginx's config: {conf}"
            )
        },
    )?;

    // kubectl attach -it (through a pseudo-terminal), then detach with Ctrl-P Ctrl-Q.
    let drive = root().join("e2e/cluster/tty-drive");
    let out = run(
        &drive.to_string_lossy(),
        &[
            "echo hello-$((6*7))",
            "\\x10\\x11",
            "--",
            "kubectl",
            "attach",
            "-it",
            "-n",
            &ns.name,
            &pod,
            "-c",
            SHELL,
        ],
        None,
        Duration::from_secs(60),
    );
    ensure(out.stdout.contains("hello-42"), || {
        format!("kubectl attach -it: no echo output: {}", out.both())
    })?;

    ns.delete_session("nginx-debug")?;
    ns.assert_reverted("deployment", "nginx", &original)?;
    wait_pods_without_shell(ns, "app=nginx")
}

fn expiry(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.session("short", "30s")?;
    ns.wait_phase("short", "Active", TIMEOUT)?;
    ns.assert_applied("deployment", "nginx", "short")?;
    let v = ns.wait_phase("short", "Expired", TIMEOUT)?;
    let seen_expired = now_epoch();
    // The release happens before the status says Expired: the template must be back right now.
    ns.assert_reverted("deployment", "nginx", &original)?;
    let tpl = ns.template("deployment", "nginx")?;
    ensure(tpl.pointer("/spec/shareProcessNamespace").is_none(), || {
        "shareProcessNamespace still set".into()
    })?;
    let rev = condition(&v, "Reverted").cloned().unwrap_or(Value::Null);
    ensure(rev["status"] == "True", || {
        format!("after expiry: {}", cond_summary(&v, "Reverted"))
    })?;
    let expires = parse_time(s(&v, "/status/expiresAt"))?;
    let ended = parse_time(s(&v, "/status/endedAt"))?;
    let started = parse_time(s(&v, "/status/startedAt"))?;
    ensure((expires - started - 30.0).abs() < 1.5, || {
        format!("expiresAt - startedAt = {}s, want 30s", expires - started)
    })?;
    ensure(ended >= expires, || {
        format!("endedAt {ended} before expiresAt {expires}")
    })?;
    println!("FIGURE expires-to-ended-seconds={:.1}", ended - expires);
    // Status times have whole seconds; this one is an upper bound to ~0.25 s (the polling period).
    println!(
        "FIGURE expires-to-seen-expired-seconds={:.2}",
        seen_expired - expires
    );
    ensure(
        v["status"]["pods"].as_array().is_none_or(|a| a.is_empty()),
        || "status.pods not cleared".into(),
    )?;
    ns.wait_event("short", "Expired")?;
    ns.wait_event("short", "Reverted")?;
    wait_pods_without_shell(ns, "app=nginx")?;
    // Expired sessions stay (history) and never touch the workload again.
    ns.assert_reverted("deployment", "nginx", &original)?;
    ns.delete_session("short")
}

fn delete_reverts(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.session("del", "15m")?;
    ns.wait_phase("del", "Active", TIMEOUT)?;
    ns.assert_applied("deployment", "nginx", "del")?;
    ns.delete_session("del")?;
    ensure(get_opt(&ns.name, "debugsession", "del")?.is_none(), || {
        "session still exists".into()
    })?;
    ns.assert_reverted("deployment", "nginx", &original)?;
    // `kubectl describe deployment nginx` tells who changed it and that it is back.
    wait_for("events on the Deployment", TIMEOUT, || {
        let reasons: Vec<String> = events(&ns.name, "Deployment", "nginx")?
            .into_iter()
            .map(|e| e.1)
            .collect();
        if ["DebugShellAdded", "DebugShellRemoved"]
            .iter()
            .all(|r| reasons.iter().any(|x| x == r))
        {
            Ok(())
        } else {
            Err(format!("reasons on the Deployment: {reasons:?}"))
        }
    })?;
    wait_pods_without_shell(ns, "app=nginx")
}

fn user_edit_survives(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.session("edit", "30s")?;
    ns.wait_phase("edit", "Active", TIMEOUT)?;
    ns.k(&["set", "env", "deployment/nginx", "-c", "nginx", "FOO=bar"])?;
    ns.assert_applied("deployment", "nginx", "edit")?;
    ns.wait_phase("edit", "Expired", TIMEOUT)?;
    let w = ns.get("deployment", "nginx")?;
    let tpl = &w["spec"]["template"];
    ensure(!has_shell(tpl), || {
        "shell still in the template after expiry".into()
    })?;
    let app = containers(tpl)
        .into_iter()
        .find(|c| c["name"] == "nginx")
        .unwrap_or(Value::Null);
    ensure(
        app["env"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["name"] == "FOO" && e["value"] == "bar")),
        || {
            format!(
                "the user's FOO=bar did not survive the revert: env {}",
                app["env"]
            )
        },
    )?;
    // Everything but that env var is as before.
    let mut expected = original.clone();
    expected["spec"]["containers"][0]["env"] = json!([{"name": "FOO", "value": "bar"}]);
    template_diff(&expected, tpl)?;
    ensure(
        w.pointer("/metadata/annotations/debugsession.dev~1session")
            .is_none(),
        || "annotation left".into(),
    )
}

fn preexisting_share_pns(ns: &Ns, _: &Suite) -> R<()> {
    ns.fixture(
        DEPLOY,
        &[
            ("replicas: 2", "replicas: 1"),
            (
                "terminationGracePeriodSeconds: 2",
                "terminationGracePeriodSeconds: 2\n      shareProcessNamespace: true",
            ),
        ],
    )?;
    ns.rollout("deployment", "nginx")?;
    let original = ns.template("deployment", "nginx")?;
    ensure(original["spec"]["shareProcessNamespace"] == true, || {
        "fixture lacks shareProcessNamespace".into()
    })?;
    ns.session("pns", "15m")?;
    ns.wait_phase("pns", "Active", TIMEOUT)?;
    ns.assert_applied("deployment", "nginx", "pns")?;
    ns.delete_session("pns")?;
    ns.assert_reverted("deployment", "nginx", &original)?;
    let tpl = ns.template("deployment", "nginx")?;
    ensure(tpl["spec"]["shareProcessNamespace"] == true, || {
        "the owner's shareProcessNamespace: true was removed".into()
    })
}

fn second_session_waits(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.session("first", "15m")?;
    ns.wait_phase("first", "Active", TIMEOUT)?;
    ns.session("second", "15m")?;
    let v = ns.wait_session("second", "Pending with HeldByOtherSession", TIMEOUT, |v| {
        s(v, "/status/phase") == "Pending"
            && condition(v, "Ready").is_some_and(|c| c["reason"] == "HeldByOtherSession")
    })?;
    let msg = s(condition(&v, "Ready").unwrap(), "/message").to_string();
    ensure(msg.contains("first"), || {
        format!("HeldByOtherSession message does not name the holder: {msg:?}")
    })?;
    ensure(s(&v, "/status/message").contains("first"), || {
        format!("status.message: {}", summary(&v))
    })?;
    ns.wait_event("second", "HeldByOtherSession")?;
    // It keeps waiting while the first one runs.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let v = ns.dbgs("second")?;
        ensure(s(&v, "/status/phase") == "Pending", || {
            format!("second session left Pending while held: {}", summary(&v))
        })?;
        thread::sleep(POLL);
    }
    ns.assert_applied("deployment", "nginx", "first")?;
    ns.delete_session("first")?;
    ns.wait_phase("second", "Active", LONG)?;
    let w = ns.assert_applied("deployment", "nginx", "second")?;
    let m = managers(&w);
    ensure(!m.iter().any(|m| m.ends_with("/first")), || {
        format!("first session's manager still there: {m:?}")
    })?;
    ns.delete_session("second")?;
    ns.assert_reverted("deployment", "nginx", &original)
}

fn statefulset(ns: &Ns, _: &Suite) -> R<()> {
    ns.fixture(STS, &[])?;
    ns.rollout("statefulset", "web")?;
    let original = ns.template("statefulset", "web")?;
    let old_uid = s(&ns.get("pod", "web-0")?, "/metadata/uid").to_string();
    ns.session_from(SAMPLE_STS, &[])?;
    ns.wait_phase("web-debug", "Active", TIMEOUT)?;
    ns.assert_applied("statefulset", "web", "web-debug")?;
    let pod = ns.get("pod", "web-0")?;
    ensure(
        s(&pod, "/metadata/uid") != old_uid && has_shell(&pod),
        || "web-0 was not replaced by a pod with the shell".into(),
    )?;
    ns.delete_session("web-debug")?;
    ns.assert_reverted("statefulset", "web", &original)?;
    wait_pods_without_shell(ns, "app=web")
}

fn statefulset_ondelete(ns: &Ns, _: &Suite) -> R<()> {
    ns.fixture(STS, &[("type: RollingUpdate", "type: OnDelete")])?;
    wait_for("pod web-0 ready", TIMEOUT, || {
        let p = ns.get("pod", "web-0")?;
        let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        if ready {
            Ok(())
        } else {
            Err("not ready".into())
        }
    })?;
    let original = ns.template("statefulset", "web")?;
    ns.session_from(SAMPLE_STS, &[])?;
    let v = ns.wait_session(
        "web-debug",
        "Applying with WaitingForPodDeletion",
        TIMEOUT,
        |v| {
            s(v, "/status/phase") == "Applying"
                && condition(v, "Ready").is_some_and(|c| c["reason"] == "WaitingForPodDeletion")
        },
    )?;
    let msg = s(&v, "/status/message");
    ensure(
        msg.contains("web-0") && msg.contains("kubectl delete pod"),
        || format!("message does not name the pod to delete: {msg:?}"),
    )?;
    ns.wait_event("web-debug", "WaitingForPodDeletion")?;
    ns.assert_applied("statefulset", "web", "web-debug")?;
    ns.k(&["delete", "pod", "web-0", "--wait=false"])?;
    ns.wait_phase("web-debug", "Active", LONG)?;
    ensure(has_shell(&ns.get("pod", "web-0")?), || {
        "recreated web-0 lacks the shell".into()
    })?;
    ns.delete_session("web-debug")?;
    ns.assert_reverted("statefulset", "web", &original)
}

fn daemonset(ns: &Ns, _: &Suite) -> R<()> {
    ns.fixture(DS, &[])?;
    ns.rollout("daemonset", "agent")?;
    let original = ns.template("daemonset", "agent")?;
    let old = ns.all_pod_names("app=agent")?;
    ns.session_from(SAMPLE_DS, &[])?;
    let v = ns.wait_phase("agent-debug", "Active", TIMEOUT)?;
    ensure(s(&v, "/status/targetRef") == "DaemonSet/agent", || {
        format!("targetRef {}", v["status"]["targetRef"])
    })?;
    ns.assert_applied("daemonset", "agent", "agent-debug")?;
    wait_pods_with_shell(ns, "app=agent", old.len(), &old)?;
    ns.delete_session("agent-debug")?;
    ns.assert_reverted("daemonset", "agent", &original)?;
    wait_pods_without_shell(ns, "app=agent")
}

fn pod_security(ns: &Ns, _: &Suite) -> R<()> {
    ns.k(&[
        "label",
        "namespace",
        &ns.name,
        "pod-security.kubernetes.io/enforce=baseline",
    ])?;
    let _ = nginx(ns, 1)?;
    let before = ns.get("deployment", "nginx")?;
    ns.session("psa", "15m")?;
    let v = ns.wait_phase("psa", "Failed", TIMEOUT)?;
    let c = condition(&v, "Ready").cloned().unwrap_or(Value::Null);
    ensure(c["reason"] == "PodSecurityViolation", || {
        format!("Ready: {}", cond_summary(&v, "Ready"))
    })?;
    let msg = s(&v, "/status/message");
    ensure(
        msg.contains("baseline") && msg.contains("SYS_PTRACE"),
        || format!("message must name baseline and SYS_PTRACE: {msg:?}"),
    )?;
    ensure(v.pointer("/status/startedAt").is_none(), || {
        "startedAt set on a refused session".into()
    })?;
    let ev = ns.wait_event("psa", "PodSecurityViolation")?;
    ensure(ev.0 == "Warning", || {
        format!("PodSecurityViolation event is {}", ev.0)
    })?;
    let after = ns.get("deployment", "nginx")?;
    template_diff(&before["spec"]["template"], &after["spec"]["template"])?;
    ensure(
        before["metadata"]["generation"] == after["metadata"]["generation"],
        || "generation changed".into(),
    )?;
    ensure(
        before["metadata"]["annotations"] == after["metadata"]["annotations"],
        || format!("annotations changed: {}", after["metadata"]["annotations"]),
    )?;
    ensure(
        !managers(&after)
            .iter()
            .any(|m| m.starts_with("debugsession/")),
        || "a debugsession manager touched the workload".into(),
    )
}

fn bad_input(ns: &Ns, _: &Suite) -> R<()> {
    let _ = nginx(ns, 1)?;
    let before = ns.get("deployment", "nginx")?;
    enum Expect {
        Rejected(&'static str),
        Failed(&'static str),
    }
    let cases: [(&str, &str, &str, Expect); 6] = [
        (
            "unknown-target",
            "    name: nginx\n",
            "    name: does-not-exist\n",
            Expect::Failed("TargetNotFound"),
        ),
        (
            "ttl-too-long",
            "ttl: 15m",
            "ttl: 48h",
            Expect::Failed("TTLTooLong"),
        ),
        (
            "ttl-too-short",
            "ttl: 15m",
            "ttl: 10s",
            Expect::Failed("TTLTooShort"),
        ),
        (
            "empty-image",
            "ttl: 15m",
            "ttl: 15m\n  shell:\n    image: \"\"",
            Expect::Failed("EmptyImage"),
        ),
        (
            "malformed-ttl",
            "ttl: 15m",
            "ttl: ten",
            Expect::Rejected("spec.ttl"),
        ),
        (
            "wrong-kind",
            "kind: Deployment",
            "kind: ReplicaSet",
            Expect::Rejected("spec.target.kind"),
        ),
    ];
    let mut failures = Vec::new();
    let mut sessions = Vec::new();
    for (name, from, to, expect) in &cases {
        let session = format!("bad-{name}");
        let text = render(
            SAMPLE,
            &[
                ("name: nginx-debug", &format!("name: {session}")),
                (from, to),
            ],
        )?;
        let out = ns.apply_text(&text);
        match expect {
            Expect::Rejected(field) => {
                if out.ok {
                    failures.push(format!(
                        "{name}: kubectl apply accepted it: {}",
                        out.stdout.trim()
                    ));
                } else if !out.stderr.contains(field) {
                    failures.push(format!(
                        "{name}: rejection does not mention {field}: {}",
                        out.stderr.trim()
                    ));
                }
            }
            Expect::Failed(_) if !out.ok => failures.push(format!(
                "{name}: kubectl apply failed: {}",
                out.stderr.trim()
            )),
            Expect::Failed(reason) => sessions.push((name, session, *reason)),
        }
    }
    for (name, session, reason) in sessions {
        let check = || -> R<()> {
            let v = ns.wait_phase(&session, "Failed", TIMEOUT)?;
            let got = condition(&v, "Ready")
                .map(|c| s(c, "/reason").to_string())
                .unwrap_or_default();
            ensure(got == reason, || {
                format!("Ready reason {got:?}, want {reason}: {}", summary(&v))
            })?;
            ensure(!s(&v, "/status/message").is_empty(), || {
                "empty status.message".into()
            })?;
            let ev = ns.wait_event(&session, reason)?;
            ensure(ev.0 == "Warning" && !ev.2.is_empty(), || {
                format!("event {ev:?}")
            })
        };
        if let Err(e) = check() {
            failures.push(format!("{name}: {e}"));
        }
    }
    let after = ns.get("deployment", "nginx")?;
    if let Err(e) = template_diff(&before["spec"]["template"], &after["spec"]["template"]) {
        failures.push(format!("workload touched: {e}"));
    }
    if before["metadata"]["generation"] != after["metadata"]["generation"]
        || before["metadata"]["annotations"] != after["metadata"]["annotations"]
    {
        failures.push("workload generation/annotations changed".into());
    }
    ensure(failures.is_empty(), || failures.join(" | "))
}

fn drift(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.session("drift", "15m")?;
    ns.wait_phase("drift", "Active", TIMEOUT)?;
    let tpl = ns.template("deployment", "nginx")?;
    let idx = containers(&tpl)
        .iter()
        .position(|c| c["name"] == SHELL)
        .ok_or("no shell in template")?;
    let patch = format!(
        r#"[{{"op":"test","path":"/spec/template/spec/containers/{idx}/name","value":"{SHELL}"}},{{"op":"remove","path":"/spec/template/spec/containers/{idx}"}}]"#
    );
    ns.k(&["patch", "deployment", "nginx", "--type=json", "-p", &patch])?;
    // (no check that the shell is gone right after the patch: the operator may re-apply within ms)
    let ev = ns.wait_event("drift", "Drifted")?;
    ensure(ev.0 == "Warning" && ev.2.contains(SHELL), || {
        format!("Drifted event {ev:?}")
    })?;
    wait_for("the shell back in the template", TIMEOUT, || {
        if has_shell(&ns.template("deployment", "nginx")?) {
            Ok(())
        } else {
            Err("not yet".into())
        }
    })?;
    ns.wait_session("drift", "Active and Ready again", TIMEOUT, |v| {
        s(v, "/status/phase") == "Active"
            && condition(v, "Ready").is_some_and(|c| c["status"] == "True")
    })?;
    ns.assert_applied("deployment", "nginx", "drift")?;
    ns.delete_session("drift")?;
    ns.assert_reverted("deployment", "nginx", &original)
}

fn target_locked(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.fixture(
        DEPLOY,
        &[
            ("  name: nginx\n", "  name: other\n"),
            ("app: nginx", "app: other"),
            ("replicas: 2", "replicas: 1"),
        ],
    )?;
    let other_before = ns.get("deployment", "other")?;
    ns.session("lock", "15m")?;
    ns.wait_phase("lock", "Active", TIMEOUT)?;
    ns.k(&[
        "patch",
        "debugsession",
        "lock",
        "--type=merge",
        "-p",
        r#"{"spec":{"target":{"name":"other"}}}"#,
    ])?;
    let v = ns.wait_session(
        "lock",
        "TargetLocked=True reason TargetChangeRefused",
        TIMEOUT,
        |v| {
            condition(v, "TargetLocked")
                .is_some_and(|c| c["status"] == "True" && c["reason"] == "TargetChangeRefused")
        },
    )?;
    ensure(
        s(&v, "/status/target/name") == "nginx" && s(&v, "/status/targetRef") == "Deployment/nginx",
        || {
            format!(
                "status.target moved: {} {}",
                v["status"]["target"], v["status"]["targetRef"]
            )
        },
    )?;
    ns.wait_event("lock", "TargetChangeRefused")?;
    ns.assert_applied("deployment", "nginx", "lock")?;
    let other = ns.get("deployment", "other")?;
    template_diff(
        &other_before["spec"]["template"],
        &other["spec"]["template"],
    )?;
    ensure(
        other
            .pointer("/metadata/annotations/debugsession.dev~1session")
            .is_none(),
        || "other deployment got the annotation".into(),
    )?;
    ns.delete_session("lock")?;
    ns.assert_reverted("deployment", "nginx", &original)?;
    let other = ns.get("deployment", "other")?;
    template_diff(
        &other_before["spec"]["template"],
        &other["spec"]["template"],
    )
}

fn explain(_: &Ns, _: &Suite) -> R<()> {
    let out = wait_for("kubectl explain debugsession.spec", TIMEOUT, || {
        let out = kubectl(&["explain", "debugsession.spec"]);
        if out.ok && out.stdout.contains("ttl") {
            Ok(out.stdout)
        } else {
            Err(out.both())
        }
    })?;
    for f in ["target", "ttl", "shell", "DESCRIPTION"] {
        ensure(out.contains(f), || {
            format!("explain debugsession.spec lacks {f}: {out}")
        })?;
    }
    let ttl = k(&["explain", "debugsession.spec.ttl"])?;
    ensure(ttl.contains("How long the session lasts"), || {
        format!("spec.ttl has no description: {ttl}")
    })?;
    let kind = k(&["explain", "debugsession.spec.target.kind"])?;
    ensure(kind.contains("Kind of the workload"), || {
        format!("spec.target.kind has no description: {kind}")
    })
}

fn restart(ns: &Ns, suite: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.session("restart", "30s")?;
    let v = ns.wait_phase("restart", "Active", TIMEOUT)?;
    let expires = parse_time(s(&v, "/status/expiresAt"))?;
    {
        let mut op = suite.op.lock().map_err(|_| "operator lock poisoned")?;
        let pid = op.as_ref().and_then(Operator::pid);
        ns.say(&format!("SIGKILL operator pid {pid:?}"));
        if let Some(o) = op.as_mut() {
            o.kill();
        }
        *op = None;
    }
    let wait = expires + 5.0 - now_epoch();
    if wait > 0.0 {
        // Waiting for wall-clock time itself (the TTL passing while nobody runs), not for a condition.
        thread::sleep(Duration::from_secs_f64(wait));
    }
    let v = ns.dbgs("restart")?;
    ensure(s(&v, "/status/phase") == "Active", || {
        format!("phase changed while the operator was down: {}", summary(&v))
    })?;
    ensure(has_shell(&ns.template("deployment", "nginx")?), || {
        "shell gone while the operator was down".into()
    })?;
    let t0 = Instant::now();
    let op = Operator::start(&suite.log)?;
    *suite.op.lock().map_err(|_| "operator lock poisoned")? = Some(op);
    let v = ns.wait_phase("restart", "Expired", TIMEOUT)?;
    println!(
        "FIGURE restart-to-expired-seconds={:.1}",
        t0.elapsed().as_secs_f64()
    );
    ns.assert_reverted("deployment", "nginx", &original)?;
    ensure(
        condition(&v, "Reverted").is_some_and(|c| c["status"] == "True"),
        || cond_summary(&v, "Reverted"),
    )?;
    ns.delete_session("restart")
}

/// Two operators with leader election; the leader is SIGKILLed mid-session and the standby takes
/// over within the lease duration, then expires and reverts the session.
fn failover(ns: &Ns, suite: &Suite) -> R<()> {
    const LEASE: &str = "e2e-failover";
    let original = nginx(ns, 1)?;
    // The suite's operator would reconcile too: stop it for the duration.
    let mut shared = suite.op.lock().map_err(|_| "operator lock poisoned")?;
    if let Some(o) = shared.as_mut() {
        o.stop();
    }
    *shared = None;
    let flags = [
        "--leader-elect",
        "--lease-namespace",
        &ns.name,
        "--lease-name",
        LEASE,
        "--lease-duration",
        "6",
    ];
    let mut ops: Vec<(String, Operator)> = Vec::new();
    for id in ["replica-a", "replica-b"] {
        ops.push((
            id.to_string(),
            Operator::start_with(&suite.log, &flags, &[("POD_NAME", id)])?,
        ));
    }
    let holder = || -> R<String> {
        let v = get_json(&["lease", LEASE, "-n", &ns.name])?;
        let h = s(&v, "/spec/holderIdentity").to_string();
        if h.is_empty() {
            Err("no holder yet".into())
        } else {
            Ok(h)
        }
    };
    let leader = wait_for("a leader to hold the lease", TIMEOUT, holder)?;
    ns.say(&format!("leader: {leader}"));
    ns.session("failover", "30s")?;
    ns.wait_phase("failover", "Active", TIMEOUT)?;
    let idx = ops
        .iter()
        .position(|(id, _)| *id == leader)
        .ok_or_else(|| format!("unknown leader {leader}"))?;
    let (_, mut dead) = ops.remove(idx);
    let t0 = Instant::now();
    dead.kill();
    let standby = ops[0].0.clone();
    wait_for(
        "the standby to take the lease",
        Duration::from_secs(60),
        || {
            let h = holder()?;
            if h == standby {
                Ok(())
            } else {
                Err(format!("holder still {h}"))
            }
        },
    )?;
    println!(
        "FIGURE failover-takeover-seconds={:.1}",
        t0.elapsed().as_secs_f64()
    );
    ns.wait_phase("failover", "Expired", TIMEOUT)?;
    ns.assert_reverted("deployment", "nginx", &original)?;
    for (_, mut o) in ops {
        o.stop();
    }
    *shared = Some(Operator::start(&suite.log)?);
    drop(shared);
    ns.delete_session("failover")
}

// ---------------------------------------------------------------- runner

fn run_one(name: &str, f: Scenario, suite: &Suite) -> R<()> {
    let ns = Ns::create(name, suite.verbose)?;
    let res = f(&ns, suite);
    ns.cleanup(res.is_err());
    res
}

fn main() {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .or_else(|| std::env::var("E2E_FILTER").ok())
        .unwrap_or_default();
    let parallel: Vec<(&str, Scenario)> = vec![
        ("happy-path", happy_path),
        ("expiry", expiry),
        ("delete-reverts", delete_reverts),
        ("user-edit-survives", user_edit_survives),
        ("preexisting-share-pns", preexisting_share_pns),
        ("second-session-waits", second_session_waits),
        ("statefulset", statefulset),
        ("statefulset-ondelete", statefulset_ondelete),
        ("daemonset", daemonset),
        ("pod-security", pod_security),
        ("bad-input", bad_input),
        ("drift", drift),
        ("target-locked", target_locked),
        ("explain", explain),
    ];
    let alone: Vec<(&str, Scenario)> = vec![("restart", restart), ("failover", failover)];
    let selected = |v: Vec<(&'static str, Scenario)>| -> Vec<(&'static str, Scenario)> {
        v.into_iter()
            .filter(|(n, _)| n.contains(filter.as_str()))
            .collect()
    };
    let (parallel, mut alone) = (selected(parallel), selected(alone));
    // E2E_EXTERNAL_OPERATOR=1: an operator already runs (e.g. installed by the Helm chart); the
    // scenarios that stop and start the operator process are left out.
    let external = std::env::var("E2E_EXTERNAL_OPERATOR").is_ok_and(|v| v == "1");
    if external {
        for (name, _) in &alone {
            println!(
                "SKIP {name}: needs to control the operator process (E2E_EXTERNAL_OPERATOR=1)"
            );
        }
        alone.clear();
    }
    if parallel.is_empty() && alone.is_empty() {
        eprintln!("no scenario matches {filter:?}");
        std::process::exit(2);
    }

    let started = Instant::now();
    let setup = || -> R<Suite> {
        wait_cluster_up(Duration::from_secs(300))?;
        install_crd()?;
        let stamp = now_epoch() as u64;
        let log = root().join(format!("target/e2e-logs/operator-{stamp}.log"));
        if external {
            println!("using the operator already running in the cluster");
            return Ok(Suite {
                op: Mutex::new(None),
                log,
                verbose: std::env::var("E2E_VERBOSE").is_ok_and(|v| v == "1"),
            });
        }
        let mut op = Operator::start(&log)?;
        println!(
            "operator pid {:?}, log {}, metrics {}",
            op.pid(),
            log.display(),
            op.metrics_addr
        );
        // /readyz is checked as a scenario of its own so that a readiness bug does not hide the rest.
        let t = Instant::now();
        let ready = op.wait_http("/readyz", Duration::from_secs(30));
        match &ready {
            Ok(()) => println!("OK operator-readyz ({:.1}s)", t.elapsed().as_secs_f64()),
            Err(e) => println!("FAIL operator-readyz: {e}"),
        }
        *READY.lock().unwrap() = Some(ready);
        Ok(Suite {
            op: Mutex::new(Some(op)),
            log,
            verbose: std::env::var("E2E_VERBOSE").is_ok_and(|v| v == "1"),
        })
    };
    let suite = match setup() {
        Ok(s) => s,
        Err(e) => {
            println!("FAIL setup: {e}");
            std::process::exit(1);
        }
    };

    let results: Mutex<Vec<(String, R<()>, f64)>> = Mutex::new(Vec::new());
    if let Some(r) = READY.lock().unwrap().take() {
        results
            .lock()
            .unwrap()
            .push(("operator-readyz".into(), r, 0.0));
    }
    let record = |name: &str, res: R<()>, secs: f64| {
        match &res {
            Ok(()) => println!("OK {name} ({secs:.1}s)"),
            Err(e) => println!("FAIL {name}: {e}"),
        }
        results.lock().unwrap().push((name.to_string(), res, secs));
    };
    let workers: usize = std::env::var("E2E_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let mut parallel = parallel;
    parallel.reverse();
    let queue = Mutex::new(parallel);
    thread::scope(|sc| {
        for _ in 0..workers.max(1) {
            sc.spawn(|| {
                loop {
                    let Some((name, f)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let t = Instant::now();
                    let res = run_one(name, f, &suite);
                    record(name, res, t.elapsed().as_secs_f64());
                }
            });
        }
    });
    for (name, f) in alone {
        let t = Instant::now();
        let res = run_one(name, f, &suite);
        record(name, res, t.elapsed().as_secs_f64());
    }
    if let Some(mut op) = suite.op.lock().unwrap().take() {
        op.stop();
    }
    let results = results.into_inner().unwrap();
    let failed: Vec<&String> = results
        .iter()
        .filter(|r| r.1.is_err())
        .map(|r| &r.0)
        .collect();
    println!(
        "\nsummary: {} passed, {} failed in {:.0}s{}; operator log {}",
        results.len() - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(
                " (failed: {})",
                failed
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        suite.log.display()
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
