//! A scenario's namespace and the helpers that work in it: workloads, sessions, waits, and the
//! checks that a workload carries a session's shell or is back as it was.

use std::time::Duration;

use debugsession_e2e::*;

pub const SAMPLE: &str = "config/samples/debugsession_v1alpha1_debugsession.yaml";
pub const SAMPLE_STS: &str = "config/samples/debugsession_v1alpha1_debugsession_statefulset.yaml";
pub const SAMPLE_DS: &str = "config/samples/debugsession_v1alpha1_debugsession_daemonset.yaml";
pub const DEPLOY: &str = "e2e/fixtures/nginx-deployment.yaml";
pub const STS: &str = "e2e/fixtures/nginx-statefulset.yaml";
pub const DS: &str = "e2e/fixtures/nginx-daemonset.yaml";
/// For kubectl's own waits (`--timeout=110s`) and slow phases.
pub const LONG: Duration = Duration::from_secs(120);

/// One line on a session, for messages.
pub fn summary(v: &Value) -> String {
    format!(
        "phase={:?} message={:?} {} readyPods={:?}",
        s(v, "/status/phase"),
        s(v, "/status/message"),
        cond_summary(v, "Ready"),
        s(v, "/status/readyPods")
    )
}

/// A scenario's namespace.
pub struct Ns {
    pub name: String,
    scenario: String,
    verbose: bool,
}

impl Ns {
    pub fn create(scenario: &str, verbose: bool) -> R<Ns> {
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

    /// Prints a step with E2E_VERBOSE=1.
    pub fn say(&self, msg: &str) {
        if self.verbose {
            println!("  [{}] {msg}", self.scenario);
        }
    }

    /// [`k`] in this namespace.
    pub fn k(&self, args: &[&str]) -> R<String> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        k(&a)
    }

    pub fn apply_text(&self, text: &str) -> Out {
        kubectl_in(text, &["apply", "-n", &self.name, "-f", "-"])
    }

    /// Applies a workload fixture (images swapped for those of images.env).
    pub fn fixture(&self, file: &str, edits: &[(&str, &str)]) -> R<()> {
        let text = render_fixture(file, edits)?;
        k_in(&text, &["apply", "-n", &self.name, "-f", "-"])?;
        Ok(())
    }

    /// Waits for the rollout of `kind/name` to finish.
    pub fn rollout(&self, kind: &str, name: &str) -> R<()> {
        let target = format!("{kind}/{name}");
        let out = kubectl_for(
            LONG,
            &[
                "rollout",
                "status",
                "-n",
                &self.name,
                &target,
                "--timeout=110s",
            ],
        );
        ensure(out.ok, || {
            format!("rollout of {kind}/{name} did not finish: {}", out.both())
        })
    }

    /// Applies a sample session with edits; the apply must succeed.
    pub fn session_from(&self, file: &str, edits: &[(&str, &str)]) -> R<()> {
        let text = render(file, edits)?;
        let out = self.apply_text(&text);
        ensure(out.ok, || {
            format!("kubectl apply of {file} failed: {}", out.both())
        })
    }

    /// Applies the README sample as session `name` with `ttl`, targeting Deployment nginx.
    pub fn session(&self, name: &str, ttl: &str) -> R<()> {
        self.say(&format!("apply session {name} ttl {ttl}"));
        self.session_from(
            SAMPLE,
            &[
                ("name: nginx-debug", &format!("name: {name}")),
                ("ttl: 15m", &format!("ttl: {ttl}")),
            ],
        )
    }

    pub fn get(&self, resource: &str, name: &str) -> R<Value> {
        get_opt(&self.name, resource, name)?
            .ok_or_else(|| format!("{resource}/{name} not found in {}", self.name))
    }

    pub fn dbgs(&self, name: &str) -> R<Value> {
        self.get("debugsession", name)
    }

    pub fn template(&self, kind: &str, name: &str) -> R<Value> {
        Ok(self.get(kind, name)?["spec"]["template"].clone())
    }

    /// Waits until the session satisfies `pred`; fails with its last status.
    pub fn wait_session(
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

    pub fn wait_phase(&self, name: &str, phase: &str, timeout: Duration) -> R<Value> {
        self.wait_session(name, &format!("phase {phase}"), timeout, |v| {
            s(v, "/status/phase") == phase
        })
    }

    /// Waits for an event with `reason` on the session.
    pub fn wait_event(&self, name: &str, reason: &str) -> R<Ev> {
        wait_for(
            &format!("an event with reason {reason} on DebugSession {name}"),
            TIMEOUT,
            || {
                let evs = events(&self.name, "DebugSession", name)?;
                evs.iter().find(|e| e.1 == reason).cloned().ok_or_else(|| {
                    format!("events: {:?}", evs.iter().map(|e| &e.1).collect::<Vec<_>>())
                })
            },
        )
    }

    /// Every pod matching a label selector, terminating ones included.
    pub fn all_pods(&self, selector: &str) -> R<Vec<Value>> {
        let v = get_json(&["pods", "-n", &self.name, "-l", selector])?;
        Ok(v["items"].as_array().cloned().unwrap_or_default())
    }

    pub fn all_pod_names(&self, selector: &str) -> R<Vec<String>> {
        Ok(self.all_pods(selector)?.iter().map(pod_name).collect())
    }

    /// Deletes the session and waits until it is gone (the finalizer ran).
    pub fn delete_session(&self, name: &str) -> R<()> {
        self.say(&format!("delete session {name}"));
        let out = kubectl_for(
            LONG,
            &[
                "delete",
                "-n",
                &self.name,
                "debugsession",
                name,
                "--timeout=110s",
            ],
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
    pub fn assert_reverted(&self, kind: &str, name: &str, original: &Value) -> R<()> {
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
    pub fn assert_applied(&self, kind: &str, name: &str, session: &str) -> R<Value> {
        let w = self.get(kind, name)?;
        let tpl = &w["spec"]["template"];
        let shell = shell_of(tpl).cloned().ok_or_else(|| {
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
}

/// `metadata.name` of an object.
pub fn pod_name(p: &Value) -> String {
    s(p, "/metadata/name").to_string()
}
