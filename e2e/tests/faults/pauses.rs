//! Operators paused at a fault point (`DEBUGSESSION_PAUSE_AT`), checked there, SIGKILLed, and
//! followed by a fresh operator that must finish the work.

use std::time::{Duration, Instant};

use debugsession_e2e::*;

use crate::fault::{Fault, check_pause_line};
use crate::ns::check_expired;
use crate::suite::{Suite, wait_paused};
use crate::{NO_EXPIRY, SHORT, TARGET};

/// after-hold / after-shell: a new session under an operator paused at `point`; SIGKILL; a fresh
/// operator without pause points must bring the session to Active.
pub fn stage_pause_new(suite: &Suite, f: &mut Fault, point: &'static str) {
    f.step(&format!("pause at {point}"), |f| {
        suite.while_paused(f.row, point, |op| {
            f.ns.session(&f.session, TARGET, NO_EXPIRY)?;
            let line = wait_paused(&op.log, point, &f.ns.name, &f.session, SHORT)?;
            check_pause_line(f, &line);
            let w = f.ns.deployment(TARGET)?;
            let holder = s(&w, HOLDER_PTR);
            let shell = has_shell(&w["spec"]["template"]);
            match point {
                // One apply takes the workload when nobody else owns a field of the shell:
                // the hold then carries the shell.
                "after-hold" => ensure(holder == f.session, || {
                    format!("at after-hold: want the holder annotation; annotation {holder:?}, shell {shell}")
                })?,
                _ => ensure(holder == f.session && shell, || {
                    format!("at after-shell: want annotation and shell; annotation {holder:?}, shell {shell}")
                })?,
            }
            f.injected = true;
            Ok(())
        })
    });
    f.step("recovery: Active under a fresh operator", |f| {
        let t = Instant::now();
        f.ns.wait_active(&f.session, LONG)?;
        f.ns.assert_applied(TARGET, &f.session)?;
        f.note(format!(
            "FIGURE {}-restart-to-active-seconds={:.1}",
            f.row,
            t.elapsed().as_secs_f64()
        ));
        Ok(())
    });
}

/// before-release / after-release: the session expires under an operator paused at `point`.
pub fn stage_pause_expiry(suite: &Suite, f: &mut Fault, point: &'static str) {
    f.step(&format!("pause at {point}"), |f| {
        let left = f.expires - now_epoch();
        ensure(left > 1.0, || {
            format!("stage began {:.1}s before the expiry (scheduling)", left)
        })?;
        suite.while_paused(f.row, point, |op| {
            let timeout = Duration::from_secs_f64(f.expires - now_epoch() + 10.0);
            let line = wait_paused(&op.log, point, &f.ns.name, &f.session, timeout)?;
            check_pause_line(f, &line);
            let w = f.ns.deployment(TARGET)?;
            let v = f.ns.dbgs(&f.session)?;
            let shell = has_shell(&w["spec"]["template"]);
            let phase = s(&v, "/status/phase").to_string();
            match point {
                "before-release" => ensure(shell && phase != "Expired", || {
                    format!("at before-release: want the shell still there and no Expired status; shell {shell}, {}", summary(&v))
                })?,
                _ => ensure(!shell && our_managers(&w).is_empty() && phase != "Expired", || {
                    format!("at after-release: want the workload released and no Expired status yet; shell {shell}, managers {:?}, {}", our_managers(&w), summary(&v))
                })?,
            }
            f.injected = true;
            Ok(())
        })
    });
    f.step("recovery: Expired under a fresh operator", |f| {
        let t = Instant::now();
        let v = f.ns.wait_phase(&f.session, "Expired", SHORT)?;
        check_expired(&v)?;
        f.note(format!(
            "FIGURE {}-restart-to-expired-seconds={:.1}",
            f.row,
            t.elapsed().as_secs_f64()
        ));
        Ok(())
    });
}

/// cleanup-after-release: the session is deleted under an operator paused there.
pub fn stage_pause_cleanup(suite: &Suite, f: &mut Fault) {
    let point = "cleanup-after-release";
    f.step(&format!("pause at {point}"), |f| {
        suite.while_paused(f.row, point, |op| {
            f.ns.k(&["delete", "debugsession", &f.session, "--wait=false"])?;
            let line = wait_paused(&op.log, point, &f.ns.name, &f.session, SHORT)?;
            check_pause_line(f, &line);
            let w = f.ns.deployment(TARGET)?;
            let v = f.ns.dbgs(&f.session)?;
            ensure(
                !has_shell(&w["spec"]["template"]) && our_managers(&w).is_empty(),
                || "at cleanup-after-release: the workload is not released".to_string(),
            )?;
            ensure(v.pointer("/metadata/deletionTimestamp").is_some(), || {
                "at cleanup-after-release: the session is not being deleted".to_string()
            })?;
            f.injected = true;
            Ok(())
        })
    });
    f.step("recovery: the session goes", |f| {
        f.ns.wait_gone(&f.session, SHORT)
    });
}
