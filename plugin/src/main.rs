//! `kubectl debugsession`: from nothing to a debug shell in one command. A kubectl plugin for the
//! DebugSession custom resource of debugsession-operator.
//!
//! Exit codes: 0 success, 1 an error (explained on stderr in one line), 2 bad usage.

mod approval;
mod attach;
mod cli;
mod client;
mod create;
mod detach;
mod end;
mod explain;
mod extend;
mod list;
mod logs;
mod print;
mod progress;
mod session;
mod status;
mod table;
mod target;

use clap::{CommandFactory, Parser};
use debugsession_operator::api::DebugSession;
use debugsession_operator::session::ttl;
use kube::Api;

use cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    };
    // Exit without waiting for the blocking stdin reader an attach may leave behind.
    std::process::exit(code);
}

async fn run(cli: Cli) -> Result<(), String> {
    let output = cli.global.output;
    if let Some(Command::Completion { shell }) = cli.command {
        let mut cmd = Cli::command();
        clap_complete::generate(
            shell,
            &mut cmd,
            "kubectl-debugsession",
            &mut std::io::stdout(),
        );
        return Ok(());
    }
    if cli.command.is_none() && cli.create.target.is_none() {
        let _ = Cli::command().print_help();
        return Err("name a target (kubectl debugsession deploy/NAME) or a command".into());
    }
    let k = client::connect(&cli.global).await?;
    let api: Api<DebugSession> = Api::namespaced(k.client.clone(), &k.namespace);
    match cli.command {
        None => create::run(&k, &cli.create, output).await,
        Some(Command::Create(args)) => create::run(&k, &args, output).await,
        Some(Command::List { all_namespaces }) => list::run(&k, all_namespaces, output).await,
        Some(Command::Status { name }) => status::run(&k, &name, output).await,
        Some(Command::Attach {
            name,
            pod,
            end_on_exit,
        }) => {
            let s = session::get(&api, &name, &k.namespace).await?;
            if let Some(why) = explain::stopped(&s) {
                return Err(why);
            }
            attach::run(&k, &s, pod.as_deref(), end_on_exit, false).await
        }
        Some(Command::Extend { name, by }) => extend::run(&api, &name, &k.namespace, &by).await,
        Some(Command::End {
            name,
            timeout,
            no_wait,
        }) => {
            let timeout = ttl::parse(&timeout).map_err(|e| format!("--timeout: {e}"))?;
            end::run(&k, &api, &name, timeout, no_wait).await
        }
        Some(Command::Logs { name, pod, follow }) => {
            logs::run(&k, &name, pod.as_deref(), follow).await
        }
        Some(Command::Approve { name, comment }) => {
            approval::approve(&api, &name, &k.namespace, comment.as_deref()).await
        }
        Some(Command::Deny { name, reason }) => {
            approval::deny(&api, &name, &k.namespace, &reason).await
        }
        Some(Command::Completion { .. }) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn create_form_and_subcommands() {
        let c = Cli::try_parse_from([
            "kubectl-debugsession",
            "deploy/nginx",
            "--ttl",
            "15m",
            "-n",
            "team",
            "--mode",
            "copy",
            "-c",
            "app",
            "--no-attach",
        ])
        .unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.create.target.as_deref(), Some("deploy/nginx"));
        assert_eq!(c.global.namespace.as_deref(), Some("team"));
        assert!(c.create.no_attach);
        let c = Cli::try_parse_from(["kubectl-debugsession", "list", "-A", "-o", "wide"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::List {
                all_namespaces: true
            })
        ));
        assert_eq!(c.global.output, Some(cli::Output::Wide));
        let c = Cli::try_parse_from([
            "kubectl-debugsession",
            "extend",
            "dbg",
            "30m",
            "--context",
            "kind",
        ])
        .unwrap();
        assert!(matches!(c.command, Some(Command::Extend { ref by, .. }) if by == "30m"));
        assert_eq!(c.global.context.as_deref(), Some("kind"));
        assert!(Cli::try_parse_from(["kubectl-debugsession", "list", "deploy/nginx"]).is_err());
    }
    #[test]
    fn approve_and_deny() {
        let c =
            Cli::try_parse_from(["kubectl-debugsession", "approve", "dbg", "-n", "prod"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Approve { ref name, comment: None }) if name == "dbg"
        ));
        assert_eq!(c.global.namespace.as_deref(), Some("prod"));
        let c = Cli::try_parse_from([
            "kubectl-debugsession",
            "approve",
            "dbg",
            "--comment",
            "incident 4711",
        ])
        .unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Approve { comment: Some(ref m), .. }) if m == "incident 4711"
        ));
        let c = Cli::try_parse_from(["kubectl-debugsession", "deny", "dbg", "--reason", "not now"])
            .unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Deny { ref name, ref reason }) if name == "dbg" && reason == "not now"
        ));
        // A denial needs a reason: missing or empty is a usage error (exit code 2).
        for args in [
            &["kubectl-debugsession", "deny", "dbg"][..],
            &["kubectl-debugsession", "deny", "dbg", "--reason", ""],
            &["kubectl-debugsession", "deny", "dbg", "--reason", "  "],
            &["kubectl-debugsession", "approve"],
        ] {
            let e = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn record_is_a_create_flag() {
        let c = Cli::try_parse_from(["kubectl-debugsession", "deploy/nginx", "--record"]).unwrap();
        assert!(c.create.record);
        let c = Cli::try_parse_from(["kubectl-debugsession", "create", "deploy/nginx", "--record"])
            .unwrap();
        assert!(matches!(c.command, Some(Command::Create(ref a)) if a.record));
        assert!(
            !Cli::try_parse_from(["kubectl-debugsession", "deploy/nginx"])
                .unwrap()
                .create
                .record
        );
    }

    #[test]
    fn completion_knows_the_new_commands() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "kubectl-debugsession", &mut out);
            let text = String::from_utf8(out).unwrap();
            for word in ["approve", "deny", "--reason", "--comment", "--record"] {
                assert!(text.contains(word), "{shell}: {word}");
            }
        }
    }
}
