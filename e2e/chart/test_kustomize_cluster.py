"""`kubectl apply -k config/insecure-no-webhook` (through the local-cluster overlay e2e/chart/kustomize-local;
the local cluster has no cert-manager for config/default's webhook certificate) installs an operator that gets
Ready and drives an unstamped session to Active; then everything but the CRD is removed. config/default itself
is checked offline in test_chart.py.

Runs after test_cluster.py (same namespace and cluster-scoped names); skipped without a cluster.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from conftest import (NAMESPACE, ROOT, dump_operator_debug, fixture, images_env, kubectl, kubectl_json,
                      load_docs, operator_pod_ready, wait_for)

SELECTOR = "app.kubernetes.io/instance=debugsession-operator,app.kubernetes.io/name=debugsession-operator"
TEST_NS = "dbgs-kustomize-e2e"


@pytest.fixture(scope="module")
def overlay(cluster, operator_image, tmp_path_factory) -> Path:
    """kustomize-local plus the harness' busybox image (from images.env) as the default shell image."""
    d = tmp_path_factory.mktemp("kustomize")
    (d / "kustomization.yaml").write_text(json.dumps({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(ROOT / "e2e/chart/kustomize-local", d)],  # kustomize: no absolute paths
        "patches": [{"target": {"kind": "Deployment", "name": "debugsession-operator"}, "patch": json.dumps({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "debugsession-operator"},
            "spec": {"template": {"spec": {"containers": [{"name": "operator", "env": [
                {"name": "DEBUGSESSION_DEFAULT_IMAGE", "value": images_env()["BUSYBOX_IMAGE"]}]}]}}}})}],
    }))
    return d


def delete_all_but_crd(overlay: Path) -> None:
    docs = load_docs(kubectl("kustomize", str(overlay)).stdout)
    keep = [d for d in docs if d["kind"] != "CustomResourceDefinition"]
    kubectl("delete", "--ignore-not-found", "--wait=true", "--timeout=180s", "-f", "-",
            input=yaml.safe_dump_all(keep), check=False)


@pytest.fixture(scope="module")
def applied(overlay):
    kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=180s", check=False)
    kubectl("apply", "-k", str(overlay))
    yield overlay
    kubectl("delete", "namespace", TEST_NS, "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)
    delete_all_but_crd(overlay)


def test_apply_k_operator_gets_ready(applied):
    try:
        pods = wait_for("the operator pod to be Ready", operator_pod_ready(NAMESPACE, SELECTOR), timeout=180)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{dump_operator_debug(NAMESPACE, SELECTOR)}") from None
    assert pods[0]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kustomize"
    assert pods[0]["spec"]["serviceAccountName"] == "debugsession-operator"
    env = {e["name"]: e.get("value") for e in pods[0]["spec"]["containers"][0]["env"]}
    assert env["DEBUGSESSION_INSECURE_ALLOW_UNSTAMPED"] == "true"
    assert env["DEBUGSESSION_OPERATOR_USERNAME"] == f"system:serviceaccount:{NAMESPACE}:debugsession-operator"


def test_apply_k_session_reaches_active(applied):
    kubectl("create", "namespace", TEST_NS, check=False)
    kubectl("apply", "-n", TEST_NS, "-f", "-", input=fixture("nginx.yaml"))
    kubectl("rollout", "status", "-n", TEST_NS, "deployment/web", "--timeout=120s")
    kubectl("apply", "-n", TEST_NS, "-f", "-", input=fixture("session.yaml"))
    phase = lambda: kubectl_json("get", "debugsession", "web-debug", "-n", TEST_NS).get("status", {}).get("phase")
    try:
        wait_for("the session to be Active", lambda: phase() == "Active", timeout=240)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{dump_operator_debug(NAMESPACE, SELECTOR)}") from None
    kubectl("delete", "debugsession", "web-debug", "-n", TEST_NS, "--wait=true", "--timeout=120s")
    wait_for("the template to be reverted", lambda: [c["name"] for c in kubectl_json(
        "get", "deployment", "web", "-n", TEST_NS)["spec"]["template"]["spec"]["containers"]] == ["nginx"], timeout=120)


def test_cleanup_leaves_only_the_crd(applied):
    kubectl("delete", "namespace", TEST_NS, "--ignore-not-found", "--wait=true", "--timeout=120s")
    delete_all_but_crd(applied)
    left = kubectl("get", "clusterroles,clusterrolebindings", "-l", "app.kubernetes.io/managed-by=kustomize,"
                   "app.kubernetes.io/part-of=debugsession-operator", "-o", "name").stdout.split()
    assert left == []
    assert kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0
    kubectl("get", "crd", "debugsessions.debugsession.dev")
