//! The cluster the suites run against: its environment (kubeconfig, images), its version, the
//! kubectl built for it, the CRD, readiness.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::{R, Value, k, root, run, wait_for};

/// Environment of the local cluster: kubeconfig and the images imported into the node.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub env: BTreeMap<String, String>,
    pub images: BTreeMap<String, String>,
}

impl Cluster {
    pub fn image(&self, key: &str, default: &str) -> String {
        self.images
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }
    pub fn busybox(&self) -> String {
        self.image("BUSYBOX_IMAGE", "registry.local/busybox:1.35.0")
    }
    pub fn nginx(&self) -> String {
        self.image("NGINX_IMAGE", "registry.local/nginx:1.22.1")
    }
}

fn parse_env_lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("export ").unwrap_or(l);
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            let v = v.trim().trim_matches('"').trim_matches('\'');
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// Reads `e2e/cluster/env` (KUBECONFIG, KUBECACHEDIR) and `$DBGS_CLUSTER_STATE/images.env`.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let mut env = BTreeMap::new();
        if let Ok(out) = Command::new(root().join("e2e/cluster/env")).output()
            && out.status.success()
        {
            env = parse_env_lines(&String::from_utf8_lossy(&out.stdout));
        }
        if !env.contains_key("KUBECONFIG")
            && let Ok(k) = std::env::var("KUBECONFIG")
        {
            env.insert("KUBECONFIG".into(), k);
        }
        let state = std::env::var("DBGS_CLUSTER_STATE")
            .unwrap_or_else(|_| "/var/tmp/debugsession-e2e".to_string());
        let images = fs::read_to_string(Path::new(&state).join("images.env"))
            .map(|t| parse_env_lines(&t))
            .unwrap_or_default();
        Cluster { env, images }
    })
}

/// Applies the CRD from crds/ with server-side apply and waits for it to be Established.
pub fn install_crd() -> R<()> {
    let crds = root().join("crds");
    // crds/ may carry a kustomization.yaml (not a Kubernetes object): then apply it with -k.
    let flag = if crds.join("kustomization.yaml").exists() {
        "-k"
    } else {
        "-f"
    };
    k(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        flag,
        &crds.to_string_lossy(),
    ])?;
    k(&[
        "wait",
        "--for=condition=Established",
        "crd/debugsessions.debugsession.dev",
        "--timeout=90s",
    ])?;
    Ok(())
}

/// Waits until `e2e/cluster/status` reports the cluster up.
pub fn wait_cluster_up(timeout: Duration) -> R<()> {
    let status = root().join("e2e/cluster/status");
    wait_for("the local cluster (e2e/cluster/status)", timeout, || {
        let out = run(
            &status.to_string_lossy(),
            &[],
            None,
            Duration::from_secs(30),
        );
        if out.stdout.contains("cluster: up") {
            Ok(())
        } else {
            Err(out.both().lines().last().unwrap_or("").to_string())
        }
    })?;
    wait_for("the apiserver", timeout, || {
        k(&["get", "--raw", "/readyz"]).map(|_| ())
    })
}

static NODE_KUBECTL: OnceLock<Option<PathBuf>> = OnceLock::new();

/// The kubectl of the local cluster's own version (v1.20.2), built into the cluster's cache
/// (`$NODE_CACHE/bin/kubectl` of e2e/cluster/lib.sh); None when it is not there (another
/// cluster, E2E_EXTERNAL_CLUSTER=1).
pub fn node_kubectl() -> Option<PathBuf> {
    NODE_KUBECTL
        .get_or_init(|| {
            let lib = root().join("e2e/cluster/lib.sh");
            let out = Command::new("bash")
                .args([
                    "-c",
                    r#". "$1" >/dev/null && printf %s "$NODE_CACHE/bin/kubectl""#,
                    "node-kubectl",
                ])
                .arg(&lib)
                .output()
                .ok()
                .filter(|o| o.status.success())?;
            let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).into_owned());
            path.is_file().then_some(path)
        })
        .clone()
}

/// The API server's minor version (the leading digits of `/version`'s `minor`: `20+` is 20).
pub fn server_minor() -> R<u32> {
    let text = k(&["get", "--raw", "/version"])?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("/version: {e}: {text}"))?;
    let minor = v["minor"].as_str().unwrap_or("");
    let digits: String = minor.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .map_err(|_| format!("/version has no minor version: {text}"))
}
