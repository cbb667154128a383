"""The operator runs against the real API server: healthy, exporting metrics, and its CRDs accepted."""

import json
import os
import subprocess

import pytest

from tests.integration.operator_fixture import REPO, http_get, kubectl_binary

pytestmark = pytest.mark.integration


def kubectl_json(cluster, *args):
    env = dict(os.environ, KUBECONFIG=cluster.kubeconfig)
    out = subprocess.run([kubectl_binary(), *args, "-o", "json"], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def test_liveness_endpoint_reports_healthy_with_the_queue_probe(operator):  # noqa: F811
    status, body = http_get(operator.health_url)
    assert status == 200, body
    assert "depth" in json.loads(body)["queue"]


def test_metrics_endpoint_exports_operator_metrics(operator):  # noqa: F811
    status, body = http_get(operator.metrics_url)
    assert status == 200
    assert "kubeforge_operator_queue_depth" in body
    assert "kubeforge_operator_reconciles_total" in body


@pytest.mark.parametrize("plural", ["trainingjobs", "modelendpoints"])
def test_generated_crds_are_structural_and_established(cluster, operator, plural):  # noqa: F811
    crd = kubectl_json(cluster, "get", "crd", f"{plural}.kubeforge.io")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions.get("Established") == "True"
    assert conditions.get("NonStructuralSchema", "False") == "False", crd["status"]["conditions"]


def test_operator_survives_sigkill_and_comes_back_healthy(operator):  # noqa: F811
    operator.kill()
    assert http_get(operator.health_url)[0] != 200
    operator.start()
    assert http_get(operator.health_url)[0] == 200
