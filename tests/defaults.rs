//! Every default has one definition (`session::settings`); the Helm chart's `values.yaml` and the
//! kustomize manager (`config/manager/manager.yaml`) must say the same, and the chart must name the
//! modes as the operator parses them.

use std::path::Path;

use debugsession_operator::session::approval::rule::{DEFAULT_APPROVERS, DEFAULT_VALID_FOR};
use debugsession_operator::session::mode;
use debugsession_operator::session::settings::{
    DEFAULT_ALLOWED_CAPABILITIES, DEFAULT_ALLOWED_IMAGES, DEFAULT_ALLOWED_PROFILES,
    DEFAULT_DENIED_NAMESPACES, DEFAULT_IMAGE, DEFAULT_MAX_TTL, DEFAULT_MODES, DEFAULT_TTL, list,
};
use serde_yaml::Value;

fn yaml(rel: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The chart's `modes` map (`patch`, `copy`, `ephemeral`: booleans) as the operator's
/// comma-separated `--modes` list, the way the chart renders DEBUGSESSION_MODES: the names of the
/// modes switched on, in the operator's order.
fn chart_modes(modes: &Value) -> String {
    let map = modes
        .as_mapping()
        .unwrap_or_else(|| panic!("modes is not a map: {modes:?}"));
    let mut keys: Vec<String> = map
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let mut all: Vec<String> = mode::ALL
        .iter()
        .map(|m| m.as_str().to_lowercase())
        .collect();
    keys.sort();
    all.sort();
    assert_eq!(keys, all, "the keys of modes are the modes, lowercased");
    mode::ALL
        .iter()
        .filter(|m| {
            modes[m.as_str().to_lowercase().as_str()]
                .as_bool()
                .unwrap_or_else(|| panic!("modes.{} is not a boolean", m.as_str().to_lowercase()))
        })
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn chart_values_are_the_operator_defaults() {
    let values = &yaml("charts/debugsession-operator/values.yaml")[0];
    let op = &values["operator"];
    assert_eq!(op["maxTTL"].as_str(), Some(DEFAULT_MAX_TTL));
    assert_eq!(op["defaultTTL"].as_str(), Some(DEFAULT_TTL));
    assert_eq!(op["defaultImage"].as_str(), Some(DEFAULT_IMAGE));
    let policy = &values["policy"];
    assert_eq!(
        strings(&policy["allowedImages"]),
        list(DEFAULT_ALLOWED_IMAGES)
    );
    assert_eq!(
        strings(&policy["deniedNamespaces"]),
        list(DEFAULT_DENIED_NAMESPACES)
    );
    assert_eq!(
        strings(&policy["allowedCapabilities"]),
        list(DEFAULT_ALLOWED_CAPABILITIES)
    );
    assert_eq!(
        strings(&policy["allowedProfiles"]),
        list(DEFAULT_ALLOWED_PROFILES)
    );
    assert_eq!(chart_modes(&values["modes"]), DEFAULT_MODES);
}

/// The chart's helper that turns `modes` into DEBUGSESSION_MODES names each mode the way the
/// operator spells it, in the operator's order (the order of `--modes`' default).
#[test]
fn chart_renders_modes_as_the_operator_names_them() {
    let rel = "charts/debugsession-operator/templates/_helpers.tpl";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let rendered: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let key = l
                .split(".Values.modes.")
                .nth(1)?
                .split_whitespace()
                .next()?;
            let name = l.split("append $modes \"").nth(1)?.split('"').next()?;
            Some((key.to_string(), name.to_string()))
        })
        .collect();
    let expected: Vec<(String, String)> = mode::ALL
        .iter()
        .map(|m| (m.as_str().to_lowercase(), m.as_str().to_string()))
        .collect();
    assert_eq!(rendered, expected, "{rel}: the modes helper");
    let names: Vec<&str> = rendered.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names.join(","), DEFAULT_MODES);
    assert_eq!(mode::parse_list(DEFAULT_MODES).unwrap(), mode::ALL);
}

#[test]
fn kustomize_manager_sets_the_operator_defaults() {
    let docs = yaml("config/manager/manager.yaml");
    let deployment = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Deployment"))
        .expect("a Deployment in config/manager/manager.yaml");
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    let get = |name: &str| {
        env.as_sequence()
            .unwrap()
            .iter()
            .find(|e| e["name"].as_str() == Some(name))
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("{name} not set in config/manager/manager.yaml"))
            .to_string()
    };
    assert_eq!(get("DEBUGSESSION_MAX_TTL"), DEFAULT_MAX_TTL);
    assert_eq!(get("DEBUGSESSION_DEFAULT_TTL"), DEFAULT_TTL);
    assert_eq!(get("DEBUGSESSION_DEFAULT_IMAGE"), DEFAULT_IMAGE);
    assert_eq!(get("DEBUGSESSION_ALLOWED_IMAGES"), DEFAULT_ALLOWED_IMAGES);
    assert_eq!(
        get("DEBUGSESSION_DENIED_NAMESPACES"),
        DEFAULT_DENIED_NAMESPACES
    );
    assert_eq!(
        get("DEBUGSESSION_ALLOWED_CAPABILITIES"),
        DEFAULT_ALLOWED_CAPABILITIES
    );
    assert_eq!(
        get("DEBUGSESSION_ALLOWED_PROFILES"),
        DEFAULT_ALLOWED_PROFILES
    );
    assert_eq!(get("DEBUGSESSION_MODES"), DEFAULT_MODES);
    assert_eq!(get("DEBUGSESSION_RECORD_SHELL"), "false");
    assert_eq!(get("DEBUGSESSION_APPROVERS"), DEFAULT_APPROVERS.to_string());
    assert_eq!(get("DEBUGSESSION_APPROVAL_VALID_FOR"), DEFAULT_VALID_FOR);
}

#[test]
fn the_chart_says_the_approval_defaults() {
    let values = &yaml("charts/debugsession-operator/values.yaml")[0];
    let approval = &values["approval"];
    assert_eq!(
        approval["approvers"].as_u64(),
        Some(DEFAULT_APPROVERS.into())
    );
    assert_eq!(approval["validFor"].as_str(), Some(DEFAULT_VALID_FOR));
    assert!(
        strings(&approval["namespaces"]).is_empty(),
        "no namespace needs approval by default"
    );
    assert_eq!(approval["namespaceSelector"].as_str(), Some(""));
    assert_eq!(values["policy"]["recordShell"].as_bool(), Some(false));
}
