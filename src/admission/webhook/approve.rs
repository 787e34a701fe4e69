//! Approvals at admission: the mutating webhook turns a request annotation
//! (`debugsession.dev/approve` or `/deny`) into a decision signed for the sender, the session
//! and its spec; the validating webhook lets such a change through only for the very sender,
//! who is not the requester, has not decided already and may `approve` (SubjectAccessReview).
//! Every other change to the recorded decisions is refused, and a spec change drops them.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation};
use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;

use super::{Request, Rules, Verdict, annotations, name, namespace, sender, spec};
use crate::session::approval::{
    self, APPROVALS, APPROVE, DENIAL, DENY, Decision, RECORDS, SessionId, same_person,
};
use crate::session::stamp::{self, Requester};

/// A SubjectAccessReview still to ask: may `approver` approve the session?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApproveQuery {
    pub approver: Requester,
    pub namespace: String,
    pub name: String,
}

fn annotation_path(key: &str) -> PointerBuf {
    PointerBuf::from_tokens(["metadata", "annotations", key])
}

fn remove(key: &str) -> PatchOperation {
    PatchOperation::Remove(RemoveOperation {
        path: annotation_path(key),
    })
}

fn add(key: &str, value: String) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: annotation_path(key),
        value: serde_json::Value::String(value),
    })
}

/// The request annotation on `obj`, if any: approve with a comment, or deny with a reason.
fn request(obj: &DynamicObject) -> Option<(approval::Verdict, String)> {
    let a = annotations(obj);
    if let Some(reason) = a.get(DENY) {
        return Some((approval::Verdict::Deny, reason.clone()));
    }
    a.get(APPROVE)
        .map(|c| (approval::Verdict::Approve, c.clone()))
}

/// What `/mutate` adds on a spec change: the approvals go, for they were about another spec.
/// A denial stays: it is about the session, and final.
pub fn drop_approvals(obj: &DynamicObject) -> Vec<PatchOperation> {
    annotations(obj)
        .contains_key(APPROVALS)
        .then(|| remove(APPROVALS))
        .into_iter()
        .collect()
}

/// `/mutate` on an update that leaves the spec alone: a request annotation becomes a signed
/// decision of the sender. `None` when the request carries none; `Err` refuses.
pub fn decide(
    req: &Request,
    obj: &DynamicObject,
    old: &DynamicObject,
    key: &[u8],
    now: Timestamp,
) -> Option<Result<Vec<PatchOperation>, String>> {
    let (verdict, comment) = request(obj)?;
    Some(decision_ops(req, obj, old, key, now, verdict, &comment))
}

fn decision_ops(
    req: &Request,
    obj: &DynamicObject,
    old: &DynamicObject,
    key: &[u8],
    now: Timestamp,
    verdict: approval::Verdict,
    comment: &str,
) -> Result<Vec<PatchOperation>, String> {
    let (ns, name) = (namespace(req, obj), name(req, obj));
    let uid = old.metadata.uid.clone().unwrap_or_default();
    let spec = spec(obj)?;
    let who = sender(req);
    if who.username.is_empty() {
        return Err("the request names no user, so it cannot approve or deny".into());
    }
    if verdict == approval::Verdict::Deny && comment.trim().is_empty() {
        return Err(format!(
            "{DENY} needs a reason: kubectl debugsession deny {name} --reason '...'"
        ));
    }
    let session = SessionId {
        namespace: &ns,
        name: &name,
        uid: &uid,
    };
    let d = Decision::signed(
        key,
        verdict,
        session,
        &who,
        &stamp::spec_digest(&spec),
        &now.to_string(),
        comment,
    );
    let (mut approvals, _) = approval::read(&annotations(old))?;
    let mut ops: Vec<PatchOperation> = [APPROVE, DENY]
        .into_iter()
        .filter(|k| annotations(obj).contains_key(*k))
        .map(remove)
        .collect();
    match verdict {
        approval::Verdict::Approve => {
            approvals.push(d);
            ops.push(add(APPROVALS, approval::approvals_value(&approvals)));
        }
        approval::Verdict::Deny => ops.push(add(DENIAL, approval::denial_value(&d))),
    }
    Ok(ops)
}

