//! End-to-end proof that the operator is no privilege escalation path (issue 5), and that a
//! session acts only for the people who asked for it (issue 8): the admission webhook served by
//! the operator stamps the requester (and a digest of the spec) at every create and spec change,
//! checks the policy and the sender's own RBAC, and the controller applies only stamped specs.
//!
//! Run: `cargo build && cargo test -p debugsession-e2e --test admission`. Env:
//! DEBUGSESSION_OPERATOR_BIN overrides the operator binary; E2E_KEEP=1 keeps everything on failure.
//!
//! The suite makes a CA and a serving certificate for 127.0.0.1 (e2e/admission/make-certs.sh),
//! starts the operator with its webhook listener, registers Mutating/ValidatingWebhookConfigurations
//! that call `https://127.0.0.1:<port>/mutate|/validate` for namespaces labelled with this run's id,
//! and tries a table of forbidden requests as impersonated users with ordinary RBAC. Each must be
//! refused with a clear message (or be undone by the controller) and leave every workload as it
//! was: the untouched ones untouched, the one a session of the `full` user holds exactly as that
//! session left it. The table covers sessions created by the wrong people, an `editor` (sessions
//! role only, like debugsession-edit) changing a running and a pending session of `full`, copied
//! stamps, finalizers stripped behind the operator's back (running, frozen and stopped), spec
//! edits and sessions slipped past deleted webhook configurations, and an operator without a stamp
//! key. Then the allowed path must work end to end, including `full` changing their own session.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant};

use debugsession_e2e::*;

const LABEL: &str = "debugsession.dev/admission-e2e";
const DEPLOY: &str = "e2e/fixtures/nginx-deployment.yaml";
/// The victim workload: one replica, an initContainer `setup` and the app container `nginx`.
const VICTIM_DEPLOY: &str = "e2e/fixtures/admission-deployment-init.yaml";
const REQUESTER: &str = "debugsession.dev/requester";
const SIGNATURE: &str = "debugsession.dev/requester-signature";
const SPEC_DIGEST: &str = "debugsession.dev/spec-digest";
/// Every stamp annotation starts with this.
const STAMP_PREFIX: &str = "debugsession.dev/";
const FINALIZER: &str = "debugsession.dev/revert";
/// Default name of the shell container.
const SHELL: &str = "debug-shell";

/// Words of the webhook's refusals.
const DENIED: &str = "denied the request";
const NO_EXEC: &str = "may not create pods/exec or pods/attach";

/// Deployment held by the `full` user's sessions RUNNING (Active) and PENDING (waiting behind it).
const VICTIM: &str = "victim";
const APP_CONTAINER: &str = "nginx";
const INIT_CONTAINER: &str = "setup";
const RUNNING: &str = "victim-running";
const PENDING: &str = "victim-pending";
/// Deployment that no session may touch: the target of redirected and copied sessions.
const OTHER: &str = "other";
/// Deployment and session of the same name, whose finalizer the admin strips while the operator
/// is frozen (ORPHAN_LIVE) or stopped (ORPHAN_STOPPED).
const ORPHAN_LIVE: &str = "orphan-live";
const ORPHAN_STOPPED: &str = "orphan-stopped";
/// A Secret in the suite's namespace that only the admin may read.
const SECRET: &str = "adm-secret";

struct Run {
    id: String,
    ns: String,
    denied_ns: String,
    dir: PathBuf,
    port: u16,
    ca_b64: String,
    op: Option<Operator>,
    log: PathBuf,
    /// The harness's own user, as the webhook stamps it: the operator runs with these credentials,
    /// so it is the operator's username (--operator-username).
    operator_user: String,
    /// Deployments before any session: the orphan cases must bring them back to this.
    pre_session: BTreeMap<String, Snapshot>,
    /// The victim deployment while RUNNING is Active: every forbidden request must leave it so.
    held: Option<Snapshot>,
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

/// A DebugSession as JSON (annotation values may hold anything, e.g. a copied stamp).
fn session_json(name: &str, spec: Value, annotations: Value) -> String {
    json!({
        "apiVersion": "debugsession.dev/v1alpha1",
        "kind": "DebugSession",
        "metadata": {"name": name, "annotations": annotations},
        "spec": spec,
    })
    .to_string()
}

/// `{target: Deployment <name>}` with a TTL.
fn spec_for(deployment: &str, ttl: &str) -> Value {
    json!({"target": {"kind": "Deployment", "name": deployment}, "ttl": ttl})
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

/// The nginx fixture under another name and app label (its container stays `nginx`).
fn deployment_named(name: &str) -> R<String> {
    let app = format!("app: {name}");
    let meta = format!("metadata:\n  name: {name}\n");
    render(
        DEPLOY,
        &[
            ("replicas: 2", "replicas: 1"),
            ("registry.local/nginx:1.22.1", &cluster().nginx()),
            ("app: nginx", &app),
            ("metadata:\n  name: nginx\n", &meta),
        ],
    )
}

fn victim_yaml() -> R<String> {
    render(
        VICTIM_DEPLOY,
        &[
            ("registry.local/nginx:1.22.1", &cluster().nginx()),
            ("registry.local/busybox:1.35.0", &cluster().busybox()),
        ],
    )
}

fn generation(ns: &str, name: &str) -> R<i64> {
    let d = get_json(&["-n", ns, "deployment", name])?;
    d.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("deployment {ns}/{name} has no generation"))
}

/// A deployment's pod template and generation at one moment.
#[derive(Clone, Debug)]
struct Snapshot {
    template: Value,
    generation: i64,
}

fn snapshot(ns: &str, name: &str) -> R<Snapshot> {
    let d = get_json(&["-n", ns, "deployment", name])?;
    Ok(Snapshot {
        template: d["spec"]["template"].clone(),
        generation: d
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("deployment {ns}/{name} has no generation"))?,
    })
}

