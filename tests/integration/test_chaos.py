"""Chaos with numbers, on the local cluster (issue 12, item 7). Each test prints its figure (pytest -s)
and, with KUBEFORGE_RECORD_RESULTS=1, keeps it in bench/results/chaos.json.

- Operator kills: 20 SIGKILLs at random points of 200 operations (create, scale, delete,
  worker failures); everything converges, no duplicate children, restart counts exact.
- API server restart and etcd outage: edits made around them are all reconciled; time measured.
- Node loss: a node is cordoned and its workers evicted; the group restarts exactly once.
- Kueue preemption: the Job is suspended mid-run and resumed; the suspension counts toward
  neither the stall clock nor activeDeadlineSeconds.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration import clusterprocs, fakepods
from tests.integration.clusterkit import wait_for
from tests.integration.trainingjob_kit import GROUP, PLURAL, VERSION, TrainingJobKit
from tests.unit.trainingjob_wrappers import MakeTrainingJob

pytestmark = pytest.mark.integration

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "chaos.json"


def record(name: str, figures: dict[str, Any]) -> None:
    """Print the figure; with KUBEFORGE_RECORD_RESULTS=1 also keep it in bench/results/chaos.json (committed snapshots)."""
    print(f"\n{name}: {json.dumps(figures)}")
    if os.environ.get("KUBEFORGE_RECORD_RESULTS") != "1":
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[name] = figures
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def cpu_job(name: str, nodes: int = 1) -> MakeTrainingJob:
    """Fake workers on the CPU pool (plenty of room), restarts allowed far beyond what the chaos causes."""
    return MakeTrainingJob(name).nodes(nodes).cpu("100m").pool("cpu").set("image", fakepods.IMAGE).set("runPolicy.backoffLimit", 100)


@pytest.fixture
def kit(cluster, namespace, operator):
    return TrainingJobKit(cluster, namespace)


def live_jobs(kit: TrainingJobKit, name: str) -> list[Any]:
    return [j for j in kit.jobs(name) if not j.metadata.deletion_timestamp]


class Chaos:
    """The 200 operations, their expected outcome, and the bookkeeping to check it."""

    def __init__(self, kit: TrainingJobKit, rng: random.Random) -> None:
        self.kit, self.rng = kit, rng
        self.nodes: dict[str, int] = {}  # live TrainingJobs and their size
        self.deleted: list[str] = []
        self.restarts: Counter[str] = Counter()  # expected restarts, one per failed attempt
        self.failed_attempts: set[tuple[str, int]] = set()
        self.replicas: dict[str, int] = {}
        self.done: Counter[str] = Counter()

    def step(self) -> None:
        choices = ["create"] * (len(self.nodes) < 10) + ["fail"] * 3 + ["scale"] * 2 + ["delete"] * (len(self.nodes) > 6)
        for op in self.rng.sample(choices, len(choices)):
            if getattr(self, op)():
                self.done[op] += 1
                return
        self.scale()
        self.done["scale"] += 1

    def create(self) -> bool:
        name = f"c{len(self.nodes) + len(self.deleted)}"
        self.nodes[name] = self.rng.choice([1, 2])
        self.kit.create(cpu_job(name, self.nodes[name]))
        return True

    def delete(self) -> bool:
        name = self.rng.choice(sorted(self.nodes))
        self.kit.custom.delete_namespaced_custom_object(GROUP, VERSION, self.kit.namespace, PLURAL, name)
        del self.nodes[name]
        self.deleted.append(name)
        return True

    def fail(self) -> bool:
        """Kill a worker of a running attempt not failed yet: exactly one more restart for that job."""
        for name in self.rng.sample(sorted(self.nodes), len(self.nodes)):
            attempt = (self.kit.get(name).get("status") or {}).get("attempt") or 1
            pods = [p for p in self.kit.pods(name, attempt) if p.status.phase == "Running"]
            if (name, attempt) in self.failed_attempts or len(pods) < self.nodes[name]:
                continue
            self.kit.annotate_pod(pods[0].metadata.name, fakepods.fake_exit(137))
            self.failed_attempts.add((name, attempt))
            self.restarts[name] += 1
            return True
        return False

    def scale(self) -> bool:
        """Scale the ModelEndpoint between 1 and 3 replicas."""
        replicas = self.rng.randint(1, 3)
        body = {"spec": {"replicas": replicas}}
        self.kit.custom.patch_namespaced_custom_object(GROUP, VERSION, self.kit.namespace, "modelendpoints", "scaled", body)
        self.replicas["scaled"] = replicas
        return True

    def converged(self) -> bool:
        for name, nodes in self.nodes.items():
            status = self.kit.get(name).get("status") or {}
            seen = {k: status.get(k) for k in ("phase", "restarts", "attempt")}
            assert status.get("phase") == "Running" and status.get("restarts") == self.restarts[name], (name, seen, self.restarts[name])
            jobs = live_jobs(self.kit, name)
            assert [j.metadata.name for j in jobs] == [f"{name}-a{status['attempt']}"], (name, [j.metadata.name for j in jobs])
            pods = self.kit.pods(name, status["attempt"])
            assert len(pods) == nodes, (name, "pods", len(pods), nodes)  # no duplicate workers
        for name in self.deleted:
            assert not self.kit.jobs(name) and not self.kit.pods(name, live=False), (name, "children left")
        deployment = client.AppsV1Api(self.kit.cluster.api).read_namespaced_deployment("scaled", self.kit.namespace)
        assert deployment.spec.replicas == self.replicas["scaled"], ("scaled", deployment.spec.replicas)
        return True


def test_twenty_operator_kills_during_two_hundred_operations_converge_exactly(kit, operator):
    rng = random.Random(20261201)
    kit.custom.create_namespaced_custom_object(GROUP, VERSION, kit.namespace, "modelendpoints", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelEndpoint", "metadata": {"name": "scaled"},
        "spec": {"model": {"uri": "/models/minilm"}, "replicas": 1, "resources": {"cpu": "100m", "memory": "256Mi"},
                 "nodePool": {"nodeSelector": {"kubeforge.io/pool": "cpu"}}}})
    chaos = Chaos(kit, rng)
    chaos.replicas["scaled"] = 1
    kills = set(rng.sample(range(200), 20))
    started = time.monotonic()
    for i in range(200):
        chaos.step()
        if i in kills:
            operator.kill()  # SIGKILL right after the operation: mid-reconcile, mid-apply, mid-status
            operator.start()
    ops_done = time.monotonic()
    wait_for(chaos.converged, timeout=240, message="every resource converged after the kills", max_interval=3)
    figures = {
        "operations": dict(chaos.done), "operator SIGKILLs": len(kills), "jobs live": len(chaos.nodes),
        "jobs deleted": len(chaos.deleted), "restarts expected = observed": sum(chaos.restarts.values()),
        "duplicate children": 0, "seconds for the operations": round(ops_done - started),
        "seconds to converge after them": round(time.monotonic() - ops_done),
    }
    record("operator kills", figures)


def recovered_after(kit: TrainingJobKit, names: list[str], since: float) -> float:
    for name in names:
        kit.wait_status(name, phase="Suspended", timeout=120)
    return round(time.monotonic() - since, 1)


@pytest.mark.parametrize("component, down_for", [("kube-apiserver", 0.0), ("etcd", 3.0)])
def test_an_outage_loses_no_update_and_is_timed(kit, operator, component, down_for):
    for name in ("before", "after"):
        kit.create(cpu_job(name))
    for name in ("before", "after"):
        kit.wait_running(name, nodes=1)
    kit.patch_spec("before", {"runPolicy": {"suspend": True}})  # races the outage
    back = clusterprocs.outage(component, down_for)

    def edit_after() -> bool:
        try:
            kit.patch_spec("after", {"runPolicy": {"suspend": True}})
        except Exception as down:  # noqa: BLE001 - refused or unreachable while it comes back
            raise AssertionError(f"API server not answering yet: {type(down).__name__}") from None
        return True

    wait_for(edit_after, timeout=120, message=f"the API server answers after the {component} outage", max_interval=1)
    api_back = round(time.monotonic() - back, 1)
    seconds = recovered_after(kit, ["before", "after"], back)
    assert operator.proc.poll() is None
    kit.patch_spec("after", {"runPolicy": {"suspend": False}})
    kit.wait_running("after", nodes=1, timeout=60)
    record(f"{component} restart", {"down (s)": down_for, "API answering again after (s)": api_back,
                                     "both edits reconciled after (s)": seconds, "lost updates": 0})


def test_a_lost_node_restarts_the_group_exactly_once(kit, operator):
    kit.create(cpu_job("gang", nodes=2))
    kit.wait_running("gang", nodes=2)
    pods = kit.pods("gang", 1)
    node = pods[0].spec.node_name
    kit.core.patch_node(node, {"spec": {"unschedulable": True}})
    try:
        for pod in pods:  # what the taint manager does to a lost node's pods, at once for both workers
            kit.core.create_namespaced_pod_eviction(pod.metadata.name, kit.namespace, {
                "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod.metadata.name, "namespace": kit.namespace}})
        obj = kit.wait_running("gang", nodes=2, restarts=1, timeout=120)
        assert all(p.spec.node_name != node for p in kit.pods("gang", 2))
        # Still one restart once the dust settles: no second attempt from the second eviction.
        wait_for(lambda: [j.metadata.name for j in live_jobs(kit, "gang")] == ["gang-a2"], timeout=60, message="only attempt 2 left")
        assert kit.get("gang")["status"]["restarts"] == 1
        record("node loss", {"workers evicted": len(pods), "group restarts": obj["status"]["restarts"]})
    finally:
        kit.core.patch_node(node, {"spec": {"unschedulable": False}})


def set_job_suspend(kit: TrainingJobKit, name: str, suspend: bool) -> None:
    """What Kueue does: admit by unsuspending the Job, preempt by suspending it."""
    kit.batch.patch_namespaced_job(name, kit.namespace, {"spec": {"suspend": suspend}})


def test_a_kueue_preemption_counts_toward_neither_the_stall_clock_nor_the_deadline(kit, operator):
    deadline, stall, preempted_for = 25, 12, 15
    job = cpu_job("queued").queue("team-a").set("runPolicy.activeDeadlineSeconds", deadline)
    kit.create(job.set("runPolicy.progressDeadlineSeconds", stall))
    wait_for(lambda: live_jobs(kit, "queued"), timeout=30, message="the suspended Job for Kueue")
    set_job_suspend(kit, "queued-a1", False)  # admitted
    started = parse(kit.wait_running("queued", nodes=1)["status"]["startTime"])
    set_job_suspend(kit, "queued-a1", True)  # preempted
    kit.wait_status("queued", phase="Pending", timeout=30)
    time.sleep(preempted_for)  # the preemption itself: longer than the stall limit, most of the deadline
    set_job_suspend(kit, "queued-a1", False)  # re-admitted
    obj = kit.wait_running("queued", nodes=1, timeout=30)
    suspended = obj["status"]["suspendedSeconds"]
    assert suspended >= preempted_for - 1, obj["status"]
    # Past the deadline counted from startTime, and past the stall limit: still running, never Stalled.
    wait_for(lambda: time.time() > started + deadline + 2, timeout=deadline + 5, message="wall clock past the deadline")
    obj = kit.get("queued")
    assert obj["status"]["phase"] == "Running", obj["status"].get("message")
    stalled = next((c for c in obj["status"]["conditions"] if c["type"] == "Stalled"), None)
    assert stalled is None or stalled["status"] == "False", stalled
    record("kueue preemption", {"suspended (s)": suspended, "activeDeadlineSeconds": deadline,
                                "progressDeadlineSeconds": stall, "stalled": False, "deadline exceeded": False})


def parse(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
