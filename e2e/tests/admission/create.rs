//! The requests of issue 5: sessions created by the wrong people or against the policy, forged
//! stamps, and a session slipped past the deleted webhooks.

use debugsession_e2e::*;

use crate::Run;
use crate::install::KUBE_SYSTEM_SESSION;
use crate::rows::{Row, refused_create, row};
use crate::sessions::{REQUESTER, create_as, failed_with, session_yaml, target};
use crate::webhook::without_webhooks;

pub fn rows() -> Vec<Row> {
    let busybox = cluster().busybox();
    let nginx_image = cluster().nginx();
    vec![
        row("user without pods/exec", |run: &mut Run| {
            refused_create(
                &run.user("noexec"),
                &run.ns,
                &session_yaml("noexec", &target("nginx"), ""),
                &[
                    "denied the request",
                    "may not create pods/exec or pods/attach",
                ],
            )
        }),
        row("user without patch on deployments", |run: &mut Run| {
            refused_create(
                &run.user("nopatch"),
                &run.ns,
                &session_yaml("nopatch", &target("nginx"), ""),
                &[
                    "denied the request",
                    "may not patch deployments.apps \"nginx\"",
                ],
            )
        }),
        row("image not in the allowlist", move |run: &mut Run| {
            let spec = format!("{}  shell:\n    image: {nginx_image}\n", target("nginx"));
            refused_create(
                &run.user("full"),
                &run.ns,
                &session_yaml("image", &spec, ""),
                &[
                    "not allowed by the operator's policy",
                    "registry.local/busybox:*",
                ],
            )
        }),
        row("TTL over the maximum", |run: &mut Run| {
            let spec = format!("{}  ttl: 2h\n", target("nginx"));
            refused_create(
                &run.user("full"),
                &run.ns,
                &session_yaml("ttl", &spec, ""),
                &["spec.ttl 2h", "maximum of 1h"],
            )
        }),
        row("capability not allowed (SYS_ADMIN)", |run: &mut Run| {
            let spec = format!(
                "{}  shell:\n    capabilities: [SYS_PTRACE, SYS_ADMIN]\n",
                target("nginx")
            );
            refused_create(
                &run.user("full"),
                &run.ns,
                &session_yaml("sysadmin", &spec, ""),
                &["capability \"SYS_ADMIN\" is not allowed"],
            )
        }),
        row("privileged shell", privileged_shell),
        row("namespace denied by the policy", |run: &mut Run| {
            refused_create(
                &run.user("full"),
                &run.denied_ns,
                &session_yaml("denied", &target("nginx"), ""),
                &[&format!(
                    "namespace \"{}\" is denied by the operator's policy",
                    run.denied_ns
                )],
            )
        }),
        row(
            "kube-system target (outside the webhook; the controller refuses it)",
            kube_system_target,
        ),
        row("forging the requester stamp at create", forged_stamp),
        row("changing the requester stamp on update", changed_stamp),
        row(
            "session created while the webhook was down",
            move |run: &mut Run| {
                let spec = format!("{}  shell:\n    image: {busybox}\n", target("nginx"));
                let yaml = session_yaml("unstamped", &spec, "");
                without_webhooks(run, |run| create_as(&run.ns, None, &yaml))?;
                failed_with(
                    &run.ns,
                    "unstamped",
                    &["StampMissing", "Unauthorized", "InvalidStamp"],
                )
            },
        ),
    ]
}

/// The API has no way to ask for privileged mode: the CRD's structural schema has no such field,
/// so the API server refuses it (strict field validation, Kubernetes >= 1.25) or prunes it (older
/// servers). The target does not exist, so nothing can be changed even when the pruned session is
/// admitted.
fn privileged_shell(run: &mut Run) -> R<String> {
    let spec = format!(
        "{}  shell:\n    securityContext:\n      privileged: true\n",
        target("no-such-workload")
    );
    let yaml = session_yaml("privileged", &spec, "");
    let out = kubectl_in(
        &yaml,
        &[
            "create",
            "-n",
            &run.ns,
            "--as",
            &run.user("full"),
            "-f",
            "-",
        ],
    );
    if !out.ok {
        let msg = out.stderr.trim().to_string();
        ensure(
            msg.contains("securityContext") || msg.contains("privileged"),
            || format!("refused, but not for the privileged field: {msg}"),
        )?;
        return Ok(msg);
    }
    let v = get_session(&run.ns, "privileged")?;
    ensure(v.pointer("/spec/shell/securityContext").is_none(), || {
        format!("the privileged field was stored: {}", v["spec"])
    })?;
    Ok("the API server pruned spec.shell.securityContext: the field does not exist".to_string())
}

/// A session in kube-system (which the webhooks do not see): the controller must refuse it.
fn kube_system_target(run: &mut Run) -> R<String> {
    let yaml = session_yaml(KUBE_SYSTEM_SESSION, &target(&run.ks_deploy), "");
    let out = kubectl_in(&yaml, &["create", "-n", "kube-system", "-f", "-"]);
    if !out.ok {
        return Ok(out.stderr.trim().to_string());
    }
    failed_with(
        "kube-system",
        KUBE_SYSTEM_SESSION,
        &[
            "PolicyViolation",
            "StampMissing",
            "Unauthorized",
            "InvalidStamp",
        ],
    )
}

/// A create carrying a forged stamp is stamped with its real requester. It targets a workload
/// that does not exist: the session is legitimate for its real requester, and must not touch
/// nginx.
fn forged_stamp(run: &mut Run) -> R<String> {
    let forged = "  annotations:\n    debugsession.dev/requester: system:admin\n    debugsession.dev/requester-groups: system:masters\n    debugsession.dev/requester-signature: 00ff\n";
    let yaml = session_yaml("forged", &target("absent"), forged);
    let user = run.user("full");
    k_in(&yaml, &["create", "-n", &run.ns, "--as", &user, "-f", "-"])?;
    let v = get_session(&run.ns, "forged")?;
    let who = v["metadata"]["annotations"][REQUESTER]
        .as_str()
        .unwrap_or("");
    let groups = v["metadata"]["annotations"]["debugsession.dev/requester-groups"]
        .as_str()
        .unwrap_or("");
    ensure(who == user && !groups.contains("system:masters"), || {
        format!("the forged stamp stuck: requester={who:?} groups={groups:?}")
    })?;
    Ok(format!(
        "forged stamp overwritten: requester={who} groups={groups}"
    ))
}

/// Neither its requester nor the cluster admin may change the stamp of "forged" (left by the
/// previous row, stamped with the real requester).
fn changed_stamp(run: &mut Run) -> R<String> {
    let mut refusals = Vec::new();
    let full = run.user("full");
    for user in [Some(full.as_str()), None] {
        let mut args = vec![
            "annotate",
            "--overwrite",
            "-n",
            &run.ns,
            "debugsession",
            "forged",
            "debugsession.dev/requester=system:admin",
        ];
        if let Some(u) = user {
            args.extend(["--as", u]);
        }
        let who = user.unwrap_or("the cluster admin");
        let out = kubectl(&args);
        if out.ok {
            return Err(format!("{who} changed the stamp: {}", out.stdout.trim()));
        }
        ensure(out.stderr.contains("immutable"), || {
            format!(
                "refused, but the message lacks \"immutable\": {}",
                out.stderr
            )
        })?;
        refusals.push(out.stderr.trim().to_string());
    }
    let v = get_session(&run.ns, "forged")?;
    ensure(
        v["metadata"]["annotations"][REQUESTER] == run.user("full"),
        || "the stamp changed".into(),
    )?;
    Ok(refusals.join(" | "))
}
