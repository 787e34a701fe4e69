//! The requester stamp: who created a session, bound to the session by an HMAC.
//!
//! The mutating webhook writes three annotations at create, from the admission request's
//! userInfo; users cannot forge them because they do not hold the key, and the webhook overwrites
//! whatever a user put there. The controller acts only on sessions whose stamp verifies, and only
//! with the permissions of the stamped requester.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Username of the requester.
pub const REQUESTER: &str = "debugsession.dev/requester";
/// Groups of the requester, comma-joined (`%` and `,` inside a group are percent-encoded).
pub const REQUESTER_GROUPS: &str = "debugsession.dev/requester-groups";
/// Hex HMAC-SHA256 over namespace, name, username and groups.
pub const REQUESTER_SIGNATURE: &str = "debugsession.dev/requester-signature";
/// The three stamp annotations.
pub const KEYS: [&str; 3] = [REQUESTER, REQUESTER_GROUPS, REQUESTER_SIGNATURE];

/// Domain separation: a signature for something else never verifies as a stamp.
const DOMAIN: &[u8] = b"debugsession.dev/requester/v1";

/// The person (or service account) who created a session.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Requester {
    pub username: String,
    pub groups: Vec<String>,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], namespace: &str, name: &str, r: &Requester) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    // Every field is length-prefixed, so no choice of strings can make two different stamps
    // feed the same bytes to the MAC (no separator can be smuggled in).
    let mut field = |b: &[u8]| {
        m.update(&(b.len() as u64).to_be_bytes());
        m.update(b);
    };
    field(DOMAIN);
    field(namespace.as_bytes());
    field(name.as_bytes());
    field(r.username.as_bytes());
    field(&(r.groups.len() as u64).to_be_bytes());
    for g in &r.groups {
        field(g.as_bytes());
    }
    m
}

/// Hex HMAC-SHA256 of the stamp of `r` on session `namespace/name`.
pub fn sign(key: &[u8], namespace: &str, name: &str, r: &Requester) -> String {
    hex(&mac(key, namespace, name, r).finalize().into_bytes())
}

/// The three annotations that stamp `r` on session `namespace/name`.
pub fn annotations(
    key: &[u8],
    namespace: &str,
    name: &str,
    r: &Requester,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (REQUESTER.to_string(), r.username.clone()),
        (REQUESTER_GROUPS.to_string(), encode_groups(&r.groups)),
        (
            REQUESTER_SIGNATURE.to_string(),
            sign(key, namespace, name, r),
        ),
    ])
}

/// Reads and checks the stamp of session `namespace/name`. The error is a sentence for a condition.
pub fn verify(
    key: &[u8],
    namespace: &str,
    name: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<Requester, String> {
    let missing: Vec<&str> = KEYS
        .iter()
        .copied()
        .filter(|k| !annotations.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the session has no requester stamp (missing annotation {}): it was not admitted by the operator's webhook",
            missing.join(", ")
        ));
    }
    let r = Requester {
        username: annotations[REQUESTER].clone(),
        groups: decode_groups(&annotations[REQUESTER_GROUPS]),
    };
    if r.username.is_empty() {
        return Err(format!(
            "the requester stamp names no user ({REQUESTER} is empty)"
        ));
    }
    let invalid = || {
        format!(
            "the requester stamp's signature is invalid: the {REQUESTER} annotations were changed or forged"
        )
    };
    let sig = unhex(&annotations[REQUESTER_SIGNATURE]).ok_or_else(invalid)?;
    mac(key, namespace, name, &r)
        .verify_slice(&sig)
        .map_err(|_| invalid())?;
    Ok(r)
}

