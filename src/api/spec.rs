use super::DebugSessionStatus;
use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Regular expression that `spec.ttl` must match: one or more `<digits><unit>` groups with units
/// h, m and s in that order, such as `90s`, `15m`, `2h`, `1h30m`.
pub const TTL_PATTERN: &str = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$";

/// A time-boxed debug shell inside a running workload.
///
/// In `Patch` mode the operator adds a shell container to the target's pod template and sets
/// `shareProcessNamespace: true`, waits for the pods to roll, reports how to attach, and
/// reverts the workload exactly when the TTL runs out or the session is deleted. In `Copy` mode
/// it runs the shell in a copy of a pod instead, and in `Ephemeral` mode as an ephemeral
/// container in running pods; neither touches the workload.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "debugsession.dev",
    version = "v1alpha1",
    kind = "DebugSession",
    plural = "debugsessions",
    singular = "debugsession",
    shortname = "dbgs",
    namespaced,
    doc = "A time-boxed debug shell inside a running Deployment, StatefulSet, DaemonSet or Pod: patched into the pod template, in a copy of a pod, or as an ephemeral container; undone when the session ends.",
    status = "DebugSessionStatus",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".status.targetRef"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".status.mode"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Expires","type":"string","format":"date-time","jsonPath":".status.expiresAt"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.readyPods"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.message"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = bound_sizes)]
pub struct DebugSessionSpec {
    /// The workload that gets the debug shell. Fixed once the session has started.
    pub target: Target,

    /// How long the session lasts, counted from the moment the shell was added: a duration such
    /// as `90s`, `15m`, `2h` or `1h30m`. At least 30s; at most the operator's maximum (24h by
    /// default). Raising it on a live session extends the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = TTL_PATTERN),
        length(min = 2, max = 32)
    )]
    pub ttl: Option<String>,

    /// The debug shell container. Every field is optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Shell>,

    /// How the shell gets in: `Patch` (into the pod template; the default for Deployments,
    /// StatefulSets and DaemonSets), `Copy` (a standalone copy of a pod; the workload is not
    /// touched) or `Ephemeral` (an ephemeral container in running pods; the default for Pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,

    /// The security profile of the shell, with `kubectl debug --profile`'s meaning: `general`
    /// (the default), `baseline`, `restricted`, `netadmin` or `sysadmin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,

    /// Options of the `Copy` mode; refused with any other mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopyOptions>,
}

impl DebugSessionSpec {
    /// A spec that names only its target (in the session's namespace); every other field takes
    /// the operator's default.
    pub fn new(kind: TargetKind, name: &str) -> Self {
        DebugSessionSpec {
            target: Target {
                kind,
                name: name.to_string(),
                container: None,
                pod: None,
            },
            ttl: None,
            shell: None,
            mode: None,
            profile: None,
            copy: None,
        }
    }
}

/// How the shell gets into the target.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Mode {
    /// The shell container and `shareProcessNamespace` are applied to the pod template; the
    /// workload rolls, and rolls back at the end.
    Patch,
    /// A standalone Pod copied from the target's pod template (or from one of its pods) with the
    /// shell added, owned by the session and deleted when it ends.
    Copy,
    /// An ephemeral container in the target pod (or each pod of the workload), whose command
    /// ends when the session expires.
    Ephemeral,
}

impl Mode {
    /// Every mode, in the order of the `--modes` flag's default.
    pub const ALL: [Mode; 3] = [Mode::Patch, Mode::Copy, Mode::Ephemeral];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Patch => "Patch",
            Mode::Copy => "Copy",
            Mode::Ephemeral => "Ephemeral",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A security profile, as `kubectl debug --profile`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// `SYS_PTRACE`, so the shell can inspect the app's processes.
    General,
    /// Nothing added: what Pod Security `baseline` allows.
    Baseline,
    /// Non-root, all capabilities dropped, no privilege escalation, seccomp `RuntimeDefault`.
    Restricted,
    /// `NET_ADMIN` and `NET_RAW`.
    Netadmin,
    /// A privileged container.
    Sysadmin,
}

