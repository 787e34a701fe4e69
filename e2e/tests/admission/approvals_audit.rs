//! The allowed path of approvals: alice asks, carol approves (`kubectl annotate` as carol), the
//! session starts and the workload carries the shell; deleted, the workload is back. Then the
//! operator's audit trail (its stdout, one JSON object a line) for that session: every line as
//! the protocol documents it, and the events requested, approved, started, ended, reverted in
//! this order, with requester alice and approvers [carol].

use std::fs;

use debugsession_e2e::*;

use crate::approvals::{
    ALLOWED, approvals, approve_as_carol, request, wait_awaiting, workload_unchanged,
};
use crate::sessions::{REQUESTER, delete_session, matches_snapshot};
use crate::{Run, step};

const SESSION: &str = "appr-allowed";
const API_VERSION: &str = "audit.debugsession.dev/v1";
const KIND: &str = "DebugSessionAudit";
const EVENTS: [&str; 9] = [
    "requested",
    "approved",
    "denied",
    "started",
    "extended",
    "changed",
    "ended",
    "reverted",
    "failed",
];
/// The events a Patch session with approval logs, in this order.
const ORDER: [&str; 5] = ["requested", "approved", "started", "ended", "reverted"];

pub fn allowed(run: &mut Run) -> R<()> {
    step("approvals, the allowed path: alice asks, carol approves, the shell runs, then ends");
    request(run, SESSION, ALLOWED, "10m")?;
    let uid = match approved_then_ended(run) {
        Ok(uid) => uid,
        Err(e) => {
            let _ = delete_session(&run.appr_ns, SESSION, "90s");
            return Err(e);
        }
    };
    let events = audit(run, &uid).map_err(|e| format!("audit trail: {e}"))?;
    println!("  allowed  audit trail of {SESSION}: {}", events.join(", "));
    Ok(())
}

/// Returns the session's UID.
fn approved_then_ended(run: &mut Run) -> R<String> {
    let (ns, alice, carol) = (run.appr_ns.clone(), run.user("alice"), run.user("carol"));
    let v = wait_awaiting(run, SESSION)?;
    workload_unchanged(run, ALLOWED, true)?;
    let uid = s(&v, "/metadata/uid").to_string();
    approve_as_carol(run, SESSION)?;
    let v = WAIT.session(&ns, SESSION, "Active and Ready=True", LONG, |v| {
        phase_is(v, "Active") && cond_is(v, "Ready", "True", None)
    })?;
    ensure(cond_is(&v, "Approved", "True", Some("Approved")), || {
        format!(
            "Active, but not Approved=True reason Approved: {}",
            summary(&v)
        )
    })?;
    let by = &v["status"]["approval"]["approvedBy"];
    ensure(*by == json!([carol]), || {
        format!("status.approval.approvedBy {by}, want [{carol}]")
    })?;
    let stamped = &v["metadata"]["annotations"][REQUESTER];
    ensure(*stamped == alice.as_str(), || {
        format!("requester stamp {stamped}, want {alice}")
    })?;
    let recorded = approvals(&v)?;
    ensure(
        recorded.len() == 1 && recorded[0]["user"] == carol.as_str(),
        || format!("recorded approvals {recorded:?}, want carol's alone"),
    )?;
    let d = get_json(&["-n", &ns, "deployment", ALLOWED])?;
    ensure(has_shell(&d["spec"]["template"]), || {
        format!("{SESSION} is Active but {ALLOWED} has no shell")
    })?;
    ensure(s(&d, HOLDER_PTR) == SESSION, || {
        format!(
            "{ALLOWED} is held by {:?}, not {SESSION}",
            s(&d, HOLDER_PTR)
        )
    })?;
    println!("  allowed  {SESSION} Active after carol's approval; {ALLOWED} carries the shell");
    delete_session(&ns, SESSION, "90s")?;
    wait_for(&format!("{ALLOWED} to be reverted"), TIMEOUT, || {
        matches_snapshot(&ns, ALLOWED, &run.pre_session[ALLOWED], false)
    })?;
    println!("  allowed  {SESSION} deleted; {ALLOWED} is back as it was");
    Ok(uid)
}

