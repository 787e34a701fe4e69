//! `end NAME`: deletes the session, then waits until the workload is back: the session gone (its
//! finalizer reverts the workload first), and no pod of the target still carrying the shell
//! (Patch: the rollout back is done), or the copy deleted (Copy). An ephemeral shell stays in the
//! pod's spec (Kubernetes cannot remove one) with its command killed.

use std::time::{Duration, Instant};

use debugsession_operator::api::{DebugSession, Mode, TargetKind};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::api::{DeleteParams, ListParams};

use crate::client::Kube;
use crate::explain::{self, Doing};
use crate::progress::{self, Progress};
use crate::session;

pub async fn run(
    k: &Kube,
    api: &Api<DebugSession>,
    name: &str,
    timeout: Duration,
    no_wait: bool,
) -> Result<(), String> {
    let s = session::get(api, name, &k.namespace).await?;
    api.delete(name, &DeleteParams::default())
        .await
        .map_err(|e| {
            explain::api(
                &e,
                Doing::Read {
                    name,
                    namespace: &k.namespace,
                },
            )
        })?;
    if no_wait {
        println!("debugsession.debugsession.dev/{name} deleted");
        return Ok(());
    }
    let start = Instant::now();
    let mut progress = Progress::new(format!("debugsession/{name}: "));
    loop {
        let now = session::get_opt(api, name, &k.namespace).await?;
        progress.show(&progress::going_away(now.as_ref()));
        if now.is_none() {
            break;
        }
        if start.elapsed() > timeout {
            progress.done();
            return Err(format!(
                "debugsession/{name} is still being reverted after {}s: {}",
                timeout.as_secs(),
                progress::going_away(now.as_ref())
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mode = s.status.as_ref().and_then(|st| st.mode);
    let shell = s.status.as_ref().and_then(|st| st.shell_container.clone());
    let pods: Api<Pod> = Api::namespaced(k.client.clone(), &k.namespace);
    match (mode, shell) {
        (Some(Mode::Patch), Some(shell)) => {
            let selector = selector(k, s.spec.target.kind, &s.spec.target.name).await?;
            loop {
                let list = pods
                    .list(&ListParams::default().labels(&selector))
                    .await
                    .map_err(|e| explain::api(&e, Doing::Other("listing the target's pods")))?;
                let left = list
                    .items
                    .iter()
                    .filter(|p| {
                        p.spec
                            .as_ref()
                            .is_some_and(|sp| sp.containers.iter().any(|c| c.name == shell))
                    })
                    .count();
                if left == 0 {
                    break;
                }
                progress.show(&format!(
                    "reverted; {left} pod{} with the shell still running",
                    if left == 1 { "" } else { "s" }
                ));
                if start.elapsed() > timeout {
                    progress.done();
                    return Err(format!(
                        "{left} pods of {} still carry the shell after {}s",
                        s.spec.target.name,
                        timeout.as_secs()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        (Some(Mode::Copy), _) => {
            let copy = format!("{name}-copy");
            while pods
                .get_opt(&copy)
                .await
                .map_err(|e| explain::api(&e, Doing::Other("reading the copy")))?
                .is_some()
            {
                progress.show(&format!("waiting for pod {copy} to go"));
                if start.elapsed() > timeout {
                    progress.done();
                    return Err(format!(
                        "pod {copy} is still there after {}s",
                        timeout.as_secs()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        _ => {}
    }
    progress.show("the workload is back as it was");
    progress.done();
    println!("debugsession.debugsession.dev/{name} ended");
    Ok(())
}

/// The label selector of the target's pods, as `key=value,...`.
async fn selector(k: &Kube, kind: TargetKind, name: &str) -> Result<String, String> {
    let err = |e: kube::Error| explain::api(&e, Doing::Other("reading the target"));
    let sel: Option<LabelSelector> = match kind {
        TargetKind::Deployment => Api::<Deployment>::namespaced(k.client.clone(), &k.namespace)
            .get(name)
            .await
            .map_err(err)?
            .spec
            .map(|s| s.selector),
        TargetKind::StatefulSet => Api::<StatefulSet>::namespaced(k.client.clone(), &k.namespace)
            .get(name)
            .await
            .map_err(err)?
            .spec
            .map(|s| s.selector),
        TargetKind::DaemonSet => Api::<DaemonSet>::namespaced(k.client.clone(), &k.namespace)
            .get(name)
            .await
            .map_err(err)?
            .spec
            .map(|s| s.selector),
        TargetKind::Pod => return Ok(String::new()),
    };
    Ok(sel
        .and_then(|s| s.match_labels)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(","))
}
