"""Strategy Canary: the bake verdict from pod status (table), the canary Deployment, and the shell through a
promoted and a failed canary."""

from __future__ import annotations

from typing import Any

import pytest

from kubeforge import API_VERSION
from kubeforge.modelendpoint import canary
from tests.unit.fake_kube import FakeKube
from tests.unit.modelendpoint_wrappers import MakeEndpoint
from tests.unit.test_modelendpoint_revisions import condition, job, reconcile, served_env

REV = {"revision": 2, "uri": "/m/v2"}
T0, T30, T90 = "2026-12-01T04:00:00Z", "2026-12-01T04:00:30Z", "2026-12-01T04:01:30Z"


def pod(name: str, ready: bool = True, restarts: int = 0, revision: int = 2, waiting: str | None = None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ml", "labels": {"kubeforge.io/modelendpoint": "mep", canary.CANARY_OF: "mep",
                                                                      canary.CANARY_REVISION: str(revision)}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [{"name": "server", "ready": ready, "restartCount": restarts, "state": state}]}}


@pytest.mark.parametrize("previous, pods, now, state, says", [
    (None, (), T0, "Baking", "0/1 pods ready"),
    (None, (pod("c1", ready=False),), T0, "Baking", "0/1 pods ready"),
    (None, (pod("c1"),), T0, "Baking", "baking: 0/60s Ready"),
    ({**REV, "startedAt": T0, "readySince": T0}, (pod("c1"),), T30, "Baking", "baking: 30/60s Ready"),
    ({**REV, "startedAt": T0, "readySince": T0}, (pod("c1"),), T90, "Passed", "Ready with no restart for 90s"),
    ({**REV, "startedAt": T0, "readySince": T0}, (pod("c1", restarts=1),), T30, "Failed", "pod c1 restarted 1 times"),
    (None, (pod("c1", ready=False, restarts=3, waiting="CrashLoopBackOff"),), T0, "Failed", "keeps exiting; restarted 3 times"),
    (None, (pod("old", restarts=5, revision=1),), T0, "Baking", "0/1 pods ready"),  # an earlier canary's pod does not count
])
def test_the_bake_is_judged_on_ready_pods_and_restarts(previous, pods, now, state, says):
    verdict = canary.judge(REV, previous, pods, canary.Bake(1, 60), now)
    assert verdict.state == state and says in verdict.message, verdict.message


def test_readiness_lost_during_the_bake_starts_it_again():
    verdict = canary.judge(REV, {**REV, "startedAt": T0, "readySince": T0}, (pod("c1", ready=False),), canary.Bake(1, 60), T30)
    assert verdict.state == "Baking" and "readySince" not in verdict.record


def test_the_canary_deployment_selects_only_its_pods_which_the_service_still_selects():
    stable = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mep", "namespace": "ml"},
              "spec": {"replicas": 4, "selector": {"matchLabels": {"kubeforge.io/modelendpoint": "mep"}},
                       "template": {"metadata": {"labels": {"kubeforge.io/modelendpoint": "mep"}}, "spec": {}}}}
    built = canary.as_canary(stable, "mep", 2, 1)
    assert built["metadata"]["name"] == "mep-canary" and built["spec"]["replicas"] == 1
    assert built["spec"]["selector"] == {"matchLabels": {canary.CANARY_OF: "mep"}}
    assert built["spec"]["template"]["metadata"]["labels"] == {"kubeforge.io/modelendpoint": "mep", canary.CANARY_OF: "mep",
                                                               canary.CANARY_REVISION: "2"}
    assert stable["spec"]["replicas"] == 4  # the stable manifest is not changed


def canary_endpoint(bake: int = 0) -> dict[str, Any]:
    return (MakeEndpoint().from_job("train").replicas(3)
            .set("rollout", {"strategy": "Canary", "canary": {"replicas": 1, "bakeSeconds": bake},
                             "promotion": {"thresholds": [{"metric": "accuracy", "op": ">=", "value": 0.9}]}}).obj())


def started_canary(kube: FakeKube) -> dict[str, Any]:
    reconcile(kube)  # revision 1 served directly: there is nothing to compare a canary with
    kube.store(job("/m/v2", {"accuracy": 0.95}, attempt=2))
    return reconcile(kube)