/// The audit lines of the session (namespace, name and UID), once its `reverted` line is there;
/// checks them and returns their events.
fn audit(run: &Run, uid: &str) -> R<Vec<String>> {
    let path = run.audit.clone();
    let lines = wait_for("the audit line `reverted` of the session", TIMEOUT, || {
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mine: Vec<(usize, Value)> = text
            .lines()
            .enumerate()
            .filter_map(|(i, l)| serde_json::from_str::<Value>(l).ok().map(|v| (i + 1, v)))
            .filter(|(_, v)| {
                v["session"]["namespace"] == run.appr_ns.as_str() && v["session"]["name"] == SESSION
            })
            .collect();
        if mine.iter().any(|(_, v)| v["event"] == "reverted") {
            Ok(mine)
        } else {
            let seen: Vec<&str> = mine.iter().map(|(_, v)| s(v, "/event")).collect();
            Err(format!("events so far {seen:?} in {}", path.display()))
        }
    })?;
    stdout_is_audit_only(&path)?;
    let mut errors = Vec::new();
    for (n, v) in &lines {
        if let Err(e) = schema(v) {
            errors.push(format!("line {n}: {e}: {v}"));
        }
    }
    ensure(errors.is_empty(), || errors.join("\n  "))?;
    let events: Vec<String> = lines
        .iter()
        .map(|(_, v)| s(v, "/event").to_string())
        .collect();
    in_order(&events)?;
    let (alice, carol) = (run.user("alice"), run.user("carol"));
    for (n, v) in &lines {
        let event = s(v, "/event");
        let who = format!("line {n} ({event})");
        ensure(s(v, "/session/uid") == uid, || {
            format!("{who}: session.uid {}, want {uid}", v["session"]["uid"])
        })?;
        ensure(v["requester"] == alice.as_str(), || {
            format!("{who}: requester {}, want {alice}", v["requester"])
        })?;
        ensure(
            v["target"]["kind"] == "Deployment" && v["target"]["name"] == ALLOWED,
            || format!("{who}: target {}, want Deployment {ALLOWED}", v["target"]),
        )?;
        if ORDER[1..].contains(&event) {
            ensure(v["approvers"] == json!([carol]), || {
                format!("{who}: approvers {}, want [{carol}]", v["approvers"])
            })?;
        }
        if event == "reverted" {
            ensure(is_time(&v["endedAt"]), || {
                format!(
                    "{who}: endedAt {}, want the time the workload was reverted",
                    v["endedAt"]
                )
            })?;
        }
        if ["started", "ended", "reverted"].contains(&event) {
            ensure(v["startedAt"].is_string() && v["mode"] == "Patch", || {
                format!("{who}: startedAt {} mode {}", v["startedAt"], v["mode"])
            })?;
        }
    }
    Ok(events)
}

/// Every line of the operator's stdout is an audit object (the diagnostic log goes to stderr).
fn stdout_is_audit_only(path: &std::path::Path) -> R<()> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    let stray: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            serde_json::from_str::<Value>(l).map_or(true, |v| {
                v["apiVersion"] != API_VERSION || v["kind"] != KIND
            })
        })
        .collect();
    ensure(stray.is_empty(), || {
        format!(
            "{} lines of the operator's stdout are no audit objects, the first: {}",
            stray.len(),
            stray[0]
        )
    })
}

/// The events of ORDER come in this order, each once (others may come between them).
fn in_order(events: &[String]) -> R<()> {
    for want in ORDER {
        let n = events.iter().filter(|e| *e == want).count();
        ensure(n == 1, || {
            format!("events {events:?}: {want:?} {n} times, want once")
        })?;
    }
    let mut at = 0;
    for want in ORDER {
        match events[at..].iter().position(|e| e == want) {
            Some(i) => at += i + 1,
            None => {
                return Err(format!(
                    "events {events:?} lack {want:?} after the earlier ones of {ORDER:?}"
                ));
            }
        }
    }
    Ok(())
}

fn is_time(v: &Value) -> bool {
    v.as_str().is_some_and(|t| parse_time(t).is_ok())
}

fn is_camel(v: &Value) -> bool {
    v.as_str().is_some_and(|r| {
        r.starts_with(|c: char| c.is_ascii_uppercase())
            && r.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// One audit line against the documented schema: every key, of its type.
fn schema(v: &Value) -> R<()> {
    let mut wrong = Vec::new();
    let mut check = |key: &str, ok: bool, want: &str| {
        if !ok {
            let got = v
                .pointer(key)
                .map_or("absent".to_string(), Value::to_string);
            wrong.push(format!("{key} is {got}, want {want}"));
        }
    };
    let opt_str = |p: &str| v.pointer(p).is_some_and(|x| x.is_null() || x.is_string());
    let opt_time = |p: &str| v.pointer(p).is_some_and(|x| x.is_null() || is_time(x));
    let string = |p: &str| v.pointer(p).is_some_and(Value::is_string);
    check("/apiVersion", v["apiVersion"] == API_VERSION, API_VERSION);
    check("/kind", v["kind"] == KIND, KIND);
    check(
        "/event",
        v["event"].as_str().is_some_and(|e| EVENTS.contains(&e)),
        "one of the documented events",
    );
    check("/time", is_time(&v["time"]), "an RFC 3339 time");
    for key in ["/session/namespace", "/session/name", "/session/uid"] {
        check(
            key,
            v.pointer(key)
                .and_then(Value::as_str)
                .is_some_and(|x| !x.is_empty()),
            "a name",
        );
    }
    check("/requester", opt_str("/requester"), "a string or null");
    check(
        "/approvers",
        v["approvers"]
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string)),
        "a list of names",
    );
    check("/deniedBy", opt_str("/deniedBy"), "a string or null");
    check("/target/kind", string("/target/kind"), "a string");
    check("/target/name", string("/target/name"), "a string");
    check(
        "/target/pod",
        v.pointer("/target/pod")
            .is_none_or(|p| p.is_null() || p.is_string()),
        "absent, null or a string",
    );
    for key in ["/mode", "/profile", "/image", "/ttl", "/message"] {
        check(key, string(key), "a string");
    }
    check("/recorded", v["recorded"].is_boolean(), "a boolean");
    for key in ["/startedAt", "/expiresAt", "/endedAt"] {
        check(key, opt_time(key), "an RFC 3339 time or null");
    }
    check("/reason", is_camel(&v["reason"]), "a CamelCase word");
    ensure(wrong.is_empty(), || wrong.join("; "))
}
