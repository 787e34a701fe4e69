//! Sessions in each mode and each profile that the validating webhook refuses at create: users
//! holding the rights of another mode than the one they ask for, rights on another pod than the
//! one named, profiles and options the operator's policy refuses. Each must change nothing (see
//! [`nothing_changed`]).

use debugsession_e2e::*;

use crate::Run;
use crate::modes::{
    MODES, MODES_ALL, MODES_POD, modes_pod_of_deployment, nothing_changed, on_deployment, on_pod,
    with,
};
use crate::rows::{DENIED, NO_EXEC, Row, refused_create, row};
use crate::sessions::session_json;

/// A refused create: the session's name, its spec, and the words the refusal must hold.
pub struct Ask {
    session: String,
    spec: Value,
    words: Vec<String>,
}

pub fn ask(session: &str, spec: Value, words: &[&str]) -> R<Ask> {
    Ok(Ask {
        session: session.to_string(),
        spec,
        words: words.iter().map(|w| w.to_string()).collect(),
    })
}

/// Row `what`: `role` creates the session `f` describes; the webhook must refuse it with its
/// words, and nothing may change.
pub fn refused_row(
    what: impl Into<String>,
    role: &'static str,
    f: impl Fn(&Run) -> R<Ask> + 'static,
) -> Row {
    row(what, move |run: &mut Run| {
        let a = f(run)?;
        let manifest = session_json(&a.session, a.spec, json!({}));
        let words: Vec<&str> = a.words.iter().map(String::as_str).collect();
        nothing_changed(run, &a.session, |run| {
            refused_create(&run.user(role), &run.ns, &manifest, &words)
        })
    })
}

pub fn rows() -> Vec<Row> {
    let mut rows = authorization_rows();
    rows.extend(option_rows());
    rows.extend(profile_rows());
    rows
}

/// Each mode needs its own rights besides exec or attach.
fn authorization_rows() -> Vec<Row> {
    vec![
        refused_row(
            "Copy by a user who may patch the Deployment but not create pods",
            "patcher",
            |_| {
                ask(
                    "copy-by-patcher",
                    on_deployment(Some("Copy")),
                    &[DENIED, "may not create pods in namespace", "in Copy mode"],
                )
            },
        ),
        refused_row(
            "Copy by a user who may create pods, but not exec or attach",
            "noshell",
            |_| {
                ask(
                    "copy-noshell",
                    on_deployment(Some("Copy")),
                    &[DENIED, NO_EXEC],
                )
            },
        ),
        refused_row("Copy of a Pod the user may not get", "copier", |_| {
            ask(
                "copy-pod-unreadable",
                on_pod(Some("Copy")),
                &[
                    DENIED,
                    &format!("may not get pods \"{MODES_POD}\""),
                    "in Copy mode",
                ],
            )
        }),
        refused_row(
            "Copy with target.pod, by a user who may create pods but not get that pod",
            "copier",
            |run| {
                let pod = modes_pod_of_deployment(&run.ns)?;
                ask(
                    "copy-pod-unreadable-one",
                    with(on_deployment(Some("Copy")), json!({"target": {"pod": pod}})),
                    &[
                        DENIED,
                        &format!("may not get pods \"{pod}\""),
                        "in Copy mode",
                    ],
                )
            },
        ),
        refused_row(
            "Patch by a user who may create pods but not patch the Deployment",
            "copier",
            |_| {
                ask(
                    "patch-by-copier",
                    on_deployment(Some("Patch")),
                    &[
                        DENIED,
                        &format!("may not patch deployments.apps \"{MODES}\""),
                        "in Patch mode",
                    ],
                )
            },
        ),
        refused_row(
            "Ephemeral by a user who may create pods but not write pods/ephemeralcontainers",
            "copier",
            |_| {
                ask(
                    "eph-by-copier",
                    on_deployment(Some("Ephemeral")),
                    &[
                        DENIED,
                        "may not patch pods/ephemeralcontainers or update pods/ephemeralcontainers in namespace",
                        "in Ephemeral mode",
                    ],
                )
            },
        ),
        refused_row(
            "Ephemeral with target.pod, by a user with ephemeral-container rights on another pod only",
            "podeph",
            |run| {
                let pod = modes_pod_of_deployment(&run.ns)?;
                ask(
                    "eph-other-pod",
                    with(
                        on_deployment(Some("Ephemeral")),
                        json!({"target": {"pod": pod}}),
                    ),
                    &[
                        DENIED,
                        &format!("may not patch pods/ephemeralcontainers \"{pod}\""),
                        "in Ephemeral mode",
                    ],
                )
            },
        ),
        refused_row(
            "Ephemeral in every pod of the Deployment, by a user with ephemeral-container rights on one pod only",
            "podeph",
            |_| {
                ask(
                    "eph-every-pod",
                    on_deployment(Some("Ephemeral")),
                    &[
                        DENIED,
                        "may not patch pods/ephemeralcontainers or update pods/ephemeralcontainers in namespace",
                        "in Ephemeral mode",
                    ],
                )
            },
        ),
        refused_row(
            "Ephemeral on a Pod, by a user who may write its ephemeral containers, but not exec or attach",
            "noshell",
            |_| ask("eph-noshell", on_pod(Some("Ephemeral")), &[DENIED, NO_EXEC]),
        ),
    ]
}

