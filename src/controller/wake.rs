//! Wake-ups that no watch of the controller carries: the pods where an ephemeral shell is
//! starting. The controller watches workloads and its own copies, not every pod of the cluster;
//! while a session waits for its shells, one short watch per pod (by name, from the version the
//! reconcile read) wakes the session at the pod's next change, instead of a look every 250 ms.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, WatchEvent, WatchParams};
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc;
use tracing::debug;

use crate::api::DebugSession;

/// How long one pod watch lasts (server side) when the pod does not change: the session's own
/// requeue looks again before that.
const WATCH_SECONDS: u32 = 30;

type Key = (ObjectRef<DebugSession>, String);

/// The pod watches of waiting sessions, and the stream of sessions they wake.
pub struct PodWakes {
    tx: mpsc::UnboundedSender<ObjectRef<DebugSession>>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<ObjectRef<DebugSession>>>>,
    watching: Arc<Mutex<HashSet<Key>>>,
}

impl Default for PodWakes {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        PodWakes {
            tx,
            rx: Mutex::new(Some(rx)),
            watching: Arc::default(),
        }
    }
}

impl PodWakes {
    /// The sessions to wake, for the controller (the first caller gets them).
    pub fn take_stream(&self) -> Option<BoxStream<'static, ObjectRef<DebugSession>>> {
        let rx = self.rx.lock().ok()?.take()?;
        let woken =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
        Some(woken.boxed())
    }

    /// Wakes `session` at the next change of each pod named in `names`, from the version of it
    /// in `read` (what the reconcile read; a pod it did not read is left to the requeue).
    pub fn watch_read(
        &self,
        client: &Client,
        session: &ObjectRef<DebugSession>,
        ns: &str,
        names: &[String],
        read: &[Pod],
    ) {
        let pods: Vec<(String, String)> = names
            .iter()
            .filter_map(|name| {
                let pod = read
                    .iter()
                    .find(|p| p.metadata.name.as_ref() == Some(name))?;
                let version = pod.metadata.resource_version.clone();
                Some((name.clone(), version.filter(|v| !v.is_empty())?))
            })
            .collect();
        self.watch(client, session, ns, &pods);
    }

    /// Wakes `session` at the next change of each pod of `pods` (name and the resourceVersion
    /// read) in namespace `ns`; a pod already watched for it keeps its watch.
    pub fn watch(
        &self,
        client: &Client,
        session: &ObjectRef<DebugSession>,
        ns: &str,
        pods: &[(String, String)],
    ) {
        for (pod, version) in pods {
            let key = (session.clone(), pod.clone());
            let fresh = self
                .watching
                .lock()
                .is_ok_and(|mut w| w.insert(key.clone()));
            if !fresh {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(client.clone(), ns);
            let (tx, watching) = (self.tx.clone(), self.watching.clone());
            let version = version.clone();
            tokio::spawn(async move {
                let changed = next_change(&api, &key.1, &version).await;
                if let Ok(mut w) = watching.lock() {
                    w.remove(&key);
                }
                debug!(pod = %key.1, changed, "the pod watch ended");
                if changed {
                    let _ = tx.send(key.0);
                }
            });
        }
    }

    /// How many pod watches run (for tests).
    pub fn watching(&self) -> usize {
        self.watching.lock().map(|w| w.len()).unwrap_or(0)
    }
}

/// Whether pod `name` changed after `version` (false when the watch ended or failed first).
async fn next_change(api: &Api<Pod>, name: &str, version: &str) -> bool {
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(WATCH_SECONDS);
    let watch = tokio::time::timeout(Duration::from_secs(u64::from(WATCH_SECONDS) + 5), async {
        let mut events = match api.watch(&params, version).await {
            Ok(events) => events.boxed(),
            Err(e) => {
                debug!(pod = name, error = %e, "could not watch the pod");
                return false;
            }
        };
        while let Some(event) = events.next().await {
            match event {
                Ok(WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_)) => {
                    return true;
                }
                Ok(WatchEvent::Bookmark(_)) => {}
                // Too old a version (410): the pod changed since.
                Ok(WatchEvent::Error(e)) => return e.code == 410,
                Err(e) => {
                    debug!(pod = name, error = %e, "the pod watch failed");
                    return false;
                }
            }
        }
        false
    });
    watch.await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use kube::client::ClientBuilder;
    use serde_json::json;

    fn session() -> ObjectRef<DebugSession> {
        ObjectRef::new("dbg").within("team")
    }

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    /// A client whose requests the test answers, and wakes whose stream the test holds.
    fn setup() -> (
        Client,
        Handle,
        PodWakes,
        BoxStream<'static, ObjectRef<DebugSession>>,
    ) {
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = ClientBuilder::new(svc, "default").build();
        let wakes = PodWakes::default();
        let woken = wakes.take_stream().expect("the stream");
        (client, handle, wakes, woken)
    }

    fn pod_event(kind: &str) -> Vec<u8> {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-a", "namespace": "team", "resourceVersion": "43"}});
        let mut line = serde_json::to_vec(&json!({"type": kind, "object": pod})).unwrap();
        line.push(b'\n');
        line
    }

    #[tokio::test]
    async fn a_change_of_the_pod_wakes_its_session_once() {
        let (client, mut handle, wakes, mut woken) = setup();
        assert!(wakes.take_stream().is_none(), "only one taker");
        let read: Pod = serde_json::from_value(json!({"metadata": {
            "name": "web-a", "namespace": "team", "resourceVersion": "42"}}))
        .unwrap();
        // A pod the reconcile did not read is left to the requeue.
        let names = ["web-a".to_string(), "not-read".to_string()];
        wakes.watch_read(&client, &session(), "team", &names, &[read]);
        // Asked again while the first watch runs: no second watch.
        let pods = [("web-a".to_string(), "42".to_string())];
        wakes.watch(&client, &session(), "team", &pods);
        assert_eq!(wakes.watching(), 1);

        let (req, send) = handle.next_request().await.expect("a watch");
        assert_eq!(req.uri().path(), "/api/v1/namespaces/team/pods");
        let query = req.uri().query().unwrap_or_default().to_string();
        for part in [
            "watch=true",
            "resourceVersion=42",
            "fieldSelector=metadata.name%3Dweb-a",
        ] {
            assert!(query.contains(part), "{query} lacks {part}");
        }
        send.send_response(Response::new(Body::from(pod_event("MODIFIED"))));
        let got = tokio::time::timeout(Duration::from_secs(5), woken.next())
            .await
            .expect("woken in time");
        assert_eq!(got, Some(session()));
        // The watch is over: the next wait starts a new one.
        tokio::time::timeout(Duration::from_secs(5), async {
            while wakes.watching() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the watch ended");
    }

    #[tokio::test]
    async fn a_watch_that_fails_wakes_nobody() {
        let (client, mut handle, wakes, mut woken) = setup();
        wakes.watch(
            &client,
            &session(),
            "team",
            &[("web-a".to_string(), "42".to_string())],
        );
        let (_, send) = handle.next_request().await.expect("a watch");
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "forbidden", "reason": "Forbidden", "code": 403});
        send.send_response(
            Response::builder()
                .status(403)
                .body(Body::from(serde_json::to_vec(&status).unwrap()))
                .unwrap(),
        );
        tokio::time::timeout(Duration::from_secs(5), async {
            while wakes.watching() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the failed watch ended");
        let got = tokio::time::timeout(Duration::from_millis(300), woken.next()).await;
        assert!(got.is_err(), "woken by a failed watch: {got:?}");
    }
}
