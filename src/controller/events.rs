//! Events go out in the background, as client-go's recorder sends them: a reconcile hands its
//! Events over and goes on, so that a thousand sessions expiring at once wait for their reverts,
//! not for each other's Events. The Events of one object keep their order (one lane per object);
//! a full lane drops an Event with a warning rather than hold a reconcile.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Recorder};
use tokio::sync::mpsc;
use tracing::warn;

/// Lanes that send at once.
const LANES: usize = 4;
/// Events that may wait in one lane.
const DEPTH: usize = 2048;

type Item = (Event, ObjectReference);

pub struct EventQueue {
    recorder: Recorder,
    lanes: OnceLock<Vec<mpsc::Sender<Item>>>,
}

impl EventQueue {
    pub fn new(recorder: Recorder) -> Self {
        EventQueue {
            recorder,
            lanes: OnceLock::new(),
        }
    }

    /// Queues `event` about `reference` (the lanes start with the first Event, on the runtime
    /// of the caller).
    pub fn publish(&self, event: Event, reference: ObjectReference) {
        let lanes = self.lanes.get_or_init(|| {
            (0..LANES)
                .map(|_| {
                    let (tx, rx) = mpsc::channel(DEPTH);
                    tokio::spawn(send_all(self.recorder.clone(), rx));
                    tx
                })
                .collect()
        });
        let lane = lane_of(&reference);
        if let Err(e) = lanes[lane].try_send((event, reference)) {
            let (event, reference) = e.into_inner();
            warn!(
                reason = event.reason,
                object = reference.name.unwrap_or_default(),
                "event dropped: too many events waiting"
            );
        }
    }
}

/// The lane of an object: the same for all its Events.
fn lane_of(reference: &ObjectReference) -> usize {
    let mut h = DefaultHasher::new();
    (&reference.uid, &reference.namespace, &reference.name).hash(&mut h);
    (h.finish() % LANES as u64) as usize
}

async fn send_all(recorder: Recorder, mut rx: mpsc::Receiver<Item>) {
    while let Some((event, reference)) = rx.recv().await {
        if let Err(e) = recorder.publish(&event, &reference).await {
            warn!(error = %e, reason = event.reason, object = reference.name.unwrap_or_default(), "could not record event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(uid: &str) -> ObjectReference {
        ObjectReference {
            uid: Some(uid.into()),
            namespace: Some("ns".into()),
            name: Some(format!("o-{uid}")),
            ..ObjectReference::default()
        }
    }

    #[test]
    fn one_object_keeps_one_lane_and_objects_spread() {
        assert_eq!(lane_of(&object("a")), lane_of(&object("a")));
        let used: std::collections::HashSet<usize> =
            (0..64).map(|i| lane_of(&object(&i.to_string()))).collect();
        assert_eq!(used.len(), LANES);
    }
}
