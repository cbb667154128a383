"""spec.rollout.promotion.evaluation: the candidate's init container (built), its termination message (read), and the
reconciler shell through a first model evaluated alone, a better one promoted and a worse one blocked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubeforge import API_VERSION, servecontract as sc
from kubeforge.modelendpoint import canary, evaluation
from tests.unit.fake_kube import FakeKube
from tests.unit.modelendpoint_wrappers import MakeEndpoint
from tests.unit.test_modelendpoint_canary import pod
from tests.unit.test_modelendpoint_revisions import condition, reconcile, served_env

HELD_OUT = {"uri": "/data/heldout.jsonl"}
GATE = {"thresholds": [{"metric": "accuracy", "op": ">=", "value": 0.9}], "notWorseThanServing": True, "tolerance": 0.01,
        "evaluation": HELD_OUT}


def evaluated_endpoint(uri: str = "/m/v1", strategy: str = "Replace") -> dict[str, Any]:
    return MakeEndpoint().uri(uri).replicas(2).set("rollout", {"strategy": strategy, "promotion": GATE}).obj()


def with_eval(p: dict[str, Any], code: int, report: dict[str, Any], crash_looping: bool = False) -> dict[str, Any]:
    """A canary pod whose model-eval init container ended with `code` and this termination message."""
    terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "message": json.dumps(report)}
    status = {"name": evaluation.INIT_CONTAINER, "restartCount": 2 if crash_looping else 0,
              "state": {"waiting": {"reason": "CrashLoopBackOff"}} if crash_looping else {"terminated": terminated},
              "lastState": {"terminated": terminated} if crash_looping else {}}
    p["status"]["initContainerStatuses"] = [status]
    return p


def passed(accuracy: float) -> dict[str, Any]:
    return {"metrics": {"accuracy": accuracy, "f1": accuracy, "loss": 1 - accuracy, "samples": 50}, "passed": True,
            "data": HELD_OUT["uri"]}


def serve_v1_then_ask_for_v2(kube: FakeKube) -> None:
    """v1's candidate passes (held-out accuracy 0.93) and is served; then the spec asks for /m/v2."""
    reconcile(kube)
    kube.store(with_eval(pod("mep-canary-1", revision=1), 0, passed(0.93)))
    reconcile(kube)
    kube.objects.pop(("Pod", "ml", "mep-canary-1"))
    kube.patch_merge(API_VERSION, "ModelEndpoint", "ml", "mep", {"spec": {"model": {"uri": "/m/v2"}}})


def canary_env(kube: FakeKube, container: str = "model-eval") -> dict[str, str]:
    spec = kube.get("apps/v1", "Deployment", "ml", "mep-canary")["spec"]["template"]["spec"]
    found = next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == container)
    return {e["name"]: e.get("value") for e in found["env"]}


@pytest.mark.parametrize("pods, failure, metrics", [
    ((), None, None),
    ((with_eval(pod("c1"), 0, passed(0.93)),), None, passed(0.93)["metrics"]),
    ((with_eval(pod("c1", ready=False), 1, {**passed(0.5), "passed": False, "failed": "accuracy 0.5 fails the threshold accuracy >= 0.9"},
                crash_looping=True),), "held-out evaluation on /data/heldout.jsonl: accuracy 0.5 fails the threshold accuracy >= 0.9 (pod c1)", None),
    ((with_eval(pod("c1", ready=False), 1, {"error": "FileNotFoundError: /data/heldout.jsonl", "data": "/data/heldout.jsonl"}),),
     "held-out evaluation on /data/heldout.jsonl could not run: FileNotFoundError: /data/heldout.jsonl (pod c1)", None),
    ((with_eval(pod("c1"), 0, {}),), None, None),  # kwok's init containers end 0 with no report: not a pass
])
def test_the_report_is_read_from_the_init_containers_termination_message(pods, failure, metrics):
    report = evaluation.evaluation_report(pods)
    assert (report.failure, report.metrics) == (failure, metrics)


