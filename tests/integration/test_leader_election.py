"""Two operators, one Lease: the leader is killed mid-run, the warm standby takes over within 15 s, having
written nothing before it held the Lease (the API server's audit log, by user agent), and the work converges."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Iterator

import pytest
from kubernetes import client

from tests.integration.auditlog import AuditLog, audit_log_path
from tests.integration.clusterkit import wait_for
from tests.integration.operator_fixture import OperatorProcess, apply_crds, running_session_operators
from tests.integration.trainingjob_kit import TrainingJobKit, fake_job

FAILOVER_LIMIT_S = 15


@pytest.fixture
def two_operators(cluster, namespace, tmp_path) -> Iterator[tuple[OperatorProcess, OperatorProcess, AuditLog]]:
    """op-a started first (it leads), op-b second (standby), both electing on a Lease in `namespace`."""
    paused = running_session_operators()
    for other in paused:
        other.stop()
    apply_crds(cluster.kubeconfig)
    audit = AuditLog(audit_log_path(cluster.kubeconfig)).mark()
    env = {"KUBEFORGE_LEADER_ELECTION": "true", "KUBEFORGE_LEADER_ELECTION_NAMESPACE": namespace,
           "KUBEFORGE_LEADER_ELECTION_LEASE": "kubeforge", "KUBEFORGE_LEASE_DURATION_SECONDS": "10"}
    a = OperatorProcess(cluster.kubeconfig, tmp_path / "a.log", env | {"HOSTNAME": "op-a"}, verbose=False)
    b = OperatorProcess(cluster.kubeconfig, tmp_path / "b.log", env | {"HOSTNAME": "op-b"}, verbose=False)
    try:
        a.start()
        wait_for(lambda: holder(cluster, namespace) == "op-a", timeout=30, message="op-a holds the Lease")
        yield a, b.start(), audit
    finally:
        a.stop()
        b.stop()
        for other in paused:
            other.start()


def lease(cluster, namespace: str) -> dict:
    try:
        return client.CoordinationV1Api(cluster.api).read_namespaced_lease("kubeforge", namespace).to_dict()["spec"]
    except client.ApiException as err:
        if err.status == 404:
            return {}
        raise


def holder(cluster, namespace: str) -> str | None:
    return lease(cluster, namespace).get("holder_identity")


def agent_of(proc: OperatorProcess) -> str:
    return f"pid {proc.proc.pid})"  # kubeforge.identity's user agent ends so


def test_the_standby_takes_over_a_killed_leader_within_15s_without_writing_before(cluster, namespace, two_operators):
    a, b, audit = two_operators
    kit = TrainingJobKit(cluster, namespace)
    kit.create(fake_job("before", nodes=2))
    kit.wait_status("before", timeout=60, phase="Running")

    def standby_watches() -> bool:  # warm: its watches run before it leads
        return any(agent_of(b) in r.user_agent and r.verb == "watch" and r.resource == "trainingjobs"
                   for r in audit.requests(agent=""))

    wait_for(standby_watches, timeout=30, message="op-b watching TrainingJobs")
    kit.create(fake_job("across", nodes=2))
    created = time.time()
    a.kill()
    killed = time.time()
    wait_for(lambda: holder(cluster, namespace) == "op-b", timeout=FAILOVER_LIMIT_S + 5, interval=0.2,
             max_interval=0.2, message="op-b holds the Lease")
    failover = time.time() - killed
    print(f"failover: {failover:.1f}s from SIGKILL of the leader to the standby holding the Lease")
    assert failover < FAILOVER_LIMIT_S

    kit.wait_status("across", timeout=60, phase="Running")  # the work converges under the new leader
    print(f"the job created just before the kill: Running {time.time() - created:.1f}s after its creation")
    acquired = lease(cluster, namespace)["acquire_time"]
    acquired_at = (acquired if isinstance(acquired, datetime) else datetime.fromisoformat(str(acquired))).timestamp()
    by_b = [r for r in audit.requests(agent="") if agent_of(b) in r.user_agent and r.write]
    early = [f"{r.verb} {r.resource}/{r.name} at {r.time - acquired_at:+.2f}s" for r in by_b
             if r.resource != "leases" and r.time < acquired_at]
    assert early == [], f"the standby wrote before it held the Lease: {early}"
    assert any(r.resource == "trainingjobs/status" for r in by_b), "the new leader never wrote a status"
