//! `kubectl get --watch` in the background, each line of output stamped with the time it came.
//! A watch that ends (kubectl exits) is started again: its first lines then repeat the current
//! state. Its stderr goes to a file.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use debugsession_e2e::{R, cluster, now_epoch};

type Lines = Arc<Mutex<Vec<(f64, String)>>>;

/// Lines of a running `kubectl get ... --watch`, with their arrival time (epoch seconds).
pub struct Watch {
    child: Arc<Mutex<Option<Child>>>,
    stop: Arc<AtomicBool>,
    restarts: Arc<AtomicUsize>,
    lines: Lines,
    reader: Option<JoinHandle<()>>,
}

fn spawn(program: &str, args: &[String], stderr: &Path) -> R<Child> {
    let err = File::options()
        .create(true)
        .append(true)
        .open(stderr)
        .map_err(|e| format!("{}: {e}", stderr.display()))?;
    Command::new(program)
        .args(args)
        .envs(&cluster().env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{program} {}: {e}", args.join(" ")))
}

impl Watch {
    /// Starts `kubectl <args>` (which should hold `--watch` and a line-per-object output),
    /// appending its stderr to `stderr`.
    pub fn start(args: &[&str], stderr: &Path) -> R<Watch> {
        Self::start_program("kubectl", args, stderr)
    }

    /// Like [`Watch::start`] with another program.
    pub fn start_program(program: &str, args: &[&str], stderr: &Path) -> R<Watch> {
        let program = program.to_string();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let stderr = stderr.to_path_buf();
        let first = spawn(&program, &args, &stderr)?;
        let child = Arc::new(Mutex::new(Some(first)));
        let stop = Arc::new(AtomicBool::new(false));
        let restarts = Arc::new(AtomicUsize::new(0));
        let lines: Lines = Arc::default();
        let (c, st, rs, sink) = (child.clone(), stop.clone(), restarts.clone(), lines.clone());
        let reader = thread::spawn(move || {
            loop {
                let out = c
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                    .and_then(|ch| ch.stdout.take());
                if let Some(out) = out {
                    for line in BufReader::new(out).lines().map_while(Result::ok) {
                        let t = now_epoch();
                        sink.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((t, line));
                    }
                }
                let mut guard = c.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(mut old) = guard.take() {
                    let _ = old.kill();
                    let _ = old.wait();
                }
                if st.load(Ordering::SeqCst) {
                    return;
                }
                rs.fetch_add(1, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(200));
                match spawn(&program, &args, &stderr) {
                    Ok(ch) => *guard = Some(ch),
                    Err(_) => return,
                }
            }
        });
        Ok(Watch {
            child,
            stop,
            restarts,
            lines,
            reader: Some(reader),
        })
    }

    /// The lines from line `from` on, and the index after them.
    pub fn since(&self, from: usize) -> (Vec<(f64, String)>, usize) {
        let l = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let from = from.min(l.len());
        (l[from..].to_vec(), l.len())
    }

    /// How often kubectl was started again.
    pub fn restarts(&self) -> usize {
        self.restarts.load(Ordering::SeqCst)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(c) = self
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            let _ = c.kill();
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_that_ends_starts_again_and_keeps_every_line() {
        let err = std::env::temp_dir().join(format!("bench-watch-{}.err", std::process::id()));
        let w = Watch::start_program("sh", &["-c", "echo a; echo b"], &err).unwrap();
        let start = std::time::Instant::now();
        while w.restarts() < 2 && start.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(50));
        }
        assert!(w.restarts() >= 2);
        let (lines, n) = w.since(0);
        assert!(n >= 4, "{lines:?}");
        assert_eq!((lines[0].1.as_str(), lines[1].1.as_str()), ("a", "b"));
        assert!(lines[0].0 <= lines[1].0);
        let (rest, m) = w.since(n);
        assert!(m >= n && rest.len() == m - n);
        drop(w);
        let _ = std::fs::remove_file(err);
    }
}