def test_a_first_model_runs_alone_as_a_candidate_and_is_served_once_its_evaluation_passed():
    kube = FakeKube(evaluated_endpoint())
    status = reconcile(kube)
    assert kube.get("apps/v1", "Deployment", "ml", "mep") is None  # nothing serves an unevaluated model
    assert (status["phase"], condition(status, "ModelResolved")["reason"]) == ("WaitingForModel", "EvaluatingModel")
    env = canary_env(kube)
    assert (env[sc.EVAL_URI], json.loads(env[sc.EVAL_GATE])) == ("/data/heldout.jsonl", GATE["thresholds"])
    assert env[sc.MODEL_URI] == "/m/v1" and kube.get("apps/v1", "Deployment", "ml", "mep-canary")["spec"]["replicas"] == 1

    kube.store(with_eval(pod("mep-canary-1", revision=1), 0, passed(0.93)))
    status = reconcile(kube)
    assert served_env(kube)[sc.MODEL_URI] == "/m/v1" and kube.get("apps/v1", "Deployment", "ml", "mep")["spec"]["replicas"] == 2
    assert kube.get("apps/v1", "Deployment", "ml", "mep-canary") is None
    assert status["model"]["evaluation"]["accuracy"] == 0.93
    stable = kube.get("apps/v1", "Deployment", "ml", "mep")["spec"]["template"]["spec"]
    assert "initContainers" not in stable  # the stable pods serve an evaluated revision: no second evaluation


def test_a_worse_model_is_blocked_by_its_own_evaluation_and_never_served():
    kube = FakeKube(evaluated_endpoint())
    serve_v1_then_ask_for_v2(kube)
    reconcile(kube)
    # The floor from the serving revision's held-out accuracy (0.93 - 0.01) travels to the candidate's pods.
    floor = json.loads(canary_env(kube)[sc.EVAL_GATE])[1]
    assert (floor["metric"], floor["op"], floor["value"]) == ("accuracy", ">=", 0.92)
    assert served_env(kube)[sc.MODEL_URI] == "/m/v1"

    failed = {**passed(0.91), "passed": False, "failed": "accuracy 0.91 fails the threshold accuracy >= 0.92 (notWorseThanServing:"
              " serving has 0.93, tolerance 0.01)"}
    kube.store(with_eval(pod("mep-canary-2", ready=False), 1, failed, crash_looping=True))
    status = reconcile(kube)
    blocked = condition(status, "RolloutBlocked")
    assert (blocked["status"], blocked["reason"], status["reason"]) == ("True", "EvaluationFailed", "EvaluationFailed")
    assert blocked["message"] == ("new model /m/v2 not promoted: held-out evaluation on /data/heldout.jsonl: accuracy 0.91 fails the"
                                  " threshold accuracy >= 0.92 (notWorseThanServing: serving has 0.93, tolerance 0.01) (pod mep-canary-2);"
                                  " canary removed")
    assert kube.get("apps/v1", "Deployment", "ml", "mep-canary") is None and served_env(kube)[sc.MODEL_URI] == "/m/v1"
    assert ("Warning", "EvaluationFailed") in [(t, r) for t, r, _ in kube.events]
    kube.objects.pop(("Pod", "ml", "mep-canary-2"))
    status = reconcile(kube)  # restarted or not, the failed model is not tried again
    assert kube.get("apps/v1", "Deployment", "ml", "mep-canary") is None and status["model"]["revision"] == 1


def test_a_first_model_that_fails_its_evaluation_serves_nothing():
    kube = FakeKube(evaluated_endpoint())
    reconcile(kube)
    kube.store(with_eval(pod("mep-canary-1", ready=False, revision=1), 1,
                         {**passed(0.4), "passed": False, "failed": "accuracy 0.4 fails the threshold accuracy >= 0.9"}))
    status = reconcile(kube)
    assert condition(status, "RolloutBlocked")["reason"] == "EvaluationFailed" and "model" not in status
    assert kube.get("apps/v1", "Deployment", "ml", "mep-canary") is None and kube.get("apps/v1", "Deployment", "ml", "mep") is None


