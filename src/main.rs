//! The `debugsession-operator` binary: `run` the controller, or print the CRD with `crdgen`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{Parser, Subcommand};
use debugsession_operator::controller::{self, Context};
use debugsession_operator::metrics::Metrics;
use debugsession_operator::settings::{MIN_TTL, Settings};
use debugsession_operator::telemetry::{self, LogFormat};
use debugsession_operator::{http, ttl};

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
    Run(RunArgs),
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
        Command::Run(args) => match run(args).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("debugsession-operator: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

async fn run(args: RunArgs) -> Result<(), String> {
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
    let instance = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok());
    let ctx = Arc::new(Context::new(client, settings, metrics.clone(), instance));
    tracing::info!(settings = ?ctx.settings, "starting");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(
        args.metrics_addr,
        http::router(metrics, ready.clone()),
        async {
            let _ = stop_rx.await;
        },
    ));
    controller::run(ctx, ready).await;
    let _ = stop_tx.send(());
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("serving {}: {e}", args.metrics_addr)),
        Err(e) => Err(e.to_string()),
    }
}
