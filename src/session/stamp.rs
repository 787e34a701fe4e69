//! The requester stamp: who asked for a session's spec as it stands, bound to the session and to
//! that spec by an HMAC.
//!
//! The mutating webhook writes the stamp annotations at create and at every update that changes
//! the spec, from the admission request's userInfo; users cannot forge them because they do not
//! hold the key, and the webhook overwrites whatever a user put there. The signature covers the
//! session's namespace and name, the requester (name, uid, groups, extra), a digest of the spec
//! (target, shell, TTL: everything that decides what runs), the time of the stamp and which spec
//! fields changed. The controller applies a spec only when its stamp verifies for that very spec,
//! and only with the permissions of the stamped requester.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::invalid::Invalid;
use crate::api::{DebugSessionSpec, reason};

/// Username of the requester.
pub const REQUESTER: &str = "debugsession.dev/requester";
/// Groups of the requester, comma-joined (`%` and `,` inside a group are percent-encoded).
pub const REQUESTER_GROUPS: &str = "debugsession.dev/requester-groups";
/// UID of the requester (empty when the authenticator gives none).
pub const REQUESTER_UID: &str = "debugsession.dev/requester-uid";
/// Extra attributes of the requester (`userInfo.extra`), as a JSON object.
pub const REQUESTER_EXTRA: &str = "debugsession.dev/requester-extra";
/// Hex SHA-256 of the canonical JSON of the stamped spec.
pub const SPEC_DIGEST: &str = "debugsession.dev/spec-digest";
/// RFC 3339 time of the stamp.
pub const STAMPED_AT: &str = "debugsession.dev/stamped-at";
/// The spec fields the stamped request changed (`created` for a create).
pub const CHANGED: &str = "debugsession.dev/changed";
/// Hex HMAC-SHA256 over all of the above, the namespace and the name.
pub const REQUESTER_SIGNATURE: &str = "debugsession.dev/requester-signature";
/// The stamp annotations.
pub const KEYS: [&str; 8] = [
    REQUESTER,
    REQUESTER_GROUPS,
    REQUESTER_UID,
    REQUESTER_EXTRA,
    SPEC_DIGEST,
    STAMPED_AT,
    CHANGED,
    REQUESTER_SIGNATURE,
];

/// Domain separation: a signature for something else (or an older stamp format) never verifies.
const DOMAIN: &[u8] = b"debugsession.dev/requester/v2";

/// The person (or service account) who asked for a session's spec.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Requester {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// A verified (or to be signed) stamp.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Stamp {
    pub requester: Requester,
    /// [`spec_digest`] of the stamped spec.
    pub digest: String,
    /// RFC 3339.
    pub stamped_at: String,
    /// Which spec fields the stamped request changed, or `created`.
    pub changed: String,
}

/// The canonical digest of a spec: SHA-256 of its JSON serialization (struct fields in
/// declaration order, maps sorted), hex.
pub fn spec_digest(spec: &DebugSessionSpec) -> String {
    let bytes = serde_json::to_vec(spec).unwrap_or_default();
    hex(&Sha256::digest(&bytes))
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], namespace: &str, name: &str, s: &Stamp) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    // Every field and every list is length-prefixed, so no choice of strings can make two
    // different stamps feed the same bytes to the MAC (no separator can be smuggled in).
    let mut field = |b: &[u8]| {
        m.update(&(b.len() as u64).to_be_bytes());
        m.update(b);
    };
    let r = &s.requester;
    field(DOMAIN);
    field(namespace.as_bytes());
    field(name.as_bytes());
    field(r.username.as_bytes());
    field(r.uid.as_bytes());
    field(&(r.groups.len() as u64).to_be_bytes());
    for g in &r.groups {
        field(g.as_bytes());
    }
    field(&(r.extra.len() as u64).to_be_bytes());
    for (k, vs) in &r.extra {
        field(k.as_bytes());
        field(&(vs.len() as u64).to_be_bytes());
        for v in vs {
            field(v.as_bytes());
        }
    }
    field(s.digest.as_bytes());
    field(s.stamped_at.as_bytes());
    field(s.changed.as_bytes());
    m
}

/// Hex HMAC-SHA256 of stamp `s` on session `namespace/name`.
pub fn sign(key: &[u8], namespace: &str, name: &str, s: &Stamp) -> String {
    hex(&mac(key, namespace, name, s).finalize().into_bytes())
}

