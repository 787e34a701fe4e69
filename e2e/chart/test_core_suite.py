"""The operator's core end-to-end scenarios against the operator the chart installs: a real pod under the
chart's ServiceAccount and RBAC (least privilege proven by the scenarios passing, not claimed).

The webhook is off for this install (so insecure.allowUnstamped is on: the scenarios create unstamped sessions):
the scenarios check the controller's own answers to bad input, which the webhook would refuse earlier at
admission (tests of the webhook are in test_cluster.py and e2e/tests/admission/).

The scenarios are the Rust suite's (e2e/tests/operator/), run with E2E_EXTERNAL_OPERATOR=1: its exit status is the
verdict. Its output (a line per scenario, its summary) goes to the test's own output, where pytest shows it (with -s as
it comes, else in the report of a failure); nothing parses it.
"""

from __future__ import annotations

import os
import subprocess

import pytest

import helm_python as helm
from conftest import CHART_DIR, NAMESPACE, RELEASE, ROOT, dump_operator_debug, operator_pod_ready, wait_for
from test_cluster import SELECTOR, local_values


@pytest.fixture(scope="module")
def installed(cluster, operator_image):
    with helm.Config(kubeconfig_path=os.environ["KUBECONFIG"], namespace=NAMESPACE) as cfg:
        cfg.uninstall(RELEASE, ignore_not_found=True, wait="watcher", timeout=120)
        values = local_values(webhook={"enabled": False}, insecure={"allowUnstamped": True}, leaderElection={"enabled": True})
        cfg.install(CHART_DIR, RELEASE, values, namespace=NAMESPACE, create_namespace=True, wait="watcher", timeout=240)
        try:
            wait_for("the operator pod to be Ready", operator_pod_ready(NAMESPACE, SELECTOR), timeout=180)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{dump_operator_debug(NAMESPACE, SELECTOR)}") from None
        yield
        cfg.uninstall(RELEASE, ignore_not_found=True, wait="watcher", timeout=120)


def test_core_scenarios_pass_against_the_chart_installed_operator(installed):
    # Every scenario the suite has without the operator process (no E2E_FILTER).
    env = {k: v for k, v in os.environ.items() if k != "E2E_FILTER"}
    env["E2E_EXTERNAL_OPERATOR"] = "1"
    p = subprocess.run(["cargo", "test", "-q", "-p", "debugsession-e2e", "--test", "operator"], cwd=ROOT, env=env,
                       timeout=1800)
    assert p.returncode == 0, (f"the operator suite failed (exit {p.returncode}; its output is above)\n"
                               + dump_operator_debug(NAMESPACE, SELECTOR))
