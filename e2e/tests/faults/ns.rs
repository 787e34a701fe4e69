//! A row's namespace and what happens in it: the workload, sessions, waits with a useful message,
//! events, and the checks that a workload carries a session's shell or is back as it was.

use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use debugsession_e2e::*;

use crate::{HOLDER, HOLDER_PTR, LONG};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// `<prefix>-<5 digits>`, unique within the run.
pub fn unique(prefix: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::SeqCst) % 100;
    let base = (now_epoch() as u64) % 1000;
    format!("{prefix}-{base:03}{n:02}")
}

pub fn summary(v: &Value) -> String {
    format!(
        "phase={:?} message={:?} {} {}",
        s(v, "/status/phase"),
        s(v, "/status/message"),
        cond_summary(v, "Ready"),
        cond_summary(v, "Reverted"),
    )
}

pub fn ready_reason(v: &Value) -> String {
    condition(v, "Ready")
        .map(|c| s(c, "/reason").to_string())
        .unwrap_or_default()
}

/// The `debugsession/` field managers of an object.
pub fn our_managers(obj: &Value) -> Vec<String> {
    managers(obj)
        .into_iter()
        .filter(|m| m.starts_with("debugsession/"))
        .collect()
}

/// How often [`poll`] tries.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// [`wait_for`] trying every 500ms instead of 250ms (several rows poll at once on a 2-core
/// machine; `idle::wait_quiet`'s 3 s window counts on it). A failed try sleeps the extra 250ms
/// before wait_for checks the deadline, so wait_for is given a deadline 250ms later: the tries and
/// the deadline are those of a plain 500ms loop, and the message still names `timeout`.
pub fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> R<T>) -> R<T> {
    let extra = POLL_EVERY - POLL;
    wait_for(what, timeout + extra, || {
        f().inspect_err(|_| thread::sleep(extra))
    })
}

/// Waits for wall-clock time itself (a TTL running out), not for a condition.
pub fn sleep_until_epoch(t: f64) {
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

pub struct Ns {
    pub name: String,
    row: String,
    verbose: bool,
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

    pub fn k(&self, args: &[&str]) -> R<String> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        k(&a)
    }

    /// Applies a workload fixture (one replica, images of images.env) without waiting.
    pub fn apply_fixture(&self, file: &str) -> R<()> {
        let text = render_fixture(file, &[])?.replace("replicas: 2", "replicas: 1");
        k_in(&text, &["apply", "-n", &self.name, "-f", "-"]).map(|_| ())
    }

    pub fn rollout(&self, deploy: &str) -> R<()> {
        let out = kubectl_for(
            LONG,
            &[
                "rollout",
                "status",
                "-n",
                &self.name,
                &format!("deployment/{deploy}"),
                "--timeout=110s",
            ],
        );
        ensure(out.ok, || {
            format!(
                "rollout of deployment/{deploy} did not finish: {}",
                out.both()
            )
        })
    }

    pub fn get(&self, resource: &str, name: &str) -> R<Value> {
        get_opt(&self.name, resource, name)?
            .ok_or_else(|| format!("{resource}/{name} not found in {}", self.name))
    }

    pub fn deployment(&self, name: &str) -> R<Value> {
        self.get("deployment", name)
    }

    pub fn template(&self, deploy: &str) -> R<Value> {
        Ok(self.deployment(deploy)?["spec"]["template"].clone())
    }

    pub fn dbgs(&self, name: &str) -> R<Value> {
        self.get("debugsession", name)
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

    pub fn wait_session(
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

    pub fn wait_phase(&self, name: &str, phase: &str, timeout: Duration) -> R<Value> {
        self.wait_session(name, &format!("phase {phase}"), timeout, |v| {
            s(v, "/status/phase") == phase
        })
    }

    pub fn wait_active(&self, name: &str, timeout: Duration) -> R<Value> {
        self.wait_session(name, "Active and Ready=True", timeout, |v| {
            s(v, "/status/phase") == "Active"
                && condition(v, "Ready").is_some_and(|c| c["status"] == "True")
        })
    }

    pub fn wait_gone(&self, name: &str, timeout: Duration) -> R<()> {
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

    pub fn wait_event(&self, name: &str, reason: &str, timeout: Duration) -> R<()> {
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

    /// Takes the namespace away (kept with E2E_KEEP=1 when the row failed).
    pub fn cleanup(&self, failed: bool) {
        remove_namespace(&self.name, failed);
    }
}

pub fn check_expired(v: &Value) -> R<()> {
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
