//! The Copy and Ephemeral modes: the shell reaches nginx from a copy of its pod, or from an
//! ephemeral container in its running pods (every pod of the Deployment, the one `target.pod`
//! names, a bare Pod). The Deployment and its pods stay as they were, a Service sends the copy
//! no traffic, and at the TTL the copy is deleted or the ephemeral shell's process killed.

use debugsession_e2e::*;

use crate::Suite;
use crate::ns::{Ns, pod_name};
use crate::pods::{Untouched, bare_nginx, nginx};
use crate::shell::{Pids, Shell};

/// The TTL of the sessions that run until they expire: longer than their checks take on a
/// loaded machine, short enough not to hold the suite up.
const TTL: &str = "60s";

/// The label of a copy that names its session.
const SESSION_LABEL: &str = "debugsession.dev/session";

pub fn copy(ns: &Ns, _: &Suite) -> R<()> {
    nginx(ns, 2)?;
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "nginx"},
        "spec": {"selector": {"app": "nginx"}, "ports": [{"port": 80}]},
    });
    k_in(&service.to_string(), &["apply", "-n", &ns.name, "-f", "-"])?;
    let untouched = Untouched::take(ns, "deployment", "nginx", "app=nginx")?;
    let ips = pod_ips(ns, &untouched.pod_names())?;
    wait_for("Endpoints nginx = the Deployment's pods", TIMEOUT, || {
        let (ready, not_ready) = endpoints(ns)?;
        if ready == ips && not_ready.is_empty() {
            Ok(())
        } else {
            Err(format!("addresses {ready:?}, not ready {not_ready:?}"))
        }
    })?;
    let spec =
        json!({"target": {"kind": "Deployment", "name": "nginx"}, "mode": "Copy", "ttl": TTL});
    ns.session_spec("cp", spec)?;
    let v = ns.wait_active("cp", TIMEOUT)?;
    let copy = copy_as_asked(ns, &v, "cp")?;
    Shell::new(ns, "cp-copy", SHELL).reaches_the_app(Pids::Pod)?;
    let ip = s(&copy, "/status/podIP").to_string();
    ensure(!ip.is_empty(), || "the Active copy has no IP".into())?;
    no_traffic_for(ns, &ips, &ip)?;
    untouched.check(ns, true)?;
    copy_deleted_early(ns)?;
    no_traffic_for(ns, &ips, &ip)?;
    let v = ns.wait_expired("cp", &v)?;
    // The copy is deleted before the status says Expired.
    let left = get_opt(&ns.name, "pod", "cp-copy")?;
    ensure(
        left.as_ref()
            .is_none_or(|p| p.pointer("/metadata/deletionTimestamp").is_some()),
        || "cp-copy neither gone nor terminating when the session said Expired".into(),
    )?;
    let msg = s(&v, "/status/message");
    ensure(msg == "TTL ran out: the copy pod was deleted", || {
        format!("Expired message: {}", summary(&v))
    })?;
    ensure(cond_is(&v, "Reverted", "True", None), || summary(&v))?;
    ns.wait_pod_gone("cp-copy")?;
    untouched.check(ns, true)?;
    ns.delete_session("cp")
}

/// The IPs of the pods `names`, sorted.
fn pod_ips(ns: &Ns, names: &[String]) -> R<Vec<String>> {
    let mut ips = Vec::new();
    for n in names {
        let ip = s(&ns.get("pod", n)?, "/status/podIP").to_string();
        ensure(!ip.is_empty(), || format!("pod {n} has no IP"))?;
        ips.push(ip);
    }
    ips.sort();
    Ok(ips)
}

/// The ready and the not-ready addresses of Endpoints nginx, each sorted.
fn endpoints(ns: &Ns) -> R<(Vec<String>, Vec<String>)> {
    let ep = ns.get("endpoints", "nginx")?;
    let (mut ready, mut not_ready) = (Vec::new(), Vec::new());
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        for (key, out) in [
            ("addresses", &mut ready),
            ("notReadyAddresses", &mut not_ready),
        ] {
            for a in subset[key].as_array().into_iter().flatten() {
                out.push(s(a, "/ip").to_string());
            }
        }
    }
    ready.sort();
    not_ready.sort();
    Ok((ready, not_ready))
}

/// Endpoints nginx lists the Deployment's pods and not the copy (ready or not).
fn no_traffic_for(ns: &Ns, ips: &[String], copy_ip: &str) -> R<()> {
    let (ready, not_ready) = endpoints(ns)?;
    ensure(
        ready == ips && !not_ready.iter().any(|a| a == copy_ip),
        || {
            format!(
                "Endpoints nginx: addresses {ready:?}, not ready {not_ready:?}; the Deployment's pods {ips:?}, the copy {copy_ip}"
            )
        },
    )
}