/// The annotations that carry stamp `s` on session `namespace/name`.
pub fn annotations(key: &[u8], namespace: &str, name: &str, s: &Stamp) -> BTreeMap<String, String> {
    let r = &s.requester;
    BTreeMap::from([
        (REQUESTER.to_string(), r.username.clone()),
        (REQUESTER_GROUPS.to_string(), encode_groups(&r.groups)),
        (REQUESTER_UID.to_string(), r.uid.clone()),
        (
            REQUESTER_EXTRA.to_string(),
            serde_json::to_string(&r.extra).unwrap_or_else(|_| "{}".into()),
        ),
        (SPEC_DIGEST.to_string(), s.digest.clone()),
        (STAMPED_AT.to_string(), s.stamped_at.clone()),
        (CHANGED.to_string(), s.changed.clone()),
        (
            REQUESTER_SIGNATURE.to_string(),
            sign(key, namespace, name, s),
        ),
    ])
}

/// Reads and checks the stamp of session `namespace/name` against its current `spec`. The
/// error carries a stable reason (`StampMissing`, `InvalidStamp`, `SpecNotStamped`) and a
/// sentence for a condition.
pub fn verify(
    key: &[u8],
    namespace: &str,
    name: &str,
    annotations: &BTreeMap<String, String>,
    spec: &DebugSessionSpec,
) -> Result<Stamp, Invalid> {
    let missing: Vec<&str> = KEYS
        .iter()
        .copied()
        .filter(|k| !annotations.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(Invalid {
            reason: reason::STAMP_MISSING,
            message: format!(
                "the session has no requester stamp (missing annotation {}): it was not admitted by the operator's webhook",
                missing.join(", ")
            ),
        });
    }
    let invalid = |why: &str| Invalid {
        reason: reason::INVALID_STAMP,
        message: format!(
            "the requester stamp is invalid ({why}): the debugsession.dev/ stamp annotations were changed, copied or forged"
        ),
    };
    let extra: BTreeMap<String, Vec<String>> = serde_json::from_str(&annotations[REQUESTER_EXTRA])
        .map_err(|_| invalid("requester-extra is not a JSON object of string lists"))?;
    let stamp = Stamp {
        requester: Requester {
            username: annotations[REQUESTER].clone(),
            uid: annotations[REQUESTER_UID].clone(),
            groups: decode_groups(&annotations[REQUESTER_GROUPS]),
            extra,
        },
        digest: annotations[SPEC_DIGEST].clone(),
        stamped_at: annotations[STAMPED_AT].clone(),
        changed: annotations[CHANGED].clone(),
    };
    if stamp.requester.username.is_empty() {
        return Err(invalid("it names no user"));
    }
    let sig = unhex(&annotations[REQUESTER_SIGNATURE]).ok_or_else(|| invalid("bad signature"))?;
    mac(key, namespace, name, &stamp)
        .verify_slice(&sig)
        .map_err(|_| invalid("bad signature"))?;
    if stamp.digest != spec_digest(spec) {
        return Err(Invalid {
            reason: reason::SPEC_NOT_STAMPED,
            message: format!(
                "the spec was changed without passing the operator's admission webhook: the stamp of {} at {} does not cover it",
                stamp.requester.username, stamp.stamped_at
            ),
        });
    }
    Ok(stamp)
}

