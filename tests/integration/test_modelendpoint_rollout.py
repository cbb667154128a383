"""Promote only better models: a gated endpoint fed by a TrainingJob blocks a worse re-run (the old model keeps
serving), promotes a better one, rolls back to a pinned revision, and continues across operator restarts.

The test drives the TrainingJob's status itself (status subresource) on a suspended job, as
test_modelendpoint_trainingjob does. `pytest -s` prints the `kubectl get mep` lines at each step.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.integration.clusterkit import wait_for
from tests.integration.modelendpoint_kit import Kit, condition, endpoint, env_of, kit_fixture  # noqa: F401 (the fixture `kit`)

pytestmark = pytest.mark.integration

REF = {"trainingJobRef": {"name": "train"}}
GATE = {"promotion": {"thresholds": [{"metric": "accuracy", "op": ">=", "value": 0.9}],
                      "notWorseThanServing": True, "tolerance": 0.01}}


def run_finished(kit: Kit, attempt: int, accuracy: float) -> None:
    """The TrainingJob re-ran (attempt n) and exported /models/train/v<n> with this accuracy."""
    kit.set_job_status("train", {"phase": "Suspended", "completionTime": None, "result": None})
    kit.set_job_status("train", {"phase": "Succeeded", "attempt": attempt, "completionTime": "2026-12-01T02:00:00Z",
                                 "result": {"modelUri": f"/models/train/v{attempt}",
                                            "metrics": {"accuracy": accuracy, "f1": accuracy - 0.01, "loss": 1 - accuracy}}})


def show(kit: Kit, step: str) -> None:
    print(f"\n--- {step}\n$ kubectl get mep gated -o wide\n" + kit.kubectl("get", "mep", "gated", "-o", "wide"))


def serving(kit: Kit, uri: str, short: str) -> dict[str, Any]:
    obj = kit.check_phase("gated", "Ready", modelUri=uri, modelShort=short)
    assert env_of(kit.deployment("gated"))["KUBEFORGE_MODEL_URI"] == uri
    return obj


def blocked_reasons(kit: Kit) -> list[str]:
    events = kit.core.list_namespaced_event(kit.namespace, field_selector="involvedObject.name=gated").items
    return [e.message for e in events if e.reason == "PromotionGateFailed"]


def test_a_worse_run_is_blocked_a_better_one_promoted_and_a_pin_rolls_back(kit: Kit, operator):  # noqa: F811
    kit.create_suspended_job("train")
    kit.create(endpoint("gated", model=REF, replicas=2, rollout=GATE))
    run_finished(kit, 1, 0.92)
    wait_for(lambda: serving(kit, "/models/train/v1", "r1:train#1"), timeout=60, message="revision 1 served")
    show(kit, "revision 1 served (accuracy 0.92)")

    run_finished(kit, 2, 0.85)

    def blocked() -> dict[str, Any]:
        obj = serving(kit, "/models/train/v1", "r1:train#1")
        assert condition(obj, "RolloutBlocked")["status"] == "True", condition(obj, "RolloutBlocked")
        return obj
    obj = wait_for(blocked, timeout=60, message="the worse run blocked, v1 still served")
    assert condition(obj, "RolloutBlocked")["message"] == ("new model /models/train/v2 not promoted: "
                                                          "accuracy 0.85 fails the threshold accuracy >= 0.9")
    assert (condition(obj, "Ready")["status"], condition(obj, "Stalled")["status"], obj["status"]["reason"]) == (
        "True", "True", "PromotionGateFailed")
    assert wait_for(lambda: blocked_reasons(kit) or None, timeout=30, message="a PromotionGateFailed Event")
    show(kit, "run 2 blocked (accuracy 0.85 < 0.9)")
    print("$ kubectl get mep gated -o jsonpath='{.status.conditions[?(@.type==\"RolloutBlocked\")]}'\n"
          + kit.kubectl("get", "mep", "gated", "-o", "jsonpath={.status.conditions[?(@.type==\"RolloutBlocked\")]}"))

    run_finished(kit, 3, 0.95)
    operator.restart()  # mid-rollout: the new status is there, the operator may not have acted on it yet
    obj = wait_for(lambda: serving(kit, "/models/train/v3", "r2:train#3"), timeout=90, message="run 3 promoted")
    assert condition(obj, "RolloutBlocked")["status"] == "False"
    assert [(r["revision"], r["uri"], r.get("stoppedReason")) for r in obj["status"]["revisions"]] == [
        (2, "/models/train/v3", None), (1, "/models/train/v1", "replaced: now serving revision 2")]
    assert obj["status"]["model"]["metrics"]["accuracy"] == 0.95 and obj["status"]["model"]["attempt"] == 3
    assert env_of(kit.deployment("gated"))["KUBEFORGE_MODEL_REVISION"] == "revision=2; uri=/models/train/v3"
    show(kit, "run 3 promoted (accuracy 0.95), operator restarted mid-rollout")

    kit.patch_spec("gated", {"model": {**REF, "revision": 1}})
    obj = wait_for(lambda: serving(kit, "/models/train/v1", "r1:train#1"), timeout=60, message="pinned revision 1 served again")
    assert obj["status"]["revisions"][1]["stoppedReason"] == "rolled back to revision 1 (spec.model.revision): now serving revision 1"
    show(kit, "pinned back to revision 1 (spec.model.revision: 1)")

    operator.restart()
    kit.patch_spec("gated", {"model": {**REF, "revision": None}})  # unpinned: the job's model (revision 2) again, no gate
    wait_for(lambda: serving(kit, "/models/train/v3", "r2:train#3"), timeout=60, message="unpinned: revision 2 again")


@pytest.mark.parametrize("rollout, says", [
    ({"promotion": {}}, "spec.rollout.promotion: set thresholds or notWorseThanServing"),
    ({"promotion": {"thresholds": [{"metric": "accuracy", "op": "=>", "value": 0.9}]}}, "Unsupported value"),
    ({"promotion": {"thresholds": [{"metric": "accuracy", "op": ">=", "value": 0.9}] * 2}}, "one entry per metric and op"),
    ({"promotion": {"notWorseThanServing": True, "tolerance": -1}}, "tolerance"),
])
def test_the_api_server_refuses_a_malformed_gate(kit: Kit, rollout, says):
    with pytest.raises(ApiException) as refused:
        kit.create(endpoint("bad", rollout=rollout))
    assert refused.value.status == 422 and says in refused.value.body, refused.value.body


def test_the_gated_sample_is_accepted_by_the_api_server(kit: Kit):
    from tests.chart import REPO

    out = kit.kubectl("apply", "--dry-run=server", "-f", str(REPO / "samples" / "modelendpoint-gated.yaml"))
    assert "sentiment-gated created (server dry run)" in out


CANARY = {**GATE, "strategy": "Canary", "canary": {"replicas": 1, "bakeSeconds": 3}}


def canary_pods(kit: Kit) -> list[Any]:
    return [p for p in kit.core.list_namespaced_pod(kit.namespace, label_selector="kubeforge.io/canary-of=gated").items
            if p.metadata.deletion_timestamp is None]


def test_a_canary_bakes_then_is_promoted_and_a_crashing_canary_is_removed(kit: Kit, operator):  # noqa: F811
    from tests.integration import fakepods

    kit.create_suspended_job("train")
    kit.create(endpoint("gated", model=REF, replicas=3, rollout=CANARY))
    run_finished(kit, 1, 0.92)
    wait_for(lambda: serving(kit, "/models/train/v1", "r1:train#1"), timeout=60, message="revision 1 served directly")

    run_finished(kit, 2, 0.95)

    def baking() -> dict[str, Any]:
        obj = kit.mep("gated")
        assert (obj["status"].get("canary") or {}).get("revision") == 2, obj["status"].get("canary")
        assert len(canary_pods(kit)) == 1 and kit.deployment("gated").spec.replicas == 2  # 1 canary + 2 stable = 3
        return obj
    obj = wait_for(baking, timeout=60, message="revision 2 runs as a canary")
    assert obj["status"]["modelUri"] == "/models/train/v1"
    selector = "kubeforge.io/modelendpoint=gated"  # the Service's: stable and canary pods answer together
    assert len(kit.core.list_namespaced_pod(kit.namespace, label_selector=selector).items) >= 3
    show(kit, "run 2 (accuracy 0.95) passed the gate: canary baking")
    print("$ kubectl get deploy\n" + kit.kubectl("get", "deploy"))
    operator.restart()  # mid-bake
    wait_for(lambda: serving(kit, "/models/train/v2", "r2:train#2"), timeout=90, message="the canary promoted")
    wait_for(lambda: kit.cluster.kubectl("-n", kit.namespace, "get", "deploy", "gated-canary", check=False).returncode != 0,
             timeout=30, message="the canary Deployment removed")
    assert kit.deployment("gated").spec.replicas == 3 and "canary" not in kit.mep("gated")["status"]
    show(kit, "run 2 promoted after its canary")

    kit.patch_spec("gated", {"rollout": {"canary": {"bakeSeconds": 600}}})
    run_finished(kit, 3, 0.96)
    wait_for(lambda: canary_pods(kit) or None, timeout=60, message="revision 3's canary pod")
    for p in canary_pods(kit):  # the model server exits 1 (kwok: a running pod whose container exits)
        kit.core.patch_namespaced_pod(p.metadata.name, kit.namespace, {"metadata": {"annotations": fakepods.fake_exit(1)}})

    def rolled_back() -> dict[str, Any]:
        obj = serving(kit, "/models/train/v2", "r2:train#2")
        assert condition(obj, "RolloutBlocked")["reason"] == "CanaryFailed", condition(obj, "RolloutBlocked")
        return obj
    obj = wait_for(rolled_back, timeout=60, message="the crashing canary removed, v2 still served")
    assert "failed (exit code 1); canary removed" in condition(obj, "RolloutBlocked")["message"], condition(obj, "RolloutBlocked")
    print("$ kubectl get mep gated -o jsonpath='{.status.canary}'\n" + kit.kubectl("get", "mep", "gated", "-o", "jsonpath={.status.canary}"))
    wait_for(lambda: not canary_pods(kit) and kit.cluster.kubectl(
        "-n", kit.namespace, "get", "deploy", "gated-canary", check=False).returncode != 0, timeout=30, message="canary gone")
    show(kit, "run 3's canary crashed: removed, run 2 still served")
