//! `attach NAME`: an interactive terminal on the shell, like `kubectl attach -it`: raw mode, the
//! window size (and every resize), Ctrl-P Ctrl-Q to detach; Ctrl-D ends the shell, not the session.

use std::io::IsTerminal;

use debugsession_operator::api::{DebugSession, Mode};
use futures::SinkExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{AttachParams, TerminalSize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::Kube;
use crate::detach::Detach;
use crate::explain::{self, Doing};
use crate::{end, session};

/// The pod and container to attach to: `--pod`, else the first ready pod of the session.
pub fn pick(s: &DebugSession, pod: Option<&str>) -> Result<(String, String), String> {
    let name = s.metadata.name.as_deref().unwrap_or_default();
    let st = s.status.clone().unwrap_or_default();
    let fallback = st
        .shell_container
        .clone()
        .unwrap_or_else(|| "debug-shell".to_string());
    let chosen = match pod {
        Some(p) => st.pods.iter().find(|x| x.name == p).ok_or_else(|| {
            let names: Vec<_> = st.pods.iter().map(|x| x.name.as_str()).collect();
            format!(
                "pod {p} does not carry the shell of debugsession/{name}; it is in: {}",
                if names.is_empty() {
                    "no pod yet".into()
                } else {
                    names.join(", ")
                }
            )
        })?,
        None => st.pods.iter().find(|x| x.ready).ok_or_else(|| {
            format!(
                "debugsession/{name} has no pod with a ready shell yet ({})",
                st.phase.map(|p| p.as_str()).unwrap_or("no status")
            )
        })?,
    };
    let container = if chosen.container.is_empty() {
        fallback
    } else {
        chosen.container.clone()
    };
    Ok((chosen.name.clone(), container))
}

/// What the keys do, for the line printed before attaching.
pub fn keys_hint(mode: Mode, end_on_exit: bool) -> String {
    let exit = if end_on_exit {
        "exiting the shell (Ctrl-D) ends the session".to_string()
    } else if mode == Mode::Patch {
        "Ctrl-D leaves the shell (it restarts; the session keeps running)".to_string()
    } else {
        format!(
            "Ctrl-D ends this shell for good ({mode} mode cannot restart it; the session keeps running)"
        )
    };
    format!("Ctrl-P Ctrl-Q detaches; {exit}.")
}

/// Restores the terminal when dropped.
struct RawMode;

impl RawMode {
    fn enable() -> Result<RawMode, String> {
        crossterm::terminal::enable_raw_mode().map_err(|e| format!("raw mode: {e}"))?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

enum Left {
    Detached,
    ShellEnded,
}

/// Whether `container` (a container or an ephemeral container) runs in `pod`.
pub fn is_running(pod: &Pod, container: &str) -> bool {
    let Some(st) = pod.status.as_ref() else {
        return false;
    };
    st.container_statuses
        .iter()
        .flatten()
        .chain(st.ephemeral_container_statuses.iter().flatten())
        .find(|c| c.name == container)
        .and_then(|c| c.state.as_ref())
        .is_some_and(|s| s.running.is_some())
}

/// Waits (60 s at most) until the shell runs: a Patch shell that was left with Ctrl-D is
/// restarted by the kubelet, and cannot be attached to until it runs again.
async fn wait_running(pods: &Api<Pod>, pod: &str, container: &str) -> Result<(), String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut said = false;
    loop {
        let p = pods
            .get(pod)
            .await
            .map_err(|e| explain::api(&e, Doing::Other(&format!("reading pod {pod}"))))?;
        if is_running(&p, container) {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "the shell (container {container}) does not run in pod {pod}: see kubectl describe pod -n {} {pod}",
                p.metadata.namespace.unwrap_or_default()
            ));
        }
        if !said {
            eprintln!("Waiting for the shell (container {container}) to run in {pod}...");
            said = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Attaches once the shell runs. The pod's status can still say "running" for a moment after a
/// shell that was left with Ctrl-D ended (the kubelet is starting it again), and the attach is then
/// refused with "container not found": such a refusal is retried for 30 s.
async fn attach_when_running(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    ap: &AttachParams,
) -> Result<kube::api::AttachedProcess, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        wait_running(pods, pod, container).await?;
        match pods.attach(pod, ap).await {
            Ok(p) => return Ok(p),
            Err(e) if is_restarting(&e.to_string()) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(explain::api(
                    &e,
                    Doing::Other(&format!("attaching to {pod}")),
                ));
            }
        }
    }
}

/// Whether an attach error says the container is not running right now (it is being restarted).
pub fn is_restarting(error: &str) -> bool {
    error.contains("not found in pod") || error.contains("container not found")
}

