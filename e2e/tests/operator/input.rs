//! What the operator refuses, and how it says so: a namespace whose Pod Security level forbids the
//! shell, a table of bad specs (refused by the API server or failed by the controller, the
//! workload untouched either way), and the CRD's descriptions in `kubectl explain`.

use debugsession_e2e::*;

use crate::Suite;
use crate::ns::{Ns, SAMPLE};
use crate::pods::nginx;

pub fn pod_security(ns: &Ns, _: &Suite) -> R<()> {
    ns.k(&[
        "label",
        "namespace",
        &ns.name,
        "pod-security.kubernetes.io/enforce=baseline",
    ])?;
    let _ = nginx(ns, 1)?;
    let before = ns.get("deployment", "nginx")?;
    ns.session("psa", "15m")?;
    let v = ns.wait_failed("psa", "PodSecurityViolation", TIMEOUT)?;
    let msg = s(&v, "/status/message");
    ensure(
        msg.contains("baseline") && msg.contains("SYS_PTRACE"),
        || format!("message must name baseline and SYS_PTRACE: {msg:?}"),
    )?;
    ensure(v.pointer("/status/startedAt").is_none(), || {
        "startedAt set on a refused session".into()
    })?;
    let ev = ns.wait_event("psa", "PodSecurityViolation", TIMEOUT)?;
    ensure(ev.0 == "Warning", || {
        format!("PodSecurityViolation event is {}", ev.0)
    })?;
    let after = ns.get("deployment", "nginx")?;
    template_diff(&before["spec"]["template"], &after["spec"]["template"])?;
    ensure(
        before["metadata"]["generation"] == after["metadata"]["generation"],
        || "generation changed".into(),
    )?;
    ensure(
        before["metadata"]["annotations"] == after["metadata"]["annotations"],
        || format!("annotations changed: {}", after["metadata"]["annotations"]),
    )?;
    ensure(our_managers(&after).is_empty(), || {
        "a debugsession manager touched the workload".into()
    })
}

/// What a bad spec must come to.
enum Expect {
    /// `kubectl apply` refused, the message naming the field.
    Rejected(&'static str),
    /// Admitted, then Failed by the controller with this Ready reason (and a Warning event).
    Failed(&'static str),
}

/// (case, text of the sample to replace, replacement, expectation)
const BAD_INPUT: [(&str, &str, &str, Expect); 6] = [
    (
        "unknown-target",
        "    name: nginx\n",
        "    name: does-not-exist\n",
        Expect::Failed("TargetNotFound"),
    ),
    (
        "ttl-too-long",
        "ttl: 15m",
        "ttl: 48h",
        Expect::Failed("TTLTooLong"),
    ),
    (
        "ttl-too-short",
        "ttl: 15m",
        "ttl: 10s",
        Expect::Failed("TTLTooShort"),
    ),
    (
        "empty-image",
        "ttl: 15m",
        "ttl: 15m\n  shell:\n    image: \"\"",
        Expect::Failed("EmptyImage"),
    ),
    (
        "malformed-ttl",
        "ttl: 15m",
        "ttl: ten",
        Expect::Rejected("spec.ttl"),
    ),
    (
        "wrong-kind",
        "kind: Deployment",
        "kind: ReplicaSet",
        Expect::Rejected("spec.target.kind"),
    ),
];

pub fn bad_input(ns: &Ns, _: &Suite) -> R<()> {
    let _ = nginx(ns, 1)?;
    let before = ns.get("deployment", "nginx")?;
    let mut failures = Vec::new();
    let mut sessions = Vec::new();
    for (name, from, to, expect) in &BAD_INPUT {
        let session = format!("bad-{name}");
        let text = render(
            SAMPLE,
            &[
                ("name: nginx-debug", &format!("name: {session}")),
                (from, to),
            ],
        )?;
        let out = ns.apply_text(&text);
        match expect {
            Expect::Rejected(field) => {
                if out.ok {
                    failures.push(format!(
                        "{name}: kubectl apply accepted it: {}",
                        out.stdout.trim()
                    ));
                } else if !out.stderr.contains(field) {
                    failures.push(format!(
                        "{name}: rejection does not mention {field}: {}",
                        out.stderr.trim()
                    ));
                }
            }
            Expect::Failed(_) if !out.ok => failures.push(format!(
                "{name}: kubectl apply failed: {}",
                out.stderr.trim()
            )),
            Expect::Failed(reason) => sessions.push((name, session, *reason)),
        }
    }
    for (name, session, reason) in sessions {
        if let Err(e) = failed_with(ns, &session, reason) {
            failures.push(format!("{name}: {e}"));
        }
    }
    let after = ns.get("deployment", "nginx")?;
    if let Err(e) = template_diff(&before["spec"]["template"], &after["spec"]["template"]) {
        failures.push(format!("workload touched: {e}"));
    }
    if before["metadata"]["generation"] != after["metadata"]["generation"]
        || before["metadata"]["annotations"] != after["metadata"]["annotations"]
    {
        failures.push("workload generation/annotations changed".into());
    }
    ensure(failures.is_empty(), || failures.join(" | "))
}

/// The session ends Failed with Ready reason `reason`, a message, and a Warning event.
fn failed_with(ns: &Ns, session: &str, reason: &str) -> R<()> {
    let v = ns.wait_failed(session, reason, TIMEOUT)?;
    ensure(!s(&v, "/status/message").is_empty(), || {
        "empty status.message".into()
    })?;
    let ev = ns.wait_event(session, reason, TIMEOUT)?;
    ensure(ev.0 == "Warning" && !ev.2.is_empty(), || {
        format!("event {ev:?}")
    })
}

pub fn explain(_: &Ns, _: &Suite) -> R<()> {
    let out = wait_for("kubectl explain debugsession.spec", TIMEOUT, || {
        let out = kubectl(&["explain", "debugsession.spec"]);
        if out.ok && out.stdout.contains("ttl") {
            Ok(out.stdout)
        } else {
            Err(out.both())
        }
    })?;
    for f in ["target", "ttl", "shell", "DESCRIPTION"] {
        ensure(out.contains(f), || {
            format!("explain debugsession.spec lacks {f}: {out}")
        })?;
    }
    let ttl = k(&["explain", "debugsession.spec.ttl"])?;
    ensure(ttl.contains("How long the session lasts"), || {
        format!("spec.ttl has no description: {ttl}")
    })?;
    let kind = k(&["explain", "debugsession.spec.target.kind"])?;
    ensure(kind.contains("Kind of the workload"), || {
        format!("spec.target.kind has no description: {kind}")
    })
}
