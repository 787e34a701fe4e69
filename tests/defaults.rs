//! Every default has one definition (`session::settings`); the Helm chart's `values.yaml` and the
//! kustomize manager (`config/manager/manager.yaml`) must say the same.

use std::path::Path;

use debugsession_operator::session::settings::{
    DEFAULT_ALLOWED_CAPABILITIES, DEFAULT_ALLOWED_IMAGES, DEFAULT_DENIED_NAMESPACES, DEFAULT_IMAGE,
    DEFAULT_MAX_TTL, DEFAULT_TTL, list,
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
}
