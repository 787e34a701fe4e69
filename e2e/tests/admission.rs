//! End-to-end proof that the operator is no privilege escalation path (issue 5): the admission
//! webhook served by the operator stamps the requester, checks the policy and the requester's own
//! RBAC, and the controller refuses sessions that slipped past it.
//!
//! Run: `cargo build && cargo test -p debugsession-e2e --test admission`. Env:
//! DEBUGSESSION_OPERATOR_BIN overrides the operator binary; E2E_KEEP=1 keeps everything on failure.
//!
//! The suite makes a CA and a serving certificate for 127.0.0.1 (e2e/admission/make-certs.sh),
//! starts the operator with its webhook listener, registers Mutating/ValidatingWebhookConfigurations
//! that call `https://127.0.0.1:<port>/mutate|/validate` for namespaces labelled with this run's id,
//! and tries a table of forbidden requests as impersonated users with ordinary RBAC. Each must be
//! refused with a clear message and leave every workload untouched; then the allowed path must
//! work end to end.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use debugsession_e2e::*;

const LABEL: &str = "debugsession.dev/admission-e2e";
const DEPLOY: &str = "e2e/fixtures/nginx-deployment.yaml";
const REQUESTER: &str = "debugsession.dev/requester";

struct Run {
    id: String,
    ns: String,
    denied_ns: String,
    dir: PathBuf,
    port: u16,
    ca_b64: String,
    op: Option<Child>,
    log: PathBuf,
    metrics: String,
}

impl Run {
    fn user(&self, role: &str) -> String {
        format!("adm-{role}-{}", self.id)
    }
    fn webhook_name(&self) -> String {
        format!("debugsession-admission-e2e-{}", self.id)
    }
}

fn step(msg: &str) {
    println!("  .. {msg}");
}

/// base64 without a dependency.
fn b64(data: &[u8]) -> String {
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

fn session_yaml(name: &str, spec: &str, annotations: &str) -> String {
    format!(
        "apiVersion: debugsession.dev/v1alpha1\nkind: DebugSession\nmetadata:\n  name: {name}\n{annotations}spec:\n{spec}"
    )
}

fn target(name: &str) -> String {
    format!("  target:\n    kind: Deployment\n    name: {name}\n")
}

fn deployment_yaml() -> R<String> {
    render(
        DEPLOY,
        &[
            ("replicas: 2", "replicas: 1"),
            ("registry.local/nginx:1.22.1", &cluster().nginx()),
        ],
    )
}

fn generation(ns: &str, name: &str) -> R<i64> {
    let d = get_json(&["-n", ns, "deployment", name])?;
    d.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("deployment {ns}/{name} has no generation"))
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

fn webhooks_yaml(run: &Run) -> String {
    let name = run.webhook_name();
    let hook = |path: &str, hook_name: &str| {
        format!(
            "- name: {hook_name}
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 10
  clientConfig:
    url: https://127.0.0.1:{port}/{path}
    caBundle: {ca}
  rules:
  - apiGroups: [debugsession.dev]
    apiVersions: [v1alpha1]
    resources: [debugsessions]
    operations: [CREATE, UPDATE]
    scope: Namespaced
  namespaceSelector:
    matchLabels:
      {LABEL}: \"{id}\"
",
            port = run.port,
            ca = run.ca_b64,
            id = run.id
        )
    };
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata:\n  name: {name}\nwebhooks:\n{}---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: {name}\nwebhooks:\n{}",
        hook("mutate", "mutate.debugsession.dev"),
        hook("validate", "validate.debugsession.dev")
    )
}