/// Session `name` (its status `v`) says it runs in `mode`, in its status and in the MODE column of
/// `kubectl get debugsessions`.
fn mode_shown(ns: &Ns, v: &Value, name: &str, mode: &str) -> R<()> {
    ensure(s(v, "/status/mode") == mode, || {
        format!("status.mode {:?}, want {mode}", v["status"]["mode"])
    })?;
    let table = ns.k(&["get", "debugsessions", name])?;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let at = header.iter().position(|c| *c == "MODE");
    ensure(at.is_some_and(|i| row.get(i) == Some(&mode)), || {
        format!("kubectl get debugsessions {name}: no MODE {mode}: {table}")
    })
}

/// The status of Copy session `name` names its copy, ready, with the attach command; the copy
/// is owned by the session, carries only the session's label, has no probes, never restarts,
/// shares its process namespace, and runs nginx and the shell. Returns the copy.
fn copy_as_asked(ns: &Ns, v: &Value, name: &str) -> R<Value> {
    let copy_name = format!("{name}-copy");
    mode_shown(ns, v, name, "Copy")?;
    let want = json!([{
        "name": copy_name,
        "container": SHELL,
        "ready": true,
        "attach": format!("kubectl attach -it -n {} {copy_name} -c {SHELL}", ns.name),
    }]);
    ensure(
        v["status"]["pods"] == want && s(v, "/status/readyPods") == "1/1",
        || {
            format!(
                "status.pods {} readyPods {}, want {want} 1/1",
                v["status"]["pods"], v["status"]["readyPods"]
            )
        },
    )?;
    let copy = ns.get("pod", &copy_name)?;
    let owners = &copy["metadata"]["ownerReferences"];
    let owner = json!([{
        "apiVersion": "debugsession.dev/v1alpha1",
        "kind": "DebugSession",
        "name": name,
        "uid": s(v, "/metadata/uid"),
        "controller": true,
    }]);
    ensure(*owners == owner, || {
        format!("{copy_name} ownerReferences {owners}, want {owner}")
    })?;
    let labels = &copy["metadata"]["labels"];
    ensure(*labels == json!({ SESSION_LABEL: name }), || {
        format!("{copy_name} labels {labels}, want only {SESSION_LABEL}={name}")
    })?;
    let spec = &copy["spec"];
    ensure(
        spec["restartPolicy"] == "Never" && spec["shareProcessNamespace"] == true,
        || {
            format!(
                "{copy_name}: restartPolicy {}, shareProcessNamespace {}",
                spec["restartPolicy"], spec["shareProcessNamespace"]
            )
        },
    )?;
    let names: Vec<String> = containers(&copy)
        .iter()
        .map(|c| s(c, "/name").to_string())
        .collect();
    ensure(names == ["nginx", SHELL], || {
        format!("{copy_name} containers {names:?}")
    })?;
    for c in containers(&copy) {
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            ensure(c.get(probe).is_none(), || {
                format!("{copy_name}: container {} keeps its {probe}", c["name"])
            })?;
        }
    }
    Ok(copy)
}

/// A second Copy session, deleted before its TTL: its copy goes with it, deleted by the
/// operator (the session's event says so).
fn copy_deleted_early(ns: &Ns) -> R<()> {
    let spec =
        json!({"target": {"kind": "Deployment", "name": "nginx"}, "mode": "Copy", "ttl": "15m"});
    ns.session_spec("cp2", spec)?;
    ns.wait_active("cp2", TIMEOUT)?;
    ns.get("pod", "cp2-copy")?;
    ns.delete_session("cp2")?;
    ns.wait_pod_gone("cp2-copy")?;
    ns.poller().event(
        &ns.name,
        "DebugSession",
        "cp2",
        "Reverted",
        &["deleted its copy pod"],
        TIMEOUT,
    )?;
    Ok(())
}

pub fn ephemeral(ns: &Ns, _: &Suite) -> R<()> {
    nginx(ns, 2)?;
    let untouched = Untouched::take(ns, "deployment", "nginx", "app=nginx")?;
    let spec =
        json!({"target": {"kind": "Deployment", "name": "nginx"}, "mode": "Ephemeral", "ttl": TTL});
    let with = untouched.pod_names();
    ephemeral_session(ns, "eph", spec, "Deployment/nginx", &with, &untouched)
}

pub fn ephemeral_target_pod(ns: &Ns, _: &Suite) -> R<()> {
    nginx(ns, 2)?;
    let untouched = Untouched::take(ns, "deployment", "nginx", "app=nginx")?;
    let pod = untouched.pod_names()[0].clone();
    let spec = json!({
        "target": {"kind": "Deployment", "name": "nginx", "pod": pod},
        "mode": "Ephemeral",
        "ttl": TTL,
    });
    ephemeral_session(ns, "eph-one", spec, "Deployment/nginx", &[pod], &untouched)
}