def test_a_promoted_model_runs_as_canary_then_the_stable_deployment_rolls_to_it():
    kube = FakeKube(canary_endpoint(), job("/m/v1", {"accuracy": 0.92}))
    status = started_canary(kube)
    canary_deployment = kube.get("apps/v1", "Deployment", "ml", "mep-canary")
    assert canary_deployment["spec"]["replicas"] == 1
    assert {e["name"]: e.get("value") for e in canary_deployment["spec"]["template"]["spec"]["containers"][0]["env"]}[
        "KUBEFORGE_MODEL_URI"] == "/m/v2"
    assert kube.get("apps/v1", "Deployment", "ml", "mep")["spec"]["replicas"] == 2  # the canary counts toward 3
    assert served_env(kube)["KUBEFORGE_MODEL_URI"] == "/m/v1" and status["model"]["revision"] == 1
    assert (status["canary"]["revision"], status["canary"]["ready"]) == (2, "0/1")

    kube.store(pod("mep-canary-1"))
    status = reconcile(kube)  # Ready, bakeSeconds 0: promoted
    assert served_env(kube)["KUBEFORGE_MODEL_URI"] == "/m/v2" and status["model"]["revision"] == 2
    assert kube.get("apps/v1", "Deployment", "ml", "mep-canary") is None
    assert kube.get("apps/v1", "Deployment", "ml", "mep")["spec"]["replicas"] == 3
    assert "canary" not in status
    assert status["revisions"][1]["stoppedReason"] == "replaced after the canary of revision 2 passed: now serving revision 2"


def test_a_canary_that_restarts_is_removed_and_its_model_blocked_for_good():
    kube = FakeKube(canary_endpoint(bake=600), job("/m/v1", {"accuracy": 0.92}))
    started_canary(kube)
    kube.store(pod("mep-canary-1", restarts=2))
    status = reconcile(kube)
    assert kube.get("apps/v1", "Deployment", "ml", "mep-canary") is None
    assert served_env(kube)["KUBEFORGE_MODEL_URI"] == "/m/v1"
    blocked = condition(status, "RolloutBlocked")
    assert (blocked["status"], blocked["reason"]) == ("True", "CanaryFailed")
    assert blocked["message"] == "new model /m/v2 not promoted: canary of revision 2 failed: pod mep-canary-1 restarted 2 times; canary removed"
    assert status["canary"]["failed"] == "pod mep-canary-1 restarted 2 times"
    kube.objects.pop(("Pod", "ml", "mep-canary-1"))
    status = reconcile(kube)  # its pods gone: the failed model is still not tried again
    assert kube.get("apps/v1", "Deployment", "ml", "mep-canary") is None and condition(status, "RolloutBlocked")["status"] == "True"
    assert kube.get(API_VERSION, "ModelEndpoint", "ml", "mep")["status"]["model"]["revision"] == 1


def test_a_canary_pod_waiting_for_its_claim_to_bind_waits_and_says_why():
    pending = pod("c1", ready=False)
    pending["status"] = {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/10 nodes are available: pod has unbound immediate PersistentVolumeClaims. not found"}]}
    verdict = canary.judge(REV, None, (pending,), canary.Bake(1, 60), T0)
    assert verdict.state == "Baking" and "unbound immediate PersistentVolumeClaims" in verdict.message, verdict.message


def test_a_canary_pod_whose_server_exited_fails_the_bake_with_its_exit_code():
    exited = pod("c1", ready=False)
    exited["status"].update(phase="Failed", containerStatuses=[{"name": "server", "state": {"terminated": {"exitCode": 1}}}])
    verdict = canary.judge(REV, None, (exited,), canary.Bake(1, 60), T0)
    assert (verdict.state, verdict.record["failed"]) == ("Failed", "pod c1 failed (exit code 1)")


def test_the_gated_sample_canaries_one_of_its_two_pods():
    import yaml

    from kubeforge.api.modelendpoint import ModelEndpointSpec
    from tests.chart import REPO

    spec = ModelEndpointSpec.model_validate(yaml.safe_load((REPO / "samples" / "modelendpoint-gated.yaml").read_text())["spec"])
    assert (spec.rollout.strategy, spec.rollout.canary.replicas, spec.rollout.canary.bake_seconds, spec.replicas) == ("Canary", 1, 120, 2)
