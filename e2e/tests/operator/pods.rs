//! The workload most scenarios debug (Deployment nginx), its pods rolling to and from the shell,
//! and the check that a session left a workload and its pods alone ([`Untouched`]).

use std::collections::BTreeMap;

use debugsession_e2e::*;

use crate::ns::{DEPLOY, Ns, pod_name};

/// Creates Deployment nginx (`replicas`) and returns its rolled-out template.
pub fn nginx(ns: &Ns, replicas: u32) -> R<Value> {
    let r = format!("replicas: {replicas}");
    ns.fixture(DEPLOY, &[("replicas: 2", &r)])?;
    ns.rollout("deployment", "nginx")?;
    ns.template("deployment", "nginx")
}

/// Waits until `want` live pods of `selector` all have the shell and the `old` ones are gone.
pub fn wait_pods_with_shell(ns: &Ns, selector: &str, want: usize, old: &[String]) -> R<Vec<Value>> {
    wait_for(
        &format!("{want} pods ({selector}) with {SHELL}, old pods gone"),
        TIMEOUT,
        || {
            let all = ns.all_pods(selector)?;
            let lingering: Vec<String> = all
                .iter()
                .map(pod_name)
                .filter(|n| old.contains(n))
                .collect();
            let live: Vec<Value> = all
                .into_iter()
                .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
                .collect();
            let with = live.iter().filter(|p| has_shell(p)).count();
            if live.len() == want && with == want && lingering.is_empty() {
                Ok(live)
            } else {
                Err(format!(
                    "{} live pods, {with} with shell, old pods still present: {lingering:?}",
                    live.len()
                ))
            }
        },
    )
}

/// Waits until no pod of `selector` (terminating ones included) has the shell, and some exist.
pub fn wait_pods_without_shell(ns: &Ns, selector: &str) -> R<()> {
    wait_for(
        &format!("pods ({selector}) without {SHELL}"),
        TIMEOUT,
        || {
            let all = ns.all_pods(selector)?;
            let names: Vec<String> = all.iter().map(pod_name).collect();
            let with: Vec<String> = all.iter().filter(|p| has_shell(p)).map(pod_name).collect();
            if with.is_empty() && !names.is_empty() {
                Ok(())
            } else {
                Err(format!("pods with shell: {with:?}; all pods {names:?}"))
            }
        },
    )
}

/// A workload and the pods of a namespace as they were, to check that a session left them
/// alone: the workload's generation, pod template, annotations and field managers, and each
/// pod's UID, container restarts and ephemeral containers.
pub struct Untouched {
    /// `(kind, name)` of the workload, if any.
    target: Option<(String, String)>,
    selector: String,
    workload: Value,
    pods: BTreeMap<String, PodState>,
}

/// What [`Untouched`] keeps of a pod.
#[derive(Debug, PartialEq, Eq)]
struct PodState {
    uid: String,
    restarts: i64,
    ephemeral: Vec<String>,
}

impl PodState {
    fn of(p: &Value) -> PodState {
        let restarts = p
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .map(|cs| cs.iter().filter_map(|c| c["restartCount"].as_i64()).sum())
            .unwrap_or(0);
        let ephemeral = p
            .pointer("/spec/ephemeralContainers")
            .and_then(Value::as_array)
            .map(|l| l.iter().map(|c| s(c, "/name").to_string()).collect())
            .unwrap_or_default();
        PodState {
            uid: s(p, "/metadata/uid").to_string(),
            restarts,
            ephemeral,
        }
    }
}

impl Untouched {
    /// `kind/name` and the live pods of `selector` (every pod of the namespace when empty).
    pub fn take(ns: &Ns, kind: &str, name: &str, selector: &str) -> R<Untouched> {
        Self::of(ns, Some((kind.to_string(), name.to_string())), selector)
    }

    /// The live pods of `selector` (every pod of the namespace when empty), without a workload.
    pub fn pods(ns: &Ns, selector: &str) -> R<Untouched> {
        Self::of(ns, None, selector)
    }

    fn of(ns: &Ns, target: Option<(String, String)>, selector: &str) -> R<Untouched> {
        let mut u = Untouched {
            target,
            selector: selector.to_string(),
            workload: Value::Null,
            pods: BTreeMap::new(),
        };
        u.workload = u.workload_now(ns)?;
        u.pods = u.pods_now(ns)?;
        Ok(u)
    }

    /// The pods' names, sorted.
    pub fn pod_names(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }

    fn workload_now(&self, ns: &Ns) -> R<Value> {
        let Some((kind, name)) = &self.target else {
            return Ok(Value::Null);
        };
        let w = ns.get(kind, name)?;
        Ok(json!({
            "generation": w["metadata"]["generation"],
            "template": w["spec"]["template"],
            "annotations": w["metadata"]["annotations"],
            "debugsessionManagers": our_managers(&w),
        }))
    }

    fn pods_now(&self, ns: &Ns) -> R<BTreeMap<String, PodState>> {
        let mut args = vec!["pods", "-n", &ns.name];
        if !self.selector.is_empty() {
            args.extend_from_slice(&["-l", &self.selector]);
        }
        let v = get_json(&args)?;
        Ok(v["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
            .map(|p| (pod_name(p), PodState::of(p)))
            .collect())
    }

    /// The workload (if any) is as it was, and so are the pods: the same names and UIDs, no restart,
    /// and (with `ephemeral`) the same ephemeral containers.
    pub fn check(&self, ns: &Ns, ephemeral: bool) -> R<()> {
        let mut d = Vec::new();
        diff(&self.workload, &self.workload_now(ns)?, "", &mut d);
        ensure(d.is_empty(), || {
            let (kind, name) = self.target.clone().unwrap_or_default();
            format!("{kind}/{name} changed: {}", d.join("; "))
        })?;
        let now = self.pods_now(ns)?;
        let names: Vec<&String> = now.keys().collect();
        ensure(names == self.pods.keys().collect::<Vec<_>>(), || {
            format!(
                "pods ({}) were {:?}, now {names:?}",
                self.selector,
                self.pod_names()
            )
        })?;
        for (name, was) in &self.pods {
            let is = &now[name];
            let same = is.uid == was.uid
                && is.restarts == was.restarts
                && (!ephemeral || is.ephemeral == was.ephemeral);
            ensure(same, || format!("pod {name} was {was:?}, now {is:?}"))?;
        }
        Ok(())
    }
}

/// Creates a bare nginx Pod `name` (label `app=<name>`, on the node the fixtures use) and waits
/// until it is Ready.
pub fn bare_nginx(ns: &Ns, name: &str) -> R<()> {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeSelector": {"debugsession.dev/real-node": "true"},
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "nginx",
                "image": cluster().nginx(),
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 80}],
            }],
        },
    });
    k_in(&pod.to_string(), &["apply", "-n", &ns.name, "-f", "-"])?;
    let target = format!("pod/{name}");
    let out = kubectl_for(
        LONG,
        &[
            "wait",
            "-n",
            &ns.name,
            "--for=condition=Ready",
            &target,
            "--timeout=110s",
        ],
    );
    ensure(out.ok, || {
        format!("pod {name} did not become Ready: {}", out.both())
    })
}