impl Profile {
    pub const ALL: [Profile; 5] = [
        Profile::General,
        Profile::Baseline,
        Profile::Restricted,
        Profile::Netadmin,
        Profile::Sysadmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::General => "general",
            Profile::Baseline => "baseline",
            Profile::Restricted => "restricted",
            Profile::Netadmin => "netadmin",
            Profile::Sysadmin => "sysadmin",
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the `Copy` mode builds its pod.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CopyOptions {
    /// Keep the source's labels (by default they are stripped, so that no Service sends the copy
    /// traffic and no controller adopts it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_labels: Option<bool>,
    /// Keep the source's annotations (stripped by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_annotations: Option<bool>,
    /// Keep liveness, readiness and startup probes (stripped by default, so that a paused
    /// process is not restarted under you).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_probes: Option<bool>,
    /// Leave out the init containers (kept by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_init_containers: Option<bool>,
    /// Run the copy on the node of the source pod (needs `target.pod` or a Pod target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_node: Option<bool>,
    /// Images to change in the copy: container name to image, as `kubectl debug --set-image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    pub set_image: Option<std::collections::BTreeMap<String, String>>,
}

/// The longest string the spec accepts where no tighter bound is set (env values, command and
/// argument items, env source names).
pub const MAX_STRING: u64 = 4096;
/// The most items of a list where no tighter bound is set (command, args, env).
pub const MAX_ITEMS: u64 = 64;

/// Gives every string a `maxLength` and every list a `maxItems`, so that the API server itself
/// refuses oversized input at admission; fields with their own bound (or an enum) keep it.
pub fn bound_sizes(schema: &mut schemars::Schema) {
    fn walk(v: &mut serde_json::Value) {
        if let Some(obj) = v.as_object_mut() {
            bound(obj);
        }
    }
    fn bound(obj: &mut serde_json::Map<String, serde_json::Value>) {
        // `type` is a name, or a list of names for optional fields (`["array", "null"]`).
        let is =
            |name: &str, obj: &serde_json::Map<String, serde_json::Value>| match obj.get("type") {
                Some(serde_json::Value::String(t)) => t == name,
                Some(serde_json::Value::Array(ts)) => ts.iter().any(|t| t == name),
                _ => false,
            };
        if is("string", obj) && !obj.contains_key("enum") && !obj.contains_key("format") {
            obj.entry("maxLength").or_insert(MAX_STRING.into());
        }
        if is("array", obj) {
            obj.entry("maxItems").or_insert(MAX_ITEMS.into());
        }
        for key in ["items", "additionalProperties"] {
            if let Some(child) = obj.get_mut(key) {
                walk(child);
            }
        }
        for key in ["properties"] {
            if let Some(props) = obj.get_mut(key).and_then(|p| p.as_object_mut()) {
                props.values_mut().for_each(walk);
            }
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(list) = obj.get_mut(key).and_then(|l| l.as_array_mut()) {
                list.iter_mut().for_each(walk);
            }
        }
    }
    if let Some(obj) = schema.as_object_mut() {
        bound(obj);
    }
}

/// Kind of workload a session can target.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum TargetKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    /// A bare Pod: `Copy` or `Ephemeral` mode only.
    Pod,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Deployment => "Deployment",
            TargetKind::StatefulSet => "StatefulSet",
            TargetKind::DaemonSet => "DaemonSet",
            TargetKind::Pod => "Pod",
        }
    }

    /// The API group of the kind (`apps`, or the core group for Pods).
    pub fn group(self) -> &'static str {
        match self {
            TargetKind::Pod => "",
            _ => "apps",
        }
    }

    /// The mode a session gets when it names none.
    pub fn default_mode(self) -> Mode {
        match self {
            TargetKind::Pod => Mode::Ephemeral,
            _ => Mode::Patch,
        }
    }

    /// Plural resource name in the `apps` group.
    pub fn plural(self) -> &'static str {
        match self {
            TargetKind::Deployment => "deployments",
            TargetKind::StatefulSet => "statefulsets",
            TargetKind::DaemonSet => "daemonsets",
            TargetKind::Pod => "pods",
        }
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The workload that gets the debug shell, in the session's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Kind of the workload: Deployment, StatefulSet, DaemonSet or Pod.
    pub kind: TargetKind,
    /// Name of the workload in the session's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The app container you want to look at; defaults to the first container of the pod
    /// template. It must exist in the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub container: Option<String>,
    /// One pod of the workload: the pod to copy (`Copy`) or the one pod that gets the ephemeral
    /// shell (`Ephemeral`; without it every pod of the workload gets one). Refused with `Patch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub pod: Option<String>,
}

/// The debug shell container added to the pod template.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Shell {
    /// Image of the shell; defaults to the operator's default image (busybox:1.36).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub image: Option<String>,
    /// Entrypoint of the shell container; defaults to the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Arguments to the entrypoint; defaults to the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Record the shell: a banner says so at the prompt, and everything the terminal shows
    /// (the echo of what is typed included) stays in the shell container's log. The operator
    /// may record every shell regardless (`--record-shell`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<bool>,
    /// Environment variables of the shell container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    /// Compute resources of the shell container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Linux capabilities added to the shell on top of its profile's (the `general` profile
    /// adds `SYS_PTRACE`, which lets the shell signal and inspect the app's processes); refused
    /// under `restricted`. Each must be in the operator's `allowedCapabilities`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 64)))]
    pub capabilities: Option<Vec<String>>,
    /// Name of the shell container; defaults to `debug-shell`. Must not clash with a container
    /// of the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub container_name: Option<String>,
    /// Keep stdin open so that `kubectl attach -it` works; defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<bool>,
    /// Allocate a terminal; defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
}