fn register_webhooks(run: &Run) -> R<()> {
    k_in(&webhooks_yaml(run), &["apply", "-f", "-"])?;
    // Effective once a server-side dry run comes back stamped.
    let probe = session_yaml("probe", &target("nginx"), "");
    let full = run.user("full");
    wait_for("the webhook to stamp sessions", TIMEOUT, || {
        let out = kubectl_in(
            &probe,
            &[
                "create",
                "--dry-run=server",
                "-o",
                "json",
                "-n",
                &run.ns,
                "--as",
                &full,
                "-f",
                "-",
            ],
        );
        if !out.ok {
            return Err(out.both());
        }
        let v: Value = serde_json::from_str(&out.stdout).map_err(|e| e.to_string())?;
        let who = v["metadata"]["annotations"][REQUESTER]
            .as_str()
            .unwrap_or("");
        ensure(who == full, || {
            format!("dry run not stamped yet: {:?}", v["metadata"])
        })
    })
}

fn delete_webhooks(run: &Run) {
    let name = run.webhook_name();
    let _ = kubectl(&[
        "delete",
        "--ignore-not-found",
        "mutatingwebhookconfiguration",
        &name,
    ]);
    let _ = kubectl(&[
        "delete",
        "--ignore-not-found",
        "validatingwebhookconfiguration",
        &name,
    ]);
}

fn start_operator(run: &mut Run) -> R<()> {
    let bin = std::env::var_os("DEBUGSESSION_OPERATOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/debug/debugsession-operator"));
    let file = fs::File::create(&run.log).map_err(|e| e.to_string())?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let webhook_addr = format!("127.0.0.1:{}", run.port);
    let dir = run.dir.to_string_lossy().to_string();
    let key = run.dir.join("stamp.key").to_string_lossy().to_string();
    let denied = format!("kube-system,{}", run.denied_ns);
    let args = [
        "run",
        "--default-image",
        &cluster().busybox(),
        "--metrics-addr",
        &run.metrics,
        "--log-format",
        "json",
        "--max-ttl",
        "1h",
        "--webhook-addr",
        &webhook_addr,
        "--webhook-cert-dir",
        &dir,
        "--stamp-key-file",
        &key,
        "--allowed-images",
        "registry.local/busybox:*",
        "--denied-namespaces",
        &denied,
        "--allowed-capabilities",
        "SYS_PTRACE",
    ];
    step(&format!("starting {} {}", bin.display(), args.join(" ")));
    let child = Command::new(&bin)
        .args(args)
        .envs(&cluster().env)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    run.op = Some(child);
    let log = run.log.clone();
    let op = run.op.as_mut().expect("just set");
    wait_for("the operator's webhook port", TIMEOUT, || {
        if let Ok(Some(st)) = op.try_wait() {
            return Ok(Err(format!(
                "operator exited ({st}); see {}: {}",
                log.display(),
                fs::read_to_string(&log).unwrap_or_default()
            )));
        }
        TcpStream::connect_timeout(
            &webhook_addr.parse().map_err(|e| format!("{e}"))?,
            Duration::from_secs(1),
        )
        .map(|_| Ok(()))
        .map_err(|e| e.to_string())
    })?
}

fn stop_operator(run: &mut Run) {
    if let Some(c) = run.op.take() {
        terminate(c);
    }
}

/// A forbidden request: Ok(message) when refused, Err(why not) otherwise.
type Attempt = Box<dyn Fn(&Run) -> R<String>>;

/// `kubectl create` as `user` must fail with every word of `words` in stderr, and create nothing.
fn refused_create(user: &str, ns: &str, yaml: &str, words: &[&str]) -> R<String> {
    let out = kubectl_in(yaml, &["create", "-n", ns, "--as", user, "-f", "-"]);
    if out.ok {
        return Err(format!("was admitted: {}", out.stdout.trim()));
    }
    let msg = out.stderr.trim().to_string();
    for w in words {
        if !msg.contains(w) {
            return Err(format!("refused, but the message lacks {w:?}: {msg}"));
        }
    }
    Ok(msg)
}

