"""A watch that dies leaves no zombie (issue 12, item 6): /healthz fails, and an edit made meanwhile is reconciled.

The operator runs under the chart's RBAC (as in test_chart_rbac.py), with short watch
requests and a fast resync. Revoking list/watch on TrainingJobs refuses kopf's next watch
request. /healthz must turn unhealthy (kubeforge.health: the kind has neither events nor
successful lists), so the kubelet restarts the pod; the test plays the kubelet's part, restores
the grant, and checks that an edit no watch event announced is reconciled.
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
        # The namespaced mode's Role (the chart's other Role is the leader-election one, for its Lease).
        yield proc.start(), one([d for d in docs if not d["metadata"]["name"].endswith("-leader")], "Role")
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


def kubelet(operator: OperatorProcess) -> int:
    """What the kubelet does with a failing liveness probe or an exited container: (re)start it. Returns restarts."""
    if operator.proc.poll() is None and http_get(operator.health_url)[0] == 200:
        return 0
    operator.restart()
    return 1


def test_a_revoked_watch_fails_healthz_and_an_edit_made_meanwhile_is_reconciled(cluster, namespace, chart_operator_fast):
    """kopf 1.45 retries a refused watch for ~35 s, then ends the whole operator; before that, /healthz
    fails on the kind's missing events and lists (kubeforge.health). Either way the kubelet restarts it."""
    operator, role = chart_operator_fast
    kit = TrainingJobKit(cluster, namespace)
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    kit.create(fake_job("w", nodes=1))
    kit.wait_running("w", nodes=1, timeout=60)
    assert http_get(operator.health_url)[0] == 200

    revoked_at = time.monotonic()
    rbac.replace_namespaced_role(role["metadata"]["name"], namespace, without_trainingjob_watch(role))
    code, body = wait_for(lambda: (lambda r: r if r[0] != 200 else None)(http_get(operator.health_url)), timeout=90,
                          message="/healthz fails once the TrainingJob watch is refused")
    unhealthy_after = time.monotonic() - revoked_at
    exited = operator.proc.poll() is not None

    # An edit no watch announces, then the grant comes back.
    kit.patch_spec("w", {"runPolicy": {"suspend": True}})
    rbac.replace_namespaced_role(role["metadata"]["name"], namespace, role)
    restored_at = time.monotonic()
    restarts = 0

    def suspended() -> bool:
        nonlocal restarts
        if operator.proc.poll() is not None or http_get(operator.health_url)[0] != 200:
            restarts += kubelet(operator)
        return kit.get("w").get("status", {}).get("phase") == "Suspended"

    wait_for(suspended, timeout=120, message="the edit made while the watch was refused is reconciled", max_interval=2)
    print(f"\n/healthz {code} {unhealthy_after:.0f}s after the revocation (operator exited: {exited}); "
          f"edit reconciled {time.monotonic() - restored_at:.0f}s after the grant came back, {restarts} restart(s): {body[:200]}")
    assert restarts <= 2
    assert http_get(operator.health_url)[0] == 200
    kit.patch_spec("w", {"runPolicy": {"suspend": False}})
    kit.wait_status("w", phase="Running", timeout=60)
