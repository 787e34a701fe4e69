//! Approving and denying at admission: the signed record for the very sender, and every way to
//! fake, reuse or smuggle one refused.

use super::*;
use crate::session::approval::{self as appr, APPROVALS, APPROVE, DENIAL, DENY};

/// Alice's session as it exists in the cluster (it has a UID).
fn existing() -> Value {
    let mut s = stamped("s1", web(), &alice());
    s["metadata"]["uid"] = json!("uid-1");
    s
}

fn with_annotation(obj: &Value, key: &str, value: &str) -> Value {
    let mut o = obj.clone();
    o["metadata"]["annotations"][key] = json!(value);
    o
}

/// `user` asks to approve (or deny) `old`; the object after the mutating webhook.
fn ask(user: &str, old: &Value, key: &str, value: &str) -> Value {
    mutated(&request(
        "UPDATE",
        user,
        Some(with_annotation(old, key, value)),
        Some(old.clone()),
    ))
}

fn validate(user: &str, new: &Value, old: &Value) -> Verdict {
    verdict(
        &request("UPDATE", user, Some(new.clone()), Some(old.clone())),
        &rules(Some(OPERATOR)),
    )
}

fn denied(v: Verdict, needle: &str) {
    match v {
        Verdict::Deny(m) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        v => panic!("expected a refusal with {needle:?}, got {v:?}"),
    }
}

fn approvals(obj: &Value) -> Vec<appr::Decision> {
    let a: BTreeMap<String, String> =
        serde_json::from_value(obj["metadata"]["annotations"].clone()).unwrap();
    appr::read(&a).unwrap().0
}

#[test]
fn an_approval_is_signed_for_the_sender_and_asks_for_the_verb() {
    let old = existing();
    let new = ask("carol", &old, APPROVE, "looks fine");
    assert!(new["metadata"]["annotations"].get(APPROVE).is_none());
    let recorded = approvals(&new);
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].user.as_str(), recorded[0].comment.as_str()),
        ("carol", "looks fine")
    );
    match validate("carol", &new, &old) {
        Verdict::Approve(q) => {
            assert_eq!(
                (q.approver.username.as_str(), q.name.as_str()),
                ("carol", "s1")
            )
        }
        v => panic!("{v:?}"),
    }
    // A second approver appends; the first stays as it was.
    let second = ask("erin", &new, APPROVE, "");
    assert_eq!(approvals(&second).len(), 2);
    assert!(matches!(
        validate("erin", &second, &new),
        Verdict::Approve(_)
    ));
}

#[test]
fn self_approval_and_approving_twice_are_refused() {
    let old = existing();
    denied(
        validate("alice", &ask("alice", &old, APPROVE, ""), &old),
        "cannot approve",
    );
    let once = ask("carol", &old, APPROVE, "");
    denied(
        validate("carol", &ask("carol", &once, APPROVE, ""), &once),
        "approved this session already",
    );
}

#[test]
fn hand_written_or_copied_records_are_refused() {
    let old = existing();
    let carols = ask("carol", &old, APPROVE, "");
    let value = carols["metadata"]["annotations"][APPROVALS]
        .as_str()
        .unwrap();
    // Alice writes carol's valid approval herself.
    let forged = with_annotation(&old, APPROVALS, value);
    denied(
        validate("alice", &forged, &old),
        "written only by the operator",
    );
    // Carol's approval removed, or rewritten.
    denied(
        validate("alice", &old, &carols),
        "written only by the operator",
    );
    denied(
        validate("alice", &with_annotation(&carols, APPROVALS, "[]"), &carols),
        "written only by the operator",
    );
    // Copied onto another session (another name and UID).
    let mut other = stamped("s2", web(), &alice());
    other["metadata"]["uid"] = json!("uid-2");
    let copied = with_annotation(&other, APPROVALS, value);
    denied(
        validate("carol", &copied, &other),
        "written only by the operator",
    );
    // A request the mutating webhook never saw.
    denied(
        validate("carol", &with_annotation(&old, APPROVE, ""), &old),
        "not processed",
    );
}

#[test]
fn a_spec_change_drops_the_approvals_and_cannot_carry_one() {
    let old = existing();
    let approved = ask("carol", &old, APPROVE, "");
    let mut longer = approved.clone();
    longer["spec"]["ttl"] = json!("20m");
    let after = mutated(&request(
        "UPDATE",
        "alice",
        Some(longer.clone()),
        Some(approved.clone()),
    ));
    assert!(after["metadata"]["annotations"].get(APPROVALS).is_none());
    assert!(matches!(
        validate("alice", &after, &approved),
        Verdict::Authorize(_)
    ));
    // Approving together with a spec change.
    let both = with_annotation(&longer, APPROVE, "");
    let mutated_both = mutated(&request(
        "UPDATE",
        "carol",
        Some(both),
        Some(approved.clone()),
    ));
    denied(
        validate("carol", &mutated_both, &approved),
        "request of its own",
    );
    // Carrying the old approvals past the webhook.
    denied(validate("alice", &longer, &approved), "do not carry over");
}

#[test]
fn a_denial_survives_spec_changes() {
    let old = existing();
    let no = ask("carol", &old, DENY, "not during the freeze");
    let mut changed = no.clone();
    changed["spec"]["ttl"] = json!("20m");
    let after = mutated(&request(
        "UPDATE",
        "alice",
        Some(changed.clone()),
        Some(no.clone()),
    ));
    assert!(after["metadata"]["annotations"].get(DENIAL).is_some());
    assert!(matches!(
        validate("alice", &after, &no),
        Verdict::Authorize(_)
    ));
    // Dropping it with the spec change is refused.
    let mut dropped = after.clone();
    dropped["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove(DENIAL);
    denied(validate("alice", &dropped, &no), "a denial is final");
}

#[test]
fn denials_need_a_reason_and_end_approving() {
    let old = existing();
    let req = request(
        "UPDATE",
        "carol",
        Some(with_annotation(&old, DENY, " ")),
        Some(old.clone()),
    );
    assert!(!mutate(&req, KEY, NOW.parse().unwrap()).allowed);
    let no = ask("carol", &old, DENY, "not during the freeze");
    assert!(no["metadata"]["annotations"].get(DENIAL).is_some());
    assert!(matches!(validate("carol", &no, &old), Verdict::Approve(_)));
    denied(
        validate("erin", &ask("erin", &no, APPROVE, ""), &no),
        "denied by carol",
    );
}

#[test]
fn creates_carry_no_approval_and_finalizers_go_apart() {
    let fresh = with_annotation(&stamped("s1", web(), &alice()), APPROVE, "");
    let created = mutated(&request("CREATE", "alice", Some(fresh), None));
    denied(
        verdict(
            &request("CREATE", "alice", Some(created), None),
            &rules(Some(OPERATOR)),
        ),
        "once it exists",
    );
    let mut old = existing();
    old["metadata"]["finalizers"] = json!([FINALIZER]);
    let mut new = ask("carol", &old, APPROVE, "");
    new["metadata"]["finalizers"] = json!([]);
    denied(validate("carol", &new, &old), "separate requests");
}
