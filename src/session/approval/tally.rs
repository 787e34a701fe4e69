//! Counting the approvals of a session's current spec: only signed decisions for this very
//! session and spec, by people other than the requester, given recently enough.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::{Decision, SessionId, Verdict, read, same_person};
use crate::session::stamp::Requester;

/// What the approvals of the current spec come to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Approvals needed.
    pub required: u32,
    /// The approvals that count, one per person, oldest first.
    pub approvals: Vec<Decision>,
    /// A valid denial of the current spec.
    pub denial: Option<Decision>,
    /// Why recorded approvals do not count, one sentence each.
    pub set_aside: Vec<String>,
    /// Whether an approval would have counted but for its age.
    pub expired: bool,
}

impl Tally {
    /// Whether the spec has every approval it needs.
    pub fn approved(&self) -> bool {
        self.denial.is_none() && self.approvals.len() as u32 >= self.required
    }

    /// The names of the approvers that count.
    pub fn approvers(&self) -> Vec<String> {
        self.approvals.iter().map(|d| d.user.clone()).collect()
    }

    /// When the last approval that counts was given.
    pub fn approved_at(&self) -> Option<Timestamp> {
        self.approvals.iter().filter_map(Decision::time).max()
    }
}

/// What counts of the decisions recorded on `session` for the spec with `digest`, asked for by
/// `requester`, at `now`.
pub struct Count<'a> {
    pub key: &'a [u8],
    pub session: SessionId<'a>,
    pub digest: &'a str,
    pub requester: Option<&'a Requester>,
    pub required: u32,
    pub valid_for: Duration,
    pub now: Timestamp,
}

