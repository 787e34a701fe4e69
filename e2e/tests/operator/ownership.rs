//! The workload stays its owner's: an edit made during the session survives the revert, a
//! `shareProcessNamespace: true` the owner set stays, and a shell removed by someone else (drift)
//! comes back with a warning.

use debugsession_e2e::*;

use crate::Suite;
use crate::ns::{DEPLOY, Ns};
use crate::pods::nginx;

pub fn user_edit_survives(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.session("edit", "30s")?;
    ns.wait_phase("edit", "Active", TIMEOUT)?;
    ns.k(&["set", "env", "deployment/nginx", "-c", "nginx", "FOO=bar"])?;
    ns.assert_applied("deployment", "nginx", "edit")?;
    ns.wait_phase("edit", "Expired", TIMEOUT)?;
    let w = ns.get("deployment", "nginx")?;
    let tpl = &w["spec"]["template"];
    ensure(!has_shell(tpl), || {
        "shell still in the template after expiry".into()
    })?;
    let app = containers(tpl)
        .into_iter()
        .find(|c| c["name"] == "nginx")
        .unwrap_or(Value::Null);
    ensure(
        app["env"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["name"] == "FOO" && e["value"] == "bar")),
        || {
            format!(
                "the user's FOO=bar did not survive the revert: env {}",
                app["env"]
            )
        },
    )?;
    // Everything but that env var is as before.
    let mut expected = original.clone();
    expected["spec"]["containers"][0]["env"] = json!([{"name": "FOO", "value": "bar"}]);
    template_diff(&expected, tpl)?;
    ensure(w.pointer(HOLDER_PTR).is_none(), || "annotation left".into())
}

pub fn preexisting_share_pns(ns: &Ns, _: &Suite) -> R<()> {
    ns.fixture(
        DEPLOY,
        &[
            ("replicas: 2", "replicas: 1"),
            (
                "terminationGracePeriodSeconds: 2",
                "terminationGracePeriodSeconds: 2\n      shareProcessNamespace: true",
            ),
        ],
    )?;
    ns.rollout("deployment", "nginx")?;
    let original = ns.template("deployment", "nginx")?;
    ensure(original["spec"]["shareProcessNamespace"] == true, || {
        "fixture lacks shareProcessNamespace".into()
    })?;
    ns.session("pns", "15m")?;
    ns.wait_phase("pns", "Active", TIMEOUT)?;
    ns.assert_applied("deployment", "nginx", "pns")?;
    ns.delete_session("pns")?;
    ns.assert_reverted("deployment", "nginx", &original)?;
    let tpl = ns.template("deployment", "nginx")?;
    ensure(tpl["spec"]["shareProcessNamespace"] == true, || {
        "the owner's shareProcessNamespace: true was removed".into()
    })
}

pub fn drift(ns: &Ns, _: &Suite) -> R<()> {
    let original = nginx(ns, 1)?;
    ns.session("drift", "15m")?;
    ns.wait_phase("drift", "Active", TIMEOUT)?;
    let patch = shell_removal_patch(&ns.template("deployment", "nginx")?)?;
    ns.k(&["patch", "deployment", "nginx", "--type=json", "-p", &patch])?;
    // (no check that the shell is gone right after the patch: the operator may re-apply within ms)
    let ev = ns.wait_event("drift", "Drifted", TIMEOUT)?;
    ensure(ev.0 == "Warning" && ev.2.contains(SHELL), || {
        format!("Drifted event {ev:?}")
    })?;
    wait_for("the shell back in the template", TIMEOUT, || {
        if has_shell(&ns.template("deployment", "nginx")?) {
            Ok(())
        } else {
            Err("not yet".into())
        }
    })?;
    ns.wait_active("drift", TIMEOUT)?;
    ns.assert_applied("deployment", "nginx", "drift")?;
    ns.delete_session("drift")?;
    ns.assert_reverted("deployment", "nginx", &original)
}
