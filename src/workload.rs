//! One view over Deployment, StatefulSet and DaemonSet: pod template, selector, rollout state,
//! and the field managers that own parts of the object.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ManagedFieldsEntry};
use kube::Client;
use kube::api::{Api, ObjectMeta};

use crate::api::TargetKind;
use crate::{Error, Result};

/// What the controller needs to know about a target workload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Workload {
    pub kind: Option<TargetKind>,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub annotations: BTreeMap<String, String>,
    pub managers: Vec<String>,
    /// The field managers that own the holder annotation (`debugsession.dev/session`).
    pub holder_owners: Vec<String>,
    /// The field managers that recorded an explicit `shareProcessNamespace: false` to restore
    /// ([`share_off_owners`]).
    pub share_off_owners: Vec<String>,
    pub template: PodTemplateSpec,
    pub selector: LabelSelector,
    /// Pods the workload wants (replicas, or scheduled daemon pods).
    pub desired: i32,
    /// Whether the controller of the workload has finished rolling out its current spec.
    pub rolled_out: bool,
    /// A StatefulSet with `updateStrategy: OnDelete`: pods only get a new template when deleted.
    pub on_delete: bool,
}

impl Workload {
    /// The names of the template's containers, in order.
    pub fn container_names(&self) -> Vec<String> {
        self.template
            .spec
            .as_ref()
            .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default()
    }

    /// The names of every container of the template: containers, initContainers and
    /// ephemeralContainers (names must be unique across all three).
    pub fn all_container_names(&self) -> Vec<String> {
        let Some(spec) = self.template.spec.as_ref() else {
            return Vec::new();
        };
        let init = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| c.name.clone());
        let ephemeral = spec
            .ephemeral_containers
            .iter()
            .flatten()
            .map(|c| c.name.clone());
        spec.containers
            .iter()
            .map(|c| c.name.clone())
            .chain(init)
            .chain(ephemeral)
            .collect()
    }

    /// Whether the release of `manager` puts `shareProcessNamespace: false` back: it recorded
    /// the owner's explicit `false` when it took the field, or the template says `false` now
    /// (before the shell went in, or turned off by someone during the session).
    pub fn keeps_share_off(&self, manager: &str) -> bool {
        self.share_off_owners.iter().any(|m| m == manager)
            || self
                .template
                .spec
                .as_ref()
                .is_some_and(|s| s.share_process_namespace == Some(false))
    }

    /// Whether `manager` owns any field of this object.
    pub fn is_managed_by(&self, manager: &str) -> bool {
        self.managers.iter().any(|m| m == manager)
    }

    /// A `kubectl get pods -l` style selector for the workload's pods.
    pub fn label_selector(&self) -> String {
        selector_string(&self.selector)
    }
}

fn managers(meta: &ObjectMeta) -> Vec<String> {
    meta.managed_fields
        .iter()
        .flatten()
        .filter_map(|m: &ManagedFieldsEntry| m.manager.clone())
        .collect()
}

fn base(
    kind: TargetKind,
    meta: ObjectMeta,
    template: PodTemplateSpec,
    selector: LabelSelector,
) -> Workload {
    Workload {
        kind: Some(kind),
        managers: managers(&meta),
        holder_owners: owners_of_annotation(&meta, crate::api::HOLDER_ANNOTATION),
        share_off_owners: share_off_owners(&meta),
        name: meta.name.unwrap_or_default(),
        namespace: meta.namespace.unwrap_or_default(),
        uid: meta.uid.unwrap_or_default(),
        annotations: meta.annotations.unwrap_or_default(),
        template,
        selector,
        ..Workload::default()
    }
}

/// The managers whose managedFields entry owns `metadata.annotations[key]`.
pub fn owners_of_annotation(meta: &ObjectMeta, key: &str) -> Vec<String> {
    let field = format!("f:{key}");
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .and_then(|f| f.0.pointer("/f:metadata/f:annotations"))
                .is_some_and(|a| a.get(&field).is_some())
        })
        .filter_map(|m| m.manager.clone())
        .collect()
}

/// The managers that own the [`SHARE_OFF_ANNOTATION`](crate::api::SHARE_OFF_ANNOTATION) with
/// its one value, `false`.
pub fn share_off_owners(meta: &ObjectMeta) -> Vec<String> {
    let recorded = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::api::SHARE_OFF_ANNOTATION))
        .is_some_and(|v| v == "false");
    if recorded {
        owners_of_annotation(meta, crate::api::SHARE_OFF_ANNOTATION)
    } else {
        Vec::new()
    }
}

fn observed(generation: Option<i64>, observed: Option<i64>) -> bool {
    generation.is_some() && observed >= generation
}

impl From<Deployment> for Workload {
    fn from(d: Deployment) -> Self {
        let generation = d.metadata.generation;
        let spec = d.spec.unwrap_or_default();
        let status = d.status.unwrap_or_default();
        let desired = spec.replicas.unwrap_or(1);
        let mut w = base(
            TargetKind::Deployment,
            d.metadata,
            spec.template,
            spec.selector,
        );
        w.desired = desired;
        w.rolled_out = observed(generation, status.observed_generation)
            && status.updated_replicas.unwrap_or(0) == desired
            && status.replicas.unwrap_or(0) == desired
            && status.available_replicas.unwrap_or(0) == desired;
        w
    }
}