def test_strategy_canary_evaluates_then_bakes_its_canary_replicas():
    endpoint = evaluated_endpoint(strategy="Canary")
    endpoint["spec"]["rollout"]["canary"] = {"replicas": 1, "bakeSeconds": 0}
    kube = FakeKube(endpoint)
    serve_v1_then_ask_for_v2(kube)
    status = reconcile(kube)
    assert status["canary"]["revision"] == 2 and kube.get("apps/v1", "Deployment", "ml", "mep")["spec"]["replicas"] == 1
    kube.store(pod("mep-canary-2"))  # Ready, but no evaluation report yet: not promoted
    status = reconcile(kube)
    assert status["model"]["revision"] == 1 and "waiting for the held-out evaluation" in condition(status, "RolloutBlocked")["message"]
    kube.store(with_eval(pod("mep-canary-2"), 0, passed(0.95)))
    status = reconcile(kube)
    assert (status["model"]["revision"], status["model"]["evaluation"]["accuracy"]) == (2, 0.95)


def test_a_canary_judged_on_evaluation_requires_its_report():
    bake = canary.Bake(1, 0, evaluated=True)
    assert canary.judge({"revision": 2, "uri": "/m/v2"}, None, (pod("c1"),), bake, "2026-12-01T04:00:00Z").state == "Baking"


def argo_health_of(kube: FakeKube) -> tuple[str, str]:
    from tests.unit.test_health_lua import HEALTH, argocd_health

    return argocd_health(HEALTH / "modelendpoint.lua", kube.get(API_VERSION, "ModelEndpoint", "ml", "mep"))


def test_argo_cd_reads_an_evaluating_first_model_as_progressing_and_a_blocked_one_as_degraded():
    kube = FakeKube(evaluated_endpoint())
    reconcile(kube)
    assert argo_health_of(kube)[0] == "Progressing"
    kube.store(with_eval(pod("mep-canary-1", ready=False, revision=1), 1,
                         {**passed(0.4), "passed": False, "failed": "accuracy 0.4 fails the threshold accuracy >= 0.9"}))
    reconcile(kube)
    health, message = argo_health_of(kube)
    assert health == "Degraded" and "accuracy 0.4 fails the threshold accuracy >= 0.9" in message, message


def test_argo_cd_reads_a_serving_endpoint_whose_canary_failed_as_degraded():
    endpoint = evaluated_endpoint(strategy="Canary")
    endpoint["spec"]["rollout"]["canary"] = {"replicas": 1, "bakeSeconds": 600}
    kube = FakeKube(endpoint)
    serve_v1_then_ask_for_v2(kube)
    reconcile(kube)
    kube.store(with_eval(pod("mep-canary-2", restarts=3), 0, passed(0.95)))
    reconcile(kube)
    health, message = argo_health_of(kube)
    assert health == "Degraded" and "canary of revision 2 failed: pod mep-canary-2 restarted 3 times" in message, message


def test_a_model_that_failed_is_judged_again_only_under_a_changed_gate():
    kube = FakeKube(evaluated_endpoint())
    reconcile(kube)
    kube.store(with_eval(pod("mep-canary-1", ready=False, revision=1), 1,
                         {"error": "FileNotFoundError: /data/heldout.jsonl", "data": "/data/heldout.jsonl"}))
    reconcile(kube)
    kube.objects.pop(("Pod", "ml", "mep-canary-1"))
    assert reconcile(kube)["canary"]["failed"] and kube.get("apps/v1", "Deployment", "ml", "mep-canary") is None  # waiting changes nothing
    kube.patch_merge(API_VERSION, "ModelEndpoint", "ml", "mep", {"spec": {"rollout": {"promotion": {"evaluation": {"uri": "/data/fixed.jsonl"}}}}})
    status = reconcile(kube)  # the file's path fixed: the same model is evaluated again
    assert "failed" not in status["canary"] and canary_env(kube)[sc.EVAL_URI] == "/data/fixed.jsonl"
