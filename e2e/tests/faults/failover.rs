//! A leader failover during the revert.

use std::time::{Duration, Instant};

use debugsession_e2e::*;

use crate::fault::{Fault, check_pause_line};
use crate::ns::{SLOW, check_expired, unique};
use crate::suite::{Suite, log_lines, wait_paused};
use crate::{SHORT, TARGET};

/// Two operators with leader election; the leader pauses after the release on expiry and is
/// SIGKILLed; the standby takes the lease and finishes.
pub fn stage_failover(suite: &Suite, f: &mut Fault) {
    let point = "after-release";
    f.step("leader killed during the revert", |f| {
        let left = f.expires - now_epoch();
        ensure(left > 3.0, || {
            format!("stage began {left:.1}s before the expiry (scheduling)")
        })?;
        suite.kill_normal();
        let lease = unique("faults-failover");
        let ns = f.ns.name.clone();
        let flags = [
            "--leader-elect",
            "--lease-namespace",
            ns.as_str(),
            "--lease-name",
            lease.as_str(),
            "--lease-duration",
            "6",
        ];
        let holder = || lease_holder(&ns, &lease);
        let mut ops: Vec<Operator> = Vec::new();
        let res = (|| -> R<()> {
            ops.push(suite.start_paused(
                &format!("{}-a", f.row),
                point,
                &flags,
                &[("POD_NAME", "faults-a")],
            )?);
            SLOW.until("faults-a to hold the lease", SHORT, || {
                let h = holder()?;
                ensure(h == "faults-a", || format!("holder {h}"))
            })?;
            ops.push(suite.start_paused(
                &format!("{}-b", f.row),
                "",
                &flags,
                &[("POD_NAME", "faults-b")],
            )?);
            let timeout = Duration::from_secs_f64(f.expires - now_epoch() + 10.0);
            let line = wait_paused(&ops[0].log, point, &f.ns.name, &f.session, timeout)?;
            check_pause_line(f, &line);
            let w = f.ns.deployment(TARGET)?;
            let v = f.ns.dbgs(&f.session)?;
            ensure(
                !has_shell(&w["spec"]["template"]) && !phase_is(&v, "Expired"),
                || {
                    format!(
                        "at after-release: shell {}, {}",
                        has_shell(&w["spec"]["template"]),
                        summary(&v)
                    )
                },
            )?;
            ops[0].kill();
            f.injected = true;
            let t = Instant::now();
            SLOW.until("the standby faults-b to take the lease", SHORT, || {
                let h = holder()?;
                ensure(h == "faults-b", || format!("holder still {h}"))
            })?;
            f.note(format!(
                "FIGURE failover-takeover-seconds={:.1}",
                t.elapsed().as_secs_f64()
            ));
            let v = f.ns.wait_phase(&f.session, "Expired", SHORT).map_err(|e| {
                format!(
                    "{e}; standby log: {}",
                    log_lines(&ops[1].log, &f.ns.name, 5)
                )
            })?;
            check_expired(&v)
        })();
        for mut o in ops {
            o.stop();
        }
        suite.start_normal()?;
        res
    });
}
