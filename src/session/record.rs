//! The recorded shell: the shell runs under a small `sh` wrapper that prints a banner and marks
//! every prompt, so whoever attaches knows; the container runtime keeps everything the
//! terminal shows (with a TTY, the echo of what is typed included) in the container's log,
//! where the cluster's log pipeline collects it (`kubectl logs POD -c CONTAINER`).
//!
//! The recording lives in the container that the user has a shell in: like any recorder inside
//! the shell's reach, someone set on hiding can turn the echo off (`stty -echo`). The
//! API server's audit log of `pods/attach` and `pods/exec` is the record that the user cannot
//! touch; this one shows what was done.

/// The banner's first words, also what a test looks for in the log.
pub const BANNER: &str = "This debug shell is recorded";

/// The prompt of a recorded interactive shell.
pub const PROMPT: &str = "[recorded] # ";

/// The wrapper: banner, prompt, then the shell's own command (`"$@"`).
fn script() -> String {
    format!(
        "printf '\\n*** %s: everything this terminal shows, including what you type, is kept in the container log ***\\n\\n' '{BANNER}'; export PS1='{PROMPT}'; exec \"$@\""
    )
}

/// The command and args of a recorded shell, from the shell's own: `sh -c <wrapper>` running
/// the command and its args, or the args alone (the image's command when it has no entrypoint,
/// as busybox), or an interactive `sh` when there is neither.
pub fn wrap(
    command: Option<&[String]>,
    args: Option<&[String]>,
) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let mut inner: Vec<String> = command.unwrap_or_default().to_vec();
    inner.extend_from_slice(args.unwrap_or_default());
    if inner.is_empty() {
        inner.push("sh".into());
    }
    let mut args = vec!["debug-shell".to_string()];
    args.extend(inner);
    (Some(vec!["sh".into(), "-c".into(), script()]), Some(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wraps_the_shell_in_a_banner() {
        let (command, args) = wrap(None, None);
        let command = command.unwrap();
        assert_eq!(command[..2], strings(&["sh", "-c"]));
        assert!(command[2].contains(BANNER) && command[2].ends_with("exec \"$@\""));
        assert_eq!(args.unwrap(), strings(&["debug-shell", "sh"]));
        let (_, args) = wrap(Some(&strings(&["bash", "-l"])), Some(&strings(&["-x"])));
        assert_eq!(args.unwrap(), strings(&["debug-shell", "bash", "-l", "-x"]));
        let (_, args) = wrap(None, Some(&strings(&["top"])));
        assert_eq!(args.unwrap(), strings(&["debug-shell", "top"]));
    }

    #[test]
    fn the_wrapper_runs_under_sh() {
        // The real thing: the banner first, then the command with its args.
        let (command, args) = wrap(Some(&strings(&["echo", "a b"])), Some(&strings(&["c"])));
        let (command, args) = (command.unwrap(), args.unwrap());
        let out = std::process::Command::new(&command[0])
            .args(&command[1..])
            .args(&args)
            .output()
            .expect("sh runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        let banner = text.find(BANNER).expect("banner");
        let echoed = text.find("a b c").expect("the command ran with its args");
        assert!(banner < echoed, "{text}");
    }
}
