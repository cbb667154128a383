"""A quiet cluster stays quiet: the operator writes nothing while nothing changes, and asks the API
server only for its own children. Counted in the API server's audit log by the operator's user agent."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
from kubernetes import client

from tests.integration.auditlog import AuditLog, audit_log_path
from tests.integration.clusterkit import wait_for
from tests.integration.operator_fixture import OperatorProcess, apply_crds, running_session_operators
from tests.integration.trainingjob_kit import TrainingJobKit, fake_job

GROUP, VERSION = "kubeforge.io", "v1alpha1"
CHILD_KINDS = ("pods", "jobs", "deployments", "services", "horizontalpodautoscalers", "poddisruptionbudgets")
QUIET_WINDOW_S = 8  # the measured window itself, not a wait for something


@pytest.fixture
def own_operator(cluster, tmp_path) -> Iterator[tuple[OperatorProcess, AuditLog]]:
    """One operator whose requests are all in the audit log from its first one; this session's others are paused."""
    audit = AuditLog(audit_log_path(cluster.kubeconfig))
    if not audit.enabled:
        pytest.fail(f"no audit log at {audit.path}: hack/cluster.sh creates clusters with hack/kwok/audit-policy.yaml")
    paused = running_session_operators()
    for other in paused:
        other.stop()
    apply_crds(cluster.kubeconfig)
    audit.mark()
    proc = OperatorProcess(cluster.kubeconfig, tmp_path / "operator.log", verbose=False)
    try:
        yield proc.start(), audit
    finally:
        proc.stop()
        for other in paused:
            other.start()


def agent_of(proc: OperatorProcess) -> str:
    """kubeforge.identity: the user agent ends with (<identity>, pid <pid>)."""
    return f"pid {proc.proc.pid})"


def endpoint(name: str) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelEndpoint", "metadata": {"name": name},
            "spec": {"model": {"uri": "/models/minilm"}, "replicas": 1}}


def test_the_operator_writes_nothing_while_nothing_changes(cluster, namespace, own_operator):
    proc, audit = own_operator
    kit = TrainingJobKit(cluster, namespace)
    kit.create(fake_job("quiet", nodes=2))
    client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(GROUP, VERSION, namespace, "modelendpoints", endpoint("quiet-serve"))
    kit.wait_status("quiet", timeout=90, phase="Running")
    wait_for(lambda: client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "modelendpoints", "quiet-serve").get("status", {}).get("phase") == "Ready", timeout=90,
        message="endpoint Ready")

    def settled() -> bool:  # no request of ours for this namespace in the last 2 s
        mine = [r for r in audit.requests(agent="") if agent_of(proc) in r.user_agent and r.namespace == namespace]
        return not mine or time.time() - mine[-1].time > 2

    wait_for(settled, timeout=60, message="the operator done with the namespace")
    audit.mark()
    time.sleep(QUIET_WINDOW_S)
    writes = [f"{r.verb} {r.resource}/{r.name}" for r in audit.requests(agent="")
              if agent_of(proc) in r.user_agent and r.write and r.namespace == namespace]
    assert writes == [], f"the operator wrote while nothing changed: {writes}"


def test_child_watches_and_lists_ask_the_api_server_for_labelled_objects_only(own_operator):
    proc, audit = own_operator
    start = audit.offset

    def child_reads() -> list:
        audit.offset = start
        reads = [r for r in audit.requests(agent="") if agent_of(proc) in r.user_agent and r.verb in ("list", "watch")
                 and r.resource in CHILD_KINDS]
        assert {r.resource for r in reads if r.verb == "watch"} >= {"pods", "jobs", "deployments"}, reads
        return reads

    reads = wait_for(child_reads, timeout=30, message="the operator's child watches")
    unselected = [r.uri for r in reads if "labelSelector=" not in r.uri]
    assert unselected == [], f"lists/watches of every object of a kind: {unselected}"
