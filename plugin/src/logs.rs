//! `logs NAME`: the shell container's logs, of every pod of the session or of `--pod`.

use debugsession_operator::api::DebugSession;
use futures::AsyncBufReadExt;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;

use crate::client::Kube;
use crate::explain::{self, Doing};
use crate::session;

pub async fn run(k: &Kube, name: &str, pod: Option<&str>, follow: bool) -> Result<(), String> {
    let api: Api<DebugSession> = Api::namespaced(k.client.clone(), &k.namespace);
    let s = session::get(&api, name, &k.namespace).await?;
    let st = s.status.clone().unwrap_or_default();
    let fallback = st
        .shell_container
        .clone()
        .unwrap_or_else(|| "debug-shell".into());
    let targets: Vec<(String, String)> = st
        .pods
        .iter()
        .filter(|p| pod.is_none_or(|want| p.name == want))
        .map(|p| {
            let c = if p.container.is_empty() {
                fallback.clone()
            } else {
                p.container.clone()
            };
            (p.name.clone(), c)
        })
        .collect();
    if targets.is_empty() {
        return Err(match pod {
            Some(p) => format!("pod {p} does not carry the shell of debugsession/{name}"),
            None => format!("debugsession/{name} has no pod with the shell"),
        });
    }
    if follow && targets.len() > 1 {
        return Err(format!(
            "debugsession/{name} has {} pods: choose one with --pod to follow",
            targets.len()
        ));
    }
    let pods: Api<Pod> = Api::namespaced(k.client.clone(), &k.namespace);
    let many = targets.len() > 1;
    for (p, c) in targets {
        let lp = LogParams {
            container: Some(c),
            follow,
            ..Default::default()
        };
        let stream = pods
            .log_stream(&p, &lp)
            .await
            .map_err(|e| explain::api(&e, Doing::Other(&format!("reading the logs of {p}"))))?;
        let mut lines = stream.lines();
        while let Some(line) = lines.try_next().await.map_err(|e| e.to_string())? {
            if many {
                println!("[pod/{p}] {line}");
            } else {
                println!("{line}");
            }
        }
    }
    Ok(())
}