pub fn ephemeral_pod(ns: &Ns, _: &Suite) -> R<()> {
    bare_nginx(ns, "solo")?;
    let untouched = Untouched::pods(ns, "")?;
    // No mode: a Pod target's default is Ephemeral.
    let spec = json!({"target": {"kind": "Pod", "name": "solo"}, "ttl": TTL});
    let with = ["solo".to_string()];
    ephemeral_session(ns, "eph-pod", spec, "Pod/solo", &with, &untouched)
}

/// Ephemeral session `name` of `spec` (on `target`, `Kind/name`): Active with an ephemeral
/// shell in each pod of `with` and in no other pod; the shell reaches nginx; the pods stay the
/// same pods; at the TTL the session is Expired (ShellExited) and the shell's process has been
/// killed.
fn ephemeral_session(
    ns: &Ns,
    name: &str,
    spec: Value,
    target: &str,
    with: &[String],
    untouched: &Untouched,
) -> R<()> {
    ns.session_spec(name, spec)?;
    let v = ns.wait_active(name, TIMEOUT)?;
    mode_shown(ns, &v, name, "Ephemeral")?;
    ensure(s(&v, "/status/targetRef") == target, || {
        format!(
            "status.targetRef {:?}, want {target}",
            v["status"]["targetRef"]
        )
    })?;
    let shell = s(&v, "/status/shellContainer").to_string();
    let hex = shell.strip_prefix("debug-shell-").unwrap_or("");
    ensure(
        hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        || format!("status.shellContainer {shell:?}, want debug-shell-<6 hex digits>"),
    )?;
    let want: Vec<Value> = with
        .iter()
        .map(|pod| {
            json!({
                "name": pod,
                "container": shell,
                "ready": true,
                "attach": format!("kubectl attach -it -n {} {pod} -c {shell}", ns.name),
            })
        })
        .collect();
    ensure(v["status"]["pods"] == json!(want), || {
        format!("status.pods {}, want {}", v["status"]["pods"], json!(want))
    })?;
    in_the_pods(ns, name, &shell, with)?;
    Shell::new(ns, &with[0], &shell).reaches_the_app(Pids::App)?;
    for pod in &with[1..] {
        Shell::new(ns, pod, &shell).sees_the_app(Pids::App)?;
    }
    untouched.check(ns, false)?;
    let v = ns.wait_expired(name, &v)?;
    ensure(cond_is(&v, "Ready", "False", Some("ShellExited")), || {
        format!("Expired: {}", summary(&v))
    })?;
    for pod in with {
        shell_killed(ns, pod, &shell)?;
    }
    untouched.check(ns, false)?;
    ns.delete_session(name)
}

/// Every pod of the namespace has the ephemeral shell `shell` exactly when it is one of `with`:
/// aimed at the nginx container, under `timeout -s KILL`; on API servers before 1.22, which
/// refuse a securityContext there, without one and with a `ProfileDropped` Warning event.
fn in_the_pods(ns: &Ns, session: &str, shell: &str, with: &[String]) -> R<()> {
    let legacy = server_minor()? < 22;
    for p in ns.all_pods("")? {
        let name = pod_name(&p);
        let entry = p
            .pointer("/spec/ephemeralContainers")
            .and_then(Value::as_array)
            .and_then(|l| l.iter().find(|c| c["name"] == shell).cloned());
        let Some(c) = entry else {
            ensure(!with.contains(&name), || {
                format!("pod {name} has no ephemeral container {shell}")
            })?;
            continue;
        };
        ensure(with.contains(&name), || {
            format!("pod {name}, not a target, has the ephemeral container {shell}")
        })?;
        let command: Vec<&str> = c["command"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        ensure(
            c["targetContainerName"] == "nginx" && command.starts_with(&["timeout", "-s", "KILL"]),
            || format!("ephemeral container in {name}: {c}"),
        )?;
        let sc = &c["securityContext"];
        let ok = if legacy {
            sc.is_null()
        } else {
            sc.pointer("/capabilities/add")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == "SYS_PTRACE"))
        };
        ensure(ok, || {
            format!("ephemeral container in {name}: securityContext {sc}")
        })?;
    }
    if legacy {
        let ev = ns.wait_event(session, "ProfileDropped", TIMEOUT)?;
        ensure(ev.0 == "Warning" && ev.2.contains("general"), || {
            format!("ProfileDropped event {ev:?}")
        })?;
    }
    Ok(())
}

/// The ephemeral shell `shell` of `pod` has ended, killed (exit code 137).
fn shell_killed(ns: &Ns, pod: &str, shell: &str) -> R<()> {
    let what = format!("the ephemeral shell {shell} of pod {pod} to be killed");
    wait_for(&what, TIMEOUT, || {
        let p = ns.get("pod", pod)?;
        let st = p
            .pointer("/status/ephemeralContainerStatuses")
            .and_then(Value::as_array)
            .and_then(|l| l.iter().find(|c| c["name"] == shell).cloned())
            .unwrap_or(Value::Null);
        let term = &st["state"]["terminated"];
        if term["exitCode"] == 137 {
            Ok(())
        } else {
            Err(format!("status {st}"))
        }
    })
}
