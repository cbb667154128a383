"""Pods in, the first blocking reason out: what the scheduler and the kubelet said, summarised for a status."""

from __future__ import annotations

from typing import Any

import pytest

from kubeforge import podreasons
from kubeforge.podreasons import Blocker, first_blocker, pod_blocker, summarise_scheduler_message, with_probe_message


def pod(name: str = "w-0", phase: str = "Pending", conditions: list | None = None, containers: list | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"phase": phase, "conditions": conditions or [], "containerStatuses": containers or []}}


def unschedulable(message: str, name: str = "w-0") -> dict[str, Any]:
    return pod(name, conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}])


def waiting(reason: str, message: str = "", name: str = "w-0", last: dict | None = None, restarts: int = 0) -> dict[str, Any]:
    container = {"name": "main", "image": "reg/img:1", "ready": False, "restartCount": restarts,
                 "state": {"waiting": {"reason": reason, "message": message}}, "lastState": {"terminated": last} if last else {}}
    return pod(name, phase="Pending" if not last else "Running", containers=[container])


def running(name: str = "w-0", ready: bool = True) -> dict[str, Any]:
    container = {"name": "server", "ready": ready, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}
    return pod(name, phase="Running", conditions=[{"type": "Ready", "status": "True" if ready else "False"}], containers=[container])


PREEMPTION = " preemption: 0/9 nodes are available: 4 No preemption victims found for incoming pod, 5 Preemption is not helpful for scheduling."

SCHEDULER_MESSAGES = [
    pytest.param(
        "0/9 nodes are available: 4 Insufficient nvidia.com/gpu, 5 node(s) didn't match Pod's node affinity/selector." + PREEMPTION,
        "InsufficientGPU", "Insufficient nvidia.com/gpu on 4 of 9 nodes (5 other nodes outside the node selector)", id="gpu"),
    pytest.param(
        "0/9 nodes are available: 4 Insufficient cpu, 4 Insufficient memory, 5 node(s) didn't match Pod's node affinity/selector.",
        "InsufficientCPU", "Insufficient cpu on 4 of 9 nodes (5 other nodes outside the node selector)", id="cpu-before-memory"),
    pytest.param(
        "0/3 nodes are available: 3 Insufficient memory.", "InsufficientMemory", "Insufficient memory on 3 of 3 nodes", id="memory"),
    pytest.param(
        "0/9 nodes are available: 2 Insufficient cpu, 4 Insufficient nvidia.com/gpu, 3 node(s) didn't match Pod's node affinity/selector.",
        "InsufficientGPU", "Insufficient nvidia.com/gpu on 4 of 9 nodes (3 other nodes outside the node selector)", id="gpu-first"),
    pytest.param(
        "0/9 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}, 7 node(s) didn't match Pod's node affinity/selector.",
        "UntoleratedTaint", "2 of 9 nodes have an untolerated taint {nvidia.com/gpu: present} (7 other nodes outside the node selector)",
        id="taint"),
    pytest.param(
        "0/9 nodes are available: 9 node(s) didn't match Pod's node affinity/selector." + PREEMPTION,
        "NoMatchingNode", "node selector/affinity matches none of the 9 nodes", id="selector"),
    pytest.param(
        '0/9 nodes are available: persistentvolumeclaim "models" not found.' + PREEMPTION,
        "MissingVolume", 'persistentvolumeclaim "models" not found', id="pvc"),
    pytest.param(
        "0/9 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/9 nodes are available",
        "MissingVolume", "pod has unbound immediate PersistentVolumeClaims", id="unbound-pvc"),
    pytest.param(
        "0/9 nodes are available: 9 node(s) were unschedulable.", "Unschedulable", "0/9 nodes are available: 9 node(s) were unschedulable",
        id="cordoned"),
    pytest.param("something new the scheduler says", "Unschedulable", "something new the scheduler says", id="unknown-format"),
]


@pytest.mark.parametrize(("message", "reason", "summary"), SCHEDULER_MESSAGES)
def test_the_schedulers_message_is_summarised(message, reason, summary):
    assert summarise_scheduler_message(message) == (reason, summary)


OOM = {"exitCode": 137, "reason": "OOMKilled"}
CRASH = {"exitCode": 3, "reason": "Error", "message": "ValueError: model file missing\nTraceback (most recent call last):"}

