//! `kubectl debugsession TYPE/NAME`: creates the session, shows its progress until the shell is
//! ready, then attaches (or, with `--no-attach`, prints the attach command).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use debugsession_operator::api::{
    DebugSession, DebugSessionSpec, Mode, Phase, Profile, Shell, Target,
};
use debugsession_operator::session::ttl;
use futures::StreamExt;
use kube::Api;
use kube::api::{PostParams, WatchParams};

use crate::cli::{CreateArgs, ModeArg, Output, ProfileArg};
use crate::client::Kube;
use crate::explain::{self, Doing};
use crate::progress::{self, Progress};
use crate::{attach, print, session, target};

/// How long a new session may go without any status before the operator is called missing.
pub const OPERATOR_GRACE: Duration = Duration::from_secs(10);

/// The prefix of a session name made from the target's: `<name>-debug-`, to which [`suffix`]
/// adds five random characters, short enough for a label value (63) and for the operator's
/// field manager (`debugsession/<namespace>/<name>` within 128 characters).
pub fn generate_name(target: &str, namespace: &str) -> String {
    let budget = 63usize
        .min(114usize.saturating_sub(namespace.len()))
        .saturating_sub(5 + 7);
    let base: String = target.chars().take(budget.max(1)).collect();
    format!("{}-debug-", base.trim_end_matches(['-', '.']))
}

/// Five random characters from the alphabet Kubernetes generates names with (no vowels, no
/// look-alikes). The name is made here, not by `generateName`: the admission webhook binds the
/// requester stamp to the session's name, and a mutating webhook sees no generated name.
pub fn suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let mut n = hasher.finish();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// How many generated names are tried when one is taken.
const NAME_TRIES: usize = 3;

pub fn spec(args: &CreateArgs) -> Result<DebugSessionSpec, String> {
    let raw = args
        .target
        .as_deref()
        .ok_or("name a target: kubectl debugsession deploy/NAME (see --help)")?;
    let (kind, name) = target::parse(raw)?;
    if let Some(t) = &args.ttl {
        ttl::parse(t).map_err(|e| format!("--ttl: {e}"))?;
    }
    let shell = (args.image.is_some() || args.record).then(|| Shell {
        image: args.image.clone(),
        record: args.record.then_some(true),
        ..Default::default()
    });
    Ok(DebugSessionSpec {
        target: Target {
            kind,
            name,
            container: args.container.clone(),
            pod: args.pod.clone(),
        },
        ttl: args.ttl.clone(),
        shell,
        mode: args.mode.map(|m| match m {
            ModeArg::Patch => Mode::Patch,
            ModeArg::Copy => Mode::Copy,
            ModeArg::Ephemeral => Mode::Ephemeral,
        }),
        profile: args.profile.map(|p| match p {
            ProfileArg::General => Profile::General,
            ProfileArg::Baseline => Profile::Baseline,
            ProfileArg::Restricted => Profile::Restricted,
            ProfileArg::Netadmin => Profile::Netadmin,
            ProfileArg::Sysadmin => Profile::Sysadmin,
        }),
        copy: None,
    })
}

pub async fn run(k: &Kube, args: &CreateArgs, output: Option<Output>) -> Result<(), String> {
    let spec = spec(args)?;
    let timeout = ttl::parse(&args.timeout).map_err(|e| format!("--timeout: {e}"))?;
    let mut obj = DebugSession::new("", spec.clone());
    obj.metadata.namespace = Some(k.namespace.clone());
    let api: Api<DebugSession> = Api::namespaced(k.client.clone(), &k.namespace);
    let prefix = generate_name(&spec.target.name, &k.namespace);
    let mut tries = 0;
    let created = loop {
        obj.metadata.name = Some(
            args.name
                .clone()
                .unwrap_or_else(|| format!("{prefix}{}", suffix())),
        );
        tries += 1;
        match api.create(&PostParams::default(), &obj).await {
            // A generated name that is taken: another one.
            Err(kube::Error::Api(e))
                if e.code == 409 && args.name.is_none() && tries < NAME_TRIES => {}
            res => break res.map_err(|e| explain::api(&e, Doing::Create))?,
        }
    };
    let name = created.metadata.name.clone().unwrap_or_default();
    if output != Some(Output::Name) {
        println!("debugsession.debugsession.dev/{name} created");
    }
    let ready = wait_ready(&api, &name, &k.namespace, timeout).await?;
    if args.no_attach {
        match output {
            Some(Output::Json | Output::Yaml) => print::object(&ready, output)?,
            Some(Output::Name) => println!("debugsession.debugsession.dev/{name}"),
            _ => {
                println!(
                    "debugsession.debugsession.dev/{name} ready: {}",
                    progress::pods_line(&ready)
                );
                println!("kubectl debugsession attach {name} -n {}", k.namespace);
            }
        }
        return Ok(());
    }
    attach::run(k, &ready, args.pod.as_deref(), args.end_on_exit, true).await
}

