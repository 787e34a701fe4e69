//! Observe: read what planning needs from the cluster (the target workload, who holds it, the
//! namespace's Pod Security labels, the pods) and decide what authorizes the spec.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use super::Context;
use super::act::copy::owned_by;
use super::plan::{Holder, Observed};
use crate::api::{DebugSession, HOLDER_ANNOTATION, Mode, Phase, TargetKind};
use crate::session::approval::SessionId;
use crate::session::approval::tally::{Count, Tally};
use crate::session::copy::copy_name;
use crate::session::stamp::{self, Stamp};
use crate::session::validate::{self, Invalid};
use crate::workload::{self, Workload};
use crate::{Error, Result};

/// Reads the target and, in Copy mode, the session's copy: all that a revert on delete needs.
pub(super) async fn observe_target(session: &DebugSession, ctx: &Context) -> Result<Observed> {
    let ns = session.namespace().ok_or(Error::NotNamespaced)?;
    let (kind, name) = session.target_in_force();
    let mut obs = Observed::default();
    if kind == TargetKind::Pod {
        let pod = pods(ctx, &ns)
            .get_opt(&name)
            .await
            .map_err(Error::ReadWorkload)?;
        obs.workload = pod.clone().map(Workload::from);
        obs.source_pod = pod;
    } else {
        obs.workload = workload::fetch(&ctx.client, &ns, kind, &name).await?;
    }
    if session.mode() == Mode::Copy {
        let copy = pods(ctx, &ns)
            .get_opt(&copy_name(&session.name_any()))
            .await
            .map_err(Error::ListPods)?;
        let uid = session.uid().unwrap_or_default();
        obs.pods = copy.into_iter().filter(|p| owned_by(p, &uid)).collect();
    }
    Ok(obs)
}

fn pods(ctx: &Context, ns: &str) -> Api<Pod> {
    Api::namespaced(ctx.client.clone(), ns)
}

/// Reads what planning a live session needs: the target, who holds it (Patch), the
/// namespace's Pod Security labels (before a spec first runs), the pod `target.pod` names, and
/// the pods the shell is in or goes into.
pub(super) async fn observe(session: &DebugSession, ctx: &Context) -> Result<Observed> {
    let ns = session.namespace().ok_or(Error::NotNamespaced)?;
    let mut obs = observe_target(session, ctx).await?;
    let status = session.status.clone().unwrap_or_default();
    let started = status.started_at.is_some();
    let terminal = status.phase.is_some_and(Phase::is_terminal);
    let mode = session.mode();
    if let Some(w) = &obs.workload {
        if mode == Mode::Patch {
            obs.holder = Some(holder(w, session, ctx, &ns).await?);
        }
        if !started || fresh_spec(session) {
            let nsobj = Api::<Namespace>::all(ctx.client.clone())
                .get_opt(&ns)
                .await
                .map_err(Error::ReadNamespace)?;
            obs.namespace_labels = nsobj.map(|n| n.labels().clone()).unwrap_or_default();
        }
        if let (false, Some(p)) = (started, &session.spec.target.pod) {
            obs.source_pod = pods(ctx, &ns).get_opt(p).await.map_err(Error::ListPods)?;
        }
    }
    // A running session whose TTL ran out (and no new spec moves it) is released next and
    // reports no pods: its expiry does not wait for a list of them.
    let expired = !fresh_spec(session)
        && (status.expires_at.as_ref()).is_some_and(|e| e.0 <= Timestamp::now());
    let list_workload_pods = match mode {
        Mode::Patch => started && !terminal && !expired,
        Mode::Ephemeral => !started && obs.source_pod.is_none(),
        Mode::Copy => false,
    };
    if let Some(w) = obs.workload.as_ref().filter(|_| list_workload_pods) {
        let selector = w.label_selector();
        if !selector.is_empty() {
            obs.pods = pods(ctx, &ns)
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(Error::ListPods)?
                .items;
        }
    }
    if mode == Mode::Ephemeral && !started {
        obs.legacy_ephemeral = ctx
            .legacy_ephemeral_api()
            .await
            .map_err(Error::ServerVersion)?;
    }
    if mode == Mode::Ephemeral && started && !terminal {
        // The pods the shell went into, by name: they may be gone or replaced since.
        for p in &status.pods {
            if let Some(pod) = pods(ctx, &ns)
                .get_opt(&p.name)
                .await
                .map_err(Error::ListPods)?
            {
                obs.pods.push(pod);
            }
        }
    }
    Ok(obs)
}