/// Whether any stamp annotation differs between two annotation maps (added, removed or changed).
pub fn changed(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> bool {
    KEYS.iter().any(|k| old.get(*k) != new.get(*k))
}

/// The spec paths that differ between two specs given as JSON (`spec.ttl`, `spec.shell.command`,
/// ...), comma-joined; `spec` when neither is an object.
pub fn changed_paths(old: &serde_json::Value, new: &serde_json::Value) -> String {
    fn walk(
        path: &str,
        old: &serde_json::Value,
        new: &serde_json::Value,
        depth: usize,
        out: &mut Vec<String>,
    ) {
        if old == new {
            return;
        }
        match (old.as_object(), new.as_object()) {
            (Some(o), Some(n)) if depth < 2 => {
                let keys: std::collections::BTreeSet<&String> = o.keys().chain(n.keys()).collect();
                let null = serde_json::Value::Null;
                for k in keys {
                    walk(
                        &format!("{path}.{k}"),
                        o.get(k).unwrap_or(&null),
                        n.get(k).unwrap_or(&null),
                        depth + 1,
                        out,
                    );
                }
            }
            _ => out.push(path.to_string()),
        }
    }
    let mut out = Vec::new();
    walk("spec", old, new, 0, &mut out);
    out.join(",")
}

fn encode_groups(groups: &[String]) -> String {
    groups
        .iter()
        .map(|g| g.replace('%', "%25").replace(',', "%2C"))
        .collect::<Vec<_>>()
        .join(",")
}

fn decode_groups(text: &str) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    text.split(',')
        .map(|g| g.replace("%2C", ",").replace("%25", "%"))
        .collect()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Shell, TargetKind};

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn alice() -> Requester {
        Requester {
            username: "alice".into(),
            uid: "u-1".into(),
            groups: vec!["system:authenticated".into(), "team".into()],
            extra: BTreeMap::from([("scopes".into(), vec!["a".into(), "b".into()])]),
        }
    }

    fn spec() -> DebugSessionSpec {
        DebugSessionSpec {
            ttl: Some("15m".into()),
            ..DebugSessionSpec::new(TargetKind::Deployment, "web")
        }
    }

    fn stamp_of(r: Requester, spec: &DebugSessionSpec) -> Stamp {
        Stamp {
            requester: r,
            digest: spec_digest(spec),
            stamped_at: "2026-11-30T10:00:00Z".into(),
            changed: "created".into(),
        }
    }

    #[test]
    fn round_trip() {
        let st = stamp_of(alice(), &spec());
        let a = annotations(KEY, "team", "s1", &st);
        assert_eq!(a[REQUESTER], "alice");
        assert_eq!(a[REQUESTER_GROUPS], "system:authenticated,team");
        assert_eq!(a[REQUESTER_EXTRA], r#"{"scopes":["a","b"]}"#);
        assert_eq!(a[REQUESTER_SIGNATURE].len(), 64);
        assert_eq!(verify(KEY, "team", "s1", &a, &spec()), Ok(st));
        // No groups, and groups with commas and percent signs; no uid, no extra.
        for groups in [vec![], vec!["a,b".to_string(), "50%".into(), "%2C".into()]] {
            let r = Requester {
                username: "system:serviceaccount:ci:bot".into(),
                groups,
                ..Requester::default()
            };
            let st = stamp_of(r, &spec());
            let a = annotations(KEY, "team", "s1", &st);
            assert_eq!(verify(KEY, "team", "s1", &a, &spec()), Ok(st));
        }
    }

    #[test]
    fn the_stamp_binds_the_spec() {
        let a = annotations(KEY, "team", "s1", &stamp_of(alice(), &spec()));
        type Edit = Box<dyn Fn(&mut DebugSessionSpec)>;
        let edits: Vec<Edit> = vec![
            Box::new(|s| s.ttl = Some("24h".into())),
            Box::new(|s| s.ttl = None),
            Box::new(|s| s.target.name = "db".into()),
            Box::new(|s| s.target.kind = TargetKind::StatefulSet),
            Box::new(|s| s.target.container = Some("app".into())),
            Box::new(|s| {
                s.shell = Some(Shell {
                    command: Some(vec!["sh".into(), "-c".into(), "id".into()]),
                    ..Shell::default()
                })
            }),
            Box::new(|s| {
                s.shell = Some(Shell {
                    container_name: Some("nginx".into()),
                    ..Shell::default()
                })
            }),
        ];
        for edit in edits {
            let mut changed = spec();
            edit(&mut changed);
            let err = verify(KEY, "team", "s1", &a, &changed).unwrap_err();
            assert_eq!(err.reason, reason::SPEC_NOT_STAMPED, "{changed:?}");
            assert!(err.message.contains("alice"), "{}", err.message);
        }
        // The same spec built another way has the same digest.
        let mut same = spec();
        same.shell = None;
        assert_eq!(spec_digest(&same), spec_digest(&spec()));
    }

    #[test]
    fn tampering_is_detected() {
        let a = annotations(KEY, "team", "s1", &stamp_of(alice(), &spec()));
        let invalid = |r: Result<Stamp, Invalid>| r.unwrap_err().reason == reason::INVALID_STAMP;
        // Another session (name or namespace) cannot reuse the stamp; nor another key.
        assert!(invalid(verify(KEY, "team", "s2", &a, &spec())));
        assert!(invalid(verify(KEY, "other", "s1", &a, &spec())));
        assert!(invalid(verify(b"other key", "team", "s1", &a, &spec())));
        let other_digest = spec_digest(&DebugSessionSpec {
            ttl: Some("24h".into()),
            ..spec()
        });
        let edits: Vec<(&str, String)> = vec![
            (REQUESTER, "admin".into()),
            (REQUESTER, String::new()),
            (
                REQUESTER_GROUPS,
                "system:authenticated,team,system:masters".into(),
            ),
            (REQUESTER_GROUPS, "system:authenticated".into()),
            (REQUESTER_UID, "u-2".into()),
            (REQUESTER_EXTRA, r#"{"scopes":["a"]}"#.into()),
            (REQUESTER_EXTRA, "not json".into()),
            (SPEC_DIGEST, other_digest),
            (STAMPED_AT, "2030-01-01T00:00:00Z".into()),
            (CHANGED, "spec.ttl".into()),
            (REQUESTER_SIGNATURE, "00".into()),
            (REQUESTER_SIGNATURE, "not hex at all".into()),
            (REQUESTER_SIGNATURE, String::new()),
        ];
        for (k, v) in edits {
            let mut t = a.clone();
            t.insert(k.into(), v.clone());
            let err = verify(KEY, "team", "s1", &t, &spec()).unwrap_err();
            assert_eq!(err.reason, reason::INVALID_STAMP, "{k}={v}: {err:?}");
        }
        // A flipped signature digit.
        let mut t = a.clone();
        let sig = t[REQUESTER_SIGNATURE].clone();
        let flipped = if sig.starts_with('0') { "1" } else { "0" };
        t.insert(
            REQUESTER_SIGNATURE.into(),
            format!("{flipped}{}", &sig[1..]),
        );
        assert!(invalid(verify(KEY, "team", "s1", &t, &spec())));
        // Field boundaries cannot be shifted: ("ab","c") vs ("a","bc"), groups, extra.
        let st = stamp_of(alice(), &spec());
        assert_ne!(sign(KEY, "ab", "c", &st), sign(KEY, "a", "bc", &st));
        let with = |groups: Vec<&str>, extra: Vec<(&str, Vec<&str>)>| {
            let r = Requester {
                username: "u".into(),
                groups: groups.into_iter().map(String::from).collect(),
                extra: extra
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
                    .collect(),
                ..Requester::default()
            };
            sign(KEY, "n", "s", &stamp_of(r, &spec()))
        };
        assert_ne!(with(vec!["a,b"], vec![]), with(vec!["a", "b"], vec![]));
        assert_ne!(
            with(vec![], vec![("k", vec!["a", "b"])]),
            with(vec![], vec![("k", vec!["ab"])])
        );
        assert_ne!(with(vec!["k"], vec![]), with(vec![], vec![("k", vec![])]));
    }

    #[test]
    fn missing_stamp() {
        let err = verify(KEY, "team", "s1", &BTreeMap::new(), &spec()).unwrap_err();
        assert_eq!(err.reason, reason::STAMP_MISSING);
        assert!(err.message.contains("no requester stamp"), "{err:?}");
        // A stamp of the older three-annotation format is missing the rest.
        let mut a = annotations(KEY, "team", "s1", &stamp_of(alice(), &spec()));
        a.remove(SPEC_DIGEST);
        let err = verify(KEY, "team", "s1", &a, &spec()).unwrap_err();
        assert!(err.message.contains(SPEC_DIGEST), "{err:?}");
    }

    #[test]
    fn changes() {
        let a = annotations(KEY, "team", "s1", &stamp_of(alice(), &spec()));
        assert!(!changed(&a, &a.clone()));
        assert!(changed(&a, &BTreeMap::new()));
        assert!(!changed(&BTreeMap::new(), &BTreeMap::new()));
        let mut b = a.clone();
        b.insert("other".into(), "x".into());
        assert!(!changed(&a, &b));
        for k in KEYS {
            let mut b = a.clone();
            b.insert(k.into(), "x".into());
            assert!(changed(&a, &b), "{k}");
        }
    }

    #[test]
    fn changed_paths_name_the_fields() {
        use serde_json::json;
        let old = json!({"target": {"kind": "Deployment", "name": "web"}, "ttl": "15m"});
        let new = json!({"target": {"kind": "Deployment", "name": "db"}, "ttl": "15m",
            "shell": {"command": ["sh"], "env": [{"name": "A", "value": "1"}]}});
        assert_eq!(changed_paths(&old, &new), "spec.shell,spec.target.name");
        let newer = json!({"target": {"kind": "Deployment", "name": "db"}, "ttl": "15m",
            "shell": {"command": ["sh", "-c"], "args": ["x"], "env": [{"name": "A", "value": "1"}]}});
        assert_eq!(
            changed_paths(&new, &newer),
            "spec.shell.args,spec.shell.command"
        );
        assert_eq!(changed_paths(&old, &old), "");
        assert_eq!(changed_paths(&json!(null), &json!(1)), "spec");
    }

    #[test]
    fn hex_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("ABff"), Some(vec![0xab, 0xff]));
    }
}
