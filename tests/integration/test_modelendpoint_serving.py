"""A ModelEndpoint against the real API server and controllers: children, GPU placement, rollout, scaling."""

from __future__ import annotations

import json

import pytest

from tests.integration.clusterkit import wait_for
from tests.integration.fakepods import READY
from tests.integration.modelendpoint_kit import Kit, condition, endpoint, env_of, kit_fixture  # noqa: F401 (the fixture `kit`)
from tests.integration.operator_fixture import OperatorProcess

pytestmark = pytest.mark.integration

H100 = {"nodeSelector": {"kubeforge.io/pool": "h100"}}


def test_gpu_endpoint_lands_on_the_tainted_gpu_pool_and_goes_ready(kit: Kit):
    kit.create(endpoint("sentiment", replicas=2, resources={"gpus": 1}, nodePool=H100))

    ready = kit.wait_phase("sentiment", "Ready", ready="2/2")

    assert condition(ready, "Ready")["status"] == "True"
    assert "condition met" in kit.kubectl("wait", "--for=condition=Ready", "mep/sentiment", "--timeout=10s")
    assert (condition(ready, "Reconciling")["status"], condition(ready, "Stalled")["status"]) == ("False", "False")
    assert ready["status"]["runtime"] == "tensorrt"
    assert ready["status"]["url"] == f"http://sentiment.{kit.namespace}.svc"
    pods = kit.core.list_namespaced_pod(kit.namespace, label_selector=ready["status"]["selector"]).items
    assert sorted(p.spec.node_name[:4] for p in pods) == ["h100", "h100"]
    assert all(p.spec.containers[0].resources.limits["nvidia.com/gpu"] == "1" for p in pods)
    assert kit.kubectl("get", "pdb", "sentiment", "-o", "jsonpath={.spec.maxUnavailable}") == "1"
    assert kit.kubectl("get", "svc", "sentiment", "-o", "jsonpath={.spec.ports[0].port}") == "80"
    print("\n" + kit.kubectl("get", "mep"))


def test_transitions_are_announced_as_events(kit: Kit):
    kit.create(endpoint("events"))
    kit.wait_phase("events", "Ready")

    def reasons() -> set[str]:
        listed = kit.core.list_namespaced_event(kit.namespace, field_selector="involvedObject.name=events").items
        seen = {e.reason for e in listed if e.involved_object.kind == "ModelEndpoint"}
        assert {"ModelResolved", "AllReplicasReady"} <= seen, seen
        return seen

    wait_for(reasons, timeout=20, message="ModelResolved and AllReplicasReady events")


def test_status_follows_a_rollout_until_the_new_pods_are_ready(kit: Kit):
    kit.create(endpoint("rollout", replicas=2))
    kit.wait_phase("rollout", "Ready", ready="2/2")
    # The new pods load their model slowly (Running, not Ready): the rollout is visible in status.
    kit.patch_spec("rollout", {"batching": {"maxBatchSize": 8}, "podAnnotations": {READY: "false"}})

    def rolling_out() -> dict:
        obj = kit.check_phase("rollout", "Deploying")
        assert condition(obj, "Ready")["reason"] == "RollingOut", condition(obj, "Ready")
        return obj

    rolling = wait_for(rolling_out, timeout=30, message="Ready False with reason RollingOut")
    assert condition(rolling, "Progressing")["status"] == "True"
    print("\n" + kit.kubectl("get", "mep"))
    # maxUnavailable 0: both old pods keep serving while the surge pod is not Ready.
    assert kit.deployment("rollout").status.ready_replicas == 2

    # The next template's pods load fast: the rollout completes on it.
    kit.patch_spec("rollout", {"podAnnotations": {READY: None}})
    done = kit.wait_phase("rollout", "Ready", ready="2/2", timeout=90)
    assert condition(done, "Progressing")["reason"] == "RolloutComplete"
    assert env_of(kit.deployment("rollout"))["KUBEFORGE_MAX_BATCH_SIZE"] == "8"


def test_kubectl_scale_reaches_the_deployment_and_the_status(kit: Kit):
    kit.create(endpoint("scaled", replicas=1))
    kit.wait_phase("scaled", "Ready", ready="1/1")

    kit.kubectl("scale", "mep", "scaled", "--replicas=3")

    scaled = kit.wait_phase("scaled", "Ready", ready="3/3", replicas=3)
    assert kit.deployment("scaled").spec.replicas == 3
    assert scaled["spec"]["replicas"] == 3
    scale = kit.kubectl("get", "--raw", f"/apis/kubeforge.io/v1alpha1/namespaces/{kit.namespace}/modelendpoints/scaled/scale")
    assert '"selector":"kubeforge.io/modelendpoint=scaled"' in scale and '"replicas":3' in scale


def test_a_users_hpa_can_target_the_endpoint_through_its_scale_subresource(kit: Kit):
    kit.create(endpoint("target", replicas=1))
    kit.wait_phase("target", "Ready", ready="1/1")
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "users-hpa"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "kubeforge.io/v1alpha1", "kind": "ModelEndpoint", "name": "target"},
            "minReplicas": 3,
            "maxReplicas": 5,
            "metrics": [{"type": "Pods", "pods": {"metric": {"name": "kubeforge_requests_in_flight"},
                                                  "target": {"type": "AverageValue", "averageValue": "8"}}}],
        },
    }
    kit.cluster.kubectl("-n", kit.namespace, "apply", "-f", "-", input=json.dumps(hpa))

    # The HPA controller lifts spec.replicas to its minimum through /scale; the operator follows.
    scaled = kit.wait_phase("target", "Ready", ready="3/3", timeout=90)
    assert scaled["spec"]["replicas"] == 3
    assert kit.deployment("target").spec.replicas == 3