/// Attaches to the session's shell. `fresh`: the shell was just started for this command, so a
/// carriage return is sent to make it print its prompt (no one else is typing in it).
pub async fn run(
    k: &Kube,
    s: &DebugSession,
    pod: Option<&str>,
    end_on_exit: bool,
    fresh: bool,
) -> Result<(), String> {
    let name = s.metadata.name.clone().unwrap_or_default();
    let (pod, container) = pick(s, pod)?;
    let tty = std::io::stdin().is_terminal();
    let mode = s
        .status
        .as_ref()
        .and_then(|st| st.mode)
        .unwrap_or(Mode::Patch);
    eprintln!(
        "Attaching to {pod}, container {container}. {}",
        keys_hint(mode, end_on_exit)
    );
    let pods: Api<Pod> = Api::namespaced(k.client.clone(), &k.namespace);
    wait_running(&pods, &pod, &container).await?;
    let ap = AttachParams::default()
        .container(container.clone())
        .stdin(true)
        .stdout(true)
        .stderr(!tty)
        .tty(tty);
    let mut proc = attach_when_running(&pods, &pod, &container, &ap).await?;
    let mut stdin = proc.stdin().ok_or("the attach stream has no stdin")?;
    let mut stdout = proc.stdout().ok_or("the attach stream has no stdout")?;
    let stderr = proc.stderr();
    let raw = if tty { Some(RawMode::enable()?) } else { None };
    if !fresh && tty {
        eprint!("If you don't see a command prompt, try pressing enter.\r\n");
    }
    if let Some(mut sizes) = proc.terminal_size() {
        tokio::spawn(async move {
            let mut winch =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
            loop {
                if let Ok((width, height)) = crossterm::terminal::size()
                    && sizes.send(TerminalSize { width, height }).await.is_err()
                {
                    return;
                }
                match winch.as_mut() {
                    Some(w) => {
                        if w.recv().await.is_none() {
                            return;
                        }
                    }
                    None => return,
                }
            }
        });
    }
    if fresh && tty {
        let _ = stdin.write_all(b"\r").await;
    }
    let input = async move {
        let mut d = Detach::default();
        let mut keys = tokio::io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            let n = match keys.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    // Input ended (a pipe): let the shell see the end, then wait for it.
                    let _ = stdin.shutdown().await;
                    return futures::future::pending::<Left>().await;
                }
                Ok(n) => n,
            };
            let (bytes, detached) = if tty {
                d.feed(&buf[..n])
            } else {
                (buf[..n].to_vec(), false)
            };
            if stdin.write_all(&bytes).await.is_err() {
                return Left::ShellEnded;
            }
            if detached {
                return Left::Detached;
            }
        }
    };
    let output = async move {
        let mut out = tokio::io::stdout();
        let copy_err = async {
            if let Some(mut e) = stderr {
                let _ = tokio::io::copy(&mut e, &mut tokio::io::stderr()).await;
            }
        };
        let mut buf = [0u8; 8192];
        let copy_out = async {
            loop {
                match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if out.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        let _ = out.flush().await;
                    }
                }
            }
        };
        futures::join!(copy_out, copy_err);
        Left::ShellEnded
    };
    let left = tokio::select! {
        l = input => l,
        l = output => l,
    };
    drop(raw);
    proc.abort();
    let api: Api<DebugSession> = Api::namespaced(k.client.clone(), &k.namespace);
    match left {
        Left::Detached => {
            eprintln!(
                "\nDetached; debugsession/{name} keeps running. Attach again: kubectl debugsession attach {name} -n {}",
                k.namespace
            );
            Ok(())
        }
        Left::ShellEnded if end_on_exit => {
            eprintln!("\nThe shell exited; ending debugsession/{name} (--end-on-exit).");
            end::run(k, &api, &name, std::time::Duration::from_secs(300), false).await
        }
        Left::ShellEnded => {
            let expires = session::get_opt(&api, &name, &k.namespace)
                .await
                .ok()
                .flatten()
                .and_then(|s| s.status?.expires_at)
                .map(|t| format!(" until {}", t.0))
                .unwrap_or_default();
            let again = if mode == Mode::Patch {
                format!(
                    "attach again: kubectl debugsession attach {name} -n {}; ",
                    k.namespace
                )
            } else {
                format!("its shell cannot restart in {mode} mode; ")
            };
            eprintln!(
                "\nThe shell exited; debugsession/{name} keeps running{expires} ({again}end it: kubectl debugsession end {name} -n {})",
                k.namespace
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_say_what_ctrl_d_does_in_each_mode() {
        assert!(keys_hint(Mode::Patch, false).contains("it restarts"));
        assert!(keys_hint(Mode::Copy, false).contains("for good (Copy mode"));
        assert!(keys_hint(Mode::Ephemeral, true).contains("ends the session"));
    }

    #[test]
    fn a_shell_runs_only_in_the_running_state() {
        let pod = |state: serde_json::Value, key: &str| -> Pod {
            serde_json::from_value(serde_json::json!({"status": {key: [
                {"name": "sh", "ready": false, "restartCount": 1, "image": "b", "imageID": "",
                 "state": state}]}}))
            .unwrap()
        };
        let running = serde_json::json!({"running": {}});
        let waiting = serde_json::json!({"waiting": {"reason": "CrashLoopBackOff"}});
        assert!(is_running(&pod(running.clone(), "containerStatuses"), "sh"));
        assert!(is_running(
            &pod(running.clone(), "ephemeralContainerStatuses"),
            "sh"
        ));
        assert!(!is_running(&pod(waiting, "containerStatuses"), "sh"));
        assert!(!is_running(&pod(running, "containerStatuses"), "other"));
    }

    #[test]
    fn a_container_being_restarted_is_retried() {
        assert!(is_restarting(
            "container debug-shell not found in pod web-1_team"
        ));
        assert!(!is_restarting("pods \"web-1\" is forbidden"));
    }
}
