//! What an operator process costs: its API requests by verb and resource (counted from its kube
//! client's `requesting` debug lines), its peak RSS and CPU seconds, and its own metrics.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use debugsession_e2e::*;

pub fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

/// The objects a session's lifecycle writes: not Events and not SubjectAccessReviews.
pub fn is_object(resource: &str) -> bool {
    !resource.starts_with("events") && !resource.starts_with("subjectaccessreviews")
}

/// `(verb, resource[/subresource])` of a request to the API server, as its audit log would name
/// them: watch, list, get, create, update, patch, delete, deletecollection.
pub fn classify(method: &str, url: &str) -> (String, String) {
    let path_q = url
        .split_once("://")
        .map(|(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]))
        .unwrap_or(url);
    let (path, query) = path_q.split_once('?').unwrap_or((path_q, ""));
    let seg: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest: &[&str] = match seg.first() {
        Some(&"api") if seg.len() >= 2 => &seg[2..],
        Some(&"apis") if seg.len() >= 3 => &seg[3..],
        _ => &seg[..],
    };
    let rest = match rest {
        ["namespaces", _, tail @ ..] if !tail.is_empty() => tail,
        r => r,
    };
    let (resource, named) = match rest {
        [] => ("".to_string(), false),
        [r] => (r.to_string(), false),
        [r, _] => (r.to_string(), true),
        [r, _, sub, ..] => (format!("{r}/{sub}"), true),
    };
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = match (method, named) {
        ("GET", _) if watch => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        (m, _) => m,
    };
    // a dry run (the hold's try of the shell) writes nothing
    let dry = query.split('&').any(|kv| kv.starts_with("dryRun="));
    let verb = if dry {
        format!("{verb}(dry-run)")
    } else {
        verb.to_string()
    };
    (verb, resource)
}

/// Counts the requests in the operator's log (its kube client's `requesting` lines).
pub fn count_requests(log: &Path) -> BTreeMap<String, u64> {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut counts = BTreeMap::new();
    for line in text.lines().filter(|l| l.contains("\"requesting\"")) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let span = &v["span"];
        let (Some(m), Some(u)) = (span["http.method"].as_str(), span["http.url"].as_str()) else {
            continue;
        };
        let (verb, res) = classify(m, u);
        *counts.entry(format!("{verb} {res}")).or_insert(0) += 1;
    }
    counts
}

/// (VmHWM in KiB, user+system CPU seconds) of process `pid`.
pub fn proc_usage(pid: u32, clk_tck: f64) -> (u64, f64) {
    let hwm = fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0);
    let cpu = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // fields after the command name (which may hold spaces): state is field 3
            let after = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = after.split_whitespace().collect();
            let ut: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            Some((ut + st) / clk_tck)
        })
        .unwrap_or(0.0);
    (hwm, cpu)
}

/// A counter or gauge of the operator's /metrics (the sum over its label sets).
pub fn metric(op: &Operator, name: &str) -> f64 {
    let text = http_get(&op.metrics_addr, "/metrics").unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_by_verb_and_resource() {
        let api = "https://127.0.0.1:26443";
        assert_eq!(
            classify(
                "GET",
                &format!("{api}/apis/apps/v1/deployments?&watch=true&timeoutSeconds=290")
            ),
            ("watch".into(), "deployments".into())
        );
        assert_eq!(
            classify(
                "GET",
                &format!("{api}/apis/apps/v1/namespaces/a/deployments/d-1")
            ),
            ("get".into(), "deployments".into())
        );
        assert_eq!(
            classify(
                "PATCH",
                &format!(
                    "{api}/apis/debugsession.dev/v1alpha1/namespaces/a/debugsessions/s/status?fieldManager=x"
                )
            ),
            ("patch".into(), "debugsessions/status".into())
        );
        assert_eq!(
            classify(
                "GET",
                &format!("{api}/api/v1/namespaces/a/pods?labelSelector=app")
            ),
            ("list".into(), "pods".into())
        );
        assert_eq!(
            classify("GET", &format!("{api}/api/v1/namespaces/a")),
            ("get".into(), "namespaces".into())
        );
        assert_eq!(
            classify(
                "POST",
                &format!("{api}/apis/authorization.k8s.io/v1/subjectaccessreviews")
            ),
            ("create".into(), "subjectaccessreviews".into())
        );
        assert_eq!(
            classify(
                "PATCH",
                &format!("{api}/apis/apps/v1/namespaces/a/deployments/d?dryRun=All&fieldManager=x")
            ),
            ("patch(dry-run)".into(), "deployments".into())
        );
        assert!(is_write("patch") && !is_write("watch") && !is_write("patch(dry-run)"));
        assert!(is_object("debugsessions/status") && !is_object("events"));
    }
}