/// Waits until the session is Failed with a Ready reason among `reasons`.
fn failed_with(ns: &str, name: &str, reasons: &[&str]) -> R<String> {
    wait_for(
        &format!(
            "session {ns}/{name} to be Failed ({})",
            reasons.join(" or ")
        ),
        TIMEOUT,
        || {
            let v = get_json(&["-n", ns, "debugsession", name])?;
            let reason = condition(&v, "Ready")
                .map(|c| s(c, "/reason").to_string())
                .unwrap_or_default();
            if s(&v, "/status/phase") == "Failed" && reasons.contains(&reason.as_str()) {
                Ok(format!(
                    "phase Failed, Ready reason {reason}: {}",
                    s(&v, "/status/message")
                ))
            } else {
                Err(format!(
                    "phase={:?} {}",
                    s(&v, "/status/phase"),
                    cond_summary(&v, "Ready")
                ))
            }
        },
    )
}

fn attempts(kube_system_deploy: String) -> Vec<(&'static str, Attempt)> {
    let busybox = cluster().busybox();
    let nginx_image = cluster().nginx();
    vec![
        (
            "user without pods/exec",
            Box::new(|run: &Run| {
                refused_create(
                    &run.user("noexec"),
                    &run.ns,
                    &session_yaml("noexec", &target("nginx"), ""),
                    &[
                        "denied the request",
                        "may not create pods/exec or pods/attach",
                    ],
                )
            }),
        ),
        (
            "user without patch on deployments",
            Box::new(|run: &Run| {
                refused_create(
                    &run.user("nopatch"),
                    &run.ns,
                    &session_yaml("nopatch", &target("nginx"), ""),
                    &[
                        "denied the request",
                        "may not patch deployments.apps \"nginx\"",
                    ],
                )
            }),
        ),
        (
            "image not in the allowlist",
            Box::new(move |run: &Run| {
                let spec = format!("{}  shell:\n    image: {nginx_image}\n", target("nginx"));
                refused_create(
                    &run.user("full"),
                    &run.ns,
                    &session_yaml("image", &spec, ""),
                    &[
                        "not allowed by the operator's policy",
                        "registry.local/busybox:*",
                    ],
                )
            }),
        ),
        (
            "TTL over the maximum",
            Box::new(|run: &Run| {
                let spec = format!("{}  ttl: 2h\n", target("nginx"));
                refused_create(
                    &run.user("full"),
                    &run.ns,
                    &session_yaml("ttl", &spec, ""),
                    &["spec.ttl 2h", "maximum of 1h"],
                )
            }),
        ),
        (
            "capability not allowed (SYS_ADMIN)",
            Box::new(|run: &Run| {
                let spec = format!(
                    "{}  shell:\n    capabilities: [SYS_PTRACE, SYS_ADMIN]\n",
                    target("nginx")
                );
                refused_create(
                    &run.user("full"),
                    &run.ns,
                    &session_yaml("sysadmin", &spec, ""),
                    &["capability \"SYS_ADMIN\" is not allowed"],
                )
            }),
        ),
        (
            "privileged shell",
            Box::new(|run: &Run| {
                // The API has no way to ask for privileged mode: the CRD's structural schema has no such
                // field, so the API server refuses it (strict field validation, Kubernetes >= 1.25) or
                // prunes it (older servers). The target does not exist, so nothing can be changed
                // even when the pruned session is admitted.
                let spec = format!(
                    "{}  shell:\n    securityContext:\n      privileged: true\n",
                    target("no-such-workload")
                );
                let yaml = session_yaml("privileged", &spec, "");
                let out = kubectl_in(
                    &yaml,
                    &[
                        "create",
                        "-n",
                        &run.ns,
                        "--as",
                        &run.user("full"),
                        "-f",
                        "-",
                    ],
                );
                if !out.ok {
                    let msg = out.stderr.trim().to_string();
                    ensure(
                        msg.contains("securityContext") || msg.contains("privileged"),
                        || format!("refused, but not for the privileged field: {msg}"),
                    )?;
                    return Ok(msg);
                }
                let v = get_json(&["-n", &run.ns, "debugsession", "privileged"])?;
                ensure(v.pointer("/spec/shell/securityContext").is_none(), || {
                    format!("the privileged field was stored: {}", v["spec"])
                })?;
                let msg =
                    "the API server pruned spec.shell.securityContext: the field does not exist"
                        .to_string();
                Ok(msg)
            }),
        ),
        (
            "namespace denied by the policy",
            Box::new(|run: &Run| {
                refused_create(
                    &run.user("full"),
                    &run.denied_ns,
                    &session_yaml("denied", &target("nginx"), ""),
                    &[&format!(
                        "namespace \"{}\" is denied by the operator's policy",
                        run.denied_ns
                    )],
                )
            }),
        ),
        (
            "kube-system target (outside the webhook; the controller refuses it)",
            Box::new(move |_run: &Run| {
                let name = "adm-e2e-kube-system";
                let yaml = session_yaml(name, &target(&kube_system_deploy), "");
                let out = kubectl_in(&yaml, &["create", "-n", "kube-system", "-f", "-"]);
                if !out.ok {
                    return Ok(out.stderr.trim().to_string());
                }
                failed_with(
                    "kube-system",
                    name,
                    &[
                        "PolicyViolation",
                        "StampMissing",
                        "Unauthorized",
                        "InvalidStamp",
                    ],
                )
            }),
        ),
        (
            "forging the requester stamp at create",
            Box::new(|run: &Run| {
                let forged = "  annotations:\n    debugsession.dev/requester: system:admin\n    debugsession.dev/requester-groups: system:masters\n    debugsession.dev/requester-signature: 00ff\n";
                // Target a workload that does not exist: the session is legitimate for its real
                // requester, and must not touch nginx.
                let yaml = session_yaml("forged", &target("absent"), forged);
                let user = run.user("full");
                k_in(&yaml, &["create", "-n", &run.ns, "--as", &user, "-f", "-"])?;
                let v = get_json(&["-n", &run.ns, "debugsession", "forged"])?;
                let who = v["metadata"]["annotations"][REQUESTER]
                    .as_str()
                    .unwrap_or("");
                let groups = v["metadata"]["annotations"]["debugsession.dev/requester-groups"]
                    .as_str()
                    .unwrap_or("");
                ensure(who == user && !groups.contains("system:masters"), || {
                    format!("the forged stamp stuck: requester={who:?} groups={groups:?}")
                })?;
                Ok(format!(
                    "forged stamp overwritten: requester={who} groups={groups}"
                ))
            }),
        ),
        (
            "changing the requester stamp on update",
            Box::new(|run: &Run| {
                // "forged" exists from the previous case, stamped with the real requester.
                let mut refusals = Vec::new();
                let full = run.user("full");
                for user in [Some(full.as_str()), None] {
                    let mut args = vec![
                        "annotate",
                        "--overwrite",
                        "-n",
                        &run.ns,
                        "debugsession",
                        "forged",
                        "debugsession.dev/requester=system:admin",
                    ];
                    if let Some(u) = user {
                        args.extend(["--as", u]);
                    }
                    let who = user.unwrap_or("the cluster admin");
                    let out = kubectl(&args);
                    if out.ok {
                        return Err(format!("{who} changed the stamp: {}", out.stdout.trim()));
                    }
                    ensure(out.stderr.contains("immutable"), || {
                        format!(
                            "refused, but the message lacks \"immutable\": {}",
                            out.stderr
                        )
                    })?;
                    refusals.push(out.stderr.trim().to_string());
                }
                let v = get_json(&["-n", &run.ns, "debugsession", "forged"])?;
                ensure(
                    v["metadata"]["annotations"][REQUESTER] == run.user("full"),
                    || "the stamp changed".into(),
                )?;
                Ok(refusals.join(" | "))
            }),
        ),
        (
            "session created while the webhook was down",
            Box::new(move |run: &Run| {
                delete_webhooks(run);
                let spec = format!("{}  shell:\n    image: {busybox}\n", target("nginx"));
                let r = k_in(
                    &session_yaml("unstamped", &spec, ""),
                    &["create", "-n", &run.ns, "-f", "-"],
                );
                register_webhooks(run)?;
                r?;
                failed_with(
                    &run.ns,
                    "unstamped",
                    &["StampMissing", "Unauthorized", "InvalidStamp"],
                )
            }),
        ),
    ]
}

