//! Progress while a session comes up or goes away: one line of text per state (pure), shown as a
//! spinner on a terminal and as plain lines, each once, otherwise. Progress goes to stderr, so that
//! stdout stays what scripts read.

use std::io::{IsTerminal, Write};

use debugsession_operator::api::{DebugSession, Phase, condition};

use crate::explain;

/// The state of a session coming up, in one line.
pub fn coming_up(s: &DebugSession) -> String {
    let Some(st) = s.status.as_ref().filter(|st| st.phase.is_some()) else {
        return "waiting for the operator".to_string();
    };
    let phase = st.phase.map(Phase::as_str).unwrap_or("Pending");
    let shells = pods_line(s);
    match st.phase {
        Some(Phase::Applying | Phase::Active) => format!("{phase}: {shells}"),
        _ => match st.message.as_deref() {
            Some(m) if !m.is_empty() => format!("{phase}: {m}"),
            _ => phase.to_string(),
        },
    }
}

/// `1/2 pods carry the shell`, from `status.readyPods` (or the pods list).
pub fn pods_line(s: &DebugSession) -> String {
    let st = s.status.as_ref();
    let ready = st.and_then(|st| st.ready_pods.clone()).unwrap_or_else(|| {
        let pods = st.map(|st| st.pods.as_slice()).unwrap_or_default();
        format!("{}/{}", pods.iter().filter(|p| p.ready).count(), pods.len())
    });
    let one = ready.ends_with("/1");
    format!(
        "{ready} {} the shell",
        if one { "pod carries" } else { "pods carry" }
    )
}

/// The state of a session going away, in one line.
pub fn going_away(s: Option<&DebugSession>) -> String {
    let Some(s) = s else {
        return "session deleted".to_string();
    };
    let phase = s
        .status
        .as_ref()
        .and_then(|st| st.phase)
        .map(Phase::as_str)
        .unwrap_or("Pending");
    match explain::condition(s, condition::REVERTED) {
        Some(c) if c.status == "True" => format!("{phase}: reverted ({})", c.reason),
        Some(c) => format!("{phase}: reverting: {}", c.message),
        None => format!("{phase}: reverting"),
    }
}

const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// Shows progress lines on stderr.
pub struct Progress {
    tty: bool,
    last: String,
    frame: usize,
    prefix: String,
}

impl Progress {
    pub fn new(prefix: impl Into<String>) -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            last: String::new(),
            frame: 0,
            prefix: prefix.into(),
        }
    }

    /// Shows `line`: on a terminal as a spinner line redrawn in place; otherwise once per change.
    pub fn show(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            self.frame = (self.frame + 1) % FRAMES.len();
            let _ = write!(err, "\r\x1b[2K{} {}{line}", FRAMES[self.frame], self.prefix);
            let _ = err.flush();
        } else if line != self.last {
            let _ = writeln!(err, "{}{line}", self.prefix);
        }
        self.last = line.to_string();
    }

    /// Ends the spinner line (a terminal keeps the last state, with a check mark).
    pub fn done(&mut self) {
        if self.tty && !self.last.is_empty() {
            let _ = write!(
                std::io::stderr(),
                "\r\x1b[2K✓ {}{}\n",
                self.prefix,
                self.last
            );
        }
        self.last.clear();
    }

    /// A message line that does not disturb the spinner.
    pub fn say(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use debugsession_operator::api::{
        DebugSessionSpec, DebugSessionStatus, SessionPod, TargetKind,
    };

    fn session(status: Option<DebugSessionStatus>) -> DebugSession {
        let mut s = DebugSession::new(
            "dbg",
            DebugSessionSpec::new(TargetKind::Deployment, "nginx"),
        );
        s.status = status;
        s
    }

    #[test]
    fn lines_for_each_state() {
        assert_eq!(coming_up(&session(None)), "waiting for the operator");
        let applying = DebugSessionStatus {
            phase: Some(Phase::Applying),
            ready_pods: Some("1/2".into()),
            ..Default::default()
        };
        assert_eq!(
            coming_up(&session(Some(applying))),
            "Applying: 1/2 pods carry the shell"
        );
        let copy = DebugSessionStatus {
            phase: Some(Phase::Active),
            pods: vec![SessionPod {
                name: "dbg-copy".into(),
                container: "debug-shell".into(),
                ready: true,
                attach: String::new(),
            }],
            ..Default::default()
        };
        assert_eq!(
            coming_up(&session(Some(copy))),
            "Active: 1/1 pod carries the shell"
        );
        let pending = DebugSessionStatus {
            phase: Some(Phase::Pending),
            message: Some("waiting: held".into()),
            ..Default::default()
        };
        assert_eq!(coming_up(&session(Some(pending))), "Pending: waiting: held");
        assert_eq!(going_away(None), "session deleted");
    }
}