/// Reads the session again at each change (a watch from the version read, [`next_change`]) until
/// its shell is ready (phase Active), showing progress; fails with the explanation when it
/// fails, expires, vanishes, gets no status from an operator, or `timeout` passes.
pub async fn wait_ready(
    api: &Api<DebugSession>,
    name: &str,
    namespace: &str,
    timeout: Duration,
) -> Result<DebugSession, String> {
    let start = Instant::now();
    let mut progress = Progress::new(format!("debugsession/{name}: "));
    let mut said: Option<String> = None;
    loop {
        let Some(s) = session::get_opt(api, name, namespace).await? else {
            progress.done();
            return Err(format!(
                "debugsession/{name} was deleted while it was starting"
            ));
        };
        if let Some(why) = explain::stopped(&s) {
            progress.done();
            return Err(why);
        }
        let phase = s.status.as_ref().and_then(|st| st.phase);
        if phase.is_none() && start.elapsed() > OPERATOR_GRACE {
            progress.done();
            return Err(explain::no_operator(
                name,
                namespace,
                OPERATOR_GRACE.as_secs(),
            ));
        }
        // Each reason to wait is said once (a session may wait for approval, then behind another).
        if let Some(w) = explain::waiting(&s)
            && said.as_deref() != Some(w.as_str())
        {
            progress.say(&w);
            said = Some(w);
        }
        progress.show(&progress::coming_up(&s));
        let ready_pod = s
            .status
            .as_ref()
            .is_some_and(|st| st.pods.iter().any(|p| p.ready));
        if phase == Some(Phase::Active) && ready_pod {
            progress.done();
            return Ok(s);
        }
        if start.elapsed() > timeout {
            progress.done();
            let why = explain::waiting(&s).unwrap_or_else(|| progress::coming_up(&s));
            return Err(format!(
                "debugsession/{name} is not ready after {}: {why}",
                ttl::format(timeout)
            ));
        }
        let version = s.metadata.resource_version.clone().unwrap_or_default();
        next_change(api, name, &version).await;
    }
}

/// How long a wait for the session's next change lasts before the clocks (the operator's grace,
/// the timeout) are looked at again.
const CHANGE_WAIT: Duration = Duration::from_secs(1);
/// Without a watch (not allowed, or it failed): how often the session is read.
const POLL: Duration = Duration::from_millis(250);

/// Returns at the next change of session `name` after `version`, or after [`CHANGE_WAIT`];
/// when it cannot be watched, after [`POLL`].
async fn next_change(api: &Api<DebugSession>, name: &str, version: &str) {
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(CHANGE_WAIT.as_secs() as u32);
    let watch = async {
        match api.watch(&params, version).await {
            // The next event, or the end of the watch (its timeout): read the session again.
            Ok(events) => {
                let _ = events.boxed().next().await;
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    };
    let _ = tokio::time::timeout(CHANGE_WAIT, watch).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use debugsession_operator::api::TargetKind;

    #[test]
    fn suffixes_are_five_name_characters_and_differ() {
        let a = suffix();
        assert_eq!(a.len(), 5, "{a}");
        assert!(
            a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
            "{a}"
        );
        let many: std::collections::BTreeSet<String> = (0..50).map(|_| suffix()).collect();
        assert!(many.len() > 45, "{many:?}");
    }

    #[test]
    fn generated_names_fit() {
        assert_eq!(generate_name("nginx", "default"), "nginx-debug-");
        let long = "a".repeat(200);
        let g = generate_name(&long, "default");
        assert_eq!(g.len() + 5, 63);
        let g = generate_name(&long, &"n".repeat(80));
        assert!(80 + 1 + "debugsession/".len() + g.len() + 5 <= 128, "{g}");
    }

    #[test]
    fn flags_make_the_spec() {
        let args = CreateArgs {
            target: Some("sts/db".into()),
            ttl: Some("15m".into()),
            mode: Some(ModeArg::Copy),
            profile: Some(ProfileArg::Baseline),
            container: Some("app".into()),
            image: Some("busybox:1.36".into()),
            pod: Some("db-0".into()),
            ..Default::default()
        };
        let s = spec(&args).unwrap();
        assert_eq!(s.target.kind, TargetKind::StatefulSet);
        assert_eq!(s.target.container.as_deref(), Some("app"));
        assert_eq!(s.mode, Some(Mode::Copy));
        assert_eq!(s.profile, Some(Profile::Baseline));
        assert_eq!(s.shell.unwrap().image.as_deref(), Some("busybox:1.36"));
        let bad = CreateArgs {
            target: Some("deploy/x".into()),
            ttl: Some("15 minutes".into()),
            ..Default::default()
        };
        assert!(spec(&bad).unwrap_err().starts_with("--ttl:"));
        let plain = CreateArgs {
            target: Some("deploy/x".into()),
            ..Default::default()
        };
        assert_eq!(spec(&plain).unwrap().shell, None);
        assert!(spec(&CreateArgs::default()).is_err());
    }

    #[test]
    fn record_asks_for_a_recorded_shell() {
        let args = CreateArgs {
            target: Some("deploy/nginx".into()),
            record: true,
            ..Default::default()
        };
        let s = spec(&args).unwrap();
        let shell = s.shell.clone().unwrap();
        assert_eq!(shell.record, Some(true));
        assert_eq!(shell.image, None);
        let sent = serde_json::to_value(&s).unwrap();
        assert_eq!(sent["shell"], serde_json::json!({"record": true}));
    }
}
