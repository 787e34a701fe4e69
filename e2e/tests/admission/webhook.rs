//! The operator with its webhook listener (or without a stamp key), and the Mutating/Validating
//! WebhookConfigurations that send this run's namespaces to it; registered, deleted for a while,
//! and registered again.

use debugsession_e2e::*;

use crate::{Run, step};

/// Namespaces labelled with this run's id are sent to the webhooks.
pub const LABEL: &str = "debugsession.dev/admission-e2e";

fn webhook_name(run: &Run) -> String {
    format!("debugsession-admission-e2e-{}", run.id)
}

fn webhooks_yaml(run: &Run) -> String {
    configurations_yaml(&webhook_name(run), run.port, &run.ca_b64, LABEL, &run.id)
}

/// The requester a server-side dry-run create of a session gets stamped with, as `user` (None:
/// the harness's own user); Ok(None) when nothing stamps it.
fn dry_run_requester(run: &Run, user: Option<&str>) -> R<Option<String>> {
    debugsession_e2e::dry_run_requester(&run.ns, "nginx", user)
}

fn register_webhooks(run: &Run) -> R<()> {
    k_in(&webhooks_yaml(run), &["apply", "-f", "-"])?;
    // Effective once a server-side dry run comes back stamped.
    wait_stamping(run)
}

/// Waits until a server-side dry run of a session comes back stamped: the webhooks are
/// registered and the operator's webhook listener answers.
pub fn wait_stamping(run: &Run) -> R<()> {
    let full = run.user("full");
    wait_for("the webhook to stamp sessions", TIMEOUT, || {
        let who = dry_run_requester(run, Some(&full))?;
        ensure(who.as_deref() == Some(full.as_str()), || {
            format!("dry run not stamped yet: requester {who:?}")
        })
    })
}

pub fn delete_webhooks(run: &Run) {
    let name = webhook_name(run);
    for kind in [
        "mutatingwebhookconfiguration",
        "validatingwebhookconfiguration",
    ] {
        let _ = kubectl(&["delete", "--ignore-not-found", kind, &name]);
    }
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
pub fn without_webhooks<T>(run: &mut Run, f: impl FnOnce(&mut Run) -> R<T>) -> R<T> {
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
pub enum Mode {
    /// Webhook listener and stamp key: the supported install.
    Normal,
    /// No stamp key, no webhook and no --insecure-allow-unstamped: must start no session.
    NoStampKey,
    /// Like `Normal`, with only the Patch mode enabled (`--modes Patch`).
    PatchOnly,
}

/// The suite's policy flags, and (but in `NoStampKey` mode) the webhook listener and the stamp
/// key; `--modes Patch` in `PatchOnly` mode.
fn operator_flags(run: &Run, mode: Mode) -> Vec<String> {
    let mut args: Vec<String> = [
        "--max-ttl",
        "1h",
        "--allowed-images",
        "registry.local/busybox:*",
        "--denied-namespaces",
        &format!("kube-system,{}", run.denied_ns),
        "--allowed-capabilities",
        "SYS_PTRACE",
        "--operator-username",
        &run.operator_user,
        "--approval-namespaces",
        &run.appr_ns,
        "--approval-valid-for",
        crate::approvals::VALID_FOR,
    ]
    .map(String::from)
    .to_vec();
    if mode == Mode::PatchOnly {
        args.extend(["--modes".to_string(), "Patch".to_string()]);
    }
    if mode != Mode::NoStampKey {
        args.extend([
            "--webhook-addr".to_string(),
            format!("127.0.0.1:{}", run.port),
            "--webhook-cert-dir".to_string(),
            run.dir.to_string_lossy().to_string(),
            "--stamp-key-file".to_string(),
            run.dir.join("stamp.key").to_string_lossy().to_string(),
        ]);
    }
    args
}

pub fn start_operator(run: &mut Run, mode: Mode) -> R<()> {
    let flags = operator_flags(run, mode);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    step(&format!(
        "starting {} run {} ({mode:?})",
        Operator::binary().display(),
        args.join(" ")
    ));
    // Nothing inherited may turn the insecure mode on.
    let env = [("DEBUGSESSION_INSECURE_ALLOW_UNSTAMPED", "false")];
    run.op = Some(Operator::start_split(
        &run.log,
        Some(&run.audit),
        &args,
        &env,
    )?);
    Ok(())
}

pub fn stop_operator(run: &mut Run) {
    if let Some(mut op) = run.op.take() {
        op.stop();
    }
}

/// Runs `f` with the operator in `mode`, then brings the normal operator back.
pub fn with_operator<T>(run: &mut Run, mode: Mode, f: impl FnOnce(&mut Run) -> R<T>) -> R<T> {
    stop_operator(run);
    let r = start_operator(run, mode).and_then(|()| f(run));
    stop_operator(run);
    let back = start_operator(run, Mode::Normal);
    let v = r?;
    back?;
    Ok(v)
}

/// Sends a signal (`-STOP`, `-CONT`) to the operator process.
pub fn signal_operator(run: &Run, sig: &str) -> R<()> {
    run.op
        .as_ref()
        .ok_or("the operator is not running")?
        .signal(sig)
}

/// Starts the operator and registers the webhooks. The operator runs with the harness's
/// credentials, so its username is the harness's: first guessed from the kubeconfig, then
/// learnt from the stamp of a dry run, and the operator restarted if the guess was wrong.
pub fn start_operator_and_webhooks(run: &mut Run) -> R<()> {
    run.operator_user = kubeconfig_user()?;
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
