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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// How sessions end, the `outcome` label of `sessions_ended_total`.
pub const OUTCOMES: [&str; 4] = ["expired", "deleted", "failed", "denied"];

pub struct Metrics {
    pub registry: Registry,
    pub sessions_ended: Family<OutcomeLabels, Counter>,
    pub approvals_pending: Gauge,
    pub time_to_approval: Histogram,
    awaiting: Mutex<std::collections::HashSet<String>>,
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
        let sessions_ended = Family::<OutcomeLabels, Counter>::default();
        let approvals_pending = Gauge::default();
        let time_to_approval =
            Histogram::new([10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0]);
        registry.register(
            "sessions_ended",
            "Sessions that ended, by outcome (expired, deleted, failed, denied)",
            sessions_ended.clone(),
        );
        registry.register(
            "approvals_pending",
            "Sessions waiting for approval",
            approvals_pending.clone(),
        );
        registry.register(
            "time_to_approval_seconds",
            "Seconds from a session's creation to its last needed approval",
            time_to_approval.clone(),
        );
        for outcome in OUTCOMES {
            let _ = sessions_ended.get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            });
        }
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
            sessions_ended,
            approvals_pending,
            time_to_approval,
            awaiting: Mutex::default(),
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
        let terminal = |st: &DebugSessionStatus| st.phase.is_some_and(Phase::is_terminal);
        if terminal(new) && !terminal(old) {
            let denied = new.approval.as_ref().is_some_and(|a| a.denied_by.is_some());
            let outcome = match new.phase {
                Some(Phase::Expired) => "expired",
                _ if denied => "denied",
                _ => "failed",
            };
            self.ended(outcome);
        }
        let approved_at = |st: &DebugSessionStatus| {
            st.approval
                .as_ref()
                .and_then(|a| a.approved_at.as_ref())
                .map(|t| t.0)
        };
        if let Some(at) = approved_at(new)
            && approved_at(old) != Some(at)
            && let Some(created) = &s.metadata.creation_timestamp
        {
            self.time_to_approval.observe(seconds(created.0, at));
        }
        let waiting = new.conditions.iter().any(|c| {
            c.type_ == crate::api::condition::READY
                && [
                    crate::api::reason::AWAITING_APPROVAL,
                    crate::api::reason::APPROVAL_EXPIRED,
                ]
                .contains(&c.reason.as_str())
        });
        self.set_awaiting(s, waiting);
    }

    fn ended(&self, outcome: &str) {
        self.sessions_ended
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    fn set_awaiting(&self, s: &DebugSession, waiting: bool) {
        if let Ok(mut awaiting) = self.awaiting.lock() {
            if waiting {
                awaiting.insert(key(s));
            } else {
                awaiting.remove(&key(s));
            }
            self.approvals_pending.set(awaiting.len() as i64);
        }
    }

    /// A session deleted before it ended by itself.
    pub fn ended_by_deletion(&self, s: &DebugSession) {
        if !s
            .status
            .as_ref()
            .and_then(|st| st.phase)
            .is_some_and(Phase::is_terminal)
        {
            self.ended("deleted");
        }
    }

    /// Forgets a deleted session.
    pub fn forget(&self, s: &DebugSession) {
        if let Ok(mut phases) = self.phases.lock() {
            phases.remove(&key(s));
            self.refresh(&phases);
        }
        self.set_awaiting(s, false);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApprovalStatus, DebugSessionSpec, TargetKind};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn session() -> DebugSession {
        let mut s = DebugSession::new("s1", DebugSessionSpec::new(TargetKind::Deployment, "web"));
        s.metadata.namespace = Some("prod".into());
        s.metadata.creation_timestamp = Some(Time("2026-11-30T10:00:00Z".parse().unwrap()));
        s
    }

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
    }

    #[test]
    fn approvals_and_outcomes() {
        let m = Metrics::default();
        let s = session();
        let now: Timestamp = "2026-11-30T10:02:00Z".parse().unwrap();
        let mut waiting = DebugSessionStatus {
            phase: Some(Phase::Pending),
            ..DebugSessionStatus::default()
        };
        crate::controller::conditions::set(
            &mut waiting.conditions,
            "Ready",
            false,
            crate::api::reason::AWAITING_APPROVAL,
            "",
            None,
            now,
        );
        m.observe_transition(&s, &DebugSessionStatus::default(), &waiting, now);
        assert!(m.encode().contains("debugsession_approvals_pending 1"));
        let mut denied = DebugSessionStatus {
            phase: Some(Phase::Failed),
            approval: Some(ApprovalStatus {
                required: 1,
                denied_by: Some("dave".into()),
                ..ApprovalStatus::default()
            }),
            ..DebugSessionStatus::default()
        };
        m.observe_transition(&s, &waiting, &denied, now);
        let text = m.encode();
        assert!(text.contains("debugsession_approvals_pending 0"), "{text}");
        assert!(
            line(
                &text,
                "debugsession_sessions_ended_total{outcome=\"denied\"}"
            )
            .ends_with(" 1")
        );
        assert!(
            line(
                &text,
                "debugsession_sessions_ended_total{outcome=\"failed\"}"
            )
            .ends_with(" 0")
        );
        // An approval two minutes after the creation.
        denied.approval = Some(ApprovalStatus {
            required: 1,
            approved_by: vec!["carol".into()],
            approved_at: Some(Time(now)),
            ..ApprovalStatus::default()
        });
        m.observe_transition(&s, &waiting, &denied, now);
        let text = m.encode();
        assert!(
            line(&text, "debugsession_time_to_approval_seconds_sum").ends_with(" 120.0"),
            "{text}"
        );
        m.ended_by_deletion(&s);
        assert!(
            line(
                &m.encode(),
                "debugsession_sessions_ended_total{outcome=\"deleted\"}"
            )
            .ends_with(" 1")
        );
    }
}
