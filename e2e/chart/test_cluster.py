"""In-cluster tests: install the chart with the Helm v4 library into the local cluster, run a
DebugSession against it, prove least privilege, upgrade and uninstall.

Skipped when no cluster is reachable (E2E_REQUIRE_CLUSTER=1 makes that a failure).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import yaml

import helm_python as helm
from conftest import (CHART_DIR, NAMESPACE, RELEASE, dump_operator_debug, fixture, images_env, kubectl,
                      kubectl_json, load_docs, operator_pod_ready, wait_for)

SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name=debugsession-operator"
SA = f"system:serviceaccount:{NAMESPACE}:debugsession-operator"
TEST_NS = "dbgs-chart-e2e"
METRICS_PORT = 18080  # a host port (hostNetwork): keep clear of 8080, a locally run operator's default
WEBHOOK_PORT = 19443  # a host port too; the API server (on loopback, no kube-proxy) calls it by URL


def local_values(**overrides: Any) -> dict[str, Any]:
    """Values for the local cluster: the image imported by e2e/image/build, no registry, no kube-proxy."""
    values: dict[str, Any] = {
        "replicaCount": 1,  # hostNetwork: one pod per node, or the metrics port clashes
        "image": {"repository": "registry.local/debugsession-operator", "tag": "0.1.0", "pullPolicy": "Never"},
        "hostNetwork": True,
        "extraEnv": [
            {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
            {"name": "KUBERNETES_SERVICE_PORT", "value": "26443"},
        ],
        "metrics": {"port": METRICS_PORT},
        "webhook": {"port": WEBHOOK_PORT, "url": f"https://127.0.0.1:{WEBHOOK_PORT}", "certIPAddresses": ["127.0.0.1"]},
        "operator": {"defaultImage": images_env()["BUSYBOX_IMAGE"], "logLevel": "info"},
    }
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(values.get(k), dict):
            values[k] = {**values[k], **v}
        else:
            values[k] = v
    return values


def release_values(**overrides: Any) -> dict[str, Any]:
    """The release under test: sessions only in TEST_NS, so the operator's write rights on targets (patch on
    workloads, create and delete on pods, pods/ephemeralcontainers) hold only there (a Role in TEST_NS; the
    ClusterRole keeps the reads)."""
    return local_values(policy={"allowedNamespaces": [TEST_NS]}, **overrides)


def release_leftovers() -> list[str]:
    """Objects labelled with the release, cluster-wide, plus Helm's release records."""
    kinds = ("deployments,replicasets,pods,services,serviceaccounts,configmaps,secrets,roles,rolebindings,"
             "poddisruptionbudgets.policy,networkpolicies")
    out = kubectl("get", kinds, "-A", "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name").stdout.split()
    out += kubectl("get", "clusterroles,clusterrolebindings,mutatingwebhookconfigurations,validatingwebhookconfigurations", "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name").stdout.split()
    out += kubectl("get", "secrets", "-n", NAMESPACE, "-l", f"owner=helm,name={RELEASE}", "-o", "name").stdout.split()
    return out


@pytest.fixture(scope="module")
def helm_cfg(cluster, operator_image):
    import os
    with helm.Config(kubeconfig_path=os.environ["KUBECONFIG"], namespace=NAMESPACE) as cfg:
        cfg.uninstall(RELEASE, ignore_not_found=True, wait="watcher", timeout=120)  # a previous run's release
        yield cfg
        cfg.uninstall(RELEASE, ignore_not_found=True, wait="watcher", timeout=120)
    kubectl("delete", "namespace", TEST_NS, "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)
    kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)


@pytest.fixture(scope="module")
def installed(helm_cfg):
    kubectl("create", "namespace", TEST_NS, check=False)  # allowedNamespaces: its Role needs it
    try:
        rel = helm_cfg.install(CHART_DIR, RELEASE, release_values(), namespace=NAMESPACE, create_namespace=True,
                               wait="watcher", timeout=240)
    except helm.HelmError as e:
        pytest.fail(f"helm install failed: {e}\n{dump_operator_debug(NAMESPACE, SELECTOR)}")
    return rel


