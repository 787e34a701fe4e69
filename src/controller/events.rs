//! Events go out in the background, as client-go's recorder sends them: a reconcile hands its
//! Events over and goes on, so that a thousand sessions expiring at once wait for their reverts,
//! not for each other's Events. The Events of one object keep their order (one lane per object);
//! a full lane drops an Event with a warning rather than hold a reconcile.
//!
//! Each Event is created as it is (events.k8s.io/v1, the fields kube's `Recorder` fills in), with
//! nothing kept afterwards: the controller says things once (a Warning when a condition's reason
//! changes, not on every look), so there are no repeats to count into a series, and a thousand
//! sessions' Events do not stay in memory for the recorder's six minutes.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use tokio::sync::mpsc;
use tracing::warn;

/// Lanes that send at once.
const LANES: usize = 4;
/// Events that may wait in one lane.
const DEPTH: usize = 2048;

type Item = (Event, ObjectReference);

pub struct EventQueue {
    client: Client,
    reporter: Reporter,
    lanes: OnceLock<Vec<mpsc::Sender<Item>>>,
}

impl EventQueue {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        EventQueue {
            client,
            reporter,
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
                    tokio::spawn(send_all(self.client.clone(), self.reporter.clone(), rx));
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

async fn send_all(client: Client, reporter: Reporter, mut rx: mpsc::Receiver<Item>) {
    while let Some((event, reference)) = rx.recv().await {
        let ns = reference
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let body = k8s_event(&reporter, &event, reference, Timestamp::now());
        if let Err(e) = Api::<K8sEvent>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &body)
            .await
        {
            let object = body.regarding.and_then(|r| r.name).unwrap_or_default();
            warn!(error = %e, reason = event.reason, object, "could not record event");
        }
    }
}

/// The Event object for `event` about `reference`, at `now`.
fn k8s_event(
    reporter: &Reporter,
    event: &Event,
    reference: ObjectReference,
    now: Timestamp,
) -> K8sEvent {
    let object = reference
        .name
        .clone()
        .unwrap_or_else(|| reporter.controller.clone());
    K8sEvent {
        metadata: ObjectMeta {
            namespace: reference.namespace.clone(),
            name: Some(format!("{object}.{:x}", now.as_nanosecond())),
            ..ObjectMeta::default()
        },
        action: Some(event.action.clone()),
        reason: Some(event.reason.clone()),
        note: event.note.clone(),
        type_: Some(
            match event.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        event_time: Some(MicroTime(now)),
        regarding: Some(reference),
        related: event.secondary.clone(),
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(
            reporter
                .instance
                .clone()
                .unwrap_or_else(|| reporter.controller.clone()),
        ),
        ..K8sEvent::default()
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
    fn an_event_says_who_reports_what_about_which_object() {
        let reporter = Reporter {
            controller: "debugsession-operator".into(),
            instance: Some("pod-1".into()),
        };
        let event = Event {
            type_: EventType::Warning,
            reason: "Drifted".into(),
            note: Some("the shell was removed".into()),
            action: "Reapply".into(),
            secondary: None,
        };
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let e = k8s_event(&reporter, &event, object("u1"), now);
        assert_eq!(e.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(
            e.metadata.name,
            Some(format!("o-u1.{:x}", now.as_nanosecond()))
        );
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reason.as_deref(), Some("Drifted"));
        assert_eq!(e.action.as_deref(), Some("Reapply"));
        assert_eq!(e.note.as_deref(), Some("the shell was removed"));
        assert_eq!(e.regarding, Some(object("u1")));
        assert_eq!(
            e.reporting_controller.as_deref(),
            Some("debugsession-operator")
        );
        assert_eq!(e.reporting_instance.as_deref(), Some("pod-1"));
        assert_eq!(e.event_time, Some(MicroTime(now)));
        assert!(e.series.is_none());
    }

    #[test]
    fn one_object_keeps_one_lane_and_objects_spread() {
        assert_eq!(lane_of(&object("a")), lane_of(&object("a")));
        let used: std::collections::HashSet<usize> =
            (0..64).map(|i| lane_of(&object(&i.to_string()))).collect();
        assert_eq!(used.len(), LANES);
    }
}
