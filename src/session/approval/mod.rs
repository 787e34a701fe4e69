//! Approvals: a second person's signed yes (or no) to a session's spec as it stands.
//!
//! Approving is an RBAC verb, like CertificateSigningRequest approval: a user may approve a
//! session when a SubjectAccessReview allows the custom verb `approve` on `debugsessions` (by
//! name) in its namespace. Users ask by writing a request annotation on the session:
//!
//! - `debugsession.dev/approve: <comment>` approves the current spec;
//! - `debugsession.dev/deny: <reason>` denies the session.
//!
//! The mutating webhook consumes the request annotation and records the decision, signed with
//! the operator's stamp key and bound to the session (namespace, name, UID), to the approver and
//! to the digest of the spec as it stands, in `debugsession.dev/approvals` (a JSON list) or
//! `debugsession.dev/denial`. The validating webhook lets such a change through only for the very
//! sender, who may `approve`, is not the requester and has not approved already; every other
//! change to these annotations is refused, and a spec change drops the approvals (the new spec
//! needs new ones; a denial stays, it is final). The controller counts only decisions that
//! verify ([`tally`]).

pub mod rule;
pub mod tally;

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::stamp::{Requester, hex, unhex};

/// Request annotation: approve the current spec (the value is a free comment).
pub const APPROVE: &str = "debugsession.dev/approve";
/// Request annotation: deny the session (the value is the reason, required).
pub const DENY: &str = "debugsession.dev/deny";
/// The signed approvals of the current spec, a JSON list of [`Decision`]s.
pub const APPROVALS: &str = "debugsession.dev/approvals";
/// The signed denial, a JSON [`Decision`].
pub const DENIAL: &str = "debugsession.dev/denial";
/// The annotations only the webhook writes.
pub const RECORDS: [&str; 2] = [APPROVALS, DENIAL];

/// The RBAC verb that lets a user approve or deny sessions.
pub const VERB: &str = "approve";

/// What a decision says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Deny,
}

impl Verdict {
    fn domain(self) -> &'static [u8] {
        match self {
            Verdict::Approve => b"debugsession.dev/approval/v1",
            Verdict::Deny => b"debugsession.dev/denial/v1",
        }
    }
}

/// One approval or denial as the webhook recorded it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Username of the approver.
    pub user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
    /// RFC 3339 time of the decision.
    pub at: String,
    /// The spec digest ([`super::stamp::spec_digest`]) the decision is about.
    pub digest: String,
    /// The approver's comment or the denier's reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// Hex HMAC-SHA256 over all of the above, the verdict and the session.
    #[serde(default)]
    pub signature: String,
}

/// The session a decision is bound to.
#[derive(Clone, Copy, Debug)]
pub struct SessionId<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

impl Decision {
    /// The approver as a requester, for SubjectAccessReviews.
    pub fn approver(&self) -> Requester {
        Requester {
            username: self.user.clone(),
            uid: self.uid.clone(),
            groups: self.groups.clone(),
            extra: self.extra.clone(),
        }
    }

    /// A signed decision by `who` on the session's spec with `digest`.
    pub fn signed(
        key: &[u8],
        verdict: Verdict,
        session: SessionId<'_>,
        who: &Requester,
        digest: &str,
        at: &str,
        comment: &str,
    ) -> Decision {
        let mut d = Decision {
            user: who.username.clone(),
            uid: who.uid.clone(),
            groups: who.groups.clone(),
            extra: who.extra.clone(),
            at: at.to_string(),
            digest: digest.to_string(),
            comment: comment.to_string(),
            signature: String::new(),
        };
        d.signature = hex(&mac(key, verdict, session, &d).finalize().into_bytes());
        d
    }

    /// Whether the signature holds for this verdict on this session.
    pub fn verifies(&self, key: &[u8], verdict: Verdict, session: SessionId<'_>) -> bool {
        let Some(sig) = unhex(&self.signature) else {
            return false;
        };
        !self.user.is_empty() && mac(key, verdict, session, self).verify_slice(&sig).is_ok()
    }

    /// The time of the decision.
    pub fn time(&self) -> Option<k8s_openapi::jiff::Timestamp> {
        self.at.parse().ok()
    }
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], verdict: Verdict, s: SessionId<'_>, d: &Decision) -> HmacSha256 {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    // Length-prefixed fields: no choice of strings feeds two decisions the same bytes.
    let mut field = |b: &[u8]| {
        m.update(&(b.len() as u64).to_be_bytes());
        m.update(b);
    };
    field(verdict.domain());
    field(s.namespace.as_bytes());
    field(s.name.as_bytes());
    field(s.uid.as_bytes());
    field(d.user.as_bytes());
    field(d.uid.as_bytes());
    field(&(d.groups.len() as u64).to_be_bytes());
    for g in &d.groups {
        field(g.as_bytes());
    }
    field(&(d.extra.len() as u64).to_be_bytes());
    for (k, vs) in &d.extra {
        field(k.as_bytes());
        field(&(vs.len() as u64).to_be_bytes());
        for v in vs {
            field(v.as_bytes());
        }
    }
    field(d.at.as_bytes());
    field(d.digest.as_bytes());
    field(d.comment.as_bytes());
    m
}