def test_install_operator_pod_ready(installed):
    assert installed["info"]["status"] == "deployed" if "info" in installed else True
    try:
        pods = wait_for("the operator pod to be Ready", operator_pod_ready(NAMESPACE, SELECTOR), timeout=180)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{dump_operator_debug(NAMESPACE, SELECTOR)}") from None
    assert len(pods) == 1
    pod = pods[0]
    assert pod["spec"]["serviceAccountName"] == "debugsession-operator"
    c = pod["spec"]["containers"][0]
    assert c["image"] == "registry.local/debugsession-operator:0.1.0"
    assert c["securityContext"]["runAsUser"] == 65532 and c["securityContext"]["readOnlyRootFilesystem"] is True
    # the CRD came from the chart's crds/ (or was already there)
    kubectl("get", "crd", "debugsessions.debugsession.dev")
    # replicas 1: no PodDisruptionBudget
    assert kubectl("get", "pdb", "-n", NAMESPACE, "-o", "name").stdout.strip() == ""


def test_pdb_api_version_follows_the_cluster(helm_cfg, installed):
    """Installed (server dry-run) against the live cluster, the PDB uses the newest policy API it serves:
    policy/v1beta1 on 1.20 (offline rendering gives policy/v1)."""
    served = kubectl("api-versions").stdout.split()
    rel = helm_cfg.install(CHART_DIR, "dbgs-pdb-probe", local_values(replicaCount=2, rbac={"aggregateToUserRoles": False},
                                                                approval={"createApproverRole": False}),
                           namespace=NAMESPACE, dry_run="server")
    pdbs = [d for d in load_docs(rel["manifest"]) if d["kind"] == "PodDisruptionBudget"]
    assert len(pdbs) == 1
    assert pdbs[0]["apiVersion"] == ("policy/v1" if "policy/v1" in served else "policy/v1beta1")
    kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pdbs[0]))


def test_metrics_and_health_endpoints(installed):
    import urllib.request
    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}{path}", timeout=5) as r:
            assert r.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert "debugsession_reconciles_total" in text
    assert "debugsession_sessions" in text


def session(name: str = "web-debug") -> dict[str, Any]:
    return kubectl_json("get", "debugsession", name, "-n", TEST_NS)


def web_template() -> dict[str, Any]:
    return kubectl_json("get", "deployment", "web", "-n", TEST_NS)["spec"]["template"]["spec"]


def test_session_reaches_active_and_is_reverted(installed):
    kubectl("create", "namespace", TEST_NS, check=False)
    kubectl("apply", "-n", TEST_NS, "-f", "-", input=fixture("nginx.yaml"))
    kubectl("rollout", "status", "-n", TEST_NS, "deployment/web", "--timeout=120s")
    before = web_template()
    assert [c["name"] for c in before["containers"]] == ["nginx"]

    kubectl("apply", "-n", TEST_NS, "-f", "-", input=fixture("session.yaml"))
    try:
        wait_for("the session to be Active",
                 lambda: session().get("status", {}).get("phase") == "Active", timeout=240)
    except AssertionError as e:
        st = json.dumps(session().get("status"), indent=1)
        raise AssertionError(f"{e}\nstatus: {st}\n{dump_operator_debug(NAMESPACE, SELECTOR)}") from None
    # stamped by the chart's admission webhook with the real requester (the admin client certificate)
    annotations = session()["metadata"].get("annotations", {})
    assert annotations.get("debugsession.dev/requester") == "admin", annotations
    assert annotations.get("debugsession.dev/requester-signature")
    during = web_template()
    assert len(during["containers"]) == 2, during["containers"]
    assert during.get("shareProcessNamespace") is True
    shell = [c for c in during["containers"] if c["name"] != "nginx"][0]
    assert shell["image"] == images_env()["BUSYBOX_IMAGE"]  # the chart's operator.defaultImage

    kubectl("delete", "debugsession", "web-debug", "-n", TEST_NS, "--wait=true", "--timeout=120s")
    after = wait_for("the template to be reverted",
                     lambda: (t := web_template()) and [c["name"] for c in t["containers"]] == ["nginx"] and t, timeout=120)
    assert not after.get("shareProcessNamespace")
    assert after["containers"] == before["containers"]
    kubectl("rollout", "status", "-n", TEST_NS, "deployment/web", "--timeout=120s")


