//! The operator process going away: killed across a session's expiry (the restarted operator
//! expires and reverts it), and two leader-elected replicas with the leader killed mid-session (the
//! standby takes over). Both replace the suite's operator, so they run alone.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use debugsession_e2e::*;

use crate::Suite;
use crate::ns::Ns;
use crate::pods::nginx;

fn suite_operator(op: &Mutex<Option<Operator>>) -> R<MutexGuard<'_, Option<Operator>>> {
    op.lock().map_err(|_| "operator lock poisoned".to_string())
}

pub fn restart(ns: &Ns, suite: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.session("restart", "30s")?;
    let v = ns.wait_phase("restart", "Active", TIMEOUT)?;
    let expires = parse_time(s(&v, "/status/expiresAt"))?;
    {
        let mut op = suite_operator(&suite.op)?;
        let pid = op.as_ref().and_then(Operator::pid);
        ns.say(&format!("SIGKILL operator pid {pid:?}"));
        if let Some(o) = op.as_mut() {
            o.kill();
        }
        *op = None;
    }
    // The TTL passes while nobody runs.
    sleep_until_epoch(expires + 5.0);
    let v = ns.dbgs("restart")?;
    ensure(phase_is(&v, "Active"), || {
        format!("phase changed while the operator was down: {}", summary(&v))
    })?;
    ensure(has_shell(&ns.template("deployment", "nginx")?), || {
        "shell gone while the operator was down".into()
    })?;
    let t0 = Instant::now();
    let op = Operator::start(&suite.log)?;
    *suite_operator(&suite.op)? = Some(op);
    let v = ns.wait_phase("restart", "Expired", TIMEOUT)?;
    println!(
        "FIGURE restart-to-expired-seconds={:.1}",
        t0.elapsed().as_secs_f64()
    );
    ns.assert_reverted("deployment", "nginx", &original)?;
    ensure(cond_is(&v, "Reverted", "True", None), || {
        cond_summary(&v, "Reverted")
    })?;
    ns.delete_session("restart")
}

const LEASE: &str = "e2e-failover";

/// Two operators with leader election; the leader is SIGKILLed mid-session and the standby takes
/// over within the lease duration, then expires and reverts the session.
pub fn failover(ns: &Ns, suite: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    // The suite's operator would reconcile too: stop it for the duration.
    let mut shared = suite_operator(&suite.op)?;
    if let Some(o) = shared.as_mut() {
        o.stop();
    }
    *shared = None;
    let flags = [
        "--leader-elect",
        "--lease-namespace",
        &ns.name,
        "--lease-name",
        LEASE,
        "--lease-duration",
        "6",
    ];
    let mut ops: Vec<(String, Operator)> = Vec::new();
    for id in ["replica-a", "replica-b"] {
        ops.push((
            id.to_string(),
            Operator::start_with(&suite.log, &flags, &[("POD_NAME", id)])?,
        ));
    }
    let leader = wait_for("a leader to hold the lease", TIMEOUT, || {
        lease_holder(&ns.name, LEASE)
    })?;
    ns.say(&format!("leader: {leader}"));
    ns.session("failover", "30s")?;
    ns.wait_phase("failover", "Active", TIMEOUT)?;
    let idx = ops
        .iter()
        .position(|(id, _)| *id == leader)
        .ok_or_else(|| format!("unknown leader {leader}"))?;
    let (_, mut dead) = ops.remove(idx);
    let t0 = Instant::now();
    dead.kill();
    let standby = ops[0].0.clone();
    wait_for(
        "the standby to take the lease",
        Duration::from_secs(60),
        || {
            let h = lease_holder(&ns.name, LEASE)?;
            if h == standby {
                Ok(())
            } else {
                Err(format!("holder still {h}"))
            }
        },
    )?;
    println!(
        "FIGURE failover-takeover-seconds={:.1}",
        t0.elapsed().as_secs_f64()
    );
    ns.wait_phase("failover", "Expired", TIMEOUT)?;
    ns.assert_reverted("deployment", "nginx", &original)?;
    for (_, mut o) in ops {
        o.stop();
    }
    *shared = Some(Operator::start(&suite.log)?);
    drop(shared);
    ns.delete_session("failover")
}
