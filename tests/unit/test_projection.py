"""The child indexes keep a projection of each child: the passes decide the same on it as on the whole body."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any, Callable

import pytest

from kubeforge import podreasons
from kubeforge.contract import PROGRESS_KEY
from kubeforge.projection import project
from kubeforge.trainingjob import exitcodes, names, observe
from kubeforge.trainingjob.controller import _owned_by, progress_projection
from kubeforge.trainingjob.status import decide
from kubeforge.trainingjob.waiting import Policy
from tests.unit import apiserver_bodies as bodies
from tests.unit.trainingjob_wrappers import MakeTrainingJob

NOW = datetime(2026, 1, 1, 0, 30, 0, tzinfo=timezone.utc)


def container(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["status"]["containerStatuses"][0]


def unready(pod: dict[str, Any]) -> None:
    next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")["status"] = "False"
    container(pod)["ready"] = False


def crash_looping(pod: dict[str, Any]) -> None:
    unready(pod)
    container(pod).update(restartCount=5, state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting"}},
                          lastState={"terminated": {"exitCode": 1, "reason": "Error", "message": "ValueError: bad lr\n",
                                                    "finishedAt": "2026-01-01T00:20:00Z"}})


def oom_killed(pod: dict[str, Any]) -> None:
    crash_looping(pod)
    container(pod)["lastState"]["terminated"].update(exitCode=137, reason="OOMKilled")


def image_pull(pod: dict[str, Any]) -> None:
    unready(pod)
    pod["status"]["phase"] = "Pending"
    container(pod)["state"] = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}


def unschedulable(pod: dict[str, Any]) -> None:
    pod["spec"].pop("nodeName")
    pod["status"] = {"phase": "Pending", "qosClass": "Burstable", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastProbeTime": None,
         "message": "0/9 nodes are available: 4 Insufficient nvidia.com/gpu, 5 node(s) didn't match Pod's node affinity/selector."}]}


def not_ready_probe(pod: dict[str, Any]) -> None:
    unready(pod)


def exited(code: int, message: str = "") -> Callable[[dict[str, Any]], None]:
    def apply(pod: dict[str, Any]) -> None:
        unready(pod)
        pod["status"]["phase"] = "Failed" if code else "Succeeded"
        terminated = {"exitCode": code, "reason": "Error" if code else "Completed", "finishedAt": "2026-01-01T00:25:00Z",
                      "startedAt": "2026-01-01T00:00:02Z", "containerID": "containerd://" + "ef" * 32}
        if message:
            terminated["message"] = message
        container(pod)["state"] = {"terminated": terminated}
    return apply


def evicted(pod: dict[str, Any]) -> None:
    exited(137)(pod)
    pod["status"].update(reason="Evicted", message="The node was low on resource: memory.")
    pod["status"]["conditions"].append({"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet"})


def deleting(pod: dict[str, Any]) -> None:
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:26:00Z"
    exited(143)(pod)


def pending_in_init(pod: dict[str, Any]) -> None:
    unready(pod)
    pod["status"]["phase"] = "Pending"
    pod["status"]["initContainerStatuses"] = [{"name": "fetch", "image": "busybox", "ready": False, "restartCount": 0,
                                               "imageID": "", "state": {"waiting": {"reason": "CreateContainerConfigError",
                                                                                    "message": 'secret "s3" not found'}}}]


SUMMARY = json.dumps({"metrics": {"accuracy": 0.91, "f1": 0.9}, "modelUri": "s3://models/bert"})
STATES = {
    "running": lambda pod: None, "crash loop": crash_looping, "oom killed": oom_killed, "image pull": image_pull,
    "unschedulable": unschedulable, "readiness probe failing": not_ready_probe, "exited 1": exited(1, "RuntimeError: NaN loss"),
    "exited 143": exited(143), "succeeded with a summary": exited(0, SUMMARY), "evicted": evicted, "deleting": deleting,
    "init container config error": pending_in_init,
}


def pods_in(state: Callable[[dict[str, Any]], None], workers: int = 4) -> list[dict[str, Any]]:
    """Every worker running, rank 0 and rank 2 in `state`."""
    pods = [bodies.worker_pod(i) for i in range(workers)]
    for pod in (pods[0], pods[2]):
        state(pod)
    return pods


def job_for(state_name: str) -> dict[str, Any]:
    job = bodies.worker_job()
    if state_name == "succeeded with a summary":
        job["status"]["conditions"] = [{"type": "Complete", "status": "True", "lastProbeTime": "2026-01-01T00:25:01Z",
                                        "lastTransitionTime": "2026-01-01T00:25:01Z"}]
    if state_name in ("exited 1", "evicted"):
        job["status"]["conditions"] = [{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                                        "message": "Job has reached the specified backoff limit"}]
    return job


def decision(pods: list[dict[str, Any]], job: dict[str, Any], progress_map: dict[str, Any]) -> dict[str, Any]:
    tj = MakeTrainingJob(bodies.NAME, bodies.NS).nodes(4).status(phase="Pending", attempt=1, startTime="2026-01-01T00:00:00Z").model()
    observed = observe.observe(bodies.NAME, 1, [job], pods, progress_map=progress_map)
    plan = decide(tj, observed, NOW, Policy())
    return {"plan": plan.__dict__, "workers": observe.worker_counts(observed, 4), "result": observe.result(observed),
            "progress": observe.progress(observed)}


@pytest.mark.parametrize("state_name", sorted(STATES))
def test_a_pass_decides_the_same_on_projected_children_as_on_whole_ones(state_name):
    pods, job, progress_map = pods_in(STATES[state_name]), job_for(state_name), bodies.progress_config_map()
    whole = decision(copy.deepcopy(pods), copy.deepcopy(job), copy.deepcopy(progress_map))
    projected = decision([project(p) for p in pods], project(job), progress_projection(progress_map))
    assert projected == whole


@pytest.mark.parametrize("state_name", sorted(STATES))
def test_what_each_reader_reads_of_a_pod_survives_the_projection(state_name):
    pod = bodies.worker_pod(0)
    STATES[state_name](pod)
    kept = project(copy.deepcopy(pod))
    policy = MakeTrainingJob().model().spec.run_policy
    for read in (podreasons.pod_blocker, exitcodes.exit_code, exitcodes.completion_index, observe.is_ready, names.attempt_of,
                 lambda p: exitcodes.pod_failure(p, policy), lambda p: exitcodes.attempt_failure([p, bodies.worker_pod(1)], policy),
                 lambda p: (p.get("spec") or {}).get("nodeName"), lambda p: p["metadata"].get("deletionTimestamp"),
                 lambda p: _owned_by(p, bodies.JOB_UID)):
        assert read(kept) == read(pod)


def test_a_projected_pod_is_a_small_part_of_the_whole_body():
    pod = bodies.worker_pod(0)
    assert len(json.dumps(project(pod))) < len(json.dumps(pod)) / 4


def test_the_projection_drops_spec_env_managed_fields_and_the_job_controllers_labels():
    kept = project(bodies.worker_pod(1))
    assert set(kept["spec"]) == {"nodeName"}
    assert "managedFields" not in kept["metadata"]
    assert set(kept["metadata"]["labels"]) == {names.JOB_LABEL, names.ATTEMPT_LABEL}
    assert kept["metadata"]["annotations"] == {names.COMPLETION_INDEX_ANNOTATION: "1"}
    assert "volumeMounts" not in kept["status"]["containerStatuses"][0]


def test_a_job_keeps_its_suspend_flag_conditions_and_creation_time():
    job = bodies.worker_job()
    job["spec"]["suspend"] = True
    kept = project(job)
    assert observe.job_state(kept) == observe.SUSPENDED
    assert kept["metadata"]["creationTimestamp"] == job["metadata"]["creationTimestamp"]
    assert "template" not in kept["spec"]


def test_a_config_map_keeps_only_the_keys_asked_for():
    config_map = bodies.progress_config_map()
    config_map["data"]["ds_config.json"] = json.dumps({"zero_optimization": {"stage": 2}})
    assert progress_projection(config_map)["data"] == {PROGRESS_KEY: config_map["data"][PROGRESS_KEY]}
    assert project(config_map)["data"] == {}


def test_the_trainingjob_index_keeps_no_config_map_but_the_progress_one():
    deepspeed = bodies.progress_config_map()
    deepspeed["metadata"]["name"] = names.deepspeed_config_map(bodies.NAME)
    assert progress_projection(deepspeed) is None


def test_repeated_strings_are_shared_between_projected_children():
    first, second = project(bodies.worker_pod(0)), project(bodies.worker_pod(1))
    assert first["metadata"]["namespace"] is second["metadata"]["namespace"]
    assert first["status"]["conditions"][2]["type"] is second["status"]["conditions"][2]["type"]