/// The decisions recorded on a session: its approvals and its denial. Unreadable records are
/// an error (they were written by hand).
pub fn read(
    annotations: &BTreeMap<String, String>,
) -> Result<(Vec<Decision>, Option<Decision>), String> {
    let approvals = match annotations.get(APPROVALS) {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| format!("annotation {APPROVALS} is not a list of approvals: {e}"))?,
        None => Vec::new(),
    };
    let denial = match annotations.get(DENIAL) {
        Some(text) => Some(
            serde_json::from_str(text)
                .map_err(|e| format!("annotation {DENIAL} is not a denial: {e}"))?,
        ),
        None => None,
    };
    Ok((approvals, denial))
}

/// The annotation value for a list of approvals.
pub fn approvals_value(approvals: &[Decision]) -> String {
    serde_json::to_string(approvals).unwrap_or_else(|_| "[]".into())
}

/// The annotation value for a denial.
pub fn denial_value(denial: &Decision) -> String {
    serde_json::to_string(denial).unwrap_or_else(|_| "{}".into())
}

/// Whether two users may be the same person: the same username, or the same UID.
pub fn same_person(a: &Requester, b: &Requester) -> bool {
    a.username == b.username || (!a.uid.is_empty() && a.uid == b.uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const S: SessionId<'static> = SessionId {
        namespace: "prod",
        name: "s1",
        uid: "uid-1",
    };

    fn carol() -> Requester {
        Requester {
            username: "carol".into(),
            uid: "u-c".into(),
            groups: vec!["system:authenticated".into()],
            extra: BTreeMap::new(),
        }
    }

    fn approval() -> Decision {
        Decision::signed(
            KEY,
            Verdict::Approve,
            S,
            &carol(),
            "d1",
            "2026-11-30T10:00:00Z",
            "ok",
        )
    }

    #[test]
    fn a_signed_decision_verifies_only_where_it_was_given() {
        let d = approval();
        assert!(d.verifies(KEY, Verdict::Approve, S));
        assert!(
            !d.verifies(KEY, Verdict::Deny, S),
            "an approval is no denial"
        );
        assert!(!d.verifies(b"other key", Verdict::Approve, S));
        for other in [
            SessionId {
                namespace: "dev",
                ..S
            },
            SessionId { name: "s2", ..S },
            SessionId { uid: "uid-2", ..S },
        ] {
            assert!(
                !d.verifies(KEY, Verdict::Approve, other),
                "copied to {other:?}"
            );
        }
    }

    #[test]
    fn every_field_is_signed() {
        let d = approval();
        let edits: Vec<fn(&mut Decision)> = vec![
            |d| d.user = "mallory".into(),
            |d| d.uid = "u-m".into(),
            |d| d.groups.push("system:masters".into()),
            |d| {
                d.extra.insert("k".into(), vec!["v".into()]);
            },
            |d| d.at = "2026-11-30T11:00:00Z".into(),
            |d| d.digest = "d2".into(),
            |d| d.comment = "changed".into(),
            |d| d.signature = "zz".into(),
        ];
        for edit in edits {
            let mut e = d.clone();
            edit(&mut e);
            assert!(!e.verifies(KEY, Verdict::Approve, S), "{e:?}");
        }
    }

    #[test]
    fn records_round_trip_and_refuse_garbage() {
        let d = approval();
        let a = BTreeMap::from([
            (
                APPROVALS.to_string(),
                approvals_value(std::slice::from_ref(&d)),
            ),
            (DENIAL.to_string(), denial_value(&d)),
        ]);
        assert_eq!(read(&a), Ok((vec![d.clone()], Some(d))));
        assert_eq!(read(&BTreeMap::new()), Ok((vec![], None)));
        let bad = BTreeMap::from([(APPROVALS.to_string(), "yes".to_string())]);
        assert!(read(&bad).unwrap_err().contains(APPROVALS));
    }

    #[test]
    fn same_person_by_name_and_uid() {
        let c = carol();
        assert!(same_person(&c, &c));
        assert!(same_person(
            &c,
            &Requester {
                uid: String::new(),
                ..c.clone()
            }
        ));
        assert!(same_person(
            &c,
            &Requester {
                uid: "u-x".into(),
                ..c.clone()
            }
        ));
        assert!(same_person(
            &c,
            &Requester {
                username: "carol-alias".into(),
                ..c.clone()
            }
        ));
        assert!(!same_person(
            &c,
            &Requester {
                username: "dave".into(),
                uid: "u-d".into(),
                ..c.clone()
            }
        ));
    }
}
