"""The fake pod lifecycle (hack/kwok/stages/pods.yaml) behaves as
hack/kwok/README.md promises: the other integration tests build on it.
"""
from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.clusterkit import Cluster, wait_for
from tests.integration.fakepods import EXIT_CODE, READY, fake_exit, pod, pod_template

pytestmark = pytest.mark.integration


def in_phase(core: client.CoreV1Api, namespace: str, name: str, phase: str, timeout: float = 30):
    def observed():
        current = core.read_namespaced_pod(name, namespace)
        assert current.status.phase == phase, f"phase={current.status.phase}"
        return current
    return wait_for(observed, timeout=timeout, message=f"pod {name} {phase}")


def is_ready(pod_object) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod_object.status.conditions or [])


def gone(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, namespace)
    except ApiException as err:
        if err.status == 404:
            return True
        raise
    raise AssertionError(f"pod {name} still exists")


def test_pod_without_fake_annotations_runs_ready_until_deleted(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_pod(namespace, pod("idle", pool="cpu"))

    running = in_phase(core, namespace, "idle", "Running")
    assert is_ready(running)
    assert running.status.container_statuses[0].ready and running.status.container_statuses[0].state.running

    core.delete_namespaced_pod("idle", namespace)  # graceful, default grace period
    wait_for(lambda: gone(core, namespace, "idle"), timeout=30, message="deleted pod idle gone")


def test_pod_fails_with_the_chosen_exit_code_reason_and_message(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    summary = json.dumps({"metrics": {"accuracy": 0.91, "f1": 0.9}, "modelUri": "pvc://models/run-1"})
    core.create_namespaced_pod(namespace, pod("oom", annotations=fake_exit(137, message=summary, reason="OOMKilled")))

    failed = in_phase(core, namespace, "oom", "Failed")

    terminated = failed.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason, terminated.message) == (137, "OOMKilled", summary)


def test_pod_runs_for_the_chosen_duration_then_succeeds(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_pod(namespace, pod("timed", annotations=fake_exit(0, after="4s")))

    in_phase(core, namespace, "timed", "Running")
    succeeded = in_phase(core, namespace, "timed", "Succeeded")

    terminated = succeeded.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert (terminated.finished_at - terminated.started_at).total_seconds() >= 4


def test_exit_code_patched_onto_a_live_pod_ends_it(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_pod(namespace, pod("live"))
    in_phase(core, namespace, "live", "Running")

    core.patch_namespaced_pod("live", namespace, {"metadata": {"annotations": {EXIT_CODE: "3"}}})

    terminated = in_phase(core, namespace, "live", "Failed").status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")


def test_unready_pod_holds_back_its_deployment_until_flipped_ready(cluster: Cluster, namespace: str) -> None:
    core, apps = client.CoreV1Api(cluster.api), client.AppsV1Api(cluster.api)
    labels = {"app": "loading"}
    apps.create_namespaced_deployment(namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "loading"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": pod_template(labels=labels, annotations={READY: "false"})},
    })

    def running_unready():
        pods = core.list_namespaced_pod(namespace, label_selector="app=loading").items
        assert [p.status.phase for p in pods] == ["Running"], [p.status.phase for p in pods]
        assert not is_ready(pods[0]), "pod is Ready"
        return pods[0]
    name = wait_for(running_unready, timeout=30, message="pod Running but not Ready").metadata.name
    assert not apps.read_namespaced_deployment_status("loading", namespace).status.ready_replicas

    core.patch_namespaced_pod(name, namespace, {"metadata": {"annotations": {READY: "true"}}})

    wait_for(lambda: apps.read_namespaced_deployment_status("loading", namespace).status.ready_replicas == 1,
             timeout=30, message="Deployment loading ready once its pod is")


def test_deleted_job_pod_fails_and_goes_even_with_a_pod_failure_policy(cluster: Cluster, namespace: str) -> None:
    # With a podFailurePolicy the Job controller releases a pod (removes its
    # tracking finalizer) only once the pod is Failed; the pod-terminate
    # stage is what lets a deleted Running pod get there.
    core, batch = client.CoreV1Api(cluster.api), client.BatchV1Api(cluster.api)
    batch.create_namespaced_job(namespace, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "worker"},
        "spec": {"completions": 1, "backoffLimit": 3, "template": pod_template(restart_policy="Never"),
                 "podFailurePolicy": {"rules": [
                     {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}},
    })

    def worker_running():
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=worker").items
        assert pods and pods[0].status.phase == "Running", [p.status.phase for p in pods]
        return pods[0]
    first = wait_for(worker_running, timeout=30, message="Job worker's pod Running").metadata.name

    core.delete_namespaced_pod(first, namespace)

    wait_for(lambda: gone(core, namespace, first), timeout=30, message=f"deleted Job pod {first} gone")
    wait_for(lambda: batch.read_namespaced_job_status("worker", namespace).status.failed == 1,
             timeout=30, message="Job worker counts the deleted pod as failed")
    replacement = wait_for(worker_running, timeout=30, message="Job worker's replacement pod Running")
    assert replacement.metadata.name != first
