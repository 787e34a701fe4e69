//! Index from a workload to the sessions that target it, kept from the DebugSession watch: a
//! workload event finds its sessions in one lookup instead of a scan of every session.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;

use crate::api::{DebugSession, TargetKind};

/// A workload: namespace, kind, name.
type Workload = (String, TargetKind, String);

#[derive(Default)]
struct Inner {
    by_workload: HashMap<Workload, HashSet<ObjectRef<DebugSession>>>,
    by_session: HashMap<ObjectRef<DebugSession>, Workload>,
    /// Sessions seen since the current relist began (`None` outside a relist).
    relisted: Option<HashSet<ObjectRef<DebugSession>>>,
}

impl Inner {
    fn upsert(&mut self, s: &DebugSession) {
        let Some(ns) = s.namespace() else { return };
        let (kind, name) = s.target_in_force();
        let key = (ns, kind, name);
        let r = ObjectRef::from_obj(s);
        if let Some(seen) = &mut self.relisted {
            seen.insert(r.clone());
        }
        if self.by_session.get(&r) == Some(&key) {
            return;
        }
        self.remove(&r);
        self.by_workload
            .entry(key.clone())
            .or_default()
            .insert(r.clone());
        self.by_session.insert(r, key);
    }

    fn remove(&mut self, r: &ObjectRef<DebugSession>) {
        let Some(old) = self.by_session.remove(r) else {
            return;
        };
        if let Some(set) = self.by_workload.get_mut(&old) {
            set.remove(r);
            if set.is_empty() {
                self.by_workload.remove(&old);
            }
        }
    }
}

/// The sessions of each workload, as the watch last saw them.
#[derive(Default)]
pub struct TargetIndex(Mutex<Inner>);

impl TargetIndex {
    /// Follows one event of the DebugSession watch (a relist replaces what it does not list).
    pub fn apply(&self, event: &Event<DebugSession>) {
        let Ok(mut inner) = self.0.lock() else { return };
        match event {
            Event::Init => inner.relisted = Some(HashSet::new()),
            Event::InitApply(s) | Event::Apply(s) => inner.upsert(s),
            Event::Delete(s) => inner.remove(&ObjectRef::from_obj(s)),
            Event::InitDone => {
                let seen = inner.relisted.take().unwrap_or_default();
                let gone: Vec<_> = inner
                    .by_session
                    .keys()
                    .filter(|r| !seen.contains(*r))
                    .cloned()
                    .collect();
                for r in gone {
                    inner.remove(&r);
                }
            }
        }
    }

    /// The sessions that target workload `kind` `name` in `namespace`.
    pub fn sessions(
        &self,
        namespace: &str,
        kind: TargetKind,
        name: &str,
    ) -> Vec<ObjectRef<DebugSession>> {
        let key = (namespace.to_string(), kind, name.to_string());
        self.0
            .lock()
            .map(|inner| {
                inner
                    .by_workload
                    .get(&key)
                    .map(|set| set.iter().cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// How many sessions the index holds.
    pub fn len(&self) -> usize {
        self.0.lock().map(|i| i.by_session.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn session(name: &str, target: &str, started_on: Option<&str>) -> DebugSession {
        let mut v = json!({
            "apiVersion": "debugsession.dev/v1alpha1",
            "kind": "DebugSession",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"target": {"kind": "Deployment", "name": target}, "ttl": "10m"},
        });
        if let Some(t) = started_on {
            v["status"] = json!({"target": {"kind": "Deployment", "name": t, "uid": "u"}});
        }
        serde_json::from_value(v).unwrap()
    }

    fn names(idx: &TargetIndex, workload: &str) -> Vec<String> {
        let mut v: Vec<String> = idx
            .sessions("ns", TargetKind::Deployment, workload)
            .into_iter()
            .map(|r| r.name)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_workload_finds_its_sessions_and_only_those() {
        let idx = TargetIndex::default();
        idx.apply(&Event::Apply(session("a", "web", None)));
        idx.apply(&Event::Apply(session("b", "web", None)));
        idx.apply(&Event::Apply(session("c", "db", None)));
        assert_eq!(names(&idx, "web"), ["a", "b"]);
        assert_eq!(names(&idx, "db"), ["c"]);
        assert!(names(&idx, "other").is_empty());
        assert!(
            idx.sessions("elsewhere", TargetKind::Deployment, "web")
                .is_empty()
        );
        assert!(
            idx.sessions("ns", TargetKind::StatefulSet, "web")
                .is_empty()
        );
    }

    #[test]
    fn a_started_session_stays_with_the_workload_it_changed() {
        let idx = TargetIndex::default();
        idx.apply(&Event::Apply(session("a", "web", None)));
        // The spec's target changed after the start: the status's target is in force.
        idx.apply(&Event::Apply(session("a", "db", Some("web"))));
        assert_eq!(names(&idx, "web"), ["a"]);
        assert!(names(&idx, "db").is_empty());
        // A session not yet started follows its spec.
        idx.apply(&Event::Apply(session("b", "web", None)));
        idx.apply(&Event::Apply(session("b", "db", None)));
        assert_eq!(names(&idx, "db"), ["b"]);
        assert_eq!(names(&idx, "web"), ["a"]);
    }

    #[test]
    fn deletes_and_relists_drop_what_is_gone() {
        let idx = TargetIndex::default();
        idx.apply(&Event::Apply(session("a", "web", None)));
        idx.apply(&Event::Apply(session("b", "web", None)));
        idx.apply(&Event::Delete(session("a", "web", None)));
        assert_eq!(names(&idx, "web"), ["b"]);
        // A relist that no longer lists b (deleted while the watch was down) but lists c.
        idx.apply(&Event::Init);
        idx.apply(&Event::InitApply(session("c", "web", None)));
        assert_eq!(names(&idx, "web"), ["b", "c"]);
        idx.apply(&Event::InitDone);
        assert_eq!(names(&idx, "web"), ["c"]);
        assert_eq!(idx.len(), 1);
        idx.apply(&Event::Delete(session("c", "web", None)));
        assert!(idx.is_empty());
    }
}
