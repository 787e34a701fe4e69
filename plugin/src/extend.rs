//! `extend NAME 30m`: moves `expiresAt` later. The operator computes `expiresAt = startedAt +
//! spec.ttl`, so extending by D sets `spec.ttl` to the session's current length plus D
//! (`expiresAt - startedAt + D`, printed as `1h30m`). The operator, or its webhook, refuses a TTL
//! above its maximum; that refusal is shown as it is and the previous TTL is put back.

use std::time::Duration;

use debugsession_operator::api::{DebugSession, Mode, condition};
use debugsession_operator::session::ttl;
use jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::explain::{self, Doing};
use crate::session;

/// The TTL that moves a session's expiry `by` later: its current length plus `by`.
pub fn new_ttl(started: Timestamp, expires: Timestamp, by: Duration) -> Duration {
    let current = expires.duration_since(started).as_secs().max(0) as u64;
    Duration::from_secs(current) + by
}

/// Parses the DURATION argument (`30m`, `+30m`, `1h30m`).
pub fn parse_by(s: &str) -> Result<Duration, String> {
    let d = ttl::parse(s.strip_prefix('+').unwrap_or(s)).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("extend by a duration longer than 0s".into());
    }
    Ok(d)
}

pub async fn run(
    api: &Api<DebugSession>,
    name: &str,
    namespace: &str,
    by: &str,
) -> Result<(), String> {
    let by = parse_by(by)?;
    let s = session::get(api, name, namespace).await?;
    let st = s.status.clone().unwrap_or_default();
    if st.mode == Some(Mode::Ephemeral)
        || (st.mode.is_none() && s.spec.mode == Some(Mode::Ephemeral))
    {
        return Err(format!(
            "debugsession/{name} runs in Ephemeral mode and cannot be extended: its shell's command was bounded by the TTL it started with and an ephemeral container cannot change; start a new session when it ends"
        ));
    }
    if let Some(p) = st.phase.filter(|p| p.is_terminal()) {
        return Err(format!(
            "debugsession/{name} has ended ({}): start a new session",
            p.as_str()
        ));
    }
    let old = s.spec.ttl.clone();
    let total = match (&st.started_at, &st.expires_at) {
        (Some(a), Some(b)) => new_ttl(a.0, b.0, by),
        _ => {
            let current = old.as_deref().ok_or_else(|| {
                format!("debugsession/{name} has not started and names no TTL: create it with --ttl instead")
            })?;
            ttl::parse(current).map_err(|e| e.to_string())? + by
        }
    };
    let new = ttl::format(total);
    let patched = set_ttl(api, name, Some(&new)).await?;
    let generation = patched.metadata.generation.unwrap_or(0);
    let want = st
        .started_at
        .as_ref()
        .map(|a| a.0 + jiff::SignedDuration::from_secs(total.as_secs() as i64));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = session::get(api, name, namespace).await?;
        let st = s.status.clone().unwrap_or_default();
        if st.observed_generation.unwrap_or(0) >= generation {
            if let Some(c) =
                explain::condition(&s, condition::SPEC_APPLIED).filter(|c| c.status == "False")
            {
                let _ = set_ttl(api, name, old.as_deref()).await;
                return Err(format!(
                    "the operator refused ttl {new}: {}: {} (the session keeps its previous expiry)",
                    c.reason, c.message
                ));
            }
            if want.is_none() || st.expires_at.as_ref().map(|t| t.0) == want {
                let at = st
                    .expires_at
                    .map(|t| t.0.to_string())
                    .unwrap_or_else(|| "when it starts".into());
                println!("debugsession.debugsession.dev/{name} extended: ttl {new}, expires {at}");
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "spec.ttl is {new} but the operator has not moved expiresAt after 20s: is it running?"
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn set_ttl(
    api: &Api<DebugSession>,
    name: &str,
    ttl: Option<&str>,
) -> Result<DebugSession, String> {
    let patch = serde_json::json!({"spec": {"ttl": ttl}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| explain::api(&e, Doing::Other("setting spec.ttl")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn adds_to_the_current_length() {
        let d = new_ttl(
            t("2026-01-01T10:00:00Z"),
            t("2026-01-01T10:15:00Z"),
            Duration::from_secs(1800),
        );
        assert_eq!(ttl::format(d), "45m");
        let d = new_ttl(
            t("2026-01-01T10:00:00Z"),
            t("2026-01-01T11:00:00Z"),
            Duration::from_secs(1800),
        );
        assert_eq!(ttl::format(d), "1h30m");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_by("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_by("+1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_by("0s").is_err());
        assert!(parse_by("30 minutes").is_err());
    }
}