POD_CASES = [
    pytest.param(waiting("ErrImagePull", "rpc error: pull access denied\nmore"), "ImagePullError",
                 "ErrImagePull: container main image reg/img:1: rpc error: pull access denied", id="err-image-pull"),
    pytest.param(waiting("ImagePullBackOff", 'Back-off pulling image "reg/img:1"'), "ImagePullError",
                 'ImagePullBackOff: container main image reg/img:1: Back-off pulling image "reg/img:1"', id="image-pull-backoff"),
    pytest.param(waiting("CreateContainerConfigError", 'secret "hf-token" not found'), "CreateContainerConfigError",
                 'CreateContainerConfigError: container main: secret "hf-token" not found', id="missing-secret"),
    pytest.param(waiting("CreateContainerConfigError", 'configmap "recipe" not found'), "CreateContainerConfigError",
                 'CreateContainerConfigError: container main: configmap "recipe" not found', id="missing-configmap"),
    pytest.param(waiting("CrashLoopBackOff", "back-off 40s", last=CRASH, restarts=4), "CrashLoopBackOff",
                 "container main exited with code 3: ValueError: model file missing; restarted 4 times", id="crash-loop"),
    pytest.param(waiting("CrashLoopBackOff", "back-off", last={"exitCode": 1, "reason": "Error"}, restarts=2), "CrashLoopBackOff",
                 "container main exited with code 1; restarted 2 times", id="crash-loop-no-message"),
    pytest.param(waiting("CrashLoopBackOff", "back-off", last=OOM, restarts=3), "OOMKilled",
                 "container main was OOMKilled (exit code 137), restarted 3 times: raise its memory limit", id="oom"),
    pytest.param(running(ready=False), "ReadinessProbeFailing", "container server running but not ready (readiness probe failing)",
                 id="not-ready"),
    pytest.param(waiting("ContainerCreating"), None, None, id="creating-is-not-blocking"),
    pytest.param(running(), None, None, id="ready"),
    pytest.param(pod(phase="Succeeded"), None, None, id="finished"),
]


@pytest.mark.parametrize(("the_pod", "reason", "message"), POD_CASES)
def test_a_pods_blocking_reason(the_pod, reason, message):
    blocker = pod_blocker(the_pod)
    assert (blocker.reason, blocker.message) == (reason, message) if reason else blocker is None


def test_the_most_blocking_reason_wins_and_counts_its_pods():
    pods = [
        running("w-0", ready=False),
        unschedulable("0/9 nodes are available: 4 Insufficient nvidia.com/gpu, 5 node(s) didn't match Pod's node affinity/selector.", "w-2"),
        unschedulable("0/9 nodes are available: 4 Insufficient nvidia.com/gpu, 5 node(s) didn't match Pod's node affinity/selector.", "w-1"),
        running("w-3"),
    ]
    blocker = first_blocker(pods)
    assert blocker == Blocker("InsufficientGPU", "Insufficient nvidia.com/gpu on 4 of 9 nodes (5 other nodes outside the node selector)", 2, "w-1")
    assert blocker.describe(total=4) == "2/4 pods: " + blocker.message


def test_a_missing_claim_outranks_a_shortage():
    pods = [unschedulable("0/9 nodes are available: 4 Insufficient nvidia.com/gpu.", "w-0"),
            unschedulable('0/9 nodes are available: persistentvolumeclaim "ckpt" not found.', "w-1")]
    assert first_blocker(pods).reason == podreasons.MISSING_VOLUME


def test_terminating_pods_and_healthy_pods_block_nothing():
    terminating = waiting("ErrImagePull", name="w-1")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert first_blocker([running("w-0"), terminating]) is None
    assert first_blocker([]) is None


def test_a_single_pod_is_named():
    blocker = first_blocker([waiting("ImagePullBackOff", name="srv-abc")])
    assert blocker.describe() == "pod srv-abc: ImagePullBackOff: container main image reg/img:1"


def test_the_kubelets_probe_event_completes_a_readiness_reason():
    blocker = first_blocker([running("srv-1", ready=False)])
    events = [
        {"reason": "Unhealthy", "involvedObject": {"name": "srv-1"}, "lastTimestamp": "2026-01-01T00:00:01Z",
         "message": "Readiness probe failed: HTTP probe failed with statuscode: 500"},
        {"reason": "Unhealthy", "involvedObject": {"name": "srv-1"}, "lastTimestamp": "2026-01-01T00:00:09Z",
         "message": "Readiness probe failed: HTTP probe failed with statuscode: 503"},
        {"reason": "Unhealthy", "involvedObject": {"name": "srv-2"}, "lastTimestamp": "2026-01-01T00:00:10Z",
         "message": "Readiness probe failed: other pod"},
    ]
    assert with_probe_message(blocker, events).message.endswith("(readiness probe failing): Readiness probe failed: HTTP probe failed with statuscode: 503")
