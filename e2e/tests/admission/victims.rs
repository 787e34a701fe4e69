//! The `full` user's sessions the requests of issue 8 attack: RUNNING (Active on VICTIM), PENDING
//! (waiting behind it), and one Active session on each orphan workload. Afterwards: the victim
//! exactly as RUNNING left it, then released; every watched workload untouched.

use std::thread;
use std::time::Duration;

use debugsession_e2e::*;

use crate::sessions::{
    ORPHAN_LIVE, ORPHAN_STOPPED, PENDING, RUNNING, VICTIM, create_as, delete_session,
    matches_snapshot, session_json, snapshot, spec_for, untouched, wait_active,
};
use crate::{Run, step};

/// Starts the sessions of `full` and snapshots VICTIM while RUNNING holds it.
pub fn start(run: &mut Run) -> R<()> {
    step("sessions of the full user: one running, one pending, two to orphan");
    let ns = run.ns.clone();
    let full = run.user("full");
    let running = [
        (RUNNING, VICTIM),
        (ORPHAN_LIVE, ORPHAN_LIVE),
        (ORPHAN_STOPPED, ORPHAN_STOPPED),
    ];
    for (name, workload) in running {
        let manifest = session_json(name, spec_for(workload, "10m"), json!({}));
        create_as(&ns, Some(&full), &manifest)?;
    }
    for (name, _) in running {
        wait_active(&ns, name)?;
    }
    let held = snapshot(&ns, VICTIM)?;
    ensure(has_shell(&held.template), || {
        format!("{RUNNING} is Active but {VICTIM} has no shell")
    })?;
    run.held = Some(held);
    let manifest = session_json(PENDING, spec_for(VICTIM, "10m"), json!({}));
    create_as(&ns, Some(&full), &manifest)?;
    WAIT.session(
        &ns,
        PENDING,
        "Pending with HeldByOtherSession",
        TIMEOUT,
        |v| phase_is(v, "Pending") && cond_is(v, "Ready", "False", Some("HeldByOtherSession")),
    )?;
    Ok(())
}

/// After the requests (and time for a misbehaving controller to act): the victim workload is
/// exactly as RUNNING left it (else it counts as changed), the victim sessions still run and wait;
/// then they end and the workload comes back.
pub fn intact_then_release(run: &mut Run) -> R<()> {
    thread::sleep(Duration::from_secs(5));
    let mut errors = Vec::new();
    let held = match &run.held {
        Some(h) => matches_snapshot(&run.ns, VICTIM, h, true),
        None => Err("no snapshot of the victim".into()),
    };
    if let Err(e) = held {
        run.changed.push(e.clone());
        errors.push(e);
    }
    for r in [sessions_still_there(run), release(run)] {
        if let Err(e) = r {
            errors.push(format!("victim sessions: {e}"));
        }
    }
    ensure(errors.is_empty(), || errors.join("\n  "))
}

fn sessions_still_there(run: &Run) -> R<()> {
    let v = get_session(&run.ns, RUNNING)?;
    ensure(phase_is(&v, "Active"), || {
        format!("{RUNNING} is no longer Active: {}", summary(&v))
    })?;
    let v = get_session(&run.ns, PENDING)?;
    ensure(phase_is(&v, "Pending"), || {
        format!("{PENDING} is no longer Pending: {}", summary(&v))
    })
}

/// Ends the victim sessions (the waiting one first, so that it does not start) while the operator
/// runs; the victim workload must come back as it was before them.
fn release(run: &Run) -> R<()> {
    for name in [PENDING, RUNNING] {
        delete_session(&run.ns, name, "90s")?;
    }
    let pre = &run.pre_session[VICTIM];
    wait_for("the victim workload to be reverted", TIMEOUT, || {
        matches_snapshot(&run.ns, VICTIM, pre, false)
    })
}

/// Every watched workload has its generation and no shell, the orphan workloads are back as they
/// were before any session; prints the suite's verdict on the forbidden requests.
pub fn workloads_untouched(run: &mut Run) -> R<()> {
    let mut changed = Vec::new();
    for (ns, name, gen_before) in &run.watched {
        if let Err(e) = untouched(ns, name, *gen_before) {
            changed.push(e);
        }
    }
    for name in [ORPHAN_LIVE, ORPHAN_STOPPED] {
        if let Err(e) = matches_snapshot(&run.ns, name, &run.pre_session[name], false) {
            changed.push(e);
        }
    }
    run.changed.extend(changed.iter().cloned());
    println!("{}", run.tally());
    ensure(changed.is_empty(), || changed.join("\n  "))
}