impl Count<'_> {
    pub fn tally(&self, annotations: &BTreeMap<String, String>) -> Tally {
        let mut t = Tally {
            required: self.required,
            ..Tally::default()
        };
        let (approvals, denial) = match read(annotations) {
            Ok(r) => r,
            Err(e) => {
                t.set_aside.push(e);
                return t;
            }
        };
        // A denial is about the session, whatever spec it saw: final.
        if let Some(d) = denial {
            if d.verifies(self.key, Verdict::Deny, self.session) {
                t.denial = Some(d);
            } else {
                t.set_aside
                    .push(format!("the denial by {} is not validly signed", d.user));
            }
        }
        for a in approvals {
            if let Some(why) = self.set_aside(&a, &t.approvals) {
                t.expired |= why.contains("expired");
                t.set_aside.push(why);
            } else {
                t.approvals.push(a);
            }
        }
        t
    }

    fn set_aside(&self, a: &Decision, counted: &[Decision]) -> Option<String> {
        let who = &a.user;
        if !a.verifies(self.key, Verdict::Approve, self.session) {
            return Some(format!(
                "the approval by {who} is not validly signed for this session"
            ));
        }
        if a.digest != self.digest {
            return Some(format!(
                "the approval by {who} was for an earlier spec: a spec change needs new approvals"
            ));
        }
        if self
            .requester
            .is_some_and(|r| same_person(r, &a.approver()))
        {
            return Some(format!("{who} requested the session and cannot approve it"));
        }
        if counted
            .iter()
            .any(|c| same_person(&c.approver(), &a.approver()))
        {
            return Some(format!("{who} approved more than once"));
        }
        let valid_for = SignedDuration::try_from(self.valid_for).unwrap_or(SignedDuration::MAX);
        match a.time() {
            None => Some(format!("the approval by {who} has no valid time")),
            Some(at) if at.saturating_add(valid_for).is_ok_and(|end| end < self.now) => {
                Some(format!(
                    "the approval by {who} at {} expired after {}",
                    a.at,
                    crate::session::ttl::format(self.valid_for)
                ))
            }
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Verdict;
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const S: SessionId<'static> = SessionId {
        namespace: "prod",
        name: "s1",
        uid: "uid-1",
    };

    fn user(name: &str) -> Requester {
        Requester {
            username: name.into(),
            uid: format!("u-{name}"),
            ..Requester::default()
        }
    }

    fn approve(who: &str, digest: &str, at: &str) -> Decision {
        Decision::signed(KEY, Verdict::Approve, S, &user(who), digest, at, "")
    }

    fn annotations(approvals: &[Decision], denial: Option<&Decision>) -> BTreeMap<String, String> {
        let mut a = BTreeMap::from([(
            super::super::APPROVALS.to_string(),
            super::super::approvals_value(approvals),
        )]);
        if let Some(d) = denial {
            a.insert(super::super::DENIAL.into(), super::super::denial_value(d));
        }
        a
    }

    fn count(required: u32) -> Count<'static> {
        static ALICE: std::sync::LazyLock<Requester> = std::sync::LazyLock::new(|| user("alice"));
        Count {
            key: KEY,
            session: S,
            digest: "d1",
            requester: Some(&ALICE),
            required,
            valid_for: Duration::from_secs(600),
            now: "2026-11-30T10:05:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn counts_one_valid_approval_per_person() {
        let a = annotations(
            &[
                approve("carol", "d1", "2026-11-30T10:00:00Z"),
                approve("carol", "d1", "2026-11-30T10:01:00Z"),
            ],
            None,
        );
        let t = count(1).tally(&a);
        assert!(t.approved());
        assert_eq!(t.approvers(), ["carol"]);
        assert_eq!(t.set_aside.len(), 1);
        let t = count(2).tally(&a);
        assert!(!t.approved(), "the same person twice is one approval");
        assert_eq!(
            t.approved_at(),
            Some("2026-11-30T10:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn sets_aside_self_approval_old_specs_old_approvals_and_forgeries() {
        let mut forged = approve("dave", "d1", "2026-11-30T10:00:00Z");
        forged.user = "erin".into();
        let cases = [
            (approve("alice", "d1", "2026-11-30T10:00:00Z"), "requested"),
            (
                approve("carol", "d0", "2026-11-30T10:00:00Z"),
                "earlier spec",
            ),
            (approve("carol", "d1", "2026-11-30T09:50:00Z"), "expired"),
            (forged, "not validly signed"),
        ];
        for (approval, why) in cases {
            let t = count(1).tally(&annotations(&[approval], None));
            assert!(!t.approved(), "{why}");
            assert!(
                t.set_aside[0].contains(why),
                "{:?} lacks {why}",
                t.set_aside
            );
            assert_eq!(t.expired, why == "expired");
        }
        // An approval copied from another session.
        let other = Decision::signed(
            KEY,
            Verdict::Approve,
            SessionId { uid: "uid-0", ..S },
            &user("carol"),
            "d1",
            "2026-11-30T10:00:00Z",
            "",
        );
        assert!(!count(1).tally(&annotations(&[other], None)).approved());
        // Garbage in the annotation counts nothing.
        let junk = BTreeMap::from([(super::super::APPROVALS.to_string(), "[1]".to_string())]);
        assert!(!count(1).tally(&junk).approved());
    }

    #[test]
    fn a_denial_wins() {
        let ok = approve("carol", "d1", "2026-11-30T10:00:00Z");
        let no = Decision::signed(
            KEY,
            Verdict::Deny,
            S,
            &user("dave"),
            "d1",
            "2026-11-30T10:01:00Z",
            "not now",
        );
        let t = count(1).tally(&annotations(std::slice::from_ref(&ok), Some(&no)));
        assert!(!t.approved());
        assert_eq!(
            t.denial.as_ref().map(|d| d.comment.as_str()),
            Some("not now")
        );
        // A denial given to an earlier spec still stands: denials are final.
        let earlier = Decision {
            digest: "d0".into(),
            ..no.clone()
        };
        let earlier = Decision::signed(
            KEY,
            Verdict::Deny,
            S,
            &user("dave"),
            &earlier.digest,
            &earlier.at,
            &earlier.comment,
        );
        let t = count(1).tally(&annotations(std::slice::from_ref(&ok), Some(&earlier)));
        assert!(!t.approved() && t.denial.is_some());
        // An approval re-signed as a denial does not verify as one.
        let t = count(1).tally(&annotations(std::slice::from_ref(&ok), Some(&ok)));
        assert!(t.denial.is_none() && t.approved());
    }
}
