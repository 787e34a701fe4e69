//! The audit trail: one JSON object per line on the operator's stdout for every transition of
//! a session (diagnostic logs go to stderr), under a stable schema that a log pipeline can
//! alert on. The README documents the schema; [`SCHEMA_KEYS`] lists its keys.
//!
//! Transitions are read off the change between the status before and after a reconcile
//! ([`transitions`]), so a transition is recorded once, after the status write that makes it
//! true.

use std::io::Write;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

use crate::api::{DebugSession, DebugSessionStatus, Phase, condition};
use crate::session::settings::Settings;

pub const API_VERSION: &str = "audit.debugsession.dev/v1";
pub const KIND: &str = "DebugSessionAudit";

/// The top-level keys of every record, all always present (`null` when unknown).
pub const SCHEMA_KEYS: [&str; 20] = [
    "apiVersion",
    "kind",
    "event",
    "time",
    "session",
    "requester",
    "approvers",
    "deniedBy",
    "target",
    "mode",
    "profile",
    "image",
    "ttl",
    "recorded",
    "startedAt",
    "expiresAt",
    "endedAt",
    "reason",
    "message",
    "generation",
];

/// What happened to the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    /// First seen by the operator.
    Requested,
    /// Has every approval it needs.
    Approved,
    /// Denied by somebody allowed to approve.
    Denied,
    /// The shell went into the target (or the copy was created).
    Started,
    /// A new spec generation moved the expiry later.
    Extended,
    /// A new spec generation was applied otherwise.
    Changed,
    /// The session ended: TTL, deletion, target gone, denial.
    Ended,
    /// The target is back as it was.
    Reverted,
    /// The session failed (bad input, refused, target gone).
    Failed,
}

impl Transition {
    pub const ALL: [Transition; 9] = [
        Transition::Requested,
        Transition::Approved,
        Transition::Denied,
        Transition::Started,
        Transition::Extended,
        Transition::Changed,
        Transition::Ended,
        Transition::Reverted,
        Transition::Failed,
    ];
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    pub kind: String,
    pub name: String,
    pub pod: Option<String>,
}

/// One audit record.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub event: Transition,
    pub time: String,
    pub session: SessionRef,
    pub requester: Option<String>,
    pub approvers: Vec<String>,
    pub denied_by: Option<String>,
    pub target: TargetRef,
    pub mode: String,
    pub profile: String,
    pub image: String,
    pub ttl: String,
    pub recorded: bool,
    pub started_at: Option<String>,
    pub expires_at: Option<String>,
    pub ended_at: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub generation: Option<i64>,
}

fn is_true(s: &DebugSessionStatus, type_: &str) -> bool {
    s.conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// The transitions from `old` to `new`, in the order they happened.
pub fn transitions(old: &DebugSessionStatus, new: &DebugSessionStatus) -> Vec<Transition> {
    let mut out = Vec::new();
    if old.phase.is_none() && new.phase.is_some() {
        out.push(Transition::Requested);
    }
    let approved_at =
        |s: &DebugSessionStatus| s.approval.as_ref().and_then(|a| a.approved_at.clone());
    if approved_at(new).is_some() && approved_at(old) != approved_at(new) {
        out.push(Transition::Approved);
    }
    let denied_by = |s: &DebugSessionStatus| s.approval.as_ref().and_then(|a| a.denied_by.clone());
    let denied = denied_by(new).is_some() && denied_by(old).is_none();
    if denied {
        out.push(Transition::Denied);
    }
    if old.started_at.is_none() && new.started_at.is_some() {
        out.push(Transition::Started);
    } else if old.started_at.is_some()
        && old.shell_generation.is_some()
        && new.shell_generation != old.shell_generation
    {
        let later = match (&old.expires_at, &new.expires_at) {
            (Some(Time(o)), Some(Time(n))) => n > o,
            _ => false,
        };
        out.push(if later {
            Transition::Extended
        } else {
            Transition::Changed
        });
    }
    if old.ended_at.is_none() && new.ended_at.is_some() {
        out.push(Transition::Ended);
    }
    if new.started_at.is_some()
        && is_true(new, condition::REVERTED)
        && !is_true(old, condition::REVERTED)
    {
        out.push(Transition::Reverted);
    }
    if new.phase == Some(Phase::Failed) && old.phase != Some(Phase::Failed) && !denied {
        out.push(Transition::Failed);
    }
    out
}

fn time(t: &Option<Time>) -> Option<String> {
    t.as_ref().map(|t| t.0.to_string())
}

/// The record of `event` for `session` with status `status`; `requester` is the user of the
/// verified stamp of the current spec, for a session whose status names nobody yet.
pub fn record(
    session: &DebugSession,
    status: &DebugSessionStatus,
    event: Transition,
    requester: Option<&str>,
    settings: &Settings,
    now: Timestamp,
) -> Record {
    let spec = &session.spec;
    let shell = spec.shell.clone().unwrap_or_default();
    let (kind, name) = crate::api::target_in_force(Some(status), spec);
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == condition::READY);
    let approval = status.approval.clone().unwrap_or_default();
    Record {
        api_version: API_VERSION,
        kind: KIND,
        event,
        time: now.to_string(),
        session: SessionRef {
            namespace: session.namespace().unwrap_or_default(),
            name: session.name_any(),
            uid: session.uid().unwrap_or_default(),
        },
        // Whose stamp runs in the target, else (before the start) whose stamp asks.
        requester: status
            .requester
            .clone()
            .or_else(|| requester.map(String::from)),
        approvers: approval.approved_by,
        denied_by: approval.denied_by,
        target: TargetRef {
            kind: kind.to_string(),
            name,
            pod: spec.target.pod.clone(),
        },
        mode: status.mode.unwrap_or(session.mode()).to_string(),
        profile: spec
            .profile
            .unwrap_or(crate::api::Profile::General)
            .to_string(),
        image: shell
            .image
            .unwrap_or_else(|| settings.default_image.clone()),
        ttl: spec
            .ttl
            .clone()
            .unwrap_or_else(|| crate::session::ttl::format(settings.default_ttl)),
        recorded: shell.record.unwrap_or(false) || settings.record_shell,
        started_at: time(&status.started_at),
        expires_at: time(&status.expires_at),
        ended_at: time(&status.ended_at),
        reason: ready.map(|c| c.reason.clone()),
        message: status.message.clone(),
        generation: session.metadata.generation,
    }
}

