"""A watch that dies leaves no zombie (issue 12, item 6): /healthz fails, and an edit made meanwhile is reconciled.

The operator runs under the chart's RBAC (as in test_chart_rbac.py), with short watch
requests and a fast resync. Revoking list/watch on TrainingJobs kills kopf's watcher for that
kind on its next watch request (a 403 ends it for good). /healthz must turn unhealthy, so the
kubelet restarts the pod; meanwhile the periodic re-list, once the grant is back, still
reconciles an edit no watch event announced. The test then plays the kubelet's part.
"""

from __future__ import annotations

import copy
import time

import pytest
import yaml
from kubernetes import client

from tests.chart import one, release_for, render
from tests.integration.clusterkit import wait_for
from tests.integration.operator_fixture import OperatorProcess, apply_crds, http_get
from tests.integration.test_chart_rbac import RBAC_KINDS, chart_env, running_session_operators, service_account_kubeconfig
from tests.integration.trainingjob_kit import GROUP, PLURAL, VERSION, TrainingJobKit, fake_job

pytestmark = pytest.mark.integration

FAST = {"KUBEFORGE_RESYNC_SECONDS": "2", "KUBEFORGE_RELIST_SECONDS": "4", "KUBEFORGE_WATCH_TIMEOUT_SECONDS": "4"}


@pytest.fixture
def chart_operator_fast(cluster, namespace, tmp_path):
    """The operator under the chart's RBAC watching `namespace`, with the namespaced Role for the test to edit."""
    paused = running_session_operators()
    for other in paused:
        other.stop()
    docs = render({"watchNamespaces": [namespace]}, release=release_for(namespace), namespace=namespace)
    apply_crds(cluster.kubeconfig)
    cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all([d for d in docs if d["kind"] in RBAC_KINDS]))
    account = one(docs, "ServiceAccount")["metadata"]["name"]
    token = cluster.kubectl("-n", namespace, "create", "token", account, "--duration=1h").stdout.strip()
    kubeconfig = service_account_kubeconfig(cluster.kubeconfig, token, tmp_path / "operator.kubeconfig")
    env = chart_env(one(docs, "Deployment")) | {"HOSTNAME": f"{namespace}-operator"} | FAST
    proc = OperatorProcess(kubeconfig, tmp_path / "operator.log", env)
    try:
        yield proc.start(), one(docs, "Role")
    finally:
        proc.stop()
        for other in paused:
            other.start()


def without_trainingjob_watch(role: dict) -> dict:
    revoked = copy.deepcopy(role)
    for rule in revoked["rules"]:
        if rule.get("resources") == ["trainingjobs"]:
            rule["verbs"] = [v for v in rule["verbs"] if v not in ("list", "watch")]
    return revoked


def test_a_revoked_watch_fails_healthz_and_the_relist_still_reconciles_the_edit(cluster, namespace, chart_operator_fast):
    operator, role = chart_operator_fast
    kit = TrainingJobKit(cluster, namespace)
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    kit.create(fake_job("w", nodes=1))
    kit.wait_running("w", nodes=1, timeout=60)
    assert http_get(operator.health_url)[0] == 200

    revoked_at = time.monotonic()
    rbac.replace_namespaced_role(role["metadata"]["name"], namespace, without_trainingjob_watch(role))
    status, body = wait_for(lambda: (lambda r: r if r[0] != 200 else None)(http_get(operator.health_url)), timeout=60,
                            message="/healthz fails once the TrainingJob watch is refused")
    unhealthy_after = time.monotonic() - revoked_at
    print(f"\n/healthz {status} {unhealthy_after:.1f}s after the revocation: {body[:300]}")
    assert operator.proc.poll() is None, "the operator exited instead of reporting itself unhealthy"

    # An edit no watch will announce: suspend the job. Then the grant comes back.
    kit.patch_spec("w", {"runPolicy": {"suspend": True}})
    rbac.replace_namespaced_role(role["metadata"]["name"], namespace, role)
    kit.wait_status("w", phase="Suspended", timeout=60)
    wait_for(lambda: not kit.pods("w"), timeout=30, message="the suspended job's workers removed")

    # The dead watcher is never restarted in-process: liveness keeps failing until the kubelet restarts the pod.
    assert http_get(operator.health_url)[0] != 200
    operator.restart()
    assert http_get(operator.health_url)[0] == 200
    kit.patch_spec("w", {"runPolicy": {"suspend": False}})
    kit.wait_status("w", phase="Running", timeout=60)
