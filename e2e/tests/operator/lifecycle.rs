//! A session's life: it expires on time (and reverts first), deleting it reverts, and a second
//! session on the same workload waits until the first one ends.

use std::thread;
use std::time::{Duration, Instant};

use debugsession_e2e::*;

use crate::Suite;
use crate::ns::Ns;
use crate::pods::{nginx, wait_pods_without_shell};

pub fn expiry(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.session("short", "30s")?;
    ns.wait_phase("short", "Active", TIMEOUT)?;
    ns.assert_applied("deployment", "nginx", "short")?;
    let v = ns.wait_phase("short", "Expired", TIMEOUT)?;
    let seen_expired = now_epoch();
    // The release happens before the status says Expired: the template must be back right now.
    ns.assert_reverted("deployment", "nginx", &original)?;
    let tpl = ns.template("deployment", "nginx")?;
    ensure(tpl.pointer("/spec/shareProcessNamespace").is_none(), || {
        "shareProcessNamespace still set".into()
    })?;
    ensure(cond_is(&v, "Reverted", "True", None), || {
        format!("after expiry: {}", cond_summary(&v, "Reverted"))
    })?;
    expiry_times(&v, seen_expired)?;
    ensure(
        v["status"]["pods"].as_array().is_none_or(|a| a.is_empty()),
        || "status.pods not cleared".into(),
    )?;
    ns.wait_event("short", "Expired", TIMEOUT)?;
    ns.wait_event("short", "Reverted", TIMEOUT)?;
    wait_pods_without_shell(ns, "app=nginx")?;
    // Expired sessions stay (history) and never touch the workload again.
    ns.assert_reverted("deployment", "nginx", &original)?;
    ns.delete_session("short")
}

/// expiresAt is startedAt + the TTL, endedAt follows it (FIGURE: how closely, and how soon the
/// status said Expired).
fn expiry_times(v: &Value, seen_expired: f64) -> R<()> {
    let expires = parse_time(s(v, "/status/expiresAt"))?;
    let ended = parse_time(s(v, "/status/endedAt"))?;
    let started = parse_time(s(v, "/status/startedAt"))?;
    ensure((expires - started - 30.0).abs() < 1.5, || {
        format!("expiresAt - startedAt = {}s, want 30s", expires - started)
    })?;
    ensure(ended >= expires, || {
        format!("endedAt {ended} before expiresAt {expires}")
    })?;
    println!("FIGURE expires-to-ended-seconds={:.1}", ended - expires);
    // Status times have whole seconds; this one is an upper bound to ~0.25 s (the polling period).
    println!(
        "FIGURE expires-to-seen-expired-seconds={:.2}",
        seen_expired - expires
    );
    Ok(())
}

pub fn delete_reverts(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.session("del", "15m")?;
    ns.wait_phase("del", "Active", TIMEOUT)?;
    ns.assert_applied("deployment", "nginx", "del")?;
    ns.delete_session("del")?;
    ensure(get_opt(&ns.name, "debugsession", "del")?.is_none(), || {
        "session still exists".into()
    })?;
    ns.assert_reverted("deployment", "nginx", &original)?;
    // `kubectl describe deployment nginx` tells who changed it and that it is back.
    wait_for("events on the Deployment", TIMEOUT, || {
        let reasons: Vec<String> = events(&ns.name, "Deployment", "nginx")?
            .into_iter()
            .map(|e| e.1)
            .collect();
        if ["DebugShellAdded", "DebugShellRemoved"]
            .iter()
            .all(|r| reasons.iter().any(|x| x == r))
        {
            Ok(())
        } else {
            Err(format!("reasons on the Deployment: {reasons:?}"))
        }
    })?;
    wait_pods_without_shell(ns, "app=nginx")
}

pub fn second_session_waits(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.session("first", "15m")?;
    ns.wait_phase("first", "Active", TIMEOUT)?;
    ns.session("second", "15m")?;
    let v = ns.wait_session("second", "Pending with HeldByOtherSession", TIMEOUT, |v| {
        phase_is(v, "Pending") && ready_reason(v) == "HeldByOtherSession"
    })?;
    let msg = s(condition(&v, "Ready").unwrap(), "/message").to_string();
    ensure(msg.contains("first"), || {
        format!("HeldByOtherSession message does not name the holder: {msg:?}")
    })?;
    ensure(s(&v, "/status/message").contains("first"), || {
        format!("status.message: {}", summary(&v))
    })?;
    ns.wait_event("second", "HeldByOtherSession", TIMEOUT)?;
    // It keeps waiting while the first one runs.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let v = ns.dbgs("second")?;
        ensure(phase_is(&v, "Pending"), || {
            format!("second session left Pending while held: {}", summary(&v))
        })?;
        thread::sleep(POLL);
    }
    ns.assert_applied("deployment", "nginx", "first")?;
    ns.delete_session("first")?;
    ns.wait_phase("second", "Active", LONG)?;
    let w = ns.assert_applied("deployment", "nginx", "second")?;
    let m = managers(&w);
    ensure(!m.iter().any(|m| m.ends_with("/first")), || {
        format!("first session's manager still there: {m:?}")
    })?;
    ns.delete_session("second")?;
    ns.assert_reverted("deployment", "nginx", &original)
}
