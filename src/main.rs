//! The `debugsession-operator` binary: `run` the controller, or print the CRD with `crdgen`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand};
use debugsession_operator::admission::webhook::{self, Rules, WebhookState};
use debugsession_operator::controller::{self, Context};
use debugsession_operator::http;
use debugsession_operator::leader::{Election, LeaseConfig};
use debugsession_operator::metrics::Metrics;
use debugsession_operator::session::approval::rule::{self, Rule, Selector};
use debugsession_operator::session::policy::Policy;
use debugsession_operator::session::settings::{self, MIN_TTL, Settings};
use debugsession_operator::session::ttl;
use debugsession_operator::session::{mode, profile};
use debugsession_operator::telemetry::{self, LogFormat};
use futures::FutureExt;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    version,
    about = "Time-boxed debug shells inside running Kubernetes workloads"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (in-cluster config, or KUBECONFIG / ~/.kube/config).
    Run(Box<RunArgs>),
    /// Print the DebugSession CRD as YAML.
    Crdgen,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Longest TTL a session may ask for.
    #[arg(long, env = "DEBUGSESSION_MAX_TTL", default_value = settings::DEFAULT_MAX_TTL, value_parser = parse_ttl)]
    max_ttl: Duration,
    /// TTL of a session that names none.
    #[arg(long, env = "DEBUGSESSION_DEFAULT_TTL", default_value = settings::DEFAULT_TTL, value_parser = parse_ttl)]
    default_ttl: Duration,
    /// Shell image of a session that names none.
    #[arg(
        long,
        env = "DEBUGSESSION_DEFAULT_IMAGE",
        default_value = settings::DEFAULT_IMAGE
    )]
    default_image: String,
    /// Log format.
    #[arg(
        long,
        env = "DEBUGSESSION_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Log level filter, overridden by RUST_LOG.
    #[arg(long, env = "DEBUGSESSION_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(
        long,
        env = "DEBUGSESSION_METRICS_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    metrics_addr: SocketAddr,
    /// Reconcile only while holding the leader Lease (for more than one replica).
    #[arg(long, env = "DEBUGSESSION_LEADER_ELECT", default_value_t = false)]
    leader_elect: bool,
    /// Namespace of the leader Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the leader Lease.
    #[arg(
        long,
        env = "DEBUGSESSION_LEASE_NAME",
        default_value = "debugsession-operator"
    )]
    lease_name: String,
    /// Seconds a leader keeps the Lease without renewing it; a standby takes over after this.
    #[arg(long, env = "DEBUGSESSION_LEASE_DURATION", default_value_t = 15)]
    lease_duration: u64,
    /// Serve the admission webhook (/mutate, /validate) over TLS on this address.
    #[arg(long, env = "DEBUGSESSION_WEBHOOK_ADDR")]
    webhook_addr: Option<SocketAddr>,
    /// Directory with the webhook's serving certificate: tls.crt and tls.key.
    #[arg(
        long,
        env = "DEBUGSESSION_WEBHOOK_CERT_DIR",
        default_value = "/tmp/k8s-webhook-server/serving-certs"
    )]
    webhook_cert_dir: PathBuf,
    /// File with the key that signs requester stamps. When set, the controller starts only
    /// sessions stamped by the webhook; the webhook needs it.
    #[arg(long, env = "DEBUGSESSION_STAMP_KEY_FILE")]
    stamp_key_file: Option<PathBuf>,
    /// Without --stamp-key-file, start sessions anyway. INSECURE: with no webhook to stamp who
    /// asked, anyone who may create a DebugSession gets a shell with SYS_PTRACE in any workload
    /// of the namespace. Without it (the default) and without a key, the operator starts none.
    #[arg(
        long,
        env = "DEBUGSESSION_INSECURE_ALLOW_UNSTAMPED",
        default_value_t = false
    )]
    insecure_allow_unstamped: bool,
    /// The operator's own username (in a cluster: system:serviceaccount:<ns>:<name>): the only
    /// user the webhook lets remove the finalizer of a session that still holds its workload.
    #[arg(long, env = "DEBUGSESSION_OPERATOR_USERNAME")]
    operator_username: Option<String>,
    /// Allowed shell images (comma-separated globs; `*` matches any run of characters). The
    /// default image is always allowed.
    #[arg(
        long,
        env = "DEBUGSESSION_ALLOWED_IMAGES",
        value_delimiter = ',',
        default_value = settings::DEFAULT_ALLOWED_IMAGES
    )]
    allowed_images: Vec<String>,
    /// Require shell images pinned by digest.
    #[arg(long, env = "DEBUGSESSION_REQUIRE_DIGEST", default_value_t = false)]
    require_digest: bool,
    /// Namespaces where sessions are refused (comma-separated globs); the operator's own
    /// namespace (POD_NAMESPACE) is always added.
    #[arg(
        long,
        env = "DEBUGSESSION_DENIED_NAMESPACES",
        value_delimiter = ',',
        default_value = settings::DEFAULT_DENIED_NAMESPACES
    )]
    denied_namespaces: Vec<String>,
    /// If set, sessions are allowed only in these namespaces (comma-separated globs).
    #[arg(long, env = "DEBUGSESSION_ALLOWED_NAMESPACES", value_delimiter = ',')]
    allowed_namespaces: Vec<String>,
    /// Capabilities a shell may add (comma-separated).
    #[arg(
        long,
        env = "DEBUGSESSION_ALLOWED_CAPABILITIES",
        value_delimiter = ',',
        default_value = settings::DEFAULT_ALLOWED_CAPABILITIES
    )]
    allowed_capabilities: Vec<String>,
    /// Profiles sessions may ask for (comma-separated: general, baseline, restricted, netadmin,
    /// sysadmin).
    #[arg(
        long,
        env = "DEBUGSESSION_ALLOWED_PROFILES",
        default_value = settings::DEFAULT_ALLOWED_PROFILES
    )]
    allowed_profiles: String,
    /// The modes to run (comma-separated: Patch, Copy, Ephemeral); a session asking for another
    /// is refused. The chart grants the operator only the rights of the modes it runs.
    #[arg(
        long,
        env = "DEBUGSESSION_MODES",
        default_value = settings::DEFAULT_MODES
    )]
    modes: String,
    /// Namespaces where a session needs approval by other people before it starts
    /// (comma-separated globs).
    #[arg(long, env = "DEBUGSESSION_APPROVAL_NAMESPACES", value_delimiter = ',')]
    approval_namespaces: Vec<String>,
    /// Namespaces whose labels match this selector need approval too (`k=v`, `k!=v`, `k`, `!k`,
    /// comma-separated, all must hold).
    #[arg(
        long,
        env = "DEBUGSESSION_APPROVAL_NAMESPACE_SELECTOR",
        default_value = ""
    )]
    approval_namespace_selector: String,
    /// Approvals a session needs where approval applies, none by its requester.
    #[arg(
        long,
        env = "DEBUGSESSION_APPROVERS",
        default_value_t = rule::DEFAULT_APPROVERS,
        value_parser = clap::value_parser!(u32).range(1..=10)
    )]
    approvers: u32,
    /// How long an approval stays good before the session starts (e.g. 10m, 1h).
    #[arg(
        long,
        env = "DEBUGSESSION_APPROVAL_VALID_FOR",
        default_value = rule::DEFAULT_VALID_FOR
    )]
    approval_valid_for: String,
    /// Record every shell: a banner at the prompt, the terminal kept in the container's log.
    #[arg(long, env = "DEBUGSESSION_RECORD_SHELL", default_value_t = false)]
    record_shell: bool,
}

