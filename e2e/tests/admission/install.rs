//! The suite's setup (certificates and the stamp key; namespaces, workloads, users and a Secret;
//! the operator with its webhook) and its cleanup.

use std::fs;
use std::io::Read;
use std::time::Duration;

use debugsession_e2e::*;

use crate::sessions::{ORPHAN_LIVE, ORPHAN_STOPPED, OTHER, SECRET, VICTIM, snapshot};
use crate::webhook::{LABEL, delete_webhooks, start_operator_and_webhooks, stop_operator};
use crate::{Run, step};

const DEPLOY: &str = "e2e/fixtures/nginx-deployment.yaml";
/// The victim workload: one replica, an initContainer `setup` and the app container `nginx`.
const VICTIM_DEPLOY: &str = "e2e/fixtures/admission-deployment-init.yaml";
/// The session the suite creates in kube-system.
pub const KUBE_SYSTEM_SESSION: &str = "adm-e2e-kube-system";

pub fn install(run: &mut Run) -> R<()> {
    wait_cluster_up(Duration::from_secs(300))?;
    install_crd()?;
    step("certificates and the stamp key");
    certificates_and_key(run)?;
    step("namespaces, workloads, users and a Secret");
    namespaces_workloads_users(run)?;
    snapshots(run)?;
    step("the workloads and users of the mode rows");
    crate::modes::install(run)?;
    step("the namespace, workloads and users of the approval rows");
    crate::approvals::install(run)?;
    step("operator with its webhook, and the webhook configurations");
    start_operator_and_webhooks(run)?;
    step(&format!("operator username: {}", run.operator_user));
    Ok(())
}

/// A CA and a serving certificate for 127.0.0.1 (e2e/admission/make-certs.sh), a random stamp key.
fn certificates_and_key(run: &mut Run) -> R<()> {
    fs::create_dir_all(&run.dir).map_err(|e| e.to_string())?;
    let script = root().join("e2e/admission/make-certs.sh");
    run_ok(
        &script.to_string_lossy(),
        &[&run.dir.to_string_lossy(), "127.0.0.1"],
        Duration::from_secs(60),
    )?;
    let ca = fs::read(run.dir.join("ca.crt")).map_err(|e| e.to_string())?;
    run.ca_b64 = b64(&ca);
    let mut key = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| e.to_string())?;
    fs::write(
        run.dir.join("stamp.key"),
        key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    )
    .map_err(|e| e.to_string())
}

/// The nginx fixture with one replica, under `name` and app label `name` (its container stays
/// `nginx`).
pub fn deployment_named(name: &str) -> R<String> {
    let app = format!("app: {name}");
    let meta = format!("metadata:\n  name: {name}\n");
    render_fixture(
        DEPLOY,
        &[
            ("replicas: 2", "replicas: 1"),
            ("app: nginx", &app),
            ("metadata:\n  name: nginx\n", &meta),
        ],
    )
}

fn rbac_yaml(run: &Run, ns: &str) -> String {
    let role = |name: &str, rules: &str| {
        format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {name}\n  namespace: {ns}\nrules:\n{rules}"
        )
    };
    let binding = |role: &str, user: &str| {
        format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {role}-{user}\n  namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {role}\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: {user}\n"
        )
    };
    let sessions = "- apiGroups: [debugsession.dev]\n  resources: [debugsessions]\n  verbs: [create, get, list, watch, update, patch, delete]\n- apiGroups: [apps]\n  resources: [deployments]\n  verbs: [get, list, watch]\n";
    let exec = "- apiGroups: [\"\"]\n  resources: [pods/exec, pods/attach]\n  verbs: [create]\n- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: [get, list]\n";
    let patch = "- apiGroups: [apps]\n  resources: [deployments]\n  verbs: [patch]\n";
    let mut out = String::new();
    out += &role("dbgs-sessions", sessions);
    out += &role("dbgs-exec", exec);
    out += &role("dbgs-patch", patch);
    for (user, roles) in [
        // Like the debugsession-edit ClusterRole: sessions, nothing on pods or workloads.
        (run.user("editor"), vec!["dbgs-sessions"]),
        (run.user("noexec"), vec!["dbgs-sessions", "dbgs-patch"]),
        (run.user("nopatch"), vec!["dbgs-sessions", "dbgs-exec"]),
        (
            run.user("full"),
            vec!["dbgs-sessions", "dbgs-exec", "dbgs-patch"],
        ),
    ] {
        for r in roles {
            out += &binding(r, &user);
        }
    }
    out
}

