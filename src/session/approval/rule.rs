//! The operator's approval rules: where a session needs approval, from how many people, and
//! how long an approval stays good before the session starts.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::session::policy::glob_match;
use crate::session::settings;

/// How long an approval is good for before the session starts, unless configured.
pub const DEFAULT_VALID_FOR: &str = "1h";
/// How many approvers a session needs where approval applies, unless configured.
pub const DEFAULT_APPROVERS: u32 = 1;

/// Where sessions need approval. A session needs it when its namespace matches one of
/// `namespaces` (globs) or its labels match `selector`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub namespaces: Vec<String>,
    pub selector: Selector,
    /// Approvers needed, none of them the requester (at least 1).
    pub approvers: u32,
    /// An approval older than this when the session would start counts no more.
    pub valid_for: Duration,
}

impl Default for Rule {
    /// No namespace needs approval.
    fn default() -> Self {
        Rule {
            namespaces: Vec::new(),
            selector: Selector::default(),
            approvers: DEFAULT_APPROVERS,
            valid_for: Duration::from_secs(3600),
        }
    }
}

impl Rule {
    /// How many approvals a session in `namespace` (with `labels`) needs: 0 when none.
    pub fn required(&self, namespace: &str, labels: &BTreeMap<String, String>) -> u32 {
        let by_name = self.namespaces.iter().any(|g| glob_match(g, namespace));
        let by_label = !self.selector.is_empty() && self.selector.matches(labels);
        if by_name || by_label {
            self.approvers.max(1)
        } else {
            0
        }
    }

    /// Whether any namespace may need approval (the controller then reads namespace labels).
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty() && self.selector.is_empty()
    }
}

/// An equality-based label selector: `key=value`, `key!=value`, `key` (exists), `!key`,
/// comma-separated, all must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut out = Vec::new();
        for term in settings::list(text) {
            let req = if let Some((k, v)) = term.split_once("!=") {
                Requirement::NotEquals(key(k)?, v.trim().to_string())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                Requirement::Equals(key(k)?, v.trim().to_string())
            } else if let Some(k) = term.strip_prefix('!') {
                Requirement::Absent(key(k)?)
            } else {
                Requirement::Exists(key(&term)?)
            };
            out.push(req);
        }
        Ok(Selector(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
        })
    }
}

fn key(k: &str) -> Result<String, String> {
    let k = k.trim();
    let ok = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if ok {
        Ok(k.to_string())
    } else {
        Err(format!(
            "{k:?} is not a label key (a selector is key=value, key!=value, key or !key, comma-separated)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn by_namespace_glob_or_by_label() {
        let rule = Rule {
            namespaces: vec!["prod-*".into()],
            selector: Selector::parse("tier=critical").unwrap(),
            approvers: 2,
            ..Rule::default()
        };
        assert_eq!(rule.required("prod-eu", &labels(&[])), 2);
        assert_eq!(rule.required("dev", &labels(&[("tier", "critical")])), 2);
        assert_eq!(rule.required("dev", &labels(&[("tier", "low")])), 0);
        assert_eq!(Rule::default().required("prod-eu", &labels(&[])), 0);
        assert!(Rule::default().is_empty());
    }

    #[test]
    fn selectors() {
        let s = Selector::parse("a=1, b!=2, c, !d").unwrap();
        assert!(s.matches(&labels(&[("a", "1"), ("c", "")])));
        assert!(!s.matches(&labels(&[("a", "1"), ("b", "2"), ("c", "")])));
        assert!(!s.matches(&labels(&[("a", "1"), ("c", ""), ("d", "x")])));
        assert!(!s.matches(&labels(&[("a", "1")])));
        assert!(Selector::parse("").unwrap().is_empty());
        assert!(Selector::parse("a b=1").is_err());
        assert!(Selector::parse("=1").is_err());
    }
}
