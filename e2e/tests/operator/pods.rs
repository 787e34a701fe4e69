//! The workload most scenarios debug (Deployment nginx) and its pods rolling to and from the shell.

use debugsession_e2e::*;

use crate::ns::{DEPLOY, Ns, pod_name};

/// Creates Deployment nginx (`replicas`) and returns its rolled-out template.
pub fn nginx(ns: &Ns, replicas: u32) -> R<Value> {
    let r = format!("replicas: {replicas}");
    ns.fixture(DEPLOY, &[("replicas: 2", &r)])?;
    ns.rollout("deployment", "nginx")?;
    ns.template("deployment", "nginx")
}

/// Waits until `want` live pods of `selector` all have the shell and the `old` ones are gone.
pub fn wait_pods_with_shell(ns: &Ns, selector: &str, want: usize, old: &[String]) -> R<Vec<Value>> {
    wait_for(
        &format!("{want} pods ({selector}) with {SHELL}, old pods gone"),
        TIMEOUT,
        || {
            let all = ns.all_pods(selector)?;
            let lingering: Vec<String> = all
                .iter()
                .map(pod_name)
                .filter(|n| old.contains(n))
                .collect();
            let live: Vec<Value> = all
                .into_iter()
                .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
                .collect();
            let with = live.iter().filter(|p| has_shell(p)).count();
            if live.len() == want && with == want && lingering.is_empty() {
                Ok(live)
            } else {
                Err(format!(
                    "{} live pods, {with} with shell, old pods still present: {lingering:?}",
                    live.len()
                ))
            }
        },
    )
}

/// Waits until no pod of `selector` (terminating ones included) has the shell, and some exist.
pub fn wait_pods_without_shell(ns: &Ns, selector: &str) -> R<()> {
    wait_for(
        &format!("pods ({selector}) without {SHELL}"),
        TIMEOUT,
        || {
            let all = ns.all_pods(selector)?;
            let names: Vec<String> = all.iter().map(pod_name).collect();
            let with: Vec<String> = all.iter().filter(|p| has_shell(p)).map(pod_name).collect();
            if with.is_empty() && !names.is_empty() {
                Ok(())
            } else {
                Err(format!("pods with shell: {with:?}; all pods {names:?}"))
            }
        },
    )
}
