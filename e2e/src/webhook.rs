//! The operator's admission webhook for a suite that needs it besides the admission suite (which
//! has its own): a throwaway CA and serving certificate, a stamp key, the
//! Mutating/ValidatingWebhookConfigurations that send the namespaces carrying one label to the
//! operator's listener on 127.0.0.1, and kubeconfigs that act as another user (impersonation).

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{R, TIMEOUT, Value, ensure, free_port, json, k, k_in, kubectl, kubectl_in, root};
use crate::{run_ok, wait_for};

/// The annotation the webhook stamps with the requester of a session.
pub const REQUESTER_ANNOTATION: &str = "debugsession.dev/requester";

/// The webhook of an operator this suite runs on 127.0.0.1, and its configurations.
#[derive(Clone, Debug)]
pub struct Webhooks {
    /// Name of both configurations.
    pub name: String,
    /// Namespaces labelled `label=value` are sent to the webhook.
    pub label: String,
    pub value: String,
    pub port: u16,
    /// Certificates (ca.crt, tls.crt, tls.key) and the stamp key (stamp.key).
    pub dir: PathBuf,
    ca_b64: String,
}

/// base64 without a dependency.
pub fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Webhooks {
    /// Makes a CA and a serving certificate for 127.0.0.1 (e2e/admission/make-certs.sh) and a
    /// random stamp key in `dir`, and picks a free port; registers nothing yet.
    pub fn prepare(name: &str, label: &str, value: &str, dir: &Path) -> R<Webhooks> {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let script = root().join("e2e/admission/make-certs.sh");
        run_ok(
            &script.to_string_lossy(),
            &[&dir.to_string_lossy(), "127.0.0.1"],
            Duration::from_secs(60),
        )?;
        let ca = fs::read(dir.join("ca.crt")).map_err(|e| e.to_string())?;
        let mut key = [0u8; 32];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .map_err(|e| e.to_string())?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        fs::write(dir.join("stamp.key"), hex).map_err(|e| e.to_string())?;
        Ok(Webhooks {
            name: name.to_string(),
            label: label.to_string(),
            value: value.to_string(),
            port: free_port(),
            dir: dir.to_path_buf(),
            ca_b64: b64(&ca),
        })
    }

    /// The operator's flags for its webhook listener and the stamp key.
    pub fn operator_args(&self) -> Vec<String> {
        vec![
            "--webhook-addr".to_string(),
            format!("127.0.0.1:{}", self.port),
            "--webhook-cert-dir".to_string(),
            self.dir.to_string_lossy().into_owned(),
            "--stamp-key-file".to_string(),
            self.dir.join("stamp.key").to_string_lossy().into_owned(),
        ]
    }

    /// The two configurations ([`configurations_yaml`]).
    pub fn yaml(&self) -> String {
        configurations_yaml(
            &self.name,
            self.port,
            &self.ca_b64,
            &self.label,
            &self.value,
        )
    }

    /// Labels namespace `ns` so that its sessions go to the webhook.
    pub fn label_namespace(&self, ns: &str) -> R<()> {
        k(&[
            "label",
            "--overwrite",
            "namespace",
            ns,
            &format!("{}={}", self.label, self.value),
        ])
        .map(|_| ())
    }

    /// Applies the configurations and waits until a server-side dry run of a session in `ns` (a
    /// labelled namespace) comes back stamped: the operator's listener answers. Returns the
    /// harness's own username as the webhook stamps it.
    pub fn register(&self, ns: &str) -> R<String> {
        k_in(&self.yaml(), &["apply", "-f", "-"])?;
        wait_for("the webhook to stamp sessions", TIMEOUT, || {
            dry_run_requester(ns, "stamp-probe", None)?
                .ok_or_else(|| "a dry run came back unstamped".to_string())
        })
    }

    /// Deletes both configurations (with failurePolicy Fail and the operator gone, they would
    /// block every change to sessions in the labelled namespaces).
    pub fn delete(&self) {
        for kind in [
            "mutatingwebhookconfiguration",
            "validatingwebhookconfiguration",
        ] {
            let _ = kubectl(&["delete", "--ignore-not-found", kind, &self.name]);
        }
    }
}

