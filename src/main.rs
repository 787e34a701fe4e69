//! The `debugsession-operator` binary: `run` the controller, or print the CRD with `crdgen`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand};
use debugsession_operator::controller::{self, Context};
use debugsession_operator::leader::{Election, LeaseConfig};
use debugsession_operator::metrics::Metrics;
use debugsession_operator::settings::{MIN_TTL, Settings};
use debugsession_operator::telemetry::{self, LogFormat};
use debugsession_operator::{http, ttl};
use futures::FutureExt;

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
    #[arg(long, env = "DEBUGSESSION_MAX_TTL", default_value = "24h", value_parser = parse_ttl)]
    max_ttl: Duration,
    /// TTL of a session that names none.
    #[arg(long, env = "DEBUGSESSION_DEFAULT_TTL", default_value = "1h", value_parser = parse_ttl)]
    default_ttl: Duration,
    /// Shell image of a session that names none.
    #[arg(
        long,
        env = "DEBUGSESSION_DEFAULT_IMAGE",
        default_value = "busybox:1.36"
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

async fn run(args: RunArgs) -> Result<(), String> {
    check(&args)?;
    telemetry::init(args.log_format, &args.log_level);
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("connecting to Kubernetes: {e}"))?;
    let settings = Settings {
        max_ttl: args.max_ttl,
        default_ttl: args.default_ttl,
        default_image: args.default_image,
    };
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let identity = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("debugsession-operator-{}", std::process::id()));
    let ctx = Arc::new(Context::new(
        client.clone(),
        settings,
        metrics.clone(),
        Some(identity.clone()),
    ));
    tracing::info!(settings = ?ctx.settings, %identity, "starting");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(
        args.metrics_addr,
        http::router(metrics.clone(), ready.clone()),
        async {
            let _ = stop_rx.await;
        },
    ));
    let stop = signal().shared();

    let mut lost_leadership = false;
    if args.leader_elect {
        let cfg = LeaseConfig {
            namespace: args.lease_namespace,
            name: args.lease_name,
            identity,
            duration: args.lease_duration,
            grace: (args.lease_duration / 3).max(2),
        };
        let mut election = Election::start(client, &cfg)
            .await
            .map_err(|e| format!("starting leader election: {e}"))?;
        // A standby is healthy and ready; it reconciles nothing.
        ready.store(true, Ordering::SeqCst);
        tracing::info!(lease = %format!("{}/{}", cfg.namespace, cfg.name), "waiting to lead");
        let acquired = tokio::select! {
            got = election.acquired() => got,
            _ = stop.clone() => false,
        };
        if acquired {
            tracing::info!("leading: starting the controller");
            metrics.leader.set(1);
            ready.store(false, Ordering::SeqCst);
            let lost = Election::lost(election.state.clone()).shared();
            let shutdown = {
                let (stop, lost) = (stop.clone(), lost.clone());
                async move {
                    tokio::select! { _ = stop => {}, _ = lost => {} }
                }
            };
            controller::run(ctx, ready.clone(), shutdown).await;
            lost_leadership = !*election.state.borrow();
            metrics.leader.set(0);
        }
        election.release().await;
    } else {
        metrics.leader.set(1);
        controller::run(ctx, ready.clone(), stop.clone()).await;
    }
    let _ = stop_tx.send(());
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
