//! Prometheus metrics, all prefixed `debugsession_`.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::api::{DebugSession, DebugSessionStatus, Phase};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Counter,
    pub errors: Family<ErrorLabels, Counter>,
    pub sessions: Family<PhaseLabels, Gauge>,
    pub time_to_active: Histogram,
    pub revert_latency: Histogram,
    pub leader: Gauge,
    phases: Mutex<HashMap<String, Phase>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("debugsession");
        let reconciles = Counter::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let sessions = Family::<PhaseLabels, Gauge>::default();
        let time_to_active = Histogram::new([1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]);
        let revert_latency = Histogram::new([0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]);
        let leader = Gauge::default();
        registry.register(
            "reconciles",
            "Reconciles of DebugSessions",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles by reason",
            errors.clone(),
        );
        registry.register("sessions", "DebugSessions by phase", sessions.clone());
        registry.register(
            "time_to_active_seconds",
            "Seconds from the shell being applied to every pod carrying it",
            time_to_active.clone(),
        );
        registry.register(
            "revert_latency_seconds",
            "Seconds from expiresAt to the completed revert",
            revert_latency.clone(),
        );
        registry.register(
            "leader",
            "1 when this replica is the leader",
            leader.clone(),
        );
        for phase in Phase::ALL {
            let _ = sessions.get_or_create(&PhaseLabels {
                phase: phase.as_str().into(),
            });
        }
        Metrics {
            registry,
            reconciles,
            errors,
            sessions,
            time_to_active,
            revert_latency,
            leader,
            phases: Mutex::default(),
        }
    }
}

fn key(s: &DebugSession) -> String {
    format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any())
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64().max(0.0)
}

impl Metrics {
    /// Records a status change: the phase gauge and the latencies of the transition.
    pub fn observe_transition(
        &self,
        s: &DebugSession,
        old: &DebugSessionStatus,
        new: &DebugSessionStatus,
        now: Timestamp,
    ) {
        if new.phase == Some(Phase::Active)
            && !matches!(old.phase, Some(Phase::Active))
            && let Some(started) = &new.started_at
            && !old
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        {
            self.time_to_active.observe(seconds(started.0, now));
        }
        if new.phase == Some(Phase::Expired)
            && old.phase != Some(Phase::Expired)
            && let Some(expires) = &new.expires_at
        {
            self.revert_latency.observe(seconds(expires.0, now));
        }
        if let Some(phase) = new.phase
            && let Ok(mut phases) = self.phases.lock()
        {
            phases.insert(key(s), phase);
            self.refresh(&phases);
        }
    }

    /// Forgets a deleted session.
    pub fn forget(&self, s: &DebugSession) {
        if let Ok(mut phases) = self.phases.lock() {
            phases.remove(&key(s));
            self.refresh(&phases);
        }
    }

    fn refresh(&self, phases: &HashMap<String, Phase>) {
        for phase in Phase::ALL {
            let n = phases.values().filter(|p| **p == phase).count();
            self.sessions
                .get_or_create(&PhaseLabels {
                    phase: phase.as_str().into(),
                })
                .set(n as i64);
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