/// The shell container of a pod template, if any.
fn shell_of(template: &Value) -> Option<&Value> {
    template
        .pointer("/spec/containers")?
        .as_array()?
        .iter()
        .find(|c| c["name"] == SHELL)
}

/// `name=image` of each container of a pod template, for messages.
fn containers(template: &Value) -> String {
    let list = |key: &str| {
        template["spec"][key]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| format!("{}={}", s(c, "/name"), s(c, "/image")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    format!(
        "init[{}] containers[{}]",
        list("initContainers"),
        list("containers")
    )
}

/// Ok when the deployment's pod template equals the snapshot's (and, with `same_generation`, its
/// generation too).
fn matches_snapshot(ns: &str, name: &str, snap: &Snapshot, same_generation: bool) -> R<()> {
    let now = snapshot(ns, name)?;
    if same_generation && now.generation != snap.generation {
        return Err(format!(
            "deployment {ns}/{name} changed: generation {} -> {} ({})",
            snap.generation,
            now.generation,
            containers(&now.template)
        ));
    }
    if now.template != snap.template {
        let shell = shell_of(&now.template).cloned().unwrap_or(Value::Null);
        return Err(format!(
            "deployment {ns}/{name} changed: pod template differs from the snapshot: was {}, now {}; shell now {shell}",
            containers(&snap.template),
            containers(&now.template)
        ));
    }
    Ok(())
}

/// Ok when the deployment still has generation `gen_before` and no shell.
fn untouched(ns: &str, name: &str, gen_before: i64) -> R<()> {
    let d = get_json(&["-n", ns, "deployment", name])?;
    let now = d
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(-1);
    let shell = shell_of(&d["spec"]["template"]).is_some();
    ensure(now == gen_before && !shell, || {
        format!("deployment {ns}/{name} changed: generation {gen_before} -> {now}, shell={shell}")
    })
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

/// The requester a server-side dry-run create of a session gets stamped with, as `user` (None:
/// the harness's own user); Ok(None) when nothing stamps it.
fn dry_run_requester(run: &Run, user: Option<&str>) -> R<Option<String>> {
    let probe = session_yaml("probe", &target("nginx"), "");
    let mut args = vec![
        "create",
        "--dry-run=server",
        "-o",
        "json",
        "-n",
        &run.ns,
        "-f",
        "-",
    ];
    if let Some(u) = user {
        args.extend(["--as", u]);
    }
    let out = kubectl_in(&probe, &args);
    if !out.ok {
        return Err(out.both());
    }
    let v: Value = serde_json::from_str(&out.stdout).map_err(|e| e.to_string())?;
    Ok(v["metadata"]["annotations"][REQUESTER]
        .as_str()
        .map(str::to_string))
}

fn register_webhooks(run: &Run) -> R<()> {
    k_in(&webhooks_yaml(run), &["apply", "-f", "-"])?;
    // Effective once a server-side dry run comes back stamped.
    let full = run.user("full");
    wait_for("the webhook to stamp sessions", TIMEOUT, || {
        let who = dry_run_requester(run, Some(&full))?;
        ensure(who.as_deref() == Some(full.as_str()), || {
            format!("dry run not stamped yet: requester {who:?}")
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

/// Deletes the webhook configurations and waits until the API server stops calling them (a dry
/// run comes back unstamped): its webhook informer lags behind the delete.
fn unregister_webhooks(run: &Run) -> R<()> {
    delete_webhooks(run);
    let full = run.user("full");
    wait_for(
        "the API server to stop calling the webhook",
        TIMEOUT,
        || match dry_run_requester(run, Some(&full))? {
            None => Ok(()),
            Some(who) => Err(format!("dry run still stamped for {who}")),
        },
    )
}

/// Runs `f` with the webhook configurations deleted, then registers them again (the normal
/// operator must be running by then).
fn without_webhooks<T>(run: &mut Run, f: impl FnOnce(&mut Run) -> R<T>) -> R<T> {
    if let Err(e) = unregister_webhooks(run) {
        let _ = register_webhooks(run);
        return Err(e);
    }
    let r = f(run);
    let back = register_webhooks(run).map_err(|e| format!("registering the webhooks again: {e}"));
    let v = r?;
    back?;
    Ok(v)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Webhook listener and stamp key: the supported install.
    Normal,
    /// No stamp key, no webhook and no --insecure-allow-unstamped: must start no session.
    NoStampKey,
}

fn start_operator(run: &mut Run, mode: Mode) -> R<()> {
    let webhook_addr = format!("127.0.0.1:{}", run.port);
    let dir = run.dir.to_string_lossy().to_string();
    let key = run.dir.join("stamp.key").to_string_lossy().to_string();
    let denied = format!("kube-system,{}", run.denied_ns);
    let mut args = vec![
        "--max-ttl",
        "1h",
        "--allowed-images",
        "registry.local/busybox:*",
        "--denied-namespaces",
        &denied,
        "--allowed-capabilities",
        "SYS_PTRACE",
        "--operator-username",
        &run.operator_user,
    ];
    if mode == Mode::Normal {
        args.extend([
            "--webhook-addr",
            &webhook_addr,
            "--webhook-cert-dir",
            &dir,
            "--stamp-key-file",
            &key,
        ]);
    }
    step(&format!(
        "starting {} run {} ({mode:?})",
        Operator::binary().display(),
        args.join(" ")
    ));
    // Nothing inherited may turn the insecure mode on.
    let env = [("DEBUGSESSION_INSECURE_ALLOW_UNSTAMPED", "false")];
    let op = Operator::start_exact(&run.log, &args, &env)?;
    run.op = Some(op);
    Ok(())
}

fn stop_operator(run: &mut Run) {
    if let Some(mut op) = run.op.take() {
        op.stop();
    }
}

/// Runs `f` with the operator in `mode`, then brings the normal operator back.
fn with_operator<T>(run: &mut Run, mode: Mode, f: impl FnOnce(&mut Run) -> R<T>) -> R<T> {
    stop_operator(run);
    let r = start_operator(run, mode).and_then(|()| f(run));
    stop_operator(run);
    let back = start_operator(run, Mode::Normal);
    let v = r?;
    back?;
    Ok(v)
}

/// Sends a signal (`-STOP`, `-CONT`) to the operator process.
fn signal_operator(run: &Run, sig: &str) -> R<()> {
    let pid = run
        .op
        .as_ref()
        .and_then(Operator::pid)
        .ok_or("the operator is not running")?;
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map_err(|e| format!("kill {sig} {pid}: {e}"))?;
    ensure(st.success(), || format!("kill {sig} {pid}: {st}"))
}

/// A forbidden request: Ok(message) when refused (or undone), Err(why not) otherwise.
type Attempt = Box<dyn Fn(&mut Run) -> R<String>>;
type Row = (String, Attempt);

fn row(name: impl Into<String>, f: impl Fn(&mut Run) -> R<String> + 'static) -> Row {
    (name.into(), Box::new(f))
}

/// Ok when `msg` holds every word of `words`.
fn has_words(msg: &str, words: &[&str]) -> R<()> {
    match words.iter().find(|w| !msg.contains(*w)) {
        Some(w) => Err(format!("refused, but the message lacks {w:?}: {msg}")),
        None => Ok(()),
    }
}

/// `kubectl create` as `user` must fail with every word of `words` in stderr, and create nothing.
fn refused_create(user: &str, ns: &str, yaml: &str, words: &[&str]) -> R<String> {
    let out = kubectl_in(yaml, &["create", "-n", ns, "--as", user, "-f", "-"]);
    if out.ok {
        return Err(format!("was admitted: {}", out.stdout.trim()));
    }
    let msg = out.stderr.trim().to_string();
    has_words(&msg, words)?;
    Ok(msg)
}

/// `kubectl create -f -` in `ns`, as `user` (None: the cluster admin).
fn create_as(ns: &str, user: Option<&str>, manifest: &str) -> R<String> {
    let mut args = vec!["create", "-n", ns, "-f", "-"];
    if let Some(u) = user {
        args.extend(["--as", u]);
    }
    k_in(manifest, &args)
}

fn session(ns: &str, name: &str) -> R<Value> {
    get_json(&["-n", ns, "debugsession", name])
}

/// `kubectl patch` of a session with a patch of `kind` (merge, json), as `user` (None: the admin).
fn patch_session(ns: &str, name: &str, user: Option<&str>, kind: &str, patch: &str) -> Out {
    let mut args = vec![
        "patch",
        "-n",
        ns,
        "debugsession",
        name,
        "--type",
        kind,
        "-p",
        patch,
    ];
    if let Some(u) = user {
        args.extend(["--as", u]);
    }
    kubectl(&args)
}

/// A patch of the session as `user` must fail with every word of `words`, and leave the session's
/// spec, generation and finalizers as they were.
fn refused_patch(
    user: &str,
    ns: &str,
    name: &str,
    kind: &str,
    patch: &str,
    words: &[&str],
) -> R<String> {
    let before = session(ns, name)?;
    let out = patch_session(ns, name, Some(user), kind, patch);
    if out.ok {
        return Err(format!("was admitted: {}", out.stdout.trim()));
    }
    let msg = out.stderr.trim().to_string();
    has_words(&msg, words)?;
    let after = session(ns, name)?;
    for pointer in ["/spec", "/metadata/generation", "/metadata/finalizers"] {
        ensure(after.pointer(pointer) == before.pointer(pointer), || {
            format!(
                "refused, yet {pointer} changed: {:?} -> {:?}",
                before.pointer(pointer),
                after.pointer(pointer)
            )
        })?;
    }
    Ok(msg)
}

/// One line on a session, for messages.
fn summary(v: &Value) -> String {
    format!(
        "phase={:?} generation={} shellGeneration={} message={:?} {} {}",
        s(v, "/status/phase"),
        v["metadata"]["generation"],
        v["status"]["shellGeneration"],
        s(v, "/status/message"),
        cond_summary(v, "Ready"),
        cond_summary(v, "SpecApplied")
    )
}

/// Waits until the session satisfies `ok`.
fn wait_session(
    ns: &str,
    name: &str,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&Value) -> bool,
) -> R<Value> {
    wait_for(&format!("session {ns}/{name}: {what}"), timeout, || {
        let v = session(ns, name)?;
        if ok(&v) { Ok(v) } else { Err(summary(&v)) }
    })
}

fn phase_is(v: &Value, phase: &str) -> bool {
    s(v, "/status/phase") == phase
}

fn cond_is(v: &Value, type_: &str, status: &str, reason: Option<&str>) -> bool {
    condition(v, type_)
        .is_some_and(|c| s(c, "/status") == status && reason.is_none_or(|r| s(c, "/reason") == r))
}

/// Waits until the session is Failed with a Ready reason among `reasons`.
fn failed_with(ns: &str, name: &str, reasons: &[&str]) -> R<String> {
    let what = format!("Failed ({})", reasons.join(" or "));
    let v = wait_session(ns, name, &what, TIMEOUT, |v| {
        phase_is(v, "Failed")
            && condition(v, "Ready").is_some_and(|c| reasons.contains(&s(c, "/reason")))
    })?;
    let reason = condition(&v, "Ready")
        .map(|c| s(c, "/reason"))
        .unwrap_or_default();
    Ok(format!(
        "phase Failed, Ready reason {reason}: {}",
        s(&v, "/status/message")
    ))
}

/// The stamp annotations of a session, verbatim.
fn stamp_of(v: &Value) -> Value {
    let map = v["metadata"]["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .filter(|(k, _)| k.starts_with(STAMP_PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    Value::Object(map)
}

/// Waits (30s at most) for an Event with `reason` on `kind/name` whose message holds every word
/// of `words`; returns that message.
fn wait_event(ns: &str, kind: &str, name: &str, reason: &str, words: &[&str]) -> R<String> {
    wait_for(
        &format!("an event {reason} on {kind} {ns}/{name} mentioning {words:?}"),
        Duration::from_secs(30),
        || {
            let evs = events(ns, kind, name)?;
            evs.iter()
                .find(|(_, r, m)| r == reason && words.iter().all(|w| m.contains(w)))
                .map(|(_, _, m)| m.clone())
                .ok_or_else(|| {
                    let seen: Vec<String> =
                        evs.iter().map(|(_, r, m)| format!("{r}: {m}")).collect();
                    format!("events so far: {seen:?}")
                })
        },
    )
}

/// The requests of issue 5: sessions created by the wrong people or against the policy.
fn creation_attempts(kube_system_deploy: String) -> Vec<(&'static str, Attempt)> {
    let busybox = cluster().busybox();
    let nginx_image = cluster().nginx();
    vec![
        (
            "user without pods/exec",
            Box::new(|run: &mut Run| {
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
            Box::new(|run: &mut Run| {
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
            Box::new(move |run: &mut Run| {
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
            Box::new(|run: &mut Run| {
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
            Box::new(|run: &mut Run| {
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
            Box::new(|run: &mut Run| {
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
            Box::new(|run: &mut Run| {
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
            Box::new(move |_run: &mut Run| {
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
            Box::new(|run: &mut Run| {
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
            Box::new(|run: &mut Run| {
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
            Box::new(move |run: &mut Run| {
                let spec = format!("{}  shell:\n    image: {busybox}\n", target("nginx"));
                let yaml = session_yaml("unstamped", &spec, "");
                without_webhooks(run, |run| create_as(&run.ns, None, &yaml))?;
                failed_with(
                    &run.ns,
                    "unstamped",
                    &["StampMissing", "Unauthorized", "InvalidStamp"],
                )
            }),
        ),
    ]
}

/// The spec changes the editor tries on a session of `full`: each is allowed by the policy, so
/// only the sender's own RBAC (no pods/exec) can refuse it.
fn spec_edits() -> Vec<(&'static str, Value)> {
    let busybox = cluster().busybox();
    let repo = match busybox.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
        _ => busybox.clone(),
    };
    let shell = |v: Value| json!({"spec": {"shell": v}});
    vec![
        (
            "shell.command",
            shell(json!({"command": ["sh", "-c", "cat /proc/1/environ; sleep 3600"]})),
        ),
        (
            "shell.args",
            shell(json!({"args": ["-c", "id; sleep 3600"]})),
        ),
        (
            "shell.env from a Secret the editor cannot read",
            shell(json!({"env": [{"name": "STOLEN",
                "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "token"}}}]})),
        ),
        (
            "shell.image: the allowed busybox with another tag",
            shell(json!({"image": format!("{repo}:e2e-other")})),
        ),
        (
            "shell.image: the default image, spelled out",
            shell(json!({ "image": busybox })),
        ),
        ("shell.capabilities: []", shell(json!({"capabilities": []}))),
        (
            "shell.capabilities: [SYS_PTRACE], the default spelled out",
            shell(json!({"capabilities": ["SYS_PTRACE"]})),
        ),
        (
            "shell.containerName: the app container",
            shell(json!({ "containerName": APP_CONTAINER })),
        ),
        (
            "shell.containerName: the initContainer",
            shell(json!({ "containerName": INIT_CONTAINER })),
        ),
        (
            "target: another deployment",
            json!({"spec": {"target": {"kind": "Deployment", "name": OTHER}}}),
        ),
        ("ttl: raised to 20m", json!({"spec": {"ttl": "20m"}})),
    ]
}

/// The editor changes `session` (in `state`) in every way of [`spec_edits`].
fn editor_rows(session: &'static str, state: &str) -> Vec<Row> {
    spec_edits()
        .into_iter()
        .map(|(what, patch)| {
            let patch = patch.to_string();
            row(
                format!("editor changes {what} of the {state} session"),
                move |run: &mut Run| {
                    refused_patch(
                        &run.user("editor"),
                        &run.ns,
                        session,
                        "merge",
                        &patch,
                        &[DENIED, NO_EXEC],
                    )
                },
            )
        })
        .collect()
}

/// `user` raises the TTL of the running session.
fn ttl_row(role: &'static str, words: &'static [&'static str]) -> Row {
    row(
        format!("{role} user raises the TTL of the running session"),
        move |run: &mut Run| {
            refused_patch(
                &run.user(role),
                &run.ns,
                RUNNING,
                "merge",
                r#"{"spec":{"ttl":"20m"}}"#,
                words,
            )
        },
    )
}

/// The editor removes the finalizer of the running session, which still holds its workload.
fn finalizer_row(how: &'static str, kind: &'static str, patch: &'static str) -> Row {
    row(
        format!("editor removes the finalizer of the running session ({how})"),
        move |run: &mut Run| {
            let msg = refused_patch(
                &run.user("editor"),
                &run.ns,
                RUNNING,
                kind,
                patch,
                &[DENIED, "finalizer debugsession.dev/revert", "still holds"],
            )?;
            let v = session(&run.ns, RUNNING)?;
            let fins = &v["metadata"]["finalizers"];
            ensure(
                fins.as_array()
                    .is_some_and(|f| f.iter().any(|x| x == FINALIZER)),
                || format!("the finalizer is gone: {fins}"),
            )?;
            Ok(msg)
        },
    )
}

/// `full` creates a session carrying the running session's stamp verbatim: the webhook must
/// replace it (or refuse the create). The target does not exist: re-stamped, the session is
/// legitimately `full`'s, and must not touch a workload.
fn copied_stamp_by_user(run: &mut Run) -> R<String> {
    let name = "copy-by-full";
    let stamp = stamp_of(&session(&run.ns, RUNNING)?);
    let full = run.user("full");
    let manifest = session_json(name, spec_for("no-such-workload", "10m"), stamp.clone());
    let out = kubectl_in(
        &manifest,
        &["create", "-n", &run.ns, "--as", &full, "-f", "-"],
    );
    if !out.ok {
        let msg = out.stderr.trim().to_string();
        has_words(&msg, &[DENIED])?;
        return Ok(msg);
    }
    let v = session(&run.ns, name)?;
    let got = stamp_of(&v);
    let _ = kubectl(&[
        "delete",
        "-n",
        &run.ns,
        "debugsession",
        name,
        "--wait=true",
        "--timeout=30s",
    ]);
    for key in [SIGNATURE, SPEC_DIGEST] {
        ensure(got[key].is_string() && got[key] != stamp[key], || {
            format!(
                "{key} was kept or dropped: copied {}, stored {}",
                stamp[key], got[key]
            )
        })?;
    }
    ensure(got[REQUESTER] == full.as_str(), || {
        format!(
            "stamped for {} instead of the sender {full}",
            got[REQUESTER]
        )
    })?;
    Ok(format!(
        "the webhook re-stamped it for {full}: new {SIGNATURE} and {SPEC_DIGEST}"
    ))
}

/// The cluster admin creates, with the webhooks deleted, a session with `spec` carrying the
/// running session's stamp verbatim: the controller must refuse it.
fn copied_stamp_by_admin(run: &mut Run, name: &str, spec: Option<Value>) -> R<String> {
    let victim = session(&run.ns, RUNNING)?;
    let spec = spec.unwrap_or_else(|| victim["spec"].clone());
    let manifest = session_json(name, spec, stamp_of(&victim));
    without_webhooks(run, |run| create_as(&run.ns, None, &manifest))?;
    let msg = failed_with(&run.ns, name, &["InvalidStamp", "SpecNotStamped"])?;
    let other = &run.pre_session[OTHER];
    matches_snapshot(&run.ns, OTHER, other, true)?;
    Ok(msg)
}

/// The cluster admin changes the running session's shell with the webhooks deleted: the
/// unstamped spec must not reach the workload.
fn unstamped_edit(run: &mut Run) -> R<String> {
    let ns = run.ns.clone();
    let v = session(&ns, RUNNING)?;
    let gen_before = v["metadata"]["generation"].as_i64().unwrap_or(0);
    let applied = v["status"]["shellGeneration"].as_i64().ok_or_else(|| {
        format!(
            "the running session has no status.shellGeneration: {}",
            summary(&v)
        )
    })?;
    let patch = r#"{"spec":{"shell":{"command":["sh","-c","echo unstamped; sleep 3600"]}}}"#;
    without_webhooks(run, |_| {
        let out = patch_session(&ns, RUNNING, None, "merge", patch);
        ensure(out.ok, || {
            format!("the admin's patch failed: {}", out.both())
        })
    })?;
    let v = wait_session(
        &ns,
        RUNNING,
        "SpecApplied=False reason SpecNotStamped for the new generation",
        TIMEOUT,
        |v| {
            v["metadata"]["generation"].as_i64().unwrap_or(0) > gen_before
                && cond_is(v, "SpecApplied", "False", Some("SpecNotStamped"))
        },
    )?;
    ensure(
        v["status"]["shellGeneration"].as_i64() == Some(applied) && phase_is(&v, "Active"),
        || {
            format!(
                "status.shellGeneration should stay {applied}: {}",
                summary(&v)
            )
        },
    )?;
    let held = run.held.as_ref().ok_or("no snapshot of the victim")?;
    matches_snapshot(&ns, VICTIM, held, true)?;
    Ok(format!(
        "not applied: generation {} runs shell of generation {applied}; {}",
        v["metadata"]["generation"],
        cond_summary(&v, "SpecApplied")
    ))
}

/// Strips the finalizer of a session and deletes it, as the cluster admin.
fn strip_and_delete(ns: &str, name: &str) -> R<()> {
    let out = patch_session(
        ns,
        name,
        None,
        "merge",
        r#"{"metadata":{"finalizers":null}}"#,
    );
    ensure(out.ok, || {
        format!("stripping the finalizer: {}", out.both())
    })?;
    k(&[
        "delete",
        "-n",
        ns,
        "debugsession",
        name,
        "--wait=true",
        "--timeout=30s",
    ])
    .map(|_| ())
}

/// The cluster admin strips the finalizer of a running session and deletes it, with the webhooks
/// deleted, while the operator is frozen (SIGSTOP: it cannot put its finalizer back in between,
/// so the deletion really skips the revert) or stopped. The operator, thawed or restarted, must
/// release the workload through its orphan sweep.
fn orphaned(run: &mut Run, name: &str, stopped: bool) -> R<String> {
    let ns = run.ns.clone();
    let pre = run
        .pre_session
        .get(name)
        .cloned()
        .ok_or_else(|| format!("no pre-session snapshot of {name}"))?;
    without_webhooks(run, |run| {
        let d = get_json(&["-n", &ns, "deployment", name])?;
        ensure(shell_of(&d["spec"]["template"]).is_some(), || {
            format!("deployment {ns}/{name} has no shell before the strip")
        })?;
        let mut r;
        if stopped {
            stop_operator(run);
            r = strip_and_delete(&ns, name);
            if r.is_ok() {
                r = get_json(&["-n", &ns, "deployment", name]).and_then(|d| {
                    ensure(shell_of(&d["spec"]["template"]).is_some(), || {
                        "the shell vanished while no operator ran".into()
                    })
                });
            }
            r = r.and(start_operator(run, Mode::Normal));
        } else {
            signal_operator(run, "-STOP")?;
            r = strip_and_delete(&ns, name);
            r = r.and(signal_operator(run, "-CONT"));
        }
        r?;
        wait_for(
            &format!("the orphan sweep to revert deployment {ns}/{name}"),
            TIMEOUT,
            || matches_snapshot(&ns, name, &pre, false),
        )?;
        let ev = wait_event(&ns, "Deployment", name, "OrphanReleased", &[])?;
        let who = if stopped {
            "the restarted"
        } else {
            "the thawed"
        };
        Ok(format!("{who} operator released it: OrphanReleased: {ev}"))
    })
}

/// Without a stamp key, a webhook or --insecure-allow-unstamped, the operator starts no session.
fn stamp_required(run: &mut Run) -> R<String> {
    let name = "no-stamp-key";
    without_webhooks(run, |run| {
        with_operator(run, Mode::NoStampKey, |run| {
            let manifest = session_json(name, spec_for(OTHER, "10m"), json!({}));
            create_as(&run.ns, None, &manifest)?;
            let msg = failed_with(&run.ns, name, &["StampRequired"])?;
            let v = session(&run.ns, name)?;
            let text = format!(
                "{} {}",
                s(&v, "/status/message"),
                condition(&v, "Ready")
                    .map(|c| s(c, "/message"))
                    .unwrap_or_default()
            );
            ensure(text.contains("--insecure-allow-unstamped"), || {
                format!("the message does not mention --insecure-allow-unstamped: {text}")
            })?;
            matches_snapshot(&run.ns, OTHER, &run.pre_session[OTHER], true)?;
            Ok(msg)
        })
    })
}

/// The requests of issue 8, while RUNNING is Active and PENDING waits behind it.
fn victim_attempts() -> Vec<Row> {
    let mut rows = editor_rows(RUNNING, "running");
    rows.extend(editor_rows(PENDING, "pending"));
    rows.extend([
        ttl_row("noexec", &[DENIED, NO_EXEC]),
        ttl_row("nopatch", &[DENIED, "may not patch deployments.apps \"victim\""]),
        finalizer_row(
            "JSON patch",
            "json",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ),
        finalizer_row(
            "merge patch, finalizers null",
            "merge",
            r#"{"metadata":{"finalizers":null}}"#,
        ),
        row(
            "stamp of the running session copied by a user with full rights",
            copied_stamp_by_user,
        ),
        row(
            "stamp of the running session copied onto a session for another workload (admin, no webhooks)",
            |run: &mut Run| copied_stamp_by_admin(run, "copy-other", Some(spec_for(OTHER, "10m"))),
        ),
        row(
            "stamp and spec of the running session copied onto a session of another name (admin, no webhooks)",
            |run: &mut Run| copied_stamp_by_admin(run, "copy-same", None),
        ),
        row(
            "spec of the running session changed by the admin without webhooks",
            unstamped_edit,
        ),
        row(
            "finalizer stripped and session deleted behind the running operator's back",
            |run: &mut Run| orphaned(run, ORPHAN_LIVE, false),
        ),
        row(
            "finalizer stripped and session deleted while the operator is stopped",
            |run: &mut Run| orphaned(run, ORPHAN_STOPPED, true),
        ),
    ]);
    rows
}

/// Requests that need no live session in the cluster (another operator runs meanwhile).
fn late_attempts() -> Vec<Row> {
    vec![row(
        "operator without stamp key, webhook or --insecure-allow-unstamped",
        stamp_required,
    )]
}

#[derive(Default)]
struct Tally {
    tried: usize,
    refused: usize,
    failures: Vec<String>,
}

impl Tally {
    fn attempt(&mut self, run: &mut Run, rows: Vec<Row>) {
        for (name, attempt) in rows {
            self.tried += 1;
            match attempt(run) {
                Ok(msg) => {
                    self.refused += 1;
                    println!("  refused  {name}: {msg}");
                }
                Err(e) => {
                    println!("  ALLOWED  {name}: {e}");
                    self.failures.push(format!("{name}: {e}"));
                }
            }
        }
    }
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
        dir,
        operator_user: String::new(),
        pre_session: BTreeMap::new(),
        held: None,
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

/// Starts the operator and registers the webhooks. The operator runs with the harness's
/// credentials, so its username is the harness's: first guessed from the kubeconfig, then
/// learnt from the stamp of a dry run, and the operator restarted if the guess was wrong.
fn start_operator_and_webhooks(run: &mut Run) -> R<()> {
    run.operator_user = k(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.contexts[0].context.user}",
    ])?
    .trim()
    .to_string();
    start_operator(run, Mode::Normal)?;
    register_webhooks(run)?;
    let me = dry_run_requester(run, None)?
        .ok_or("a dry run as the harness's user came back unstamped")?;
    if me != run.operator_user {
        step(&format!(
            "the harness's user is {me:?}, not {:?}: restarting the operator with it",
            run.operator_user
        ));
        run.operator_user = me;
        stop_operator(run);
        start_operator(run, Mode::Normal)?;
        register_webhooks(run)?;
    }
    Ok(())
}

fn wait_active(ns: &str, name: &str) -> R<Value> {
    wait_session(ns, name, "Active", Duration::from_secs(180), |v| {
        phase_is(v, "Active")
    })
}

/// Sessions of `full`: RUNNING (Active on VICTIM, whose template is then snapshotted), PENDING
/// (on VICTIM too, waiting), and one Active session on each orphan workload.
fn start_victims(run: &mut Run) -> R<()> {
    let ns = run.ns.clone();
    let full = run.user("full");
    let running = [
        (RUNNING, VICTIM),
        (ORPHAN_LIVE, ORPHAN_LIVE),
        (ORPHAN_STOPPED, ORPHAN_STOPPED),
    ];
    for (name, workload) in running {
        let manifest = session_json(name, spec_for(workload, "10m"), json!({}));
        create_as(&ns, Some(&full), &manifest)?;
    }
    for (name, _) in running {
        wait_active(&ns, name)?;
    }
    let held = snapshot(&ns, VICTIM)?;
    ensure(shell_of(&held.template).is_some(), || {
        format!("{RUNNING} is Active but {VICTIM} has no shell")
    })?;
    run.held = Some(held);
    let manifest = session_json(PENDING, spec_for(VICTIM, "10m"), json!({}));
    create_as(&ns, Some(&full), &manifest)?;
    wait_session(
        &ns,
        PENDING,
        "Pending with HeldByOtherSession",
        TIMEOUT,
        |v| phase_is(v, "Pending") && cond_is(v, "Ready", "False", Some("HeldByOtherSession")),
    )?;
    Ok(())
}

/// The victim workload must be exactly as RUNNING left it (Err: how it changed); the victim
/// sessions must still run and wait.
fn victims_intact(run: &Run) -> (R<()>, R<()>) {
    let held = match &run.held {
        Some(h) => matches_snapshot(&run.ns, VICTIM, h, true),
        None => Err("no snapshot of the victim".into()),
    };
    let sessions = session(&run.ns, RUNNING)
        .and_then(|v| {
            ensure(phase_is(&v, "Active"), || {
                format!("{RUNNING} is no longer Active: {}", summary(&v))
            })
        })
        .and_then(|()| session(&run.ns, PENDING))
        .and_then(|v| {
            ensure(phase_is(&v, "Pending"), || {
                format!("{PENDING} is no longer Pending: {}", summary(&v))
            })
        });
    (held, sessions)
}

/// Ends the victim sessions (the waiting one first, so that it does not start) while the operator
/// runs; the victim workload must come back as it was before them.
fn release_victims(run: &Run) -> R<()> {
    for name in [PENDING, RUNNING] {
        k(&[
            "delete",
            "-n",
            &run.ns,
            "debugsession",
            name,
            "--wait=true",
            "--timeout=90s",
        ])?;
    }
    let pre = &run.pre_session[VICTIM];
    wait_for("the victim workload to be reverted", TIMEOUT, || {
        matches_snapshot(&run.ns, VICTIM, pre, false)
    })
}

/// True when the session runs the shell of its current generation.
fn applied(v: &Value) -> bool {
    phase_is(v, "Active")
        && cond_is(v, "SpecApplied", "True", None)
        && v["status"]["shellGeneration"].is_i64()
        && v["status"]["shellGeneration"] == v["metadata"]["generation"]
}

/// The allowed path, part two: `full` extends their own running session and changes its shell.
fn own_changes(run: &Run, name: &str) -> R<String> {
    let (ns, full) = (&run.ns, run.user("full"));
    let v = session(ns, name)?;
    let expires = parse_time(s(&v, "/status/expiresAt"))?;
    k(&[
        "patch",
        "-n",
        ns,
        "debugsession",
        name,
        "--as",
        &full,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"ttl":"20m"}}"#,
    ])?;
    // Only the expiry counts here: whether a TTL-only generation bumps shellGeneration is the
    // controller's business; after the shell change below it must.
    let v = wait_session(ns, name, "expiresAt 10 minutes later", TIMEOUT, |v| {
        parse_time(s(v, "/status/expiresAt")).is_ok_and(|t| t >= expires + 540.0)
    })?;
    let extended = s(&v, "/status/expiresAt").to_string();
    k(&[
        "patch",
        "-n",
        ns,
        "debugsession",
        name,
        "--as",
        &full,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"shell":{"env":[{"name":"E2E_CHANGED","value":"by-full"}]}}}"#,
    ])?;
    wait_for("the shell container to carry E2E_CHANGED", TIMEOUT, || {
        let d = get_json(&["-n", ns, "deployment", "nginx"])?;
        let shell = shell_of(&d["spec"]["template"])
            .cloned()
            .unwrap_or_default();
        let env = shell["env"].as_array().cloned().unwrap_or_default();
        ensure(
            env.iter()
                .any(|e| e["name"] == "E2E_CHANGED" && e["value"] == "by-full"),
            || format!("shell container: {shell}"),
        )
    })?;
    let v = wait_session(
        ns,
        name,
        "SpecApplied=True, shellGeneration = generation",
        TIMEOUT,
        applied,
    )?;
    ensure(
        v["metadata"]["annotations"][REQUESTER] == full.as_str(),
        || {
            format!(
                "re-stamped for {} instead of {full}",
                v["metadata"]["annotations"][REQUESTER]
            )
        },
    )?;
    let ev = wait_event(
        ns,
        "DebugSession",
        name,
        "SpecChanged",
        &[&full, "spec.shell"],
    )?;
    Ok(format!(
        "expiresAt moved to {extended}; shell generation {} applied; SpecChanged: {ev}",
        v["metadata"]["generation"]
    ))
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

    step("namespaces, workloads, users and a Secret");
    for ns in [run.ns.clone(), run.denied_ns.clone()] {
        k(&["create", "namespace", &ns])?;
        k(&["label", "namespace", &ns, &format!("{LABEL}={}", run.id)])?;
        k_in(&deployment_yaml()?, &["apply", "-n", &ns, "-f", "-"])?;
        k_in(&rbac_yaml(run, &ns), &["apply", "-f", "-"])?;
    }
    k_in(&victim_yaml()?, &["apply", "-n", &run.ns, "-f", "-"])?;
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
    let ks_deploy = format!("adm-e2e-{}", run.id);
    k_in(
        &deployment_yaml()?.replace("name: nginx\n", &format!("name: {ks_deploy}\n")),
        &["apply", "-n", "kube-system", "-f", "-"],
    )?;
    // Workloads no request may change.
    let watched = [
        (run.ns.clone(), "nginx".to_string()),
        (run.ns.clone(), OTHER.to_string()),
        (run.denied_ns.clone(), "nginx".to_string()),
        ("kube-system".to_string(), ks_deploy.clone()),
    ];
    let sessions_on = [VICTIM, ORPHAN_LIVE, ORPHAN_STOPPED];
    let all = watched
        .iter()
        .cloned()
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
    let before: Vec<i64> = watched
        .iter()
        .map(|(ns, n)| generation(ns, n))
        .collect::<R<_>>()?;
    for name in sessions_on.iter().chain([&OTHER]) {
        let snap = snapshot(&run.ns, name)?;
        run.pre_session.insert(name.to_string(), snap);
    }

    step("operator with its webhook, and the webhook configurations");
    start_operator_and_webhooks(run)?;
    step(&format!("operator username: {}", run.operator_user));

    let mut tally = Tally::default();
    let creation: Vec<Row> = creation_attempts(ks_deploy.clone())
        .into_iter()
        .map(|(n, a)| (n.to_string(), a))
        .collect();
    tally.attempt(run, creation);

    step("sessions of the full user: one running, one pending, two to orphan");
    start_victims(run)?;
    tally.attempt(run, victim_attempts());

    // Give a misbehaving controller time to act, then look at the victim workload.
    thread::sleep(Duration::from_secs(5));
    let mut changed = Vec::new();
    let (held, sessions) = victims_intact(run);
    if let Err(e) = held {
        changed.push(e);
    }
    for r in [sessions, release_victims(run)] {
        if let Err(e) = r {
            tally.failures.push(format!("victim sessions: {e}"));
        }
    }

    tally.attempt(run, late_attempts());

    for ((ns, n), gen_before) in watched.iter().zip(&before) {
        if let Err(e) = untouched(ns, n, *gen_before) {
            changed.push(e);
        }
    }
    for name in [ORPHAN_LIVE, ORPHAN_STOPPED] {
        if let Err(e) = matches_snapshot(&run.ns, name, &run.pre_session[name], false) {
            changed.push(e);
        }
    }
    let summary = format!(
        "{} forbidden requests tried, {} refused, {} workloads changed",
        tally.tried,
        tally.refused,
        changed.len()
    );
    println!("{summary}");
    let mut failures = tally.failures;
    failures.extend(changed.iter().cloned());

    step("the allowed path: the full user gets a shell, extends it and changes it");
    let full = run.user("full");
    let spec = format!("{}  ttl: 10m\n", target("nginx"));
    k_in(
        &session_yaml("allowed", &spec, ""),
        &["create", "-n", &run.ns, "--as", &full, "-f", "-"],
    )?;
    match wait_active(&run.ns, "allowed") {
        Ok(v) => {
            let who = v["metadata"]["annotations"][REQUESTER]
                .as_str()
                .unwrap_or("");
            if who != full {
                failures.push(format!("allowed session stamped {who:?}, want {full:?}"));
            } else {
                println!("  allowed  session Active, stamped with requester {who}");
                match own_changes(run, "allowed") {
                    Ok(msg) => println!("  allowed  own TTL and shell changed: {msg}"),
                    Err(e) => failures.push(format!("allowed path, own changes: {e}")),
                }
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

    if failures.is_empty() && tally.refused == tally.tried && changed.is_empty() {
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
