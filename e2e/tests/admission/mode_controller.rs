//! Sessions in a mode that the webhook admits or never sees, and that the controller must refuse
//! before it acts: a target.pod of another workload, ephemeral shells the API server could not
//! run as asked, a copy of a container the source lacks; a requester whose rights of the mode
//! were revoked after the stamp; and sessions in a mode the operator does not run (`--modes
//! Patch`), refused by its webhook and, stamped before, by its controller. Each must change
//! nothing (see [`nothing_changed`]).

use debugsession_e2e::*;

use crate::Run;
use crate::mode_rows::{ask, refused_row};
use crate::modes::{
    MODES_ALL, MODES_POD, binding_name, can_i, mode_role, nothing_changed, on_deployment, on_pod,
    revoked_user, stamped_manifest, with,
};
use crate::rows::{DENIED, Row, row};
use crate::sessions::{create_as, failed_with, session_json};
use crate::webhook::{Mode, wait_stamping, with_operator, without_webhooks};

/// Row `what`: `role` creates session `session` with the spec `spec` gives; the webhook admits it
/// and the controller must fail it with `reason`, changing nothing.
fn controller_row(
    what: impl Into<String>,
    role: &'static str,
    session: &'static str,
    reason: &'static str,
    spec: impl Fn(&Run) -> Value + 'static,
) -> Row {
    row(what, move |run: &mut Run| {
        let manifest = session_json(session, spec(run), json!({}));
        nothing_changed(run, session, |run| {
            create_as(&run.ns, Some(&run.user(role)), &manifest)?;
            failed_with(&run.ns, session, &[reason])
        })
    })
}

/// Whether the API server is older than Kubernetes 1.22, which refuses any securityContext on an
/// ephemeral container.
fn legacy_ephemeral() -> R<bool> {
    let v: Value = serde_json::from_str(&k(&["version", "-o", "json"])?)
        .map_err(|e| format!("kubectl version: {e}"))?;
    let minor: u32 = s(&v, "/serverVersion/minor")
        .trim_end_matches('+')
        .parse()
        .map_err(|e| format!("server minor version: {e}: {v}"))?;
    Ok(s(&v, "/serverVersion/major") == "1" && minor < 22)
}

/// Admitted by the webhook, refused by the controller.
pub fn rows() -> R<Vec<Row>> {
    let busybox = cluster().busybox();
    let mut rows = vec![
        controller_row(
            "Ephemeral with target.pod naming a pod of another workload (the one pod the user may write)",
            "podeph",
            "eph-foreign-pod",
            "PodNotFound",
            |_| {
                with(
                    on_deployment(Some("Ephemeral")),
                    json!({"target": {"pod": MODES_POD}}),
                )
            },
        ),
        controller_row(
            "Ephemeral shell with resources (the API server refuses them on ephemeral containers)",
            "allmodes",
            "eph-resources",
            "InvalidOptions",
            |_| {
                with(
                    on_pod(Some("Ephemeral")),
                    json!({"shell": {"resources": {"limits": {"memory": "64Mi"}}}}),
                )
            },
        ),
        controller_row(
            "Copy with copy.setImage naming a container the source lacks",
            "copier",
            "copy-no-container",
            "InvalidOptions",
            move |_| {
                with(
                    on_deployment(Some("Copy")),
                    json!({"copy": {"setImage": {"sidecar": busybox}}}),
                )
            },
        ),
    ];
    if legacy_ephemeral()? {
        rows.push(controller_row(
            "Ephemeral: profile restricted on Kubernetes before 1.22 (no securityContext on ephemeral containers)",
            "allmodes",
            "eph-restricted",
            "InvalidOptions",
            |_| with(on_pod(Some("Ephemeral")), json!({"profile": "restricted"})),
        ));
    }
    rows.extend(MODES_ALL.map(revoked_row));
    Ok(rows)
}

/// `kubectl auth can-i` arguments (verb, resource, subresource) of the right a mode needs.
fn mode_right(mode: &str) -> (&'static str, &'static str, Option<&'static str>) {
    match mode {
        "Patch" => ("patch", "deployments.apps", None),
        "Copy" => ("create", "pods", None),
        _ => ("patch", "pods", Some("ephemeralcontainers")),
    }
}

/// The stamp of a `mode` session is taken (a server-side dry run) while `revoked-<mode>` holds the
/// mode's rights; then the rights are revoked and the admin creates the stamped session past the
/// deleted webhooks. The controller must ask again and refuse it.
fn revoked_row(mode: &'static str) -> Row {
    row(
        format!(
            "{mode}: rights of the mode revoked after the stamp (admin creates it, no webhooks)"
        ),
        move |run: &mut Run| {
            let user = run.user(&revoked_user(mode));
            let session = format!("revoked-{}", mode.to_lowercase());
            let spec = on_deployment(Some(mode));
            let manifest = stamped_manifest(run, &user, &session, &spec)?;
            let binding = binding_name(mode_role(mode), &user);
            k(&["delete", "rolebinding", "-n", &run.ns, &binding])?;
            let (verb, resource, sub) = mode_right(mode);
            wait_for(
                &format!("{user} to lose {verb} {resource}"),
                TIMEOUT,
                || {
                    let answer = can_i(&run.ns, &user, verb, resource, sub);
                    ensure(answer == "no", || format!("can-i says {answer:?}"))
                },
            )?;
            nothing_changed(run, &session, |run| {
                without_webhooks(run, |run| create_as(&run.ns, None, &manifest))?;
                failed_with(&run.ns, &session, &["Unauthorized"])
            })
        },
    )
}

/// The refusals of an operator running `--modes Patch`: its webhook refuses Copy and Ephemeral
/// sessions, and its controller a Copy session stamped by the operator before it.
pub fn disabled(run: &mut Run) -> R<()> {
    let stamped = stamped_manifest(
        run,
        &run.user("copier"),
        "copy-before-restart",
        &on_deployment(Some("Copy")),
    )?;
    with_operator(run, Mode::PatchOnly, move |run| {
        wait_stamping(run)?;
        crate::rows::attempt(run, disabled_rows(stamped))
    })
}

fn disabled_rows(stamped: String) -> Vec<Row> {
    vec![
        refused_row(
            "Copy while the operator runs --modes Patch",
            "copier",
            |_| {
                ask(
                    "copy-disabled",
                    on_deployment(Some("Copy")),
                    &[
                        DENIED,
                        "spec.mode Copy is disabled: the operator enables the modes Patch",
                    ],
                )
            },
        ),
        refused_row(
            "Ephemeral while the operator runs --modes Patch",
            "allmodes",
            |_| {
                ask(
                    "eph-disabled",
                    on_deployment(Some("Ephemeral")),
                    &[
                        DENIED,
                        "spec.mode Ephemeral is disabled: the operator enables the modes Patch",
                    ],
                )
            },
        ),
        refused_row(
            "a Pod target's default mode (Ephemeral) while the operator runs --modes Patch",
            "podeph",
            |_| {
                ask(
                    "pod-default-disabled",
                    on_pod(None),
                    &[DENIED, "mode Ephemeral (the default for a Pod) is disabled"],
                )
            },
        ),
        row(
            "Copy stamped before the operator restarted with --modes Patch (admin creates it, no webhooks)",
            move |run: &mut Run| {
                let session = "copy-before-restart";
                nothing_changed(run, session, |run| {
                    without_webhooks(run, |run| create_as(&run.ns, None, &stamped))?;
                    failed_with(&run.ns, session, &["ModeDisabled"])
                })
            },
        ),
    ]
}
