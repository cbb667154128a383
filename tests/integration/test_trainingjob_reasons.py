"""A TrainingJob that cannot run says why, in its own status and in `kubectl get tj -o wide` (no Kueue here)."""

from __future__ import annotations

import pytest

from tests.integration import fakepods
from tests.integration.clusterkit import wait_for
from tests.integration.trainingjob_kit import condition, fake_job, kit_fixture  # noqa: F401 (the fixture `kit`)

pytestmark = pytest.mark.integration


def condition_of(obj: dict, type_: str) -> dict:
    """The condition, or {} while the operator has not written it (a poll may come first)."""
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def test_a_job_too_big_for_its_pool_with_a_missing_claim_says_both_and_holds_no_gpu(kit):
    kit.create(fake_job("huge", nodes=6).gpus(8).checkpoint(volume="pvc://missing-ckpt"))

    def said() -> dict:
        obj = kit.get("huge")
        assert condition_of(obj, "Schedulable").get("status") == "False", obj.get("status")
        return obj

    obj = wait_for(said, timeout=60, message="Schedulable=False")
    schedulable = condition(obj, "Schedulable")
    assert schedulable["reason"] == "ExceedsPoolCapacity"
    assert schedulable["message"] == ("6 pods x 8 nvidia.com/gpu need room for 6; pool kubeforge.io/pool=a100 holds at most 4 "
                                      "(4 nodes, 32 nvidia.com/gpu in all)")
    status = obj["status"]
    assert status["phase"] == "Pending" and status["reason"] == "ExceedsPoolCapacity"
    assert 'persistentvolumeclaim "missing-ckpt" not found' in status["message"], status["message"]
    assert condition(obj, "Stalled")["status"] == "True"
    # Released at once: the Job is suspended, so no worker holds a GPU while it cannot run.
    wait_for(lambda: kit.jobs("huge")[0].spec.suspend is True and not kit.pods("huge"), timeout=60, message="workers released")
    assert "ExceedsPoolCapacity" in kit.wide("huge")
    assert {"ExceedsPoolCapacity", "WorkersReleased"} <= {e.reason for e in kit.events("huge")}
    described = kit.cluster.kubectl("describe", "tj", "huge", "-n", kit.namespace).stdout
    events = described[described.index("Events:"):]
    assert "JobCreated" in events and "ExceedsPoolCapacity" in events and "WorkersReleased" in events, events


def test_a_missing_claim_alone_is_the_reason(kit):
    kit.create(fake_job("noclaim", nodes=2).gpus(1).checkpoint(volume="pvc://no-such-claim"))
    obj = kit.wait_status("noclaim", timeout=60, reason="MissingVolume")
    assert 'persistentvolumeclaim "no-such-claim" not found' in condition(obj, "Running")["message"]
    assert kit.wide("noclaim")[1:3] == ["Pending", "MissingVolume"]


def test_workers_partly_placed_past_the_schedule_deadline_are_released_then_placed_again(kit, namespace):
    # Two a100 nodes taken by someone else: a 3 x 8-GPU gang can place only 2 workers.
    filler = [fakepods.pod(f"filler-{i}", gpus=8, pool="a100") for i in range(2)]
    for pod in filler:
        kit.core.create_namespaced_pod(namespace, pod)
    wait_for(lambda: sum(p.status.phase == "Running" for p in kit.core.list_namespaced_pod(namespace).items) == 2,
             timeout=60, message="filler pods running")
    kit.create(fake_job("gang", nodes=3).gpus(8).set("runPolicy.scheduleDeadlineSeconds", 8))

    short = kit.wait_status("gang", timeout=60, reason="InsufficientGPU")["status"]
    assert "Insufficient nvidia.com/gpu" in short["message"], short["message"]
    line = kit.wide("gang")
    assert line[1:3] == ["Pending", "InsufficientGPU"], line

    released = wait_for(lambda: condition_of(kit.get("gang"), "Stalled").get("status") == "True" and kit.get("gang"),
                        timeout=60, message="Stalled after the schedule deadline")
    stalled = condition(released, "Stalled")
    assert stalled["reason"] == "ScheduleDeadlineExceeded"
    assert "workers not all placed within 8s" in stalled["message"] and "released the placed workers" in stalled["message"]
    wait_for(lambda: kit.jobs("gang")[0].spec.suspend is True and not kit.pods("gang"), timeout=60, message="workers released")
    assert "WorkersReleased" in {e.reason for e in kit.events("gang")}
    kit.wide("gang")

    for pod in filler:
        kit.core.delete_namespaced_pod(pod["metadata"]["name"], namespace)
    running = kit.wait_running("gang", timeout=90)
    assert condition(running, "Stalled")["status"] == "False" and "reason" not in running["status"]