/// Mutating and Validating WebhookConfigurations named `name`, for CREATE and UPDATE of
/// DebugSessions in the namespaces labelled `label=value`, calling `https://127.0.0.1:<port>`.
pub fn configurations_yaml(
    name: &str,
    port: u16,
    ca_b64: &str,
    label: &str,
    value: &str,
) -> String {
    let hook = |path: &str, hook_name: &str| {
        format!(
            "- name: {hook_name}
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 10
  clientConfig:
    url: https://127.0.0.1:{port}/{path}
    caBundle: {ca_b64}
  rules:
  - apiGroups: [debugsession.dev]
    apiVersions: [v1alpha1]
    resources: [debugsessions]
    operations: [CREATE, UPDATE]
    scope: Namespaced
  namespaceSelector:
    matchLabels:
      {label}: \"{value}\"
"
        )
    };
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata:\n  name: {name}\nwebhooks:\n{}---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: {name}\nwebhooks:\n{}",
        hook("mutate", "mutate.debugsession.dev"),
        hook("validate", "validate.debugsession.dev"),
    )
}

/// The requester that a server-side dry-run create of a session on `deployment` in `ns` gets
/// stamped with, as `user` (None: the harness's own user); Ok(None) when nothing stamped it.
pub fn dry_run_requester(ns: &str, deployment: &str, user: Option<&str>) -> R<Option<String>> {
    let probe = json!({
        "apiVersion": "debugsession.dev/v1alpha1",
        "kind": "DebugSession",
        "metadata": {"name": "stamp-probe"},
        "spec": {"target": {"kind": "Deployment", "name": deployment}, "ttl": "1m"},
    });
    let mut args = vec![
        "create",
        "--dry-run=server",
        "-o",
        "json",
        "-n",
        ns,
        "-f",
        "-",
    ];
    if let Some(u) = user {
        args.extend(["--as", u]);
    }
    let out = kubectl_in(&probe.to_string(), &args);
    ensure(out.ok, || format!("dry run: {}", out.both().trim()))?;
    let v: Value = serde_json::from_str(&out.stdout).map_err(|e| e.to_string())?;
    Ok(v["metadata"]["annotations"][REQUESTER_ANNOTATION]
        .as_str()
        .map(str::to_string))
}

/// The user of the kubeconfig's current context, as the kubeconfig names it (the authenticated
/// username may differ: see [`dry_run_requester`]).
pub fn kubeconfig_user() -> R<String> {
    Ok(k(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.contexts[0].context.user}",
    ])?
    .trim()
    .to_string())
}

/// Writes to `path` a kubeconfig of the cluster's current context whose user impersonates `user`
/// (the `as` field, which kubectl and kube-rs clients honour): whoever uses it acts as `user`,
/// with `user`'s RBAC. Returns `path`.
pub fn kubeconfig_as(user: &str, path: &Path) -> R<PathBuf> {
    let text = k(&["config", "view", "--minify", "--flatten", "-o", "json"])?;
    let mut v: Value = serde_json::from_str(&text).map_err(|e| format!("kubeconfig: {e}"))?;
    let users = v["users"]
        .as_array_mut()
        .filter(|u| u.len() == 1)
        .ok_or("the minified kubeconfig does not have exactly one user")?;
    users[0]["user"]["as"] = json!(user);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    // JSON is YAML: kubectl and kube-rs read it as a kubeconfig. It holds the harness's
    // credentials: readable by its owner only.
    fs::write(path, v.to_string()).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64_pads_like_base64() {
        assert_eq!(b64(b""), "");
        assert_eq!(b64(b"f"), "Zg==");
        assert_eq!(b64(b"fo"), "Zm8=");
        assert_eq!(b64(b"foo"), "Zm9v");
        assert_eq!(b64(b"foob"), "Zm9vYg==");
    }
}
