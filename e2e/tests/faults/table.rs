//! The bad-input table (phase 1): each bad session ends Failed with its reason or is refused at
//! create, and touches nothing; then a normal session on the same workload works.

use std::time::{Duration, Instant};

use debugsession_e2e::*;

use crate::ns::Ns;
use crate::suite::{Kind, Suite, run_logs};
use crate::{NO_EXPIRY, SHORT, TABLE_DEPLOY};

enum Expect {
    /// Ends Failed with this Ready reason; the message contains the second string.
    Failed(&'static str, &'static str),
    /// Refused by the API server at create, with a message about a maximum.
    Refused,
    /// Either Failed with this reason, or refused at create.
    FailedOrRefused(&'static str),
}

pub struct TableState {
    pub ns: Ns,
    pub original: Value,
}

pub fn table(suite: &Suite) -> Option<TableState> {
    let t0 = Instant::now();
    // A namespace of 12 characters: with a 115-character session name, the field manager
    // debugsession/<ns>/<name> has 141.
    let ns = Ns::new(
        format!("f-table-{:04}", (now_epoch() as u64) % 10000),
        "table",
        suite.verbose,
    );
    let setup = (|| -> R<Value> {
        ns.init()?;
        ns.apply_fixture(TABLE_DEPLOY)?;
        ns.rollout("app")?;
        ns.deployment("app")
    })();
    let before = match setup {
        Ok(v) => v,
        Err(e) => {
            suite.record_row(
                "table-setup",
                Kind::Input,
                Err(e),
                t0.elapsed().as_secs_f64(),
                Vec::new(),
            );
            ns.cleanup(true);
            return None;
        }
    };
    let original = before["spec"]["template"].clone();
    let many = |prefix: &str| -> Vec<Value> {
        (0..200)
            .map(|i| json!(format!("{prefix}{i}")))
            .collect::<Vec<_>>()
    };
    let env200: Vec<Value> = (0..200)
        .map(|i| json!({"name": format!("VAR_{i}"), "value": "x"}))
        .collect();
    let long_name = format!("too-long-{}", "x".repeat(106));
    let cases: Vec<(&str, String, Option<Value>, Expect)> = vec![
        (
            "limits-cpu-lots",
            "bad-cpu".into(),
            Some(json!({"resources": {"limits": {"cpu": "lots"}}})),
            Expect::Failed("InvalidResources", "limits.cpu"),
        ),
        (
            "requests-over-limits",
            "bad-memory".into(),
            Some(
                json!({"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}),
            ),
            Expect::Failed("InvalidResources", "memory"),
        ),
        (
            "container-name-of-init-container",
            "bad-clash".into(),
            Some(json!({"containerName": "setup"})),
            Expect::Failed("ContainerNameClash", "setup"),
        ),
        (
            "session-name-115-chars",
            long_name,
            None,
            Expect::FailedOrRefused("NameTooLong"),
        ),
        (
            "env-200-items",
            "bad-env-many".into(),
            Some(json!({"env": env200})),
            Expect::Refused,
        ),
        (
            "args-200-items",
            "bad-args-many".into(),
            Some(json!({"args": many("a")})),
            Expect::Refused,
        ),
        (
            "env-name-1BAD=",
            "bad-env-name".into(),
            Some(json!({"env": [{"name": "1BAD=", "value": "x"}]})),
            Expect::Failed("InvalidEnv", "1BAD="),
        ),
        (
            "image-Busybox:Latest",
            "bad-image".into(),
            Some(json!({"image": "Busybox:Latest"})),
            Expect::Failed("InvalidImage", "Busybox:Latest"),
        ),
    ];
    let mut all_ok = true;
    for (row, name, shell, expect) in cases {
        if !suite.selected(row) && !suite.selected("table") {
            continue;
        }
        let t = Instant::now();
        let mut notes = Vec::new();
        let res = (|| -> R<()> {
            let out = ns.create_session(&name, "app", NO_EXPIRY, shell.as_ref());
            let reason = match (&expect, out.ok) {
                (Expect::Refused, true) => {
                    return Err(format!("the API server accepted it: {}", out.stdout.trim()));
                }
                (Expect::Refused | Expect::FailedOrRefused(_), false) => {
                    let msg = out.stderr.trim();
                    let low = msg.to_lowercase();
                    ensure(
                        ["at most", "too many", "too long", "maximum", "max"]
                            .iter()
                            .any(|m| low.contains(m)),
                        || format!("refused, but not with a message about a maximum: {msg}"),
                    )?;
                    notes.push(format!(
                        "refused at create: {}",
                        msg.lines()
                            .last()
                            .unwrap_or("")
                            .chars()
                            .take(300)
                            .collect::<String>()
                    ));
                    return Ok(());
                }
                (_, false) => {
                    return Err(format!("kubectl create failed: {}", out.stderr.trim()));
                }
                (Expect::Failed(r, _) | Expect::FailedOrRefused(r), true) => *r,
            };
            let v = ns.wait_failed(&name, reason, SHORT)?;
            let msg = s(&v, "/status/message").to_string();
            if let Expect::Failed(_, part) = &expect {
                ensure(msg.contains(part), || {
                    format!("status.message does not name {part:?}: {msg:?}")
                })?;
            }
            ensure(!msg.is_empty(), || "empty status.message".to_string())?;
            ensure(v.pointer("/status/startedAt").is_none(), || {
                "startedAt set on a refused session".to_string()
            })?;
            if matches!(expect, Expect::FailedOrRefused(_)) {
                notes.push(format!("accepted at create, then Failed {reason}: {msg}"));
            }
            ns.wait_event(&name, reason, Duration::from_secs(30))?;
            // The workload is untouched.
            let after = ns.deployment("app")?;
            template_diff(&original, &after["spec"]["template"])?;
            ensure(
                after["metadata"]["generation"] == before["metadata"]["generation"],
                || {
                    format!(
                        "generation {} -> {}",
                        before["metadata"]["generation"], after["metadata"]["generation"]
                    )
                },
            )?;
            ensure(after.pointer(HOLDER_PTR).is_none(), || {
                format!(
                    "holder annotation left: {}",
                    after.pointer(HOLDER_PTR).unwrap()
                )
            })?;
            let ours = our_managers(&after);
            ensure(ours.is_empty(), || {
                format!("debugsession field managers on the workload: {ours:?}")
            })
        })();
        all_ok &= res.is_ok();
        if res.is_err() {
            notes.extend(run_logs(&suite.logdir, &format!("\"{name}\""), 4));
        }
        let expected = match &expect {
            Expect::Failed(r, _) => format!("Failed {r}"),
            Expect::Refused => "refused at create".to_string(),
            Expect::FailedOrRefused(r) => format!("Failed {r} or refused at create"),
        };
        suite.record_row(
            format!("{row} -> {expected}"),
            Kind::Input,
            res,
            t.elapsed().as_secs_f64(),
            notes,
        );
    }
    // The wedge of the issue: with all of those sessions still there, a normal session on the same
    // workload starts, and its revert leaves the workload as it was.
    if suite.selected("table") || suite.selected("normal-session-after-table") {
        let t = Instant::now();
        let res = (|| -> R<()> {
            ns.session("after-table", "app", NO_EXPIRY)?;
            ns.wait_active("after-table", LONG)?;
            ns.assert_applied("app", "after-table")?;
            ns.delete_session("after-table")?;
            ns.assert_reverted("app", &original, &[])?;
            // The failed sessions go too; their cleanup touches nothing.
            let out = kubectl_for(
                Duration::from_secs(70),
                &[
                    "delete",
                    "debugsessions",
                    "--all",
                    "-n",
                    &ns.name,
                    "--timeout=60s",
                ],
            );
            ensure(out.ok, || {
                format!("deleting the table's sessions: {}", out.both().trim())
            })?;
            ns.assert_reverted("app", &original, &[])
        })();
        all_ok &= res.is_ok();
        suite.record_row(
            "normal-session-after-table -> Active, reverted",
            Kind::Input,
            res,
            t.elapsed().as_secs_f64(),
            Vec::new(),
        );
    }
    if !all_ok {
        println!("    table namespace {}", ns.name);
    }
    Some(TableState { ns, original })
}
