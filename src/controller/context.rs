//! What every reconcile shares: the client, the settings and policy, how requester stamps are
//! trusted, the event recorder and the metrics.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;

use super::events::EventQueue;
use super::wake::PodWakes;
use super::writes::StatusWrites;
use crate::api::DebugSession;
use crate::metrics::Metrics;
use crate::session::policy::Policy;
use crate::session::settings::Settings;

/// Shared state of all reconciles.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    /// What sessions may ask for; re-checked here after the admission webhook.
    pub policy: Policy,
    /// When set, a spec runs only when its requester stamp from the webhook verifies.
    pub stamp_key: Option<Vec<u8>>,
    /// Without a stamp key, start sessions anyway (an install without the webhook: anyone who
    /// may create a session gets a shell). Off by default.
    pub insecure_allow_unstamped: bool,
    pub recorder: Recorder,
    /// The recorder's Events, sent in the background.
    pub events: EventQueue,
    pub metrics: Arc<Metrics>,
    /// Consecutive failed reconciles per session, for the error backoff.
    pub(super) failures: Mutex<HashMap<ObjectRef<DebugSession>, u32>>,
    /// UIDs of deleted sessions whose end is in the audit trail (a deletion may be cleaned up
    /// more than once before the finalizer goes).
    pub(super) audited_deletions: Mutex<HashSet<String>>,
    /// What this process last wrote to each session's status.
    pub(super) writes: StatusWrites,
    /// The pods whose next change wakes a session (ephemeral shells starting).
    pub wakes: PodWakes,
    /// Whether the API server takes the 1.20-1.21 shape of `pods/ephemeralcontainers` (an
    /// `EphemeralContainers` object), learnt from its version on first use.
    legacy_ephemeral: OnceLock<bool>,
}

impl Context {
    pub fn new(
        client: Client,
        settings: Settings,
        policy: Policy,
        stamp_key: Option<Vec<u8>>,
        insecure_allow_unstamped: bool,
        metrics: Arc<Metrics>,
        instance: Option<String>,
    ) -> Self {
        let reporter = Reporter {
            controller: "debugsession-operator".into(),
            instance,
        };
        Context {
            events: EventQueue::new(client.clone(), reporter.clone()),
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            policy,
            stamp_key,
            insecure_allow_unstamped,
            metrics,
            failures: Mutex::default(),
            audited_deletions: Mutex::default(),
            writes: StatusWrites::default(),
            wakes: PodWakes::default(),
            legacy_ephemeral: OnceLock::new(),
        }
    }

    /// See [`Context::legacy_ephemeral`]: asks the API server's `/version` once.
    pub async fn legacy_ephemeral_api(&self) -> Result<bool, kube::Error> {
        if let Some(legacy) = self.legacy_ephemeral.get() {
            return Ok(*legacy);
        }
        let v = self.client.apiserver_version().await?;
        let legacy = crate::session::ephemeral::uses_legacy_api(&v.major, &v.minor);
        Ok(*self.legacy_ephemeral.get_or_init(|| legacy))
    }
}
