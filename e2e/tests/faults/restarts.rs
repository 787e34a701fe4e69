//! kube-apiserver or etcd restarted under an Active session (e2e/cluster/restart).

use std::time::{Duration, Instant};

use debugsession_e2e::*;

use crate::TARGET;
use crate::fault::Fault;
use crate::suite::{Suite, log_lines};

/// kube-apiserver or etcd restarted while the session is Active; the operator keeps it running.
pub fn stage_restart(suite: &Suite, f: &mut Fault, component: &str) {
    f.step(&format!("restart {component}"), |f| {
        let t = Instant::now();
        let script = root().join("e2e/cluster/restart");
        let out = run(
            &script.to_string_lossy(),
            &[component],
            None,
            Duration::from_secs(200),
        );
        ensure(out.ok, || {
            format!("e2e/cluster/restart {component}: {}", out.both().trim())
        })?;
        f.injected = true;
        f.note(format!(
            "FIGURE restart-{component}-seconds={:.1}",
            t.elapsed().as_secs_f64()
        ));
        suite.normal_alive()?;
        f.ns.wait_active(&f.session, TIMEOUT)?;
        f.ns.assert_applied(TARGET, &f.session)?;
        // The operator that lived through the restart must still see changes: the delete.
        let t = Instant::now();
        f.ns.k(&["delete", "debugsession", &f.session, "--wait=false"])?;
        let res = f.ns.wait_gone(&f.session, LONG);
        f.note(format!(
            "FIGURE restart-{component}-then-delete-to-gone-seconds={:.1} (the operator that lived through the restart)",
            t.elapsed().as_secs_f64()
        ));
        res.map_err(|e| {
            format!(
                "{e}; the operator's last warnings:\n      {}",
                log_lines(&suite.log, "\"level\":\"WARN\"", 4)
            )
        })
    });
}
