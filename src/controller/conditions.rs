//! Standard `metav1.Condition` bookkeeping.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Sets a condition; `lastTransitionTime` moves only when the status flips.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let new = |last: Time| Condition {
        type_: type_.to_string(),
        status: status.clone(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: last,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            let last = if c.status == status {
                c.last_transition_time.clone()
            } else {
                Time(now)
            };
            *c = new(last);
        }
        None => conditions.push(new(Time(now))),
    }
}

/// Removes a condition.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// Finds a condition.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_on_flip() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let t2: Timestamp = "2026-01-01T00:02:00Z".parse().unwrap();
        let mut c = Vec::new();
        set(&mut c, "Ready", false, "RollingOut", "rolling", Some(1), t0);
        set(&mut c, "Ready", false, "Drifted", "drifted", Some(2), t1);
        assert_eq!(c.len(), 1);
        assert_eq!(
            (
                c[0].reason.as_str(),
                c[0].last_transition_time.0,
                c[0].observed_generation
            ),
            ("Drifted", t0, Some(2))
        );
        set(&mut c, "Ready", true, "ShellReady", "ready", Some(2), t2);
        assert_eq!(
            (c[0].status.as_str(), c[0].last_transition_time.0),
            ("True", t2)
        );
        remove(&mut c, "Ready");
        assert!(get(&c, "Ready").is_none());
    }
}