def test_hpa_targets_the_deployment_and_owns_its_replicas(kit: Kit):
    kit.create(endpoint("auto", autoscaling={"minReplicas": 2, "maxReplicas": 4, "metric": "inflight", "target": 4}))

    kit.wait_phase("auto", "Ready", ready="2/2", desiredReplicas=2, timeout=90)
    # Created at minReplicas, then handed to the HPA: no scale from 1 (which would bump the generation).
    assert kit.deployment("auto").metadata.generation == 1
    hpa = kit.kubectl("get", "hpa", "auto", "-o", "jsonpath={.spec}")
    assert '"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"auto"}' in hpa
    assert '"name":"kubeforge_requests_in_flight"' in hpa and '"averageValue":"4"' in hpa

    # The HPA's decision (as if load arrived) survives the operator re-applying the Deployment.
    kit.kubectl("scale", "deployment", "auto", "--replicas=3")
    kit.patch_spec("auto", {"batching": {"maxDelayMs": 10}})
    kit.wait_phase("auto", "Ready", ready="3/3", desiredReplicas=3)
    deployment = kit.deployment("auto")
    assert deployment.spec.replicas == 3
    assert env_of(deployment)["KUBEFORGE_MAX_DELAY_MS"] == "10"
    assert not _kubeforge_owns_replicas(deployment)

    # `kubectl scale mep` while the HPA owns the count changes nothing on the Deployment.
    generation = deployment.metadata.generation
    kit.kubectl("scale", "mep", "auto", "--replicas=1")
    kit.wait_phase("auto", "Ready", ready="3/3")  # the operator has reconciled the new generation
    assert (kit.deployment("auto").metadata.generation, kit.deployment("auto").spec.replicas) == (generation, 3)


def test_turning_autoscaling_on_hands_the_replicas_over_without_a_dip(kit: Kit):
    kit.create(endpoint("handover", replicas=3))
    kit.wait_phase("handover", "Ready", ready="3/3")
    assert _kubeforge_owns_replicas(kit.deployment("handover"))

    kit.patch_spec("handover", {"autoscaling": {"minReplicas": 2, "maxReplicas": 6, "metric": "inflight"}})

    kit.wait_phase("handover", "Ready", ready="3/3")
    deployment = kit.deployment("handover")
    assert deployment.spec.replicas == 3  # not dropped to the default of 1
    assert not _kubeforge_owns_replicas(deployment)


def test_turning_autoscaling_off_removes_the_hpa_and_restores_spec_replicas(kit: Kit):
    kit.create(endpoint("manual", replicas=1, resources={"cpu": "500m"}, autoscaling={"minReplicas": 2, "maxReplicas": 3}))
    kit.wait_phase("manual", "Ready", ready="2/2", timeout=90)

    kit.custom.patch_namespaced_custom_object(
        "kubeforge.io", "v1alpha1", kit.namespace, "modelendpoints", "manual", {"spec": {"autoscaling": None}}
    )

    kit.wait_phase("manual", "Ready", ready="1/1")
    gone = kit.cluster.kubectl("-n", kit.namespace, "get", "hpa,pdb", "-o", "name").stdout.strip()
    assert gone == ""


def test_operator_restart_converges_without_rewriting_status(kit: Kit, operator):  # noqa: F811
    kit.create(endpoint("steady", replicas=2))
    before = kit.wait_phase("steady", "Ready", ready="2/2")

    operator.stop()
    try:
        kit.kubectl("scale", "mep", "steady", "--replicas=3")  # a change nobody is watching
    finally:
        operator.start()

    after = kit.wait_phase("steady", "Ready", ready="3/3")
    assert kit.deployment("steady").spec.replicas == 3
    assert condition(after, "ModelResolved")["lastTransitionTime"] == condition(before, "ModelResolved")["lastTransitionTime"]
    assert len(kit.apps.list_namespaced_deployment(kit.namespace).items) == 1


def _kubeforge_owns_replicas(deployment) -> bool:
    return any(
        f.manager == "kubeforge" and f.operation == "Apply" and "f:replicas" in (f.fields_v1 or {}).get("f:spec", {})
        for f in deployment.metadata.managed_fields or []
    )


@pytest.fixture
def fast_degrading_operator(cluster, namespace, operator, tmp_path):  # noqa: F811
    """The session's operator swapped for one that calls an endpoint Degraded after 3 s short of replicas."""
    operator.stop()
    env = {"KUBEFORGE_ENDPOINT_DEGRADED_AFTER_SECONDS": "3", "KUBEFORGE_WATCH_NAMESPACES": namespace}
    fast = OperatorProcess(cluster.kubeconfig, tmp_path / "operator.log", env).start()
    try:
        yield fast
    finally:
        fast.stop()
        operator.start()


def test_a_replica_that_stops_being_ready_degrades_the_endpoint_until_it_recovers(kit: Kit, fast_degrading_operator):
    kit.create(endpoint("flaky", replicas=2))
    kit.wait_phase("flaky", "Ready", ready="2/2")
    pod = kit.core.list_namespaced_pod(kit.namespace, label_selector="kubeforge.io/modelendpoint=flaky").items[0]

    kit.core.patch_namespaced_pod(pod.metadata.name, kit.namespace, {"metadata": {"annotations": {READY: "false"}}})

    degraded = kit.wait_phase("flaky", "Degraded", ready="1/2")
    ready = condition(degraded, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ReplicasUnavailable")
    assert condition(degraded, "Stalled")["status"] == "True"

    kit.core.patch_namespaced_pod(pod.metadata.name, kit.namespace, {"metadata": {"annotations": {READY: "true"}}})
    kit.wait_phase("flaky", "Ready", ready="2/2")
