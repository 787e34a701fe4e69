//! A client for the cluster kubectl would talk to: `--kubeconfig`, else `$KUBECONFIG` (a list of
//! files, merged), else `~/.kube/config`, else the in-cluster service account; `--context`; and the
//! namespace `-n`, else the context's, else `default`.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::cli::Global;

pub struct Kube {
    pub client: Client,
    pub namespace: String,
}

pub async fn connect(g: &Global) -> Result<Kube, String> {
    let options = KubeConfigOptions {
        context: g.context.clone(),
        ..Default::default()
    };
    let config = match &g.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| format!("reading {path}: {e}"))?;
            Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| format!("kubeconfig {path}: {e}"))?
        }
        None if g.context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| format!("kubeconfig: {e}"))?,
        None => Config::infer().await.map_err(|e| {
            format!("no cluster to talk to: {e} (set KUBECONFIG or pass --kubeconfig)")
        })?,
    };
    let namespace = g
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| format!("creating the client: {e}"))?;
    Ok(Kube { client, namespace })
}
