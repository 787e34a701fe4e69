//! What this process last wrote to each session's status, and when.
//!
//! - **Read your own writes.** A reconcile's own change to the workload wakes the session again
//!   before the watch has brought back the status that reconcile wrote; the next reconcile would
//!   then plan from the status before it (start again, expire again). A session handed to
//!   reconcile in the very version a status write replaced is swapped for the object that write
//!   returned.
//! - **Progress waits.** When the status was last written, for [`super::plan::coalesce`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::plan::coalesce::PROGRESS_EVERY;
use crate::api::DebugSession;

/// How long a written object is kept for a reconcile that the watch has not caught up with.
const KEEP_WRITTEN: Duration = Duration::from_secs(30);

struct Written {
    at: Instant,
    /// The resourceVersion the write replaced, and the object it returned.
    replaced: Option<(String, Arc<DebugSession>)>,
}

#[derive(Default)]
pub struct StatusWrites(Mutex<HashMap<ObjectRef<DebugSession>, Written>>);

impl StatusWrites {
    /// Notes that a status write turned `before` into `after` (as the API server returned it).
    pub fn written(&self, before: &DebugSession, mut after: DebugSession) {
        after.managed_fields_mut().clear();
        let replaced = before.resource_version().map(|rv| (rv, Arc::new(after)));
        if let Ok(mut m) = self.0.lock() {
            if m.len() > 1024 {
                m.retain(|_, w| {
                    if w.at.elapsed() > KEEP_WRITTEN {
                        w.replaced = None;
                    }
                    w.replaced.is_some() || w.at.elapsed() < PROGRESS_EVERY
                });
            }
            let at = Instant::now();
            m.insert(ObjectRef::from_obj(before), Written { at, replaced });
        }
    }

    /// The session to reconcile: `session`, unless it is the version that the last status write
    /// replaced and the watch has not brought the new one yet.
    pub fn freshest(&self, session: Arc<DebugSession>) -> Arc<DebugSession> {
        let Ok(mut m) = self.0.lock() else {
            return session;
        };
        let Some(w) = m.get_mut(&ObjectRef::from_obj(session.as_ref())) else {
            return session;
        };
        match &w.replaced {
            Some((rv, after))
                if session.resource_version().as_ref() == Some(rv)
                    && w.at.elapsed() < KEEP_WRITTEN =>
            {
                after.clone()
            }
            _ => {
                // The watch has caught up (or moved past): nothing to keep.
                w.replaced = None;
                session
            }
        }
    }

    /// How long a progress-only status change of `session` has to wait for its write: the rest
    /// of [`PROGRESS_EVERY`] since the last write by this process, if any.
    pub fn progress_wait(&self, session: &ObjectRef<DebugSession>) -> Option<Duration> {
        let m = self.0.lock().ok()?;
        let left = PROGRESS_EVERY.checked_sub(m.get(session)?.at.elapsed())?;
        (!left.is_zero()).then_some(left)
    }

    pub fn forget(&self, session: &ObjectRef<DebugSession>) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn session(rv: &str, phase: Option<&str>) -> DebugSession {
        let mut v = json!({
            "apiVersion": "debugsession.dev/v1alpha1",
            "kind": "DebugSession",
            "metadata": {"name": "s", "namespace": "ns", "resourceVersion": rv,
                         "managedFields": [{"manager": "m", "operation": "Apply"}]},
            "spec": {"target": {"kind": "Deployment", "name": "web"}, "ttl": "10m"},
        });
        if let Some(p) = phase {
            v["status"] = json!({"phase": p});
        }
        serde_json::from_value(v).unwrap()
    }

    fn phase(s: &DebugSession) -> Option<String> {
        s.status
            .as_ref()
            .and_then(|s| s.phase)
            .map(|p| p.as_str().to_string())
    }

    #[test]
    fn the_replaced_version_is_swapped_for_the_written_one() {
        let w = StatusWrites::default();
        let before = session("1", None);
        w.written(&before, session("2", Some("Applying")));
        let got = w.freshest(Arc::new(session("1", None)));
        assert_eq!(got.resource_version().as_deref(), Some("2"));
        assert_eq!(phase(&got).as_deref(), Some("Applying"));
        assert!(
            got.managed_fields().is_empty(),
            "kept without managedFields"
        );
        // Once the watch brings a newer version, that one counts, and the old write is dropped.
        let newer = w.freshest(Arc::new(session("3", Some("Active"))));
        assert_eq!(phase(&newer).as_deref(), Some("Active"));
        let again = w.freshest(Arc::new(session("1", None)));
        assert_eq!(again.resource_version().as_deref(), Some("1"));
    }

    #[test]
    fn progress_waits_after_a_write_and_a_forgotten_session_does_not() {
        let w = StatusWrites::default();
        let s = session("1", None);
        let r = ObjectRef::from_obj(&s);
        assert_eq!(w.progress_wait(&r), None, "never written: write now");
        w.written(&s, session("2", Some("Applying")));
        let left = w.progress_wait(&r).expect("written just now");
        assert!(
            left <= PROGRESS_EVERY && left > PROGRESS_EVERY / 2,
            "{left:?}"
        );
        w.forget(&r);
        assert_eq!(w.progress_wait(&r), None);
        let got = w.freshest(Arc::new(s));
        assert_eq!(got.resource_version().as_deref(), Some("1"), "forgotten");
    }
}