/// Who holds the workload: the session whose field manager owns the holder annotation. An
/// annotation that no DebugSession's manager owns holds nothing and is reported as foreign.
async fn holder(w: &Workload, session: &DebugSession, ctx: &Context, ns: &str) -> Result<Holder> {
    let Some(value) = w.annotations.get(HOLDER_ANNOTATION) else {
        return Ok(Holder::Free);
    };
    let prefix = crate::api::session_manager(ns, "");
    let Some(name) = w
        .holder_owners
        .iter()
        .find_map(|m| m.strip_prefix(prefix.as_str()))
        .map(String::from)
    else {
        return Ok(Holder::Foreign {
            value: value.clone(),
            owners: w.holder_owners.clone(),
        });
    };
    if name == session.name_any() {
        return Ok(Holder::Us);
    }
    let other = Api::<DebugSession>::namespaced(ctx.client.clone(), ns)
        .get_opt(&name)
        .await
        .map_err(Error::ReadHolder)?;
    // A holder being deleted is still live: its finalizer releases the workload.
    let live = other.is_some_and(|o| {
        o.metadata.deletion_timestamp.is_some()
            || !o
                .status
                .and_then(|s| s.phase)
                .is_some_and(Phase::is_terminal)
    });
    Ok(Holder::Other { name, live })
}

/// Whether the spec generation is newer than the one whose shell runs.
fn fresh_spec(session: &DebugSession) -> bool {
    let status = session.status.as_ref();
    status
        .and_then(|s| s.shell_generation.or(s.observed_generation))
        .is_none_or(|g| Some(g) != session.metadata.generation)
}

/// The stamp that authorizes the session's spec as it stands, or why nothing authorizes it: no
/// stamp that covers this spec (when stamps are required), no stamp key and no opt-in to run
/// unstamped, or the operator's policy.
pub(super) fn admission(session: &DebugSession, ctx: &Context) -> Result<Option<Stamp>, Invalid> {
    let ns = session.namespace().unwrap_or_default();
    let stamp = match &ctx.stamp_key {
        Some(key) => Some(stamp::verify(
            key,
            &ns,
            &session.name_any(),
            session.annotations(),
            &session.spec,
        )?),
        None if ctx.insecure_allow_unstamped => None,
        None => {
            return Err(Invalid {
                reason: crate::api::reason::STAMP_REQUIRED,
                message: "the operator runs without a stamp key, so it cannot tell who asked for this session and starts none: install its admission webhook (Helm: webhook.enabled=true; kustomize: config/default), or accept that anyone who may create a DebugSession gets a shell by running the operator with --insecure-allow-unstamped".into(),
            });
        }
    };
    // A spec that does not resolve fails in planning, with its own reason.
    if let Ok(asked) = validate::resolve(&session.spec, &ctx.settings) {
        ctx.policy.check(&ns, &session.spec, &asked)?;
    }
    Ok(stamp)
}

/// The approvals of the session's current spec, as far as the operator can verify them: none
/// without a stamp key (then a namespace that needs approval gets a tally that never passes).
pub(super) fn approvals(
    session: &DebugSession,
    ctx: &Context,
    obs: &Observed,
    now: k8s_openapi::jiff::Timestamp,
) -> Option<Tally> {
    let ns = session.namespace().unwrap_or_default();
    let rule = &ctx.policy.approval;
    let required = rule.required(&ns, &obs.namespace_labels);
    let Some(key) = ctx.stamp_key.as_deref() else {
        return (required > 0).then(|| Tally {
            required,
            set_aside: vec![
                "the operator runs without a stamp key, so it can verify no approval".into(),
            ],
            ..Tally::default()
        });
    };
    let (name, uid) = (session.name_any(), session.uid().unwrap_or_default());
    let digest = stamp::spec_digest(&session.spec);
    let count = Count {
        key,
        session: SessionId {
            namespace: &ns,
            name: &name,
            uid: &uid,
        },
        digest: &digest,
        requester: obs.stamp.as_ref().map(|s| &s.requester),
        required,
        valid_for: rule.valid_for,
        now,
    };
    Some(count.tally(session.annotations()))
}