/// Whether any of the three stamp annotations differs between two annotation maps (added,
/// removed or changed).
pub fn changed(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> bool {
    KEYS.iter().any(|k| old.get(*k) != new.get(*k))
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

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

fn unhex(text: &str) -> Option<Vec<u8>> {
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

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn alice() -> Requester {
        Requester {
            username: "alice".into(),
            groups: vec!["system:authenticated".into(), "team".into()],
        }
    }

    #[test]
    fn round_trip() {
        let a = annotations(KEY, "team", "s1", &alice());
        assert_eq!(a[REQUESTER], "alice");
        assert_eq!(a[REQUESTER_GROUPS], "system:authenticated,team");
        assert_eq!(a[REQUESTER_SIGNATURE].len(), 64);
        assert_eq!(verify(KEY, "team", "s1", &a), Ok(alice()));
        // No groups, and groups with commas and percent signs.
        for groups in [vec![], vec!["a,b".to_string(), "50%".into(), "%2C".into()]] {
            let r = Requester {
                username: "system:serviceaccount:ci:bot".into(),
                groups,
            };
            let a = annotations(KEY, "team", "s1", &r);
            assert_eq!(verify(KEY, "team", "s1", &a), Ok(r));
        }
    }

    #[test]
    fn tampering_is_detected() {
        let a = annotations(KEY, "team", "s1", &alice());
        let invalid = "signature is invalid";
        // Another session (name or namespace) cannot reuse the stamp.
        assert!(verify(KEY, "team", "s2", &a).unwrap_err().contains(invalid));
        assert!(
            verify(KEY, "other", "s1", &a)
                .unwrap_err()
                .contains(invalid)
        );
        // Another key.
        assert!(
            verify(b"other key", "team", "s1", &a)
                .unwrap_err()
                .contains(invalid)
        );
        let edits: [(&str, &str); 6] = [
            (REQUESTER, "admin"),
            (REQUESTER_GROUPS, "system:authenticated,team,system:masters"),
            (REQUESTER_GROUPS, "system:authenticated"),
            (REQUESTER_SIGNATURE, "00"),
            (REQUESTER_SIGNATURE, "not hex at all"),
            (REQUESTER_SIGNATURE, ""),
        ];
        for (k, v) in edits {
            let mut t = a.clone();
            t.insert(k.into(), v.into());
            let err = verify(KEY, "team", "s1", &t).unwrap_err();
            assert!(err.contains(invalid), "{k}={v}: {err}");
        }
        // A flipped signature digit.
        let mut t = a.clone();
        let sig = t[REQUESTER_SIGNATURE].clone();
        let flipped = if sig.starts_with('0') { "1" } else { "0" };
        t.insert(
            REQUESTER_SIGNATURE.into(),
            format!("{flipped}{}", &sig[1..]),
        );
        assert!(verify(KEY, "team", "s1", &t).unwrap_err().contains(invalid));
        // Field boundaries cannot be shifted: ("ab","c") vs ("a","bc").
        let ab = sign(KEY, "ab", "c", &alice());
        assert_ne!(ab, sign(KEY, "a", "bc", &alice()));
        let g1 = Requester {
            username: "u".into(),
            groups: vec!["a,b".into()],
        };
        let g2 = Requester {
            username: "u".into(),
            groups: vec!["a".into(), "b".into()],
        };
        assert_ne!(sign(KEY, "n", "s", &g1), sign(KEY, "n", "s", &g2));
    }

    #[test]
    fn missing_stamp() {
        let err = verify(KEY, "team", "s1", &BTreeMap::new()).unwrap_err();
        assert!(err.contains("no requester stamp"), "{err}");
        let mut a = annotations(KEY, "team", "s1", &alice());
        a.remove(REQUESTER_SIGNATURE);
        let err = verify(KEY, "team", "s1", &a).unwrap_err();
        assert!(err.contains(REQUESTER_SIGNATURE), "{err}");
    }

    #[test]
    fn changes() {
        let a = annotations(KEY, "team", "s1", &alice());
        assert!(!changed(&a, &a.clone()));
        assert!(changed(&a, &BTreeMap::new()));
        assert!(!changed(&BTreeMap::new(), &BTreeMap::new()));
        let mut b = a.clone();
        b.insert("other".into(), "x".into());
        assert!(!changed(&a, &b));
        b.insert(REQUESTER.into(), "bob".into());
        assert!(changed(&a, &b));
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