/// Writes one record as one line on stdout.
pub fn emit(record: &Record) {
    if let Ok(line) = serde_json::to_string(record) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApprovalStatus, DebugSessionSpec, TargetKind};
    use crate::controller::conditions;

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn at(phase: Phase) -> DebugSessionStatus {
        DebugSessionStatus {
            phase: Some(phase),
            ..DebugSessionStatus::default()
        }
    }

    #[test]
    fn a_full_session_reads_as_its_transitions() {
        let now: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
        let none = DebugSessionStatus::default();
        let mut waiting = at(Phase::Pending);
        waiting.approval = Some(ApprovalStatus {
            required: 1,
            ..ApprovalStatus::default()
        });
        assert_eq!(transitions(&none, &waiting), [Transition::Requested]);
        let mut started = at(Phase::Applying);
        started.approval = Some(ApprovalStatus {
            required: 1,
            approved_by: vec!["carol".into()],
            approved_at: Some(t("2026-11-30T10:00:00Z")),
            ..ApprovalStatus::default()
        });
        started.started_at = Some(t("2026-11-30T10:00:01Z"));
        started.expires_at = Some(t("2026-11-30T10:15:01Z"));
        started.shell_generation = Some(1);
        assert_eq!(
            transitions(&waiting, &started),
            [Transition::Approved, Transition::Started]
        );
        assert_eq!(transitions(&started, &started), []);
        let mut extended = started.clone();
        extended.shell_generation = Some(2);
        extended.expires_at = Some(t("2026-11-30T10:45:01Z"));
        assert_eq!(transitions(&started, &extended), [Transition::Extended]);
        let mut changed = extended.clone();
        changed.shell_generation = Some(3);
        assert_eq!(transitions(&extended, &changed), [Transition::Changed]);
        let mut ended = changed.clone();
        ended.phase = Some(Phase::Expired);
        ended.ended_at = Some(t("2026-11-30T10:45:01Z"));
        conditions::set(
            &mut ended.conditions,
            "Reverted",
            true,
            "Expired",
            "",
            None,
            now,
        );
        assert_eq!(
            transitions(&changed, &ended),
            [Transition::Ended, Transition::Reverted]
        );
    }

    #[test]
    fn denials_and_failures() {
        let none = DebugSessionStatus::default();
        let mut denied = at(Phase::Failed);
        denied.approval = Some(ApprovalStatus {
            required: 1,
            denied_by: Some("dave".into()),
            ..ApprovalStatus::default()
        });
        assert_eq!(
            transitions(&at(Phase::Pending), &denied),
            [Transition::Denied]
        );
        assert_eq!(
            transitions(&none, &at(Phase::Failed)),
            [Transition::Requested, Transition::Failed]
        );
    }

    #[test]
    fn every_record_has_every_schema_key() {
        let mut s = DebugSession::new("s1", DebugSessionSpec::new(TargetKind::Deployment, "web"));
        s.metadata.namespace = Some("prod".into());
        let status = at(Phase::Pending);
        let r = record(
            &s,
            &status,
            Transition::Requested,
            Some("alice"),
            &Settings::default(),
            "2026-11-30T10:00:00Z".parse().unwrap(),
        );
        let v = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = SCHEMA_KEYS.to_vec();
        want.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, want);
        assert_eq!(v["event"], "requested");
        assert_eq!(v["requester"], "alice");
        assert_eq!(v["target"]["kind"], "Deployment");
        assert_eq!(v["image"], "busybox:1.36");
        assert_eq!(v["ttl"], "1h");
    }
}
