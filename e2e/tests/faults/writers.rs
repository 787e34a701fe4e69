//! A concurrent writer of the workload during the apply and during the revert (phase 1).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use debugsession_e2e::*;

use crate::fault::Fault;
use crate::ns::check_expired;
use crate::suite::Suite;
use crate::{NO_EXPIRY, SHORT, TARGET, WRITER_APPLY, WRITER_REVERT};

const WRITER_KEY: &str = "faults.e2e/writer";

/// What a writer did: its last value written, how many writes passed and failed.
type Writes = (Option<u64>, u64, u64);

struct Writer {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Writes>,
}

/// A concurrent writer: `kubectl annotate --overwrite` of the Deployment with a counter, in a
/// tight loop until stopped.
fn start_writer(ns: &str, deploy: &str) -> Writer {
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, ns, deploy) = (stop.clone(), ns.to_string(), deploy.to_string());
    let handle = thread::spawn(move || {
        let (mut i, mut last, mut ok, mut bad) = (0u64, None, 0u64, 0u64);
        while !flag.load(Ordering::SeqCst) {
            i += 1;
            let out = kubectl(&[
                "-n",
                &ns,
                "annotate",
                "--overwrite",
                &format!("deployment/{deploy}"),
                &format!("{WRITER_KEY}={i}"),
            ]);
            if out.ok {
                last = Some(i);
                ok += 1;
            } else {
                bad += 1;
            }
        }
        (last, ok, bad)
    });
    Writer { stop, handle }
}

impl Writer {
    fn finish(self) -> Writes {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap_or((None, 0, 0))
    }
}

pub fn writer_during_apply(suite: &Suite) {
    let mut f = Fault::new(WRITER_APPLY, "wa", suite.verbose);
    f.prepare();
    f.prepare_wait();
    f.step("writer during apply", |f| {
        // The writer runs from the create until the shell is in the template (the operator's
        // apply went through it); then the rollout may finish: a writer that never stops starves
        // the Deployment controller's own status updates, which is not what this row measures.
        let w = start_writer(&f.ns.name, TARGET);
        let res = (|| -> R<()> {
            f.ns.session(&f.session, TARGET, NO_EXPIRY)?;
            wait_for("the shell in the pod template", LONG, || {
                let d = f.ns.deployment(TARGET)?;
                ensure(has_shell(&d["spec"]["template"]), || {
                    "no shell in the template yet".to_string()
                })
            })
        })();
        let writes = w.finish();
        res?;
        f.ns.wait_active(&f.session, LONG)?;
        count_writes(
            f,
            writes,
            "from the create to the applied shell",
            "the apply",
        )?;
        f.ns.assert_applied(TARGET, &f.session)?;
        f.ns.delete_session(&f.session)
    });
    f.finish(suite);
}

pub fn writer_during_revert(suite: &Suite) {
    let mut f = Fault::new(WRITER_REVERT, "wr", suite.verbose);
    f.prepare();
    f.prepare_wait();
    f.create("30s");
    f.wait_active();
    f.step("writer during the revert", |f| {
        sleep_until_epoch(f.expires - 4.0);
        let w = start_writer(&f.ns.name, TARGET);
        let res = f.ns.wait_phase(&f.session, "Expired", SHORT);
        let writes = w.finish();
        let v = res?;
        check_expired(&v)?;
        count_writes(
            f,
            writes,
            "from 4s before expiresAt to Expired",
            "the revert",
        )
    });
    f.finish(suite);
}

/// Notes what the writer did over `window`: at least 2 writes `during` the step make the fault
/// injected, and the writer's last value must survive the revert.
fn count_writes(f: &mut Fault, writes: Writes, window: &str, during: &str) -> R<()> {
    let (last, ok, bad) = writes;
    f.note(format!("writer: {ok} writes ({bad} failed) {window}"));
    ensure(ok >= 2, || format!("only {ok} writes during {during}"))?;
    f.injected = true;
    let last = last.map(|l| l.to_string()).unwrap_or_default();
    f.kept.push((WRITER_KEY.into(), last));
    Ok(())
}
