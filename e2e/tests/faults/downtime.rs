//! The operator down across a delete or across the expiry.

use debugsession_e2e::*;

use crate::fault::Fault;
use crate::ns::check_expired;
use crate::suite::Suite;
use crate::{SHORT, TARGET};

/// The operator stopped; the session deleted meanwhile; the operator started: cleanup reverts.
pub fn stage_down_delete(suite: &Suite, f: &mut Fault) {
    f.step("operator down across a delete", |f| {
        let t = suite.while_stopped(|| {
            f.ns.k(&["delete", "debugsession", &f.session, "--wait=false"])?;
            let v = f.ns.dbgs(&f.session)?;
            ensure(v.pointer("/metadata/deletionTimestamp").is_some(), || {
                "the session is not being deleted".to_string()
            })?;
            shell_stayed(f)?;
            f.injected = true;
            Ok(())
        })?;
        f.ns.wait_gone(&f.session, SHORT)?;
        f.note(format!(
            "FIGURE down-across-delete-start-to-gone-seconds={:.1}",
            t.elapsed().as_secs_f64()
        ));
        Ok(())
    });
}

/// The operator stopped before expiresAt and started after it: reverts at once.
pub fn stage_down_expiry(suite: &Suite, f: &mut Fault) {
    f.step("operator down across the expiry", |f| {
        let left = f.expires - now_epoch();
        ensure(left > 1.0, || {
            format!("stage began {left:.1}s before the expiry (scheduling)")
        })?;
        let t = suite.while_stopped(|| {
            sleep_until_epoch(f.expires + 2.0);
            let v = f.ns.dbgs(&f.session)?;
            ensure(phase_is(&v, "Active"), || {
                format!("phase changed while the operator was down: {}", summary(&v))
            })?;
            shell_stayed(f)?;
            f.injected = true;
            Ok(())
        })?;
        let v = f.ns.wait_phase(&f.session, "Expired", SHORT)?;
        let secs = t.elapsed().as_secs_f64();
        f.note(format!(
            "FIGURE down-across-expiry-start-to-expired-seconds={secs:.1}"
        ));
        check_expired(&v)?;
        ensure(secs <= 10.0, || {
            format!("reverted {secs:.1}s after the start, not at once")
        })
    });
}

/// The shell is still in the workload while the operator is down.
fn shell_stayed(f: &Fault) -> R<()> {
    ensure(has_shell(&f.ns.template(TARGET)?), || {
        "the shell went while the operator was down".to_string()
    })
}