/// `/validate` on a create: a session is approved after it exists, never at its creation.
pub fn at_create(obj: &DynamicObject) -> Option<Verdict> {
    let a = annotations(obj);
    [APPROVE, DENY, APPROVALS, DENIAL]
        .iter()
        .any(|k| a.contains_key(*k))
        .then(|| {
            Verdict::Deny(format!(
                "a session is approved or denied once it exists, by somebody else: create it without {APPROVE}, {DENY}, {APPROVALS} or {DENIAL}"
            ))
        })
}

/// `/validate` on an update: what the change does to the recorded decisions. `None` when it
/// leaves them (and the request annotations) alone.
pub fn verdict(
    req: &Request,
    new: &DynamicObject,
    old: &DynamicObject,
    rules: &Rules,
    spec_changed: bool,
) -> Option<Verdict> {
    let (na, oa) = (annotations(new), annotations(old));
    let requested = [APPROVE, DENY].iter().any(|k| na.contains_key(*k));
    let records_changed = RECORDS.iter().any(|k| na.get(*k) != oa.get(*k));
    if spec_changed {
        if requested {
            return Some(Verdict::Deny(
                "approve or deny a session in a request of its own, not together with a spec change".into(),
            ));
        }
        if na.get(DENIAL) != oa.get(DENIAL) {
            return Some(Verdict::Deny(format!(
                "{DENIAL} is written only by the operator's webhook, and a denial is final"
            )));
        }
        return na.contains_key(APPROVALS).then(|| {
            Verdict::Deny(format!(
                "approvals do not carry over a spec change: remove {APPROVALS} (the operator's webhook does so when it runs)"
            ))
        });
    }
    if requested {
        return Some(Verdict::Deny(format!(
            "the approval request was not processed ({APPROVE} and {DENY} are consumed by the operator's mutating webhook, which did not run)"
        )));
    }
    if !records_changed {
        return None;
    }
    Some(match check(req, new, &oa, &na, rules) {
        Ok(q) => Verdict::Approve(q),
        Err(m) => Verdict::Deny(m),
    })
}

/// A change to the records must be exactly one new decision, signed for the sender, this
/// session and this spec, by somebody who may make it.
fn check(
    req: &Request,
    new: &DynamicObject,
    oa: &BTreeMap<String, String>,
    na: &BTreeMap<String, String>,
    rules: &Rules,
) -> Result<ApproveQuery, String> {
    let immutable = || {
        format!(
            "{APPROVALS} and {DENIAL} are written only by the operator's webhook: approve with kubectl debugsession approve (or annotate {APPROVE}), deny with {DENY}"
        )
    };
    let (old_approvals, old_denial) = approval::read(oa).map_err(|_| immutable())?;
    let (new_approvals, new_denial) = approval::read(na).map_err(|_| immutable())?;
    let (verdict, decision) = if new_denial != old_denial {
        if old_denial.is_some() || new_approvals != old_approvals {
            return Err(immutable());
        }
        let d = new_denial.ok_or_else(immutable)?;
        (approval::Verdict::Deny, d)
    } else {
        let n = old_approvals.len();
        if new_approvals.len() != n + 1 || new_approvals[..n] != old_approvals[..] {
            return Err(immutable());
        }
        if let Some(d) = &old_denial {
            return Err(format!(
                "the session was denied by {}: it cannot be approved any more",
                d.user
            ));
        }
        (approval::Verdict::Approve, new_approvals[n].clone())
    };
    let (ns, name) = (namespace(req, new), name(req, new));
    let uid = new.metadata.uid.clone().unwrap_or_default();
    let who = sender(req);
    let spec = spec(new)?;
    let session = SessionId {
        namespace: &ns,
        name: &name,
        uid: &uid,
    };
    let genuine = decision.verifies(&rules.key, verdict, session)
        && decision.approver() == who
        && decision.digest == stamp::spec_digest(&spec);
    if !genuine {
        return Err(immutable());
    }
    if verdict == approval::Verdict::Approve {
        let requester = stamp::verify(&rules.key, &ns, &name, oa, &spec)
            .map_err(|e| format!("the session cannot be approved: {}", e.message))?
            .requester;
        if same_person(&requester, &who) {
            return Err(format!(
                "user {:?} requested this session and cannot approve it: approval needs somebody else",
                who.username
            ));
        }
        if old_approvals
            .iter()
            .any(|a| same_person(&a.approver(), &who))
        {
            return Err(format!(
                "user {:?} approved this session already: it needs another person",
                who.username
            ));
        }
    }
    Ok(ApproveQuery {
        approver: who,
        namespace: ns,
        name,
    })
}