impl From<StatefulSet> for Workload {
    fn from(s: StatefulSet) -> Self {
        let generation = s.metadata.generation;
        let spec = s.spec.unwrap_or_default();
        let status = s.status.unwrap_or_default();
        let desired = spec.replicas.unwrap_or(1);
        let on_delete = spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.type_.as_deref())
            .is_some_and(|t| t == "OnDelete");
        let mut w = base(
            TargetKind::StatefulSet,
            s.metadata,
            spec.template,
            spec.selector,
        );
        w.desired = desired;
        w.on_delete = on_delete;
        let current =
            status.current_revision.is_some() && status.current_revision == status.update_revision;
        w.rolled_out = observed(generation, status.observed_generation)
            && current
            && status.updated_replicas.unwrap_or(0) == desired
            && status.ready_replicas.unwrap_or(0) == desired;
        w
    }
}

impl From<DaemonSet> for Workload {
    fn from(d: DaemonSet) -> Self {
        let generation = d.metadata.generation;
        let spec = d.spec.unwrap_or_default();
        let status = d.status.unwrap_or_default();
        let desired = status.desired_number_scheduled;
        let mut w = base(
            TargetKind::DaemonSet,
            d.metadata,
            spec.template,
            spec.selector,
        );
        w.desired = desired;
        w.rolled_out = observed(generation, status.observed_generation)
            && status.updated_number_scheduled.unwrap_or(0) == desired
            && status.number_available.unwrap_or(0) == desired;
        w
    }
}

impl From<Pod> for Workload {
    /// A bare Pod as a workload of one: its own spec is the template, and it is "rolled out"
    /// as it is (a Pod's containers cannot change).
    fn from(p: Pod) -> Self {
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: p.metadata.labels.clone(),
                ..ObjectMeta::default()
            }),
            spec: p.spec,
        };
        let mut w = base(
            TargetKind::Pod,
            p.metadata,
            template,
            LabelSelector::default(),
        );
        w.desired = 1;
        w.rolled_out = true;
        w
    }
}

/// Reads a workload; `Ok(None)` when it does not exist.
pub async fn fetch(
    client: &Client,
    namespace: &str,
    kind: TargetKind,
    name: &str,
) -> Result<Option<Workload>> {
    let res = match kind {
        TargetKind::Deployment => Api::<Deployment>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await
            .map(|o| o.map(Workload::from)),
        TargetKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await
            .map(|o| o.map(Workload::from)),
        TargetKind::DaemonSet => Api::<DaemonSet>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await
            .map(|o| o.map(Workload::from)),
        TargetKind::Pod => Api::<Pod>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await
            .map(|o| o.map(Workload::from)),
    };
    res.map_err(Error::ReadWorkload)
}

/// Renders a LabelSelector the way the API's `labelSelector` query parameter takes it.
pub fn selector_string(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({values})", e.key),
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use serde_json::json;

    #[test]
    fn the_owners_of_the_holder_annotation_come_from_managed_fields() {
        let meta: ObjectMeta = serde_json::from_value(serde_json::json!({
            "name": "web", "namespace": "team",
            "annotations": {"debugsession.dev/session": "dbg", "note": "x"},
            "managedFields": [
                {"manager": "debugsession/team/dbg", "operation": "Apply", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:annotations": {"f:debugsession.dev/session": {}}},
                              "f:spec": {"f:template": {}}}},
                {"manager": "kubectl-annotate", "operation": "Update", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:annotations": {"f:note": {}}}}},
                {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}
            ]
        }))
        .unwrap();
        assert_eq!(
            owners_of_annotation(&meta, "debugsession.dev/session"),
            ["debugsession/team/dbg"]
        );
        assert_eq!(owners_of_annotation(&meta, "note"), ["kubectl-annotate"]);
        assert!(owners_of_annotation(&meta, "other").is_empty());
    }

    #[test]
    fn selector_renders_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into(), "b".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(selector_string(&sel), "app=web,tier in (a,b),!canary");
    }

    #[test]
    fn deployment_rollout_state() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "generation": 3,
                         "managedFields": [{"manager": "debugsession/ns/s", "operation": "Apply"}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "nginx"}], "shareProcessNamespace": true}}},
            "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}
        }))
        .unwrap();
        let w = Workload::from(d.clone());
        assert!(w.rolled_out && w.is_managed_by("debugsession/ns/s"));
        assert_eq!(
            (w.desired, w.container_names()),
            (2, vec!["nginx".to_string()])
        );
        let mut stale = d;
        stale.metadata.generation = Some(4);
        assert!(
            !Workload::from(stale).rolled_out,
            "a spec the controller has not seen is not rolled out"
        );
    }

    #[test]
    fn statefulset_on_delete_is_seen() {
        let s: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "db", "generation": 1},
            "spec": {"serviceName": "db", "selector": {}, "template": {}, "updateStrategy": {"type": "OnDelete"}},
            "status": {"replicas": 1, "readyReplicas": 1, "observedGeneration": 1, "currentRevision": "a", "updateRevision": "b"}
        }))
        .unwrap();
        let w = Workload::from(s);
        assert!(w.on_delete && !w.rolled_out);
    }
}