fn nonempty(items: &[String]) -> Vec<String> {
    settings::list(&items.join(","))
}

/// The policy from the flags, made whole (see [`Policy::complete`]).
fn policy(args: &RunArgs) -> Policy {
    let own = std::env::var("POD_NAMESPACE").ok();
    Policy {
        allowed_images: nonempty(&args.allowed_images),
        require_digest: args.require_digest,
        denied_namespaces: nonempty(&args.denied_namespaces),
        allowed_namespaces: nonempty(&args.allowed_namespaces),
        allowed_capabilities: nonempty(&args.allowed_capabilities),
        allowed_profiles: profile::parse_list(&args.allowed_profiles).unwrap_or_default(),
        approval: Rule {
            namespaces: nonempty(&args.approval_namespaces),
            selector: Selector::parse(&args.approval_namespace_selector).unwrap_or_default(),
            approvers: args.approvers,
            valid_for: ttl::parse(&args.approval_valid_for).unwrap_or(Duration::from_secs(3600)),
        },
    }
    .complete(&args.default_image, own.as_deref())
}

fn read_key(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let key = std::fs::read(path)
        .map_err(|e| format!("reading --stamp-key-file {}: {e}", path.display()))?;
    let key = key.trim_ascii().to_vec();
    if key.len() < 32 {
        return Err(format!(
            "--stamp-key-file {} holds {} bytes; use at least 32",
            path.display(),
            key.len()
        ));
    }
    Ok(key)
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    ttl::parse(s).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crdgen => {
            print!("{}", debugsession_operator::crd_yaml());
            std::process::ExitCode::SUCCESS
        }
        Command::Run(args) => match run(*args).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("debugsession-operator: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

fn check(args: &RunArgs) -> Result<(), String> {
    if args.max_ttl < MIN_TTL {
        return Err(format!(
            "--max-ttl must be at least {}",
            ttl::format(MIN_TTL)
        ));
    }
    if args.default_ttl < MIN_TTL || args.default_ttl > args.max_ttl {
        return Err(format!(
            "--default-ttl must lie between {} and --max-ttl ({})",
            ttl::format(MIN_TTL),
            ttl::format(args.max_ttl)
        ));
    }
    if args.default_image.trim().is_empty() {
        return Err("--default-image must not be empty".into());
    }
    if args.lease_duration < 5 {
        return Err("--lease-duration must be at least 5 seconds".into());
    }
    mode::parse_list(&args.modes).map_err(|e| format!("--modes: {e}"))?;
    profile::parse_list(&args.allowed_profiles).map_err(|e| format!("--allowed-profiles: {e}"))?;
    Selector::parse(&args.approval_namespace_selector)
        .map_err(|e| format!("--approval-namespace-selector: {e}"))?;
    ttl::parse(&args.approval_valid_for).map_err(|e| format!("--approval-valid-for: {e}"))?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutdown signal received");
}

/// Checks the webhook's inputs: it needs the stamp key and its serving certificate.
fn check_webhook(args: &RunArgs, stamp_key: Option<&Vec<u8>>) -> Result<(), String> {
    if args.webhook_addr.is_none() {
        return Ok(());
    }
    if stamp_key.is_none() {
        return Err("--webhook-addr needs --stamp-key-file".into());
    }
    for f in ["tls.crt", "tls.key"] {
        let path = args.webhook_cert_dir.join(f);
        if !path.is_file() {
            return Err(format!(
                "--webhook-cert-dir: {} does not exist",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Says at start-up how far requester stamps are trusted.
fn log_trust(stamped: bool, insecure: bool) {
    match (stamped, insecure) {
        (false, false) => tracing::warn!(
            "no --stamp-key-file: sessions are refused (StampRequired) until the admission webhook is installed; --insecure-allow-unstamped starts them without it"
        ),
        (false, true) => tracing::warn!(
            "--insecure-allow-unstamped: sessions start without a requester stamp; anyone who may create a DebugSession gets a shell"
        ),
        (true, _) => {}
    }
}

/// Serves the admission webhook (every replica does, leader or not) until `stop` resolves.
fn spawn_webhook(
    args: &RunArgs,
    ctx: &Context,
    key: Vec<u8>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    let addr = args.webhook_addr?;
    let state = Arc::new(WebhookState {
        client: ctx.client.clone(),
        rules: Rules {
            policy: ctx.policy.clone(),
            settings: ctx.settings.clone(),
            key,
            operator_username: args.operator_username.clone(),
        },
    });
    let cert = args.webhook_cert_dir.join("tls.crt");
    let tls_key = args.webhook_cert_dir.join("tls.key");
    Some(tokio::spawn(async move {
        if let Err(e) =
            webhook::serve_tls(addr, &cert, &tls_key, webhook::router(state), stop).await
        {
            tracing::error!(error = %e, %addr, "admission webhook failed");
        }
    }))
}

/// Runs the controller while this replica holds the leader Lease. Returns whether leadership
/// was lost (rather than given up on shutdown).
async fn lead(
    args: &RunArgs,
    ctx: Arc<Context>,
    identity: String,
    ready: Arc<AtomicBool>,
    stop: futures::future::Shared<impl std::future::Future<Output = ()> + Send + 'static>,
) -> Result<bool, String> {
    let cfg = LeaseConfig {
        namespace: args.lease_namespace.clone(),
        name: args.lease_name.clone(),
        identity,
        duration: args.lease_duration,
        grace: (args.lease_duration / 3).max(2),
    };
    let mut election = Election::start(ctx.client.clone(), &cfg)
        .await
        .map_err(|e| format!("starting leader election: {e}"))?;
    // A standby is healthy and ready; it reconciles nothing.
    ready.store(true, Ordering::SeqCst);
    tracing::info!(lease = %format!("{}/{}", cfg.namespace, cfg.name), "waiting to lead");
    let acquired = tokio::select! {
        got = election.acquired() => got,
        _ = stop.clone() => false,
    };
    let mut lost_leadership = false;
    if acquired {
        tracing::info!("leading: starting the controller");
        let metrics = ctx.metrics.clone();
        metrics.leader.set(1);
        ready.store(false, Ordering::SeqCst);
        let lost = Election::lost(election.state.clone()).shared();
        let shutdown = async move {
            tokio::select! { _ = stop => {}, _ = lost => {} }
        }
        .shared();
        controller::run(ctx, ready, shutdown).await;
        lost_leadership = !*election.state.borrow();
        metrics.leader.set(0);
    }
    election.release().await;
    Ok(lost_leadership)
}

async fn run(args: RunArgs) -> Result<(), String> {
    check(&args)?;
    telemetry::init(args.log_format, &args.log_level);
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("connecting to Kubernetes: {e}"))?;
    let settings = Settings {
        max_ttl: args.max_ttl,
        default_ttl: args.default_ttl,
        default_image: args.default_image.clone(),
        modes: mode::parse_list(&args.modes).unwrap_or_default(),
        record_shell: args.record_shell,
    };
    let identity = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("debugsession-operator-{}", std::process::id()));
    let stamp_key = args.stamp_key_file.as_deref().map(read_key).transpose()?;
    check_webhook(&args, stamp_key.as_ref())?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let ctx = Arc::new(Context::new(
        client,
        settings,
        policy(&args),
        stamp_key.clone(),
        args.insecure_allow_unstamped,
        metrics.clone(),
        Some(identity.clone()),
    ));
    tracing::info!(settings = ?ctx.settings, %identity, "starting");
    log_trust(stamp_key.is_some(), args.insecure_allow_unstamped);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(
        args.metrics_addr,
        http::router(metrics.clone(), ready.clone()),
        async {
            let _ = stop_rx.await;
        },
    ));
    let stop = signal().shared();
    let webhook_server = stamp_key.and_then(|key| spawn_webhook(&args, &ctx, key, stop.clone()));

    let lost_leadership = if args.leader_elect {
        lead(&args, ctx, identity, ready, stop.clone()).await?
    } else {
        metrics.leader.set(1);
        controller::run(ctx, ready, stop.clone()).await;
        false
    };
    let _ = stop_tx.send(());
    if let Some(w) = webhook_server {
        w.abort();
    }
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("serving {}: {e}", args.metrics_addr)),
        Err(e) => return Err(e.to_string()),
    }
    if lost_leadership {
        return Err(
            "lost the leader lease; exiting so that a fresh start can compete again".into(),
        );
    }
    Ok(())
}