fn main() -> ExitCode {
    let id = format!("{}", std::process::id());
    let dir = root().join(format!("target/e2e-admission/{id}"));
    let mut run = Run {
        ns: format!("adm-e2e-{id}"),
        denied_ns: format!("adm-e2e-denied-{id}"),
        id,
        port: free_port(),
        ca_b64: String::new(),
        op: None,
        log: dir.join("operator.log"),
        metrics: format!("127.0.0.1:{}", free_port()),
        dir,
    };
    let started = Instant::now();
    let result = suite(&mut run);
    let keep = result.is_err() && std::env::var("E2E_KEEP").is_ok_and(|v| v == "1");
    if keep {
        println!("E2E_KEEP=1: leaving namespaces, webhooks and the operator log in place");
        stop_operator(&mut run);
    } else {
        cleanup(&mut run);
    }
    println!("operator log: {}", run.log.display());
    match result {
        Ok(line) => {
            println!("{line}");
            println!("admission e2e passed in {}s", started.elapsed().as_secs());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("admission e2e FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cleanup(run: &mut Run) {
    // Webhooks first: with failurePolicy Fail and the operator gone, they would block deletes.
    delete_webhooks(run);
    let _ = kubectl(&[
        "delete",
        "--ignore-not-found",
        "--wait=true",
        "--timeout=60s",
        "-n",
        "kube-system",
        "debugsession",
        "adm-e2e-kube-system",
    ]);
    for ns in [&run.ns, &run.denied_ns] {
        let _ = kubectl(&[
            "delete",
            "--ignore-not-found",
            "--wait=true",
            "--timeout=60s",
            "-n",
            ns,
            "debugsessions",
            "--all",
        ]);
    }
    stop_operator(run);
    // Anything left holds the finalizer of a stopped operator: drop it.
    for ns in ["kube-system", &run.ns, &run.denied_ns] {
        if let Ok(v) = get_json(&["-n", ns, "debugsessions"]) {
            for item in v["items"].as_array().cloned().unwrap_or_default() {
                let name = s(&item, "/metadata/name").to_string();
                if ns == "kube-system" && name != "adm-e2e-kube-system" {
                    continue;
                }
                let _ = kubectl(&[
                    "patch",
                    "-n",
                    ns,
                    "debugsession",
                    &name,
                    "--type=merge",
                    "-p",
                    r#"{"metadata":{"finalizers":null}}"#,
                ]);
            }
        }
    }
    let _ = kubectl(&[
        "delete",
        "--ignore-not-found",
        "-n",
        "kube-system",
        "deployment",
        &format!("adm-e2e-{}", run.id),
    ]);
    let _ = kubectl(&[
        "delete",
        "--ignore-not-found",
        "--wait=false",
        "namespace",
        &run.ns,
        &run.denied_ns,
    ]);
}

fn suite(run: &mut Run) -> R<String> {
    wait_cluster_up(Duration::from_secs(300))?;
    install_crd()?;

    step("certificates and the stamp key");
    fs::create_dir_all(&run.dir).map_err(|e| e.to_string())?;
    let script = root().join("e2e/admission/make-certs.sh");
    run_cmd(&script, &[&run.dir.to_string_lossy(), "127.0.0.1"])?;
    let ca = fs::read(run.dir.join("ca.crt")).map_err(|e| e.to_string())?;
    run.ca_b64 = b64(&ca);
    let mut key = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))
        .map_err(|e| e.to_string())?;
    fs::write(
        run.dir.join("stamp.key"),
        key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    )
    .map_err(|e| e.to_string())?;

    step("namespaces, workloads and users");
    for ns in [run.ns.clone(), run.denied_ns.clone()] {
        k(&["create", "namespace", &ns])?;
        k(&["label", "namespace", &ns, &format!("{LABEL}={}", run.id)])?;
        k_in(&deployment_yaml()?, &["apply", "-n", &ns, "-f", "-"])?;
        k_in(&rbac_yaml(run, &ns), &["apply", "-f", "-"])?;
    }
    let ks_deploy = format!("adm-e2e-{}", run.id);
    k_in(
        &deployment_yaml()?.replace("name: nginx\n", &format!("name: {ks_deploy}\n")),
        &["apply", "-n", "kube-system", "-f", "-"],
    )?;
    let watched = [
        (run.ns.clone(), "nginx".to_string()),
        (run.denied_ns.clone(), "nginx".to_string()),
        ("kube-system".to_string(), ks_deploy.clone()),
    ];
    for (ns, name) in &watched {
        k(&[
            "rollout",
            "status",
            "-n",
            ns,
            &format!("deployment/{name}"),
            "--timeout=120s",
        ])?;
    }
    let before: Vec<i64> = watched
        .iter()
        .map(|(ns, n)| generation(ns, n))
        .collect::<R<_>>()?;

    step("operator with its webhook, and the webhook configurations");
    start_operator(run)?;
    register_webhooks(run)?;

    let mut tried = 0;
    let mut refused = 0;
    let mut failures = Vec::new();
    for (name, attempt) in attempts(ks_deploy.clone()) {
        tried += 1;
        match attempt(run) {
            Ok(msg) => {
                refused += 1;
                println!("  refused  {name}: {msg}");
            }
            Err(e) => {
                println!("  ALLOWED  {name}: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }

    // Give a misbehaving controller time to act, then count changed workloads.
    thread::sleep(Duration::from_secs(5));
    let mut changed = 0;
    for ((ns, n), gen_before) in watched.iter().zip(&before) {
        let now = generation(ns, n)?;
        let d = get_json(&["-n", ns, "deployment", n])?;
        let has_shell = d
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["name"] == "debug-shell"));
        if now != *gen_before || has_shell {
            changed += 1;
            failures.push(format!(
                "deployment {ns}/{n} changed: generation {gen_before} -> {now}, shell={has_shell}"
            ));
        }
    }
    let summary =
        format!("{tried} forbidden requests tried, {refused} refused, {changed} workloads changed");
    println!("{summary}");

    step("the allowed path: the full user gets a shell");
    let full = run.user("full");
    let spec = format!("{}  ttl: 10m\n", target("nginx"));
    k_in(
        &session_yaml("allowed", &spec, ""),
        &["create", "-n", &run.ns, "--as", &full, "-f", "-"],
    )?;
    let v = wait_for(
        "the allowed session to be Active",
        Duration::from_secs(180),
        || {
            let v = get_json(&["-n", &run.ns, "debugsession", "allowed"])?;
            if s(&v, "/status/phase") == "Active" {
                Ok(v)
            } else {
                Err(format!(
                    "phase={:?} message={:?} {}",
                    s(&v, "/status/phase"),
                    s(&v, "/status/message"),
                    cond_summary(&v, "Ready")
                ))
            }
        },
    );
    match v {
        Ok(v) => {
            let who = v["metadata"]["annotations"][REQUESTER]
                .as_str()
                .unwrap_or("");
            if who != full {
                failures.push(format!("allowed session stamped {who:?}, want {full:?}"));
            } else {
                println!("  allowed  session Active, stamped with requester {who}");
            }
        }
        Err(e) => failures.push(format!("allowed path: {e}")),
    }
    // End it while the operator runs, so that it reverts.
    let _ = kubectl(&[
        "delete",
        "-n",
        &run.ns,
        "debugsession",
        "allowed",
        "--wait=true",
        "--timeout=90s",
    ]);

    if failures.is_empty() && refused == tried && changed == 0 {
        Ok(summary)
    } else {
        Err(format!("{summary}\n  {}", failures.join("\n  ")))
    }
}

fn run_cmd(program: &Path, args: &[&str]) -> R<String> {
    let out = run(
        &program.to_string_lossy(),
        args,
        None,
        Duration::from_secs(60),
    );
    if out.ok {
        Ok(out.stdout)
    } else {
        Err(format!("{} failed: {}", program.display(), out.both()))
    }
}