def test_webhook_refuses_a_requester_without_exec(installed):
    """A user who may create DebugSessions but not exec into pods is refused at kubectl apply."""
    kubectl("create", "namespace", TEST_NS, check=False)
    rbac = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: sessions-only, namespace: {TEST_NS}}}
rules:
- {{apiGroups: [debugsession.dev], resources: [debugsessions], verbs: [get, list, create]}}
- {{apiGroups: [apps], resources: [deployments], verbs: [get, patch]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: sessions-only, namespace: {TEST_NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: sessions-only}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: e2e-no-exec}}]
"""
    kubectl("apply", "-f", "-", input=rbac)
    generation = kubectl_json("get", "deployment", "web", "-n", TEST_NS)["metadata"]["generation"]
    doc = fixture("session.yaml").replace("name: web-debug", "name: web-debug-no-exec")
    p = kubectl("--as=e2e-no-exec", "apply", "-n", TEST_NS, "-f", "-", input=doc, check=False)
    assert p.returncode != 0, p.stdout
    assert "pods/exec" in p.stderr and "e2e-no-exec" in p.stderr, p.stderr
    assert kubectl("get", "debugsession", "web-debug-no-exec", "-n", TEST_NS, check=False).returncode != 0
    assert kubectl_json("get", "deployment", "web", "-n", TEST_NS)["metadata"]["generation"] == generation


LEASE = "leases.coordination.k8s.io/debugsession-operator"  # the chart's default leaderElection.leaseName


@pytest.mark.parametrize("verb,resource,namespace,allowed", [
    # workloads: read everywhere, patch only in policy.allowedNamespaces (TEST_NS)
    ("patch", "deployments.apps", TEST_NS, True),
    ("patch", "statefulsets.apps", TEST_NS, True),
    ("patch", "daemonsets.apps", TEST_NS, True),
    ("patch", "deployments.apps", "default", False),
    ("patch", "daemonsets.apps", "kube-system", False),
    ("watch", "deployments.apps", "default", True),
    ("list", "statefulsets.apps", "default", True),
    ("update", "deployments.apps", TEST_NS, False),
    ("delete", "deployments.apps", TEST_NS, False),
    ("create", "deployments.apps", "default", False),
    # sessions: patch (finalizer, JSON patch) and server-side applied status, never update
    ("watch", "debugsessions.debugsession.dev", "default", True),
    ("patch", "debugsessions.debugsession.dev", "default", True),
    ("update", "debugsessions.debugsession.dev", "default", False),
    ("patch", "debugsessions.debugsession.dev --subresource=status", "default", True),
    ("update", "debugsessions.debugsession.dev --subresource=status", "default", False),
    ("delete", "debugsessions.debugsession.dev", "default", False),
    ("create", "debugsessions.debugsession.dev", "default", False),
    # pods: read everywhere; Copy creates and deletes its pod, Ephemeral writes pods/ephemeralcontainers,
    # both only in policy.allowedNamespaces (TEST_NS)
    ("list", "pods", "default", True),
    ("get", "pods", "default", True),
    ("create", "pods", TEST_NS, True),
    ("delete", "pods", TEST_NS, True),
    ("delete", "pods", "default", False),
    ("update", "pods", TEST_NS, False),
    ("patch", "pods", TEST_NS, False),
    ("patch", "pods --subresource=ephemeralcontainers", TEST_NS, True),
    ("update", "pods --subresource=ephemeralcontainers", TEST_NS, True),
    ("patch", "pods --subresource=ephemeralcontainers", "default", False),
    ("create", "events.events.k8s.io", "default", True),
    # the leader Lease: get and patch by name, create (not restrictable by name), nothing else
    ("get", LEASE, NAMESPACE, True),
    ("patch", LEASE, NAMESPACE, True),
    ("update", LEASE, NAMESPACE, False),
    ("delete", LEASE, NAMESPACE, False),
    ("create", "leases.coordination.k8s.io", NAMESPACE, True),
    ("patch", "leases.coordination.k8s.io/another-lease", NAMESPACE, False),
    ("get", "leases.coordination.k8s.io/another-lease", NAMESPACE, False),
    ("patch", LEASE, "default", False),
    ("get", "secrets", "default", False),
    ("get", "secrets", NAMESPACE, False),
    ("create", "pods", "default", False),
    ("create", "pods/exec", "default", False),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", "", False),
    ("create", "subjectaccessreviews.authorization.k8s.io", "", True),
    ("create", "tokenreviews.authentication.k8s.io", "", False),
    ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io", "", False),
])
def test_service_account_least_privilege(installed, verb, resource, namespace, allowed):
    args = ["auth", "can-i", verb, *resource.split(), f"--as={SA}"]
    args += ["-n", namespace] if namespace else []
    p = kubectl(*args, check=False)
    answer = p.stdout.strip()
    assert answer == ("yes" if allowed else "no"), f"can-i {verb} {resource} -n {namespace}: {answer} {p.stderr}"


def test_operator_knows_its_own_user(installed):
    dep = kubectl_json("get", "deployment", RELEASE, "-n", NAMESPACE)
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DEBUGSESSION_OPERATOR_USERNAME"] == SA
    assert "DEBUGSESSION_INSECURE_ALLOW_UNSTAMPED" not in env


def test_upgrade_changes_a_value(helm_cfg, installed):
    before = kubectl_json("get", "deployment", RELEASE, "-n", NAMESPACE)
    rel = helm_cfg.upgrade(CHART_DIR, RELEASE, release_values(operator={"logLevel": "debug", "logFormat": "text"}),
                           namespace=NAMESPACE, wait="watcher", timeout=240)
    assert rel.get("version", 2) == 2
    hist = helm_cfg.history(RELEASE)
    assert len(hist) == 2, hist
    dep = kubectl_json("get", "deployment", RELEASE, "-n", NAMESPACE)
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DEBUGSESSION_LOG_LEVEL"] == "debug" and env["DEBUGSESSION_LOG_FORMAT"] == "text"
    assert dep["metadata"]["generation"] > before["metadata"]["generation"]
    wait_for("the upgraded operator pod to be Ready",
             lambda: (pods := operator_pod_ready(NAMESPACE, SELECTOR)()) and all(
                 {e["name"]: e.get("value") for e in p["spec"]["containers"][0]["env"]}["DEBUGSESSION_LOG_LEVEL"] == "debug"
                 for p in pods), timeout=180)


def test_uninstall_leaves_only_the_crd(helm_cfg, installed):
    helm_cfg.uninstall(RELEASE, wait="watcher", timeout=180)
    wait_for("the release's objects to be gone", lambda: release_leftovers() == [], timeout=120)
    assert helm_cfg.list(all_states=True) == [] or all(r.get("name") != RELEASE for r in helm_cfg.list(all_states=True))
    kubectl("get", "crd", "debugsessions.debugsession.dev")  # Helm never deletes crds/ CRDs
    # what is left in the namespace was created at run time by the operator (its leader Lease) or by Kubernetes
    left = kubectl("get", "all,configmaps,secrets,serviceaccounts,roles,rolebindings", "-n", NAMESPACE, "-o", "name").stdout.split()
    assert [x for x in left if x not in ("serviceaccount/default", "configmap/kube-root-ca.crt")
            and not x.startswith("secret/default-token-")] == []
