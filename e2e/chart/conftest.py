"""Shared fixtures of the chart/kustomize tests.

Offline tests need only the helm-python-sdk package. In-cluster tests use the local cluster of
e2e/cluster (KUBECONFIG from `e2e/cluster/env` when unset); they are skipped when no cluster answers,
unless E2E_REQUIRE_CLUSTER=1, which turns that into a failure.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "charts" / "debugsession-operator"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NAMESPACE = "debugsession-system"
RELEASE = "debugsession-operator"
STATE = Path(os.environ.get("DBGS_CLUSTER_STATE", "/var/tmp/debugsession-e2e"))


def load_docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def run(cmd: list[str], *, check: bool = True, input: str | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def kubectl(*args: str, check: bool = True, input: str | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return run(["kubectl", *args], check=check, input=input, timeout=timeout)


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json").stdout)


def wait_for(what: str, fn: Callable[[], Any], timeout: float = 180, interval: float = 2) -> Any:
    """Poll fn until it returns a truthy value; fail with the last value after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except AssertionError as e:  # a kubectl call failing is "not yet"
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def images_env() -> dict[str, str]:
    path = STATE / "images.env"
    env = {"BUSYBOX_IMAGE": "registry.local/busybox:1.35.0", "NGINX_IMAGE": "registry.local/nginx:1.22.1"}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                env[k.strip()] = v.strip().strip('"')
    return env


def fixture(name: str) -> str:
    return string.Template((FIXTURES / name).read_text()).substitute(images_env())


@pytest.fixture(scope="session")
def chart():
    import helm_python as helm

    with helm.Chart.load(CHART_DIR) as c:
        yield c


@pytest.fixture(scope="session")
def cluster() -> dict[str, str]:
    """The local cluster's environment; skips (or fails with E2E_REQUIRE_CLUSTER=1) when unreachable."""
    if not os.environ.get("KUBECONFIG"):
        p = subprocess.run([str(ROOT / "e2e/cluster/env")], capture_output=True, text=True)
        for line in p.stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export "):].split("=", 1)
                os.environ[k] = v.strip("'\"")
    p = subprocess.run(["kubectl", "get", "--raw", "/readyz"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0 or p.stdout.strip() != "ok":
        msg = (f"no Kubernetes cluster reachable (KUBECONFIG={os.environ.get('KUBECONFIG')}): "
               f"{p.stderr.strip() or p.stdout.strip()}; start it with e2e/cluster/up")
        if os.environ.get("E2E_REQUIRE_CLUSTER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return {"KUBECONFIG": os.environ["KUBECONFIG"]}


@pytest.fixture(scope="session")
def operator_image(cluster) -> str:
    """Build the operator image from the release binary and import it into the node (e2e/image/build)."""
    if os.environ.get("E2E_SKIP_IMAGE_BUILD") == "1":
        return "registry.local/debugsession-operator:0.1.0"
    p = run([str(ROOT / "e2e/image/build")], timeout=3600)
    return p.stdout.strip().splitlines()[-1]


def operator_pod_ready(namespace: str, selector: str) -> Callable[[], Any]:
    def check() -> Any:
        pods = kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in live if any(c["type"] == "Ready" and c["status"] == "True"
                                        for c in p.get("status", {}).get("conditions", []))]
        return ready if live and len(ready) == len(live) else None
    return check


def dump_operator_debug(namespace: str, selector: str) -> str:
    out = kubectl("get", "pods,deploy,events", "-n", namespace, "-o", "wide", check=False).stdout
    out += kubectl("logs", "-n", namespace, "-l", selector, "--tail=60", "--all-containers", check=False).stdout
    out += kubectl("describe", "pods", "-n", namespace, "-l", selector, check=False).stdout[-3000:]
    return out