/// The suite's namespace and a denied one (labelled for the webhooks, with Deployment nginx and
/// the users' RBAC), the victim, other and orphan Deployments, the Secret, and a Deployment in
/// kube-system; waits for their rollouts.
fn namespaces_workloads_users(run: &mut Run) -> R<()> {
    let nginx = deployment_named("nginx")?;
    for ns in [run.ns.clone(), run.denied_ns.clone()] {
        k(&["create", "namespace", &ns])?;
        k(&["label", "namespace", &ns, &format!("{LABEL}={}", run.id)])?;
        k_in(&nginx, &["apply", "-n", &ns, "-f", "-"])?;
        k_in(&rbac_yaml(run, &ns), &["apply", "-f", "-"])?;
    }
    let victim = render_fixture(VICTIM_DEPLOY, &[])?;
    k_in(&victim, &["apply", "-n", &run.ns, "-f", "-"])?;
    for name in [OTHER, ORPHAN_LIVE, ORPHAN_STOPPED] {
        k_in(
            &deployment_named(name)?,
            &["apply", "-n", &run.ns, "-f", "-"],
        )?;
    }
    k(&[
        "create",
        "secret",
        "generic",
        SECRET,
        "-n",
        &run.ns,
        "--from-literal=token=not-for-the-editor",
    ])?;
    k_in(
        &nginx.replace("name: nginx\n", &format!("name: {}\n", run.ks_deploy)),
        &["apply", "-n", "kube-system", "-f", "-"],
    )?;
    let sessions_on = [VICTIM, ORPHAN_LIVE, ORPHAN_STOPPED];
    let all = watched(run)
        .into_iter()
        .chain(sessions_on.iter().map(|n| (run.ns.clone(), n.to_string())));
    for (ns, name) in all {
        k(&[
            "rollout",
            "status",
            "-n",
            &ns,
            &format!("deployment/{name}"),
            "--timeout=120s",
        ])?;
    }
    Ok(())
}

/// Workloads no request may change.
fn watched(run: &Run) -> Vec<(String, String)> {
    vec![
        (run.ns.clone(), "nginx".to_string()),
        (run.ns.clone(), OTHER.to_string()),
        (run.denied_ns.clone(), "nginx".to_string()),
        ("kube-system".to_string(), run.ks_deploy.clone()),
    ]
}

/// The generations of the watched workloads, and the templates of those sessions will hold.
fn snapshots(run: &mut Run) -> R<()> {
    for (ns, name) in watched(run) {
        let generation = snapshot(&ns, &name)?.generation;
        run.watched.push((ns, name, generation));
    }
    for name in [VICTIM, ORPHAN_LIVE, ORPHAN_STOPPED, OTHER] {
        let snap = snapshot(&run.ns, name)?;
        run.pre_session.insert(name.to_string(), snap);
    }
    Ok(())
}

/// Takes everything away: webhooks first (with failurePolicy Fail and the operator gone, they
/// would block deletes), the sessions while the operator runs, then what a stopped operator left.
pub fn cleanup(run: &mut Run) {
    delete_webhooks(run);
    let _ = kubectl(&[
        "delete",
        "--ignore-not-found",
        "--wait=true",
        "--timeout=60s",
        "-n",
        "kube-system",
        "debugsession",
        KUBE_SYSTEM_SESSION,
    ]);
    for ns in [&run.ns, &run.denied_ns, &run.appr_ns] {
        let _ = delete_sessions(ns);
    }
    stop_operator(run);
    // Anything left holds the finalizer of a stopped operator: drop it.
    for ns in ["kube-system", &run.ns, &run.denied_ns, &run.appr_ns] {
        for name in session_names(ns).unwrap_or_default() {
            if ns != "kube-system" || name == KUBE_SYSTEM_SESSION {
                let _ = strip_finalizers(ns, &name);
            }
        }
    }
    let _ = kubectl(&[
        "delete",
        "--ignore-not-found",
        "-n",
        "kube-system",
        "deployment",
        &run.ks_deploy,
    ]);
    let _ = kubectl(&[
        "delete",
        "--ignore-not-found",
        "--wait=false",
        "namespace",
        &run.ns,
        &run.denied_ns,
        &run.appr_ns,
    ]);
}