/// Modes and options that do not go together, or images the policy does not allow; asked by
/// `allmodes`, who holds the rights of every mode.
fn option_rows() -> Vec<Row> {
    let nginx = cluster().nginx();
    vec![
        refused_row("Patch on a Pod target", "allmodes", |_| {
            ask(
                "patch-on-pod",
                on_pod(Some("Patch")),
                &[
                    DENIED,
                    &format!("mode Patch cannot act on Pod {MODES_POD}"),
                    "use mode Copy or Ephemeral",
                ],
            )
        }),
        refused_row("target.pod with mode Patch", "allmodes", |run| {
            let pod = modes_pod_of_deployment(&run.ns)?;
            ask(
                "patch-one-pod",
                with(
                    on_deployment(Some("Patch")),
                    json!({"target": {"pod": pod}}),
                ),
                &[
                    DENIED,
                    &format!("spec.target.pod \"{pod}\" does not apply to mode Patch"),
                ],
            )
        }),
        refused_row("target.pod on a Pod target", "allmodes", |_| {
            ask(
                "copy-pod-pod",
                with(on_pod(Some("Copy")), json!({"target": {"pod": MODES_POD}})),
                &[DENIED, "a Pod target names its pod in spec.target.name"],
            )
        }),
        refused_row(
            "spec.copy with the default mode of a Deployment (Patch)",
            "allmodes",
            |_| {
                ask(
                    "copy-opts-patch",
                    with(on_deployment(None), json!({"copy": {"keepLabels": true}})),
                    &[
                        DENIED,
                        "spec.copy applies to mode Copy only, and the mode is Patch",
                    ],
                )
            },
        ),
        refused_row("spec.copy with mode Ephemeral", "allmodes", |_| {
            ask(
                "copy-opts-eph",
                with(
                    on_pod(Some("Ephemeral")),
                    json!({"copy": {"keepProbes": true}}),
                ),
                &[
                    DENIED,
                    "spec.copy applies to mode Copy only, and the mode is Ephemeral",
                ],
            )
        }),
        refused_row(
            "copy.setImage of the app container with an image outside the allowlist",
            "allmodes",
            move |_| {
                ask(
                    "copy-set-image",
                    with(
                        on_deployment(Some("Copy")),
                        json!({"copy": {"setImage": {"nginx": nginx}}}),
                    ),
                    &[
                        DENIED,
                        &format!("image \"{nginx}\" is not allowed by the operator's policy"),
                        "registry.local/busybox:*",
                    ],
                )
            },
        ),
        refused_row(
            "copy.setImage of every container (*) with an image outside the allowlist",
            "allmodes",
            |_| {
                ask(
                    "copy-set-image-all",
                    with(
                        on_pod(Some("Copy")),
                        json!({"copy": {"setImage": {"*": "registry.local/e2e-other:1"}}}),
                    ),
                    &[
                        DENIED,
                        "image \"registry.local/e2e-other:1\" is not allowed by the operator's policy",
                    ],
                )
            },
        ),
    ]
}

/// In every mode: the profiles the operator does not allow (sysadmin, netadmin), and
/// capabilities asked under `restricted`.
fn profile_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for mode in MODES_ALL {
        let lower = mode.to_lowercase();
        for profile in ["sysadmin", "netadmin"] {
            let session = format!("{lower}-{profile}");
            rows.push(refused_row(
                format!("{mode}: profile {profile}"),
                "allmodes",
                move |_| {
                    ask(
                        &session,
                        with(on_deployment(Some(mode)), json!({ "profile": profile })),
                        &[
                            DENIED,
                            &format!("spec.profile {profile} is not allowed"),
                            "allows the profiles general, baseline, restricted",
                        ],
                    )
                },
            ));
        }
        let session = format!("{lower}-restricted-caps");
        rows.push(refused_row(
            format!("{mode}: profile restricted with shell.capabilities [SYS_PTRACE]"),
            "allmodes",
            move |_| {
                ask(
                    &session,
                    with(
                        on_deployment(Some(mode)),
                        json!({"profile": "restricted", "shell": {"capabilities": ["SYS_PTRACE"]}}),
                    ),
                    &[
                        DENIED,
                        "spec.shell.capabilities (SYS_PTRACE) cannot be added under spec.profile restricted",
                    ],
                )
            },
        ));
    }
    rows
}
