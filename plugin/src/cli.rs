//! The command line: kubectl's global flags, the create form (`kubectl debugsession deploy/nginx`)
//! and the subcommands.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Time-boxed debug shells in Kubernetes workloads: create a DebugSession and attach to its shell
/// in one command; list, inspect, extend and end sessions.
#[derive(Parser, Debug)]
#[command(
    name = "kubectl-debugsession",
    bin_name = "kubectl debugsession",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  kubectl debugsession deploy/nginx --ttl 15m\n  kubectl debugsession deploy/nginx --mode copy --no-attach\n  kubectl debugsession list -A\n  kubectl debugsession extend nginx-debug-x7k2p 30m\n  kubectl debugsession approve nginx-debug-x7k2p --comment \"incident 4711\"\n  kubectl debugsession end nginx-debug-x7k2p"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// kubectl's connection and output flags.
#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// Namespace of the session (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<String>,
    /// Output format: json, yaml, wide or name.
    #[arg(short = 'o', long, global = true, value_enum)]
    pub output: Option<Output>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    Wide,
    Name,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    Patch,
    Copy,
    Ephemeral,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileArg {
    General,
    Baseline,
    Restricted,
    Netadmin,
    Sysadmin,
}

/// `kubectl debugsession TYPE/NAME [flags]`: create a session and attach to its shell.
#[derive(Args, Debug, Clone, Default)]
pub struct CreateArgs {
    /// The target: deploy/NAME, sts/NAME, ds/NAME or pod/NAME (a bare NAME is a Deployment).
    #[arg(value_name = "TYPE/NAME")]
    pub target: Option<String>,
    /// How long the session lasts (90s, 15m, 2h, 1h30m; default: the operator's, 1h).
    #[arg(long)]
    pub ttl: Option<String>,
    /// How the shell gets in (default: patch for workloads, ephemeral for pods).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Security profile of the shell, as `kubectl debug --profile`.
    #[arg(long, value_enum)]
    pub profile: Option<ProfileArg>,
    /// The app container to look at (default: the first).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Image of the shell (default: the operator's).
    #[arg(long)]
    pub image: Option<String>,
    /// One pod of the workload: the pod to copy (copy) or the one that gets the shell (ephemeral).
    #[arg(long)]
    pub pod: Option<String>,
    /// Name of the session (default: generated from the target's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Do not attach: wait until the shell is ready and print the attach command.
    #[arg(long)]
    pub no_attach: bool,
    /// End the session when the shell exits (default: leaving the shell ends nothing).
    #[arg(long)]
    pub end_on_exit: bool,
    /// Record the shell: everything shown on its terminal lands in the shell container's log
    /// (kubectl debugsession logs NAME).
    #[arg(long)]
    pub record: bool,
    /// How long to wait for the shell to be ready (and for approval, where sessions need it).
    #[arg(long, default_value = "5m")]
    pub timeout: String,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a session (the same as `kubectl debugsession TYPE/NAME`).
    Create(CreateArgs),
    /// List sessions, with the columns of `kubectl get dbgs`.
    #[command(visible_alias = "ls", visible_alias = "get")]
    List {
        /// List sessions in every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
    /// A session's phase, conditions, pods, time left and recent events.
    #[command(visible_alias = "describe")]
    Status { name: String },
    /// Attach a terminal to a session's shell (detach with Ctrl-P Ctrl-Q).
    Attach {
        name: String,
        /// The pod to attach to (default: the first ready one).
        #[arg(long)]
        pod: Option<String>,
        /// End the session when the shell exits.
        #[arg(long)]
        end_on_exit: bool,
    },
    /// Move a session's expiry later by DURATION (30m, 1h, ...).
    Extend {
        name: String,
        #[arg(value_name = "DURATION")]
        by: String,
    },
    /// End a session: delete it and wait until the workload is back as it was.
    #[command(visible_alias = "delete")]
    End {
        name: String,
        /// How long to wait for the revert.
        #[arg(long, default_value = "5m")]
        timeout: String,
        /// Return once the session is deleted, without waiting for the revert.
        #[arg(long)]
        no_wait: bool,
    },
    /// The shell container's logs.
    Logs {
        name: String,
        /// The pod whose shell to read (default: every pod of the session).
        #[arg(long)]
        pod: Option<String>,
        /// Follow the log.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Approve a session that waits for approval (takes the RBAC verb `approve` on
    /// debugsessions; nobody approves their own session).
    Approve {
        name: String,
        /// A comment recorded with the approval (default: "approved").
        #[arg(long)]
        comment: Option<String>,
    },
    /// Deny a session that waits for approval: it fails with the reason.
    Deny {
        name: String,
        /// Why the session is denied (required; the requester sees it).
        #[arg(long, value_parser = non_blank)]
        reason: String,
    },
    /// Shell completion script: `source <(kubectl debugsession completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// A value that is more than white space (`--reason ""` is a usage error).
fn non_blank(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_string())
    }
}
