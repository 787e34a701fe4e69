//! Tables as kubectl prints them: upper-case headers, columns padded to the widest cell plus three
//! spaces, `<none>` for nothing, and kubectl's human ages.

use debugsession_operator::api::DebugSession;
use jiff::Timestamp;

use crate::approval;

/// Left-aligned columns, three spaces apart (the last column unpadded).
pub fn render(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// kubectl's `HumanDuration`: `14s`, `5m3s`, `42m`, `3h5m`, `30h`, `3d4h`, `20d`, `2y`.
pub fn human(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        match s % 60 {
            0 => format!("{m}m"),
            r => format!("{m}m{r}s"),
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        match m % 60 {
            0 => format!("{h}h"),
            r => format!("{h}h{r}m"),
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        match h % 24 {
            0 => format!("{d}d"),
            r => format!("{d}d{r}h"),
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

fn or_none(s: Option<String>) -> String {
    s.filter(|s| !s.is_empty())
        .unwrap_or_else(|| "<none>".to_string())
}

/// The rows of `kubectl get dbgs` (`-A`: with NAMESPACE first; wide: with MESSAGE last; APPROVAL
/// after PHASE when a listed session involves approval).
pub fn sessions(list: &[DebugSession], all_namespaces: bool, wide: bool, now: Timestamp) -> String {
    let mut head: Vec<String> = ["NAME", "TARGET", "MODE", "PHASE", "EXPIRES", "READY", "AGE"]
        .map(String::from)
        .to_vec();
    let approvals = approval::shows_column(list);
    if approvals {
        head.insert(4, "APPROVAL".into());
    }
    if all_namespaces {
        head.insert(0, "NAMESPACE".into());
    }
    if wide {
        head.push("MESSAGE".into());
    }
    let mut rows = vec![head];
    for s in list {
        let st = s.status.clone().unwrap_or_default();
        let age = s
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| human(now.duration_since(t.0).as_secs()))
            .unwrap_or_else(|| "<unknown>".into());
        let mut row = vec![
            s.metadata.name.clone().unwrap_or_default(),
            or_none(st.target_ref),
            or_none(st.mode.map(|m| m.to_string())),
            or_none(st.phase.map(|p| p.as_str().to_string())),
            or_none(st.expires_at.map(|t| t.0.to_string())),
            or_none(st.ready_pods),
            age,
        ];
        if approvals {
            row.insert(4, approval::column(s));
        }
        if all_namespaces {
            row.insert(0, s.metadata.namespace.clone().unwrap_or_default());
        }
        if wide {
            row.push(or_none(st.message));
        }
        rows.push(row);
    }
    render(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use debugsession_operator::api::{
        ApprovalStatus, DebugSessionSpec, DebugSessionStatus, Mode, Phase, TargetKind,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn human_ages_like_kubectl() {
        for (s, h) in [
            (14, "14s"),
            (119, "119s"),
            (303, "5m3s"),
            (300, "5m"),
            (42 * 60, "42m"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (20 * 86400, "20d"),
            (800 * 86400, "2y"),
        ] {
            assert_eq!(human(s), h, "{s}");
        }
    }

    #[test]
    fn the_columns_of_kubectl_get() {
        let now: Timestamp = "2026-11-30T10:00:14Z".parse().unwrap();
        let mut s = DebugSession::new(
            "nginx-debug",
            DebugSessionSpec::new(TargetKind::Deployment, "nginx"),
        );
        s.metadata.namespace = Some("default".into());
        s.metadata.creation_timestamp = Some(Time("2026-11-30T10:00:00Z".parse().unwrap()));
        s.status = Some(DebugSessionStatus {
            phase: Some(Phase::Active),
            mode: Some(Mode::Patch),
            target_ref: Some("Deployment/nginx".into()),
            expires_at: Some(Time("2026-11-30T10:15:02Z".parse().unwrap())),
            ready_pods: Some("2/2".into()),
            ..Default::default()
        });
        let mut fresh = s.clone();
        fresh.metadata.name = Some("new".into());
        fresh.status = None;
        assert_eq!(
            sessions(&[s.clone(), fresh.clone()], false, false, now),
            "NAME          TARGET             MODE     PHASE    EXPIRES                READY    AGE\n\
             nginx-debug   Deployment/nginx   Patch    Active   2026-11-30T10:15:02Z   2/2      14s\n\
             new           <none>             <none>   <none>   <none>                 <none>   14s\n"
        );
        let all = sessions(std::slice::from_ref(&s), true, true, now);
        assert!(all.starts_with("NAMESPACE   NAME"), "{all}");
        assert!(
            all.lines().next().unwrap().ends_with("AGE   MESSAGE"),
            "{all}"
        );
    }
    #[test]
    fn the_approval_column_shows_only_where_approval_is_involved() {
        let now: Timestamp = "2026-11-30T10:00:14Z".parse().unwrap();
        let mut s = DebugSession::new(
            "plain",
            DebugSessionSpec::new(TargetKind::Deployment, "nginx"),
        );
        s.metadata.creation_timestamp = Some(Time("2026-11-30T10:00:00Z".parse().unwrap()));
        s.status = Some(DebugSessionStatus {
            phase: Some(Phase::Active),
            ..Default::default()
        });
        let plain = sessions(std::slice::from_ref(&s), false, false, now);
        assert!(!plain.contains("APPROVAL"), "{plain}");
        let mut waiting = s.clone();
        waiting.metadata.name = Some("waiting".into());
        waiting.status = Some(DebugSessionStatus {
            phase: Some(Phase::Pending),
            message: Some("waiting for 1 approval".into()),
            approval: Some(ApprovalStatus {
                required: 1,
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut denied = waiting.clone();
        denied.metadata.name = Some("denied".into());
        denied.status = Some(DebugSessionStatus {
            phase: Some(Phase::Failed),
            approval: Some(ApprovalStatus {
                required: 1,
                denied_by: Some("carol".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(
            sessions(&[s, waiting, denied], false, false, now),
            "NAME      TARGET   MODE     PHASE     APPROVAL   EXPIRES   READY    AGE\n\
             plain     <none>   <none>   Active    -          <none>    <none>   14s\n\
             waiting   <none>   <none>   Pending   0/1        <none>    <none>   14s\n\
             denied    <none>   <none>   Failed    denied     <none>    <none>   14s\n"
        );
    }
}
