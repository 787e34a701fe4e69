//! A row's namespace and what happens in it: the workload, sessions, waits with a useful message,
//! events, and the checks that a workload carries a session's shell or is back as it was.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use debugsession_e2e::*;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// `<prefix>-<5 digits>`, unique within the run.
pub fn unique(prefix: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::SeqCst) % 100;
    let base = (now_epoch() as u64) % 1000;
    format!("{prefix}-{base:03}{n:02}")
}

/// How the suite's waits try: every 500ms, not 250ms (several rows poll at once on a 2-core
/// machine; `idle::wait_quiet`'s 3 s window counts on it).
pub const SLOW: Poller = Poller::every(Duration::from_millis(500));

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

pub struct Ns {
    pub name: String,
    row: String,
    verbose: bool,
}

impl InNamespace for Ns {
    fn namespace(&self) -> &str {
        &self.name
    }

    fn poller(&self) -> Poller {
        SLOW
    }

    fn say(&self, msg: &str) {
        say(self.verbose, &self.row, msg);
    }
}

impl Ns {
    pub fn new(name: String, row: &str, verbose: bool) -> Ns {
        Ns {
            name,
            row: row.to_string(),
            verbose,
        }
    }

    pub fn init(&self) -> R<()> {
        create_namespace(&self.name, SLOW)
    }

    /// Applies a workload fixture (one replica, images of images.env) without waiting.
    pub fn apply_fixture(&self, file: &str) -> R<()> {
        let text = render_fixture(file, &[])?.replace("replicas: 2", "replicas: 1");
        k_in(&text, &["apply", "-n", &self.name, "-f", "-"]).map(|_| ())
    }

    pub fn rollout(&self, deploy: &str) -> R<()> {
        rollout(&self.name, &format!("deployment/{deploy}"))
    }

    pub fn deployment(&self, name: &str) -> R<Value> {
        self.get("deployment", name)
    }

    pub fn template(&self, deploy: &str) -> R<Value> {
        Ok(self.deployment(deploy)?["spec"]["template"].clone())
    }

    pub fn create_session(
        &self,
        name: &str,
        target: &str,
        ttl: &str,
        shell: Option<&Value>,
    ) -> Out {
        self.say(&format!("create session {name} ttl {ttl}"));
        let doc = session_doc(&self.name, name, target, ttl, shell);
        kubectl_in(&doc, &["create", "-f", "-"])
    }

    pub fn session(&self, name: &str, target: &str, ttl: &str) -> R<()> {
        let out = self.create_session(name, target, ttl, None);
        ensure(out.ok, || {
            format!("creating DebugSession {name}: {}", out.both().trim())
        })
    }

    /// Deletes the session and waits until the finalizer ran and it is gone.
    pub fn delete_session(&self, name: &str) -> R<()> {
        self.say(&format!("delete session {name}"));
        self.k(&["delete", "debugsession", name, "--wait=false"])?;
        self.wait_gone(name, TIMEOUT)
    }

    /// The shell of `session` is in the workload, under its annotation and field manager.
    pub fn assert_applied(&self, deploy: &str, session: &str) -> R<Value> {
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
    pub fn assert_reverted(
        &self,
        deploy: &str,
        original: &Value,
        kept: &[(String, String)],
    ) -> R<()> {
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
    pub fn event_count(&self, name: &str, pred: impl Fn(&Value) -> bool) -> R<u64> {
        Ok(event_objects(&self.name, "DebugSession", name)?
            .iter()
            .filter(|e| pred(e))
            .map(event_total)
            .sum())
    }

    /// Takes the namespace away (kept with E2E_KEEP=1 when the row failed).
    pub fn cleanup(&self, failed: bool) {
        remove_namespace(&self.name, failed);
    }
}

pub fn check_expired(v: &Value) -> R<()> {
    ensure(
        phase_is(v, "Expired")
            && ready_reason(v) == "Expired"
            && cond_is(v, "Reverted", "True", None),
        || {
            format!(
                "want phase Expired, Ready reason Expired, Reverted=True: {}",
                summary(v)
            )
        },
    )
}
