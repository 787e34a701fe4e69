//! The workload stays its owner's: an edit made during the session survives the revert, a
//! `shareProcessNamespace: true` or `false` the owner set stays, and a shell removed by someone
//! else (drift) comes back with a warning.

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

/// The owner's explicit `shareProcessNamespace: false`, which the shell takes, is back after the
/// session: the same template, the workload back on its own ReplicaSet, and the owner's next
/// `kubectl apply` finds nothing to change.
pub fn preexisting_share_pns_off(ns: &Ns, _: &Suite) -> R<()> {
    let off = "terminationGracePeriodSeconds: 2\n      shareProcessNamespace: false";
    let edits = [
        ("replicas: 2", "replicas: 1"),
        ("terminationGracePeriodSeconds: 2", off),
    ];
    ns.fixture(DEPLOY, &edits)?;
    ns.rollout("deployment", "nginx")?;
    let original = ns.template("deployment", "nginx")?;
    ensure(original["spec"]["shareProcessNamespace"] == false, || {
        "fixture lacks shareProcessNamespace: false".into()
    })?;
    let own_rs = active_replica_sets(ns)?;
    ns.session("pnsoff", "15m")?;
    ns.wait_phase("pnsoff", "Active", TIMEOUT)?;
    ns.assert_applied("deployment", "nginx", "pnsoff")?;
    let w = ns.get("deployment", "nginx")?;
    ensure(w.pointer(SHARE_OFF_PTR) == Some(&json!("false")), || {
        format!(
            "no record of the owner's false: {}",
            w["metadata"]["annotations"]
        )
    })?;
    ns.delete_session("pnsoff")?;
    ns.assert_reverted("deployment", "nginx", &original)?;
    let w = ns.get("deployment", "nginx")?;
    ensure(w.pointer(SHARE_OFF_PTR).is_none(), || "record left".into())?;
    ns.rollout("deployment", "nginx")?;
    let back = active_replica_sets(ns)?;
    ensure(back == own_rs, || {
        format!("rolled to {back:?} instead of back to its own ReplicaSet {own_rs:?}")
    })?;
    let generation = w["metadata"]["generation"].clone();
    let again = k_in(
        &render_fixture(DEPLOY, &edits)?,
        &["apply", "-n", &ns.name, "-f", "-"],
    )?;
    ensure(again.contains("unchanged"), || {
        format!("the owner's apply changed it: {again}")
    })?;
    let now = ns.get("deployment", "nginx")?["metadata"]["generation"].clone();
    ensure(now == generation, || {
        format!("generation {generation} -> {now} after the owner's apply")
    })
}

const SHARE_OFF_PTR: &str =
    "/metadata/annotations/debugsession.dev~1restore-share-process-namespace";

/// The names of the Deployment's ReplicaSets that want pods.
fn active_replica_sets(ns: &Ns) -> R<Vec<String>> {
    let v = get_json(&["replicasets", "-n", &ns.name, "-l", "app=nginx"])?;
    let mut names: Vec<String> = (v["items"].as_array().into_iter().flatten())
        .filter(|rs| rs["spec"]["replicas"].as_i64().unwrap_or(0) > 0)
        .map(|rs| s(rs, "/metadata/name").to_string())
        .collect();
    names.sort();
    Ok(names)
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
