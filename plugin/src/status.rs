//! `status NAME`: phase, conditions, pods, time left and recent Events of one session.

use debugsession_operator::api::DebugSession;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::ListParams;

use crate::cli::Output;
use crate::client::Kube;
use crate::explain::{self, Doing};
use crate::{approval, print, session, table};

/// One recent Event: when (last seen), type, reason, message.
pub struct Ev {
    pub at: Option<Timestamp>,
    pub kind: String,
    pub reason: String,
    pub message: String,
}

/// The time left until `expires`: `14m2s`, or `expired` once it is past.
pub fn time_left(expires: Timestamp, now: Timestamp) -> String {
    let secs = expires.duration_since(now).as_secs();
    if secs <= 0 {
        "expired".into()
    } else {
        table::human(secs)
    }
}

pub fn describe(s: &DebugSession, events: &[Ev], now: Timestamp) -> String {
    let st = s.status.clone().unwrap_or_default();
    let none = || "<none>".to_string();
    let mut out = String::new();
    let mut field = |k: &str, v: String| out.push_str(&format!("{:<12}{v}\n", format!("{k}:")));
    field("Name", s.metadata.name.clone().unwrap_or_default());
    field(
        "Namespace",
        s.metadata.namespace.clone().unwrap_or_default(),
    );
    field(
        "Target",
        st.target_ref
            .clone()
            .unwrap_or_else(|| format!("{}/{}", s.spec.target.kind, s.spec.target.name)),
    );
    field(
        "Mode",
        st.mode
            .or(s.spec.mode)
            .map(|m| m.to_string())
            .unwrap_or_else(none),
    );
    field(
        "Phase",
        st.phase
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "<none> (no operator has seen it yet)".into()),
    );
    field("Message", st.message.clone().unwrap_or_else(none));
    field(
        "TTL",
        s.spec
            .ttl
            .clone()
            .unwrap_or_else(|| "<operator default>".into()),
    );
    field(
        "Started",
        st.started_at
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_else(none),
    );
    field(
        "Expires",
        st.expires_at
            .as_ref()
            .map(|t| format!("{} ({} left)", t.0, time_left(t.0, now)))
            .unwrap_or_else(none),
    );
    if let Some(e) = &st.ended_at {
        field("Ended", e.0.to_string());
    }
    field("Requester", st.requester.clone().unwrap_or_else(none));
    if let Some(a) = &st.approval {
        field("Approval", approval::status_line(a));
    }
    field("Ready", st.ready_pods.clone().unwrap_or_else(none));
    out.push_str("Pods:\n");
    if st.pods.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let mut rows = vec![
            ["POD", "CONTAINER", "READY", "ATTACH"]
                .map(String::from)
                .to_vec(),
        ];
        for p in &st.pods {
            rows.push(vec![
                p.name.clone(),
                p.container.clone(),
                p.ready.to_string(),
                p.attach.clone(),
            ]);
        }
        out.push_str(&indent(&table::render(&rows)));
    }
    out.push_str("Conditions:\n");
    if st.conditions.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let mut rows = vec![
            ["TYPE", "STATUS", "REASON", "MESSAGE"]
                .map(String::from)
                .to_vec(),
        ];
        for c in &st.conditions {
            rows.push(vec![
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                c.message.clone(),
            ]);
        }
        out.push_str(&indent(&table::render(&rows)));
    }
    out.push_str("Events:\n");
    if events.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let mut rows = vec![
            ["LAST SEEN", "TYPE", "REASON", "MESSAGE"]
                .map(String::from)
                .to_vec(),
        ];
        for e in events {
            let age =
                e.at.map(|t| table::human(now.duration_since(t).as_secs()))
                    .unwrap_or_else(|| "<unknown>".into());
            rows.push(vec![
                age,
                e.kind.clone(),
                e.reason.clone(),
                e.message.clone(),
            ]);
        }
        out.push_str(&indent(&table::render(&rows)));
    }
    out
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

pub async fn run(k: &Kube, name: &str, output: Option<Output>) -> Result<(), String> {
    let api: Api<DebugSession> = Api::namespaced(k.client.clone(), &k.namespace);
    let s = session::get(&api, name, &k.namespace).await?;
    if matches!(output, Some(Output::Json | Output::Yaml)) {
        return print::object(&s, output);
    }
    let events: Api<Event> = Api::namespaced(k.client.clone(), &k.namespace);
    let lp = ListParams::default().fields(&format!(
        "involvedObject.name={name},involvedObject.kind=DebugSession"
    ));
    let mut list: Vec<Ev> = events
        .list(&lp)
        .await
        .map_err(|e| explain::api(&e, Doing::Other("reading events")))?
        .items
        .into_iter()
        .map(|e| Ev {
            at: e
                .last_timestamp
                .map(|t| t.0)
                .or(e.event_time.map(|t| t.0))
                .or(e.metadata.creation_timestamp.map(|t| t.0)),
            kind: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
        })
        .collect();
    list.sort_by_key(|e| e.at);
    let recent = list.split_off(list.len().saturating_sub(10));
    print!("{}", describe(&s, &recent, Timestamp::now()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_counts_down() {
        let now: Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
        assert_eq!(
            time_left("2026-01-01T10:14:02Z".parse().unwrap(), now),
            "14m"
        );
        assert_eq!(
            time_left("2026-01-01T10:01:30Z".parse().unwrap(), now),
            "90s"
        );
        assert_eq!(
            time_left("2026-01-01T09:00:00Z".parse().unwrap(), now),
            "expired"
        );
    }
    #[test]
    fn approval_shows_only_when_involved() {
        use debugsession_operator::api::{
            ApprovalStatus, DebugSessionSpec, DebugSessionStatus, TargetKind,
        };
        let now: Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
        let mut s = DebugSession::new(
            "dbg",
            DebugSessionSpec::new(TargetKind::Deployment, "nginx"),
        );
        assert!(!describe(&s, &[], now).contains("Approval:"));
        s.status = Some(DebugSessionStatus {
            approval: Some(ApprovalStatus {
                required: 2,
                approved_by: vec!["alice".into()],
                ..Default::default()
            }),
            ..Default::default()
        });
        let d = describe(&s, &[], now);
        assert!(
            d.contains("Requester:  <none>\nApproval:   1/2 approvals; approved by alice\n"),
            "{d}"
        );
    }
}
