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

/// A scenario's namespace.
pub struct Ns {
    pub name: String,
    scenario: String,
    verbose: bool,
}

impl InNamespace for Ns {
    fn namespace(&self) -> &str {
        &self.name
    }

    fn poller(&self) -> Poller {
        WAIT
    }

    fn say(&self, msg: &str) {
        say(self.verbose, &self.scenario, msg);
    }
}

impl Ns {
    pub fn create(scenario: &str, verbose: bool) -> R<Ns> {
        let suffix = (now_epoch() * 1000.0) as u64 % 100_000;
        let name = format!("e2e-{scenario}-{suffix}");
        create_namespace(&name, WAIT)?;
        Ok(Ns {
            name,
            scenario: scenario.to_string(),
            verbose,
        })
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
        rollout(&self.name, &format!("{kind}/{name}"))
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

    /// `kubectl apply` of DebugSession `name` with `spec` (JSON), whatever comes of it.
    pub fn apply_session(&self, name: &str, spec: Value) -> Out {
        self.say(&format!("apply session {name}: {spec}"));
        let obj = json!({
            "apiVersion": "debugsession.dev/v1alpha1",
            "kind": "DebugSession",
            "metadata": {"name": name},
            "spec": spec,
        });
        self.apply_text(&obj.to_string())
    }

    /// Applies DebugSession `name` with `spec` (JSON); the apply must succeed.
    pub fn session_spec(&self, name: &str, spec: Value) -> R<()> {
        let out = self.apply_session(name, spec);
        ensure(out.ok, || {
            format!(
                "kubectl apply of DebugSession {name} failed: {}",
                out.both()
            )
        })
    }

    /// A session that must not start. Either `kubectl apply` refuses it (the admission webhook,
    /// when it runs, makes the checks that need no cluster state) with a message holding every
    /// one of `words`; or the controller fails it with Ready reason `reason`, such a message, no
    /// start time, and a Warning event of that reason.
    pub fn expect_refused(&self, name: &str, spec: Value, reason: &str, words: &[&str]) -> R<()> {
        let out = self.apply_session(name, spec);
        let names = |m: &str| words.iter().all(|w| m.contains(w));
        if !out.ok {
            let m = out.stderr.trim();
            return ensure(names(m), || {
                format!("kubectl apply refused {name} without naming {words:?}: {m}")
            });
        }
        let v = self.wait_failed(name, reason, TIMEOUT)?;
        let m = s(&v, "/status/message");
        ensure(names(m), || {
            format!("status.message of {name} does not name {words:?}: {m:?}")
        })?;
        ensure(v.pointer("/status/startedAt").is_none(), || {
            format!("{name} has a startedAt: {}", summary(&v))
        })?;
        let ev = self.wait_event(name, reason, TIMEOUT)?;
        ensure(ev.0 == "Warning", || {
            format!("{reason} event of {name} is {}: {}", ev.0, ev.2)
        })
    }

    /// Waits until session `name` (whose status `v` has an expiresAt) is Expired: at most
    /// [`TIMEOUT`] after its expiresAt.
    pub fn wait_expired(&self, name: &str, v: &Value) -> R<Value> {
        let expires = parse_time(s(v, "/status/expiresAt"))?;
        let left = Duration::from_secs_f64((expires - now_epoch()).max(0.0));
        self.wait_phase(name, "Expired", left + TIMEOUT)
    }

    /// Waits until pod `name` is gone (deleted, not merely terminating).
    pub fn wait_pod_gone(&self, name: &str) -> R<()> {
        wait_for(
            &format!("pod {name} to be gone"),
            TIMEOUT,
            || match get_opt(&self.name, "pod", name)? {
                None => Ok(()),
                Some(p) => Err(format!(
                    "still there (deletionTimestamp {})",
                    p["metadata"]["deletionTimestamp"]
                )),
            },
        )
    }

    pub fn template(&self, kind: &str, name: &str) -> R<Value> {
        Ok(self.get(kind, name)?["spec"]["template"].clone())
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
        self.wait_gone(name, TIMEOUT)
    }

    /// Checks that the workload is back to `original` (template), without our annotation or manager.
    pub fn assert_reverted(&self, kind: &str, name: &str, original: &Value) -> R<()> {
        let w = self.get(kind, name)?;
        template_diff(original, &w["spec"]["template"])?;
        let ann = w.pointer(HOLDER_PTR);
        ensure(ann.is_none(), || {
            format!(
                "{kind}/{name} still has annotation {HOLDER}={}",
                ann.unwrap()
            )
        })?;
        let ours = our_managers(&w);
        ensure(ours.is_empty(), || {
            format!("{kind}/{name} still has debugsession field managers: {ours:?}")
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
        let ann = s(&w, HOLDER_PTR);
        ensure(ann == session, || {
            format!("annotation {HOLDER} = {ann:?}, want {session:?}")
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
