"""The local cluster is a real one: the scheduler places GPU pods by resources,
node selectors and taints, the Job and Deployment controllers run their
workloads, CRDs enforce CEL rules, and the garbage collector follows owners.

It checks the cluster, not kubeforge, so it is not one of kubeforge's tests:
`hack/cluster.sh check` (or `make cluster-check`) runs it.
"""
from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.clusterkit import Cluster, wait_for
from tests.integration.fakepods import fake_exit, pod, pod_template

pytestmark = pytest.mark.integration


def pool_of(core: client.CoreV1Api, node_name: str) -> str:
    return core.read_node(node_name).metadata.labels["kubeforge.io/pool"]


def deployment(name: str, replicas: int, **template: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": pod_template(labels=labels, **template)},
    }


def failed_scheduling_event(core: client.CoreV1Api, namespace: str, pod_name: str):
    def event():
        events = core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={pod_name},reason=FailedScheduling").items
        assert events, f"no FailedScheduling event for {pod_name} yet"
        return events[-1]
    return wait_for(event, timeout=30, message=f"FailedScheduling event for pod {pod_name}")


def gone(read) -> bool:
    try:
        read()
    except ApiException as err:
        if err.status == 404:
            return True
        raise
    raise AssertionError("still exists")


def test_gpu_deployment_runs_all_its_pods_on_the_a100_pool(cluster: Cluster, namespace: str) -> None:
    core, apps = client.CoreV1Api(cluster.api), client.AppsV1Api(cluster.api)
    apps.create_namespaced_deployment(namespace, deployment("trainer-gpus", 2, gpus=2, pool="a100"))

    def two_ready():
        status = apps.read_namespaced_deployment_status("trainer-gpus", namespace).status
        assert status.ready_replicas == 2, f"readyReplicas={status.ready_replicas}"
        return status
    wait_for(two_ready, timeout=60, message="Deployment trainer-gpus with 2 ready replicas")

    pods = core.list_namespaced_pod(namespace, label_selector="app=trainer-gpus").items
    assert [p.status.phase for p in pods] == ["Running", "Running"]
    assert {pool_of(core, p.spec.node_name) for p in pods} == {"a100"}
    assert all(p.spec.containers[0].resources.limits["nvidia.com/gpu"] == "2" for p in pods)


def test_pod_asking_for_16_gpus_stays_pending_with_a_failed_scheduling_event(
        cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_pod(namespace, pod("sixteen-gpus", gpus=16))

    event = failed_scheduling_event(core, namespace, "sixteen-gpus")

    assert "Insufficient nvidia.com/gpu" in event.message
    stuck = core.read_namespaced_pod("sixteen-gpus", namespace)
    assert (stuck.status.phase, stuck.spec.node_name) == ("Pending", None)


def test_h100_pool_takes_only_pods_that_tolerate_its_gpu_taint(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_pod(namespace, pod("tolerant", gpus=1, pool="h100", tolerate_gpu_taint=True))
    core.create_namespaced_pod(namespace, pod("intolerant", gpus=1, pool="h100"))

    def running():
        tolerant = core.read_namespaced_pod("tolerant", namespace)
        assert tolerant.status.phase == "Running", f"phase={tolerant.status.phase}"
        return tolerant
    tolerant = wait_for(running, timeout=30, message="pod tolerant Running")

    assert pool_of(core, tolerant.spec.node_name) == "h100"
    assert "untolerated taint" in failed_scheduling_event(core, namespace, "intolerant").message


def test_indexed_job_with_four_completions_completes(cluster: Cluster, namespace: str) -> None:
    batch = client.BatchV1Api(cluster.api)
    template = pod_template(gpus=1, pool="a100", annotations=fake_exit(0, after="1s"), restart_policy="Never")
    batch.create_namespaced_job(namespace, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "indexed"},
        "spec": {"completionMode": "Indexed", "completions": 4, "parallelism": 4, "backoffLimit": 0,
                 "template": template},
    })

    def complete():
        job = batch.read_namespaced_job_status("indexed", namespace)
        conditions = {c.type: c.status for c in job.status.conditions or []}
        assert conditions.get("Complete") == "True", f"conditions={conditions} succeeded={job.status.succeeded}"
        return job
    job = wait_for(complete, timeout=60, message="Indexed Job complete")

    assert (job.status.succeeded, job.status.completed_indexes) == (4, "0-3")


def widget_crd(group: str) -> dict[str, Any]:
    spec_schema = {
        "type": "object",
        "properties": {"minReplicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}},
        "required": ["minReplicas", "maxReplicas"],
        "x-kubernetes-validations": [
            {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
        ],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": spec_schema}}}}],
        },
    }


def widget(name: str, group: str, low: int, high: int) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"minReplicas": low, "maxReplicas": high}}


def test_crd_cel_rule_refuses_a_bad_object_with_the_rules_message(cluster: Cluster, namespace: str) -> None:
    extensions, custom = client.ApiextensionsV1Api(cluster.api), client.CustomObjectsApi(cluster.api)
    group = f"{namespace}.smoke.kubeforge.io"  # CRDs are cluster-wide: one group per test run
    extensions.create_custom_resource_definition(widget_crd(group))
    try:
        def created(name: str, low: int, high: int):
            try:
                return custom.create_namespaced_custom_object(group, "v1", namespace, "widgets",
                                                              widget(name, group, low, high))
            except ApiException as err:  # 404 until the new API is served
                assert err.status != 404, "Widget API not served yet"
                raise
        wait_for(lambda: created("good", 1, 3), timeout=30, message="a valid Widget accepted")

        with pytest.raises(ApiException) as refused:
            created("bad", 5, 2)

        assert refused.value.status == 422
        assert "minReplicas must not exceed maxReplicas" in refused.value.body
    finally:
        extensions.delete_custom_resource_definition(f"widgets.{group}")


def test_deleting_an_owner_garbage_collects_its_dependents(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "dependent", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}]}})

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    wait_for(lambda: gone(lambda: core.read_namespaced_config_map("dependent", namespace)),
             timeout=60, message="dependent ConfigMap garbage-collected")


def test_foreground_deletion_of_a_deployment_removes_its_replicasets_and_pods(
        cluster: Cluster, namespace: str) -> None:
    core, apps = client.CoreV1Api(cluster.api), client.AppsV1Api(cluster.api)
    apps.create_namespaced_deployment(namespace, deployment("server", 2, pool="cpu"))
    wait_for(lambda: apps.read_namespaced_deployment_status("server", namespace).status.ready_replicas == 2,
             timeout=60, message="Deployment server ready")

    apps.delete_namespaced_deployment("server", namespace, propagation_policy="Foreground")

    wait_for(lambda: gone(lambda: apps.read_namespaced_deployment("server", namespace)),
             timeout=60, message="Deployment server gone after its dependents")
    assert apps.list_namespaced_replica_set(namespace).items == []
    assert core.list_namespaced_pod(namespace, label_selector="app=server").items == []


def test_restricted_namespace_refuses_a_pod_that_may_run_as_root(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    rootful = pod("rootful")
    del rootful["spec"]["containers"][0]["securityContext"]

    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, rootful)

    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in json.loads(refused.value.body)["message"]
