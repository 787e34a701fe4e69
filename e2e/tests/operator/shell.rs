//! What a debug shell does in its pod, whatever put it there (the patched template, a copy of a
//! pod, an ephemeral container): `ps ax` lists nginx's master and workers, `kill -HUP` of the
//! master makes new workers, and `/proc/<master>/root/etc/nginx/nginx.conf` reads nginx's config.

use std::collections::BTreeSet;

use debugsession_e2e::*;

use crate::ns::Ns;

/// Whose process namespace the shell is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pids {
    /// The pod's (`shareProcessNamespace: true`): `ps ax` lists the pod's `/pause` too.
    Pod,
    /// The app container's (an ephemeral container's `targetContainerName`): no `/pause`.
    App,
}

/// A shell container in a pod of the scenario's namespace.
pub struct Shell<'a> {
    pub ns: &'a Ns,
    pub pod: &'a str,
    pub container: &'a str,
}

impl<'a> Shell<'a> {
    pub fn new(ns: &'a Ns, pod: &'a str, container: &'a str) -> Shell<'a> {
        Shell { ns, pod, container }
    }

    /// `kubectl exec` of `cmd` in the shell; its stdout.
    pub fn exec(&self, cmd: &[&str]) -> R<String> {
        let mut args = vec!["exec", self.pod, "-c", self.container, "--"];
        args.extend_from_slice(cmd);
        self.ns.k(&args)
    }

    /// `(pid, rest of the line)` of `ps ax` lines (busybox's columns vary; the command is at the
    /// end).
    pub fn ps(&self) -> R<Vec<(String, String)>> {
        let out = self.exec(&["ps", "ax"])?;
        Ok(out
            .lines()
            .skip(1)
            .filter_map(|l| {
                let l = l.trim_start();
                let (pid, rest) = l.split_once(char::is_whitespace)?;
                Some((pid.to_string(), rest.trim().to_string()))
            })
            .collect())
    }

    /// The three checks one after the other: sees, signals, reads.
    pub fn reaches_the_app(&self, pids: Pids) -> R<()> {
        let (master, workers) = self.sees_the_app(pids)?;
        self.signal_reaches_the_app(&master, &workers)?;
        self.reads_the_app_files(&master)
    }

    /// `ps ax` in the shell lists nginx's master and workers (and `/pause` exactly when the
    /// shell shares the pod's process namespace); returns the master's PID and the workers'.
    pub fn sees_the_app(&self, pids: Pids) -> R<(String, BTreeSet<String>)> {
        let procs = self.ps()?;
        let pause = procs.iter().any(|p| p.1.contains("/pause"));
        ensure(pause == (pids == Pids::Pod), || {
            let want = if pids == Pids::Pod {
                "lists no /pause (not the pod's process namespace)"
            } else {
                "lists /pause (the pod's process namespace, not the app container's)"
            };
            format!("ps ax in {}/{} {want}: {procs:?}", self.pod, self.container)
        })?;
        let master = procs
            .iter()
            .find(|p| p.1.contains("nginx: master process"))
            .ok_or_else(|| {
                format!(
                    "ps ax in {}/{} lacks nginx: master process: {procs:?}",
                    self.pod, self.container
                )
            })?
            .0
            .clone();
        let before = workers(&procs);
        ensure(!before.is_empty(), || {
            format!("no nginx workers: {procs:?}")
        })?;
        Ok((master, before))
    }

    /// `kill -HUP` of nginx's master from the shell: new workers replace the old ones.
    pub fn signal_reaches_the_app(&self, master: &str, before: &BTreeSet<String>) -> R<()> {
        self.exec(&["kill", "-HUP", master])?;
        wait_for(
            "new nginx worker PIDs after kill -HUP of the master",
            TIMEOUT,
            || {
                let now = workers(&self.ps()?);
                if !now.is_empty() && now.is_disjoint(before) {
                    Ok(())
                } else {
                    Err(format!("workers before {before:?}, now {now:?}"))
                }
            },
        )
    }

    /// The shell reads nginx's config through `/proc/<master>/root`.
    pub fn reads_the_app_files(&self, master: &str) -> R<()> {
        let path = format!("/proc/{master}/root/etc/nginx/nginx.conf");
        let conf = self.exec(&["head", "-n", "40", &path])?;
        ensure(
            conf.contains("worker_processes") && conf.contains("events"),
            || format!("{path} does not look like nginx's config: {conf}"),
        )
    }

    /// The shell's effective capabilities (`CapEff` of `/proc/self/status`) as a bit set.
    pub fn effective_capabilities(&self) -> R<u64> {
        let status = self.exec(&["cat", "/proc/self/status"])?;
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .ok_or_else(|| format!("no CapEff in /proc/self/status: {status}"))?;
        u64::from_str_radix(hex.trim(), 16).map_err(|e| format!("CapEff {hex:?}: {e}"))
    }
}

/// The PIDs of nginx's worker processes.
fn workers(procs: &[(String, String)]) -> BTreeSet<String> {
    procs
        .iter()
        .filter(|p| p.1.contains("nginx: worker process"))
        .map(|p| p.0.clone())
        .collect()
}
