//! Unit tests of planning: the helpers that build sessions, workloads and pods; the tests of a
//! session that has not started and of a running one.

use super::*;
use crate::api::{DebugSessionSpec, condition};

use serde_json::json;

const T0: &str = "2026-11-30T10:00:00Z";

fn at(offset_secs: i64) -> Timestamp {
    T0.parse::<Timestamp>().unwrap() + SignedDuration::from_secs(offset_secs)
}

fn session(ttl: &str) -> DebugSession {
    let mut s = DebugSession::new(
        "dbg",
        DebugSessionSpec {
            ttl: Some(ttl.into()),
            ..DebugSessionSpec::new(TargetKind::Deployment, "web")
        },
    );
    s.metadata.namespace = Some("team".into());
    s.metadata.generation = Some(1);
    s
}

fn workload(containers: &[&str], spn: bool, held_by: Option<&str>, managed: bool) -> Workload {
    let d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "team", "uid": "uid-1", "generation": 2,
            "annotations": held_by.map(|h| json!({HOLDER_ANNOTATION: h})).unwrap_or(json!({})),
            "managedFields": if managed { json!([{"manager": "debugsession/team/dbg"}]) } else { json!([]) }},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"shareProcessNamespace": spn,
                "containers": containers.iter().map(|c| json!({"name": c, "image": if *c == "debug-shell" { "busybox:1.36" } else { "nginx" }})).collect::<Vec<_>>()}}},
        "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}
    }))
    .unwrap();
    Workload::from(d)
}

fn pod(name: &str, shell: bool, ready: bool) -> Pod {
    let mut containers = vec![json!({"name": "nginx"})];
    let mut statuses = vec![
        json!({"name": "nginx", "ready": true, "restartCount": 0, "image": "nginx", "imageID": ""}),
    ];
    if shell {
        containers.push(json!({"name": "debug-shell"}));
        statuses.push(json!({"name": "debug-shell", "ready": ready, "restartCount": 0, "image": "b", "imageID": ""}));
    }
    serde_json::from_value(
        json!({"metadata": {"name": name}, "spec": {"containers": containers},
        "status": {"containerStatuses": statuses}}),
    )
    .unwrap()
}

/// A session that started at T0 and was Applying.
fn started(ttl: &str) -> DebugSession {
    let s = session(ttl);
    let obs = Observed {
        workload: Some(workload(&["nginx"], false, None, false)),
        ..Observed::default()
    };
    let p = plan(&s, &obs, &Settings::default(), at(0));
    let mut s = s;
    s.status = Some(p.status);
    s
}

fn running_obs(pods: Vec<Pod>) -> Observed {
    Observed {
        workload: Some(workload(&["nginx", "debug-shell"], true, Some("dbg"), true)),
        holder: Some(Holder::Us),
        pods,
        ..Observed::default()
    }
}

fn ready_reason(p: &Plan) -> &str {
    conditions::get(&p.status.conditions, condition::READY)
        .map(|c| c.reason.as_str())
        .unwrap_or("")
}

mod approval;
mod modes;
mod running;
mod share_off;
mod start;
