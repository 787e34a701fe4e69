//! A DebugSession as the suites see it: the object, one line on its status for failure messages,
//! tests of its phase and conditions, and the waits for a state, for its deletion and for its
//! events. The waits are methods of [`Poller`], which says how often they try
//! ([`WAIT`](crate::WAIT): every 250ms); [`InNamespace`] gives them to a suite's namespace type.

use std::time::Duration;

use crate::{
    Ev, Poller, R, Value, cond_summary, condition, ensure, events, get_obj, get_opt, k_ns, s,
};

/// DebugSession `ns/name`; an error when it does not exist.
pub fn get_session(ns: &str, name: &str) -> R<Value> {
    get_obj(ns, "debugsession", name)
}

/// One line on a session, for failure messages: phase and message, the generation and the one
/// whose shell runs, the ready pods (those three when set), then the conditions, Ready first
/// (also when absent).
pub fn summary(v: &Value) -> String {
    let mut line = format!(
        "phase={:?} message={:?}",
        s(v, "/status/phase"),
        s(v, "/status/message")
    );
    for (label, pointer) in [
        ("generation", "/metadata/generation"),
        ("shellGeneration", "/status/shellGeneration"),
        ("readyPods", "/status/readyPods"),
    ] {
        if let Some(x) = v.pointer(pointer) {
            line.push_str(&format!(" {label}={x}"));
        }
    }
    line.push(' ');
    line.push_str(&cond_summary(v, "Ready"));
    let conditions = v.pointer("/status/conditions").and_then(Value::as_array);
    for c in conditions.into_iter().flatten() {
        let type_ = s(c, "/type");
        if type_ != "Ready" {
            line.push(' ');
            line.push_str(&cond_summary(v, type_));
        }
    }
    line
}

/// Whether the session's `status.phase` is `phase`.
pub fn phase_is(v: &Value, phase: &str) -> bool {
    s(v, "/status/phase") == phase
}

/// Whether condition `type_` has `status` (and, when given, `reason`).
pub fn cond_is(v: &Value, type_: &str, status: &str, reason: Option<&str>) -> bool {
    condition(v, type_)
        .is_some_and(|c| s(c, "/status") == status && reason.is_none_or(|r| s(c, "/reason") == r))
}

/// The reason of the Ready condition ("" when there is none).
pub fn ready_reason(v: &Value) -> &str {
    condition(v, "Ready").map_or("", |c| s(c, "/reason"))
}

impl Poller {
    /// Waits until DebugSession `ns/name` satisfies `pred` and returns it; fails with its last
    /// [`summary`].
    pub fn session(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> R<Value> {
        self.until(
            &format!("DebugSession {ns}/{name}: {what}"),
            timeout,
            || {
                let v = get_session(ns, name)?;
                if pred(&v) { Ok(v) } else { Err(summary(&v)) }
            },
        )
    }

    /// Waits until DebugSession `ns/name` is gone (its finalizer ran).
    pub fn gone(&self, ns: &str, name: &str, timeout: Duration) -> R<()> {
        self.until(
            &format!("DebugSession {ns}/{name} to be gone"),
            timeout,
            || match get_opt(ns, "debugsession", name)? {
                None => Ok(()),
                Some(v) => Err(format!(
                    "still there, finalizers {}, {}",
                    v["metadata"]["finalizers"],
                    summary(&v)
                )),
            },
        )
    }

    /// Waits for an event with `reason` on `kind` `ns/name` whose message holds every one of
    /// `words`, and returns it.
    pub fn event(
        &self,
        ns: &str,
        kind: &str,
        name: &str,
        reason: &str,
        words: &[&str],
        timeout: Duration,
    ) -> R<Ev> {
        let mentioning = if words.is_empty() {
            String::new()
        } else {
            format!(" mentioning {words:?}")
        };
        self.until(
            &format!("an event {reason} on {kind} {ns}/{name}{mentioning}"),
            timeout,
            || {
                let evs = events(ns, kind, name)?;
                evs.iter()
                    .find(|(_, r, m)| r == reason && words.iter().all(|w| m.contains(w)))
                    .cloned()
                    .ok_or_else(|| {
                        let seen: Vec<String> =
                            evs.iter().map(|(_, r, m)| format!("{r}: {m}")).collect();
                        format!("events so far: {seen:?}")
                    })
            },
        )
    }
}

/// A namespace a suite works in, and its DebugSessions: the suite's own namespace type names the
/// namespace, how its waits try and how it says a step; the reads and the waits come with those.
pub trait InNamespace {
    /// The namespace's name.
    fn namespace(&self) -> &str;

    /// How the suite's waits try.
    fn poller(&self) -> Poller;

    /// Says a step (printed with E2E_VERBOSE=1).
    fn say(&self, msg: &str);

    /// [`k`](crate::k) in this namespace.
    fn k(&self, args: &[&str]) -> R<String> {
        k_ns(self.namespace(), args)
    }

    fn get(&self, resource: &str, name: &str) -> R<Value> {
        get_obj(self.namespace(), resource, name)
    }

    fn dbgs(&self, name: &str) -> R<Value> {
        get_session(self.namespace(), name)
    }

    /// Waits until session `name` satisfies `pred` ([`Poller::session`]).
    fn wait_session(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> R<Value> {
        self.say(&format!("wait for {name}: {what}"));
        self.poller()
            .session(self.namespace(), name, what, timeout, pred)
    }

    fn wait_phase(&self, name: &str, phase: &str, timeout: Duration) -> R<Value> {
        self.wait_session(name, &format!("phase {phase}"), timeout, |v| {
            phase_is(v, phase)
        })
    }

    fn wait_active(&self, name: &str, timeout: Duration) -> R<Value> {
        self.wait_session(name, "Active and Ready=True", timeout, |v| {
            phase_is(v, "Active") && cond_is(v, "Ready", "True", None)
        })
    }

    /// Waits until session `name` is Failed, and checks that its Ready reason is `reason`.
    fn wait_failed(&self, name: &str, reason: &str, timeout: Duration) -> R<Value> {
        let v = self.wait_phase(name, "Failed", timeout)?;
        let got = ready_reason(&v);
        ensure(got == reason, || {
            format!("Ready reason {got:?}, want {reason}: {}", summary(&v))
        })?;
        Ok(v)
    }

    fn wait_gone(&self, name: &str, timeout: Duration) -> R<()> {
        self.poller().gone(self.namespace(), name, timeout)
    }

    /// Waits for an event with `reason` on session `name`.
    fn wait_event(&self, name: &str, reason: &str, timeout: Duration) -> R<Ev> {
        self.poller()
            .event(self.namespace(), "DebugSession", name, reason, &[], timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn summary_names_phase_generations_and_every_condition() {
        let v = json!({
            "metadata": {"generation": 3},
            "status": {
                "phase": "Active",
                "message": "ok",
                "shellGeneration": 2,
                "conditions": [
                    {"type": "Reverted", "status": "False", "reason": "Applied"},
                    {"type": "Ready", "status": "True", "reason": "Active", "message": "m"},
                ],
            },
        });
        assert_eq!(
            summary(&v),
            "phase=\"Active\" message=\"ok\" generation=3 shellGeneration=2 \
             Ready=True reason=Active message=\"m\" Reverted=False reason=Applied message=\"\""
        );
        assert_eq!(summary(&json!({})), "phase=\"\" message=\"\" Ready absent");
        assert!(phase_is(&v, "Active"));
        assert_eq!(ready_reason(&v), "Active");
        assert!(cond_is(&v, "Reverted", "False", Some("Applied")));
        assert!(!cond_is(&v, "Reverted", "True", None));
    }
}
