"""Model revisions and the promotion gate: table tests of the pure decisions, and the reconciler shell through a
blocked, a promoted and a pinned rollout."""

from __future__ import annotations

from typing import Any

import pytest

from kubeforge import API_VERSION
from kubeforge.api.modelendpoint import ModelEndpointSpec, Promotion
from kubeforge.modelendpoint import controller as endpoint_controller
from kubeforge.modelendpoint import gate, revisions
from kubeforge.modelendpoint.modelsource import resolve_model
from kubeforge.settings import Settings
from tests.unit.fake_kube import FakeKube
from tests.unit.modelendpoint_wrappers import MakeEndpoint

AT_LEAST_90 = {"thresholds": [{"metric": "accuracy", "op": ">=", "value": 0.9}]}
LOSS_AND_SERVING = {"thresholds": [{"metric": "loss", "op": "<=", "value": 1.0}], "notWorseThanServing": True, "tolerance": 0.05}


@pytest.mark.parametrize("promotion, new, serving, passed, says", [
    (AT_LEAST_90, {"accuracy": 0.95}, None, True, "passed the promotion gate (accuracy 0.95)"),
    (AT_LEAST_90, {"accuracy": 0.8}, None, False, "accuracy 0.8 fails the threshold accuracy >= 0.9"),
    (AT_LEAST_90, {"f1": 0.99}, None, False, "metric accuracy not reported by the new model"),
    (AT_LEAST_90, {"accuracy": True}, None, False, "metric accuracy not reported"),
    ({"notWorseThanServing": True}, {"accuracy": 0.91}, {"accuracy": 0.92}, False,
     "accuracy 0.91 is worse than the serving model's 0.92"),
    ({"notWorseThanServing": True, "tolerance": 0.02}, {"accuracy": 0.91}, {"accuracy": 0.92}, True, "passed"),
    ({"notWorseThanServing": True}, {"accuracy": 0.5}, None, True, "passed"),  # nothing served: nothing to compare
    ({"notWorseThanServing": True}, {"accuracy": 0.5}, {"f1": 0.9}, True, "passed"),  # serving never reported it
    (LOSS_AND_SERVING, {"loss": 0.5}, {"loss": 0.4}, False, "loss 0.5 is worse than the serving model's 0.4"),
    (LOSS_AND_SERVING, {"loss": 0.44}, {"loss": 0.4}, True, "passed the promotion gate (loss 0.44)"),
    (LOSS_AND_SERVING, {"loss": 1.5}, {"loss": 2.0}, False, "loss 1.5 fails the threshold loss <= 1"),
])
def test_the_gate_names_the_metric_its_value_and_the_threshold(promotion, new, serving, passed, says):
    verdict = gate.judge(Promotion.model_validate(promotion), new, serving)
    assert verdict.passed is passed
    assert says in verdict.message


def job(uri: str, metrics: dict[str, Any], attempt: int = 1, digest: str | None = None, phase: str = "Succeeded") -> dict[str, Any]:
    result: dict[str, Any] = {"modelUri": uri, "metrics": metrics}
    if digest:
        result["modelDigest"] = digest
    return {"apiVersion": API_VERSION, "kind": "TrainingJob", "metadata": {"name": "train", "namespace": "ml"},
            "status": {"phase": phase, "attempt": attempt, "result": result}}


def gated(promotion: dict[str, Any] | None = AT_LEAST_90, revision: int | None = None) -> ModelEndpointSpec:
    model: dict[str, Any] = {"trainingJobRef": {"name": "train"}}
    if revision is not None:
        model["revision"] = revision
    spec: dict[str, Any] = {"model": model}
    if promotion is not None:
        spec["rollout"] = {"promotion": promotion}
    return ModelEndpointSpec.model_validate(spec)


def decide(spec: ModelEndpointSpec, training_job: dict[str, Any], previous: dict[str, Any]) -> revisions.RolloutDecision:
    resolution = resolve_model(spec.model, training_job, previous.get("modelUri"))
    return revisions.decide(spec, resolution, training_job, previous)


R1 = {"revision": 1, "uri": "/m/v1", "trainingJob": "train", "attempt": 1, "metrics": {"accuracy": 0.92}, "servedAt": "t1"}
SERVING_R1 = {"modelUri": "/m/v1", "model": R1, "revisions": [R1]}


def test_the_first_model_that_passes_is_revision_1_with_its_run_and_metrics():
    decision = decide(gated(), job("/m/v1", {"accuracy": 0.92}, digest="sha256:ab"), {})
    assert decision.serve == {"revision": 1, "uri": "/m/v1", "trainingJob": "train", "attempt": 1,
                              "digest": "sha256:ab", "metrics": {"accuracy": 0.92}}
    assert decision.blocked is None and decision.resolution.uri == "/m/v1"
    assert decision.header == "revision=1; digest=sha256:ab"


def test_a_worse_model_is_blocked_and_the_serving_one_stays():
    decision = decide(gated(), job("/m/v2", {"accuracy": 0.8}, attempt=2), SERVING_R1)
    assert decision.resolution.uri == "/m/v1" and decision.serve == R1
    assert decision.blocked == ("PromotionGateFailed", "new model /m/v2 not promoted: accuracy 0.8 fails the threshold accuracy >= 0.9")
    assert "serving revision 1 (/m/v1)" in decision.resolution.message


def test_a_first_model_that_fails_the_gate_serves_nothing():
    decision = decide(gated(), job("/m/v1", {"accuracy": 0.5}), {})
    assert decision.resolution.uri is None and decision.serve is None
    assert decision.blocked[0] == "PromotionGateFailed"


def test_a_better_model_becomes_the_next_revision():
    decision = decide(gated(), job("/m/v3", {"accuracy": 0.95}, attempt=3), SERVING_R1)
    assert decision.serve["revision"] == 2 and decision.resolution.uri == "/m/v3"
    assert decision.allowed == "revision 2 (/m/v3) passed the promotion gate (accuracy 0.95)"


def test_without_a_gate_every_new_model_is_served():
    decision = decide(gated(promotion=None), job("/m/v2", {"accuracy": 0.1}), SERVING_R1)
    assert decision.serve["revision"] == 2 and decision.blocked is None


def test_a_pin_serves_an_earlier_revision_without_the_gate():
    r2 = {"revision": 2, "uri": "/m/v2", "metrics": {"accuracy": 0.5}, "servedAt": "t2"}
    previous = {"modelUri": "/m/v2", "model": r2, "revisions": [r2, {**R1, "stoppedAt": "t2", "stoppedReason": "replaced"}]}
    decision = decide(gated(revision=1), job("/m/v2", {"accuracy": 0.5}), previous)
    assert decision.resolution.uri == "/m/v1" and decision.serve == {k: v for k, v in R1.items() if k != "servedAt"}
    assert decision.stop_reason == "rolled back to revision 1 (spec.model.revision)"


def test_a_pin_to_an_unknown_revision_is_blocked_and_keeps_serving():
    decision = decide(gated(revision=7), job("/m/v1", {"accuracy": 0.92}), SERVING_R1)
    assert decision.blocked == ("RevisionNotFound", "spec.model.revision 7 is not in status.revisions (known: 1)")
    assert decision.resolution.uri == "/m/v1"


def test_a_model_served_before_comes_back_without_the_gate():
    r2 = {"revision": 2, "uri": "/m/v2", "servedAt": "t2"}
    previous = {"modelUri": "/m/v2", "model": r2, "revisions": [r2, R1]}
    decision = decide(gated(), job("/m/v1", {"accuracy": 0.1}), previous)
    assert decision.serve["revision"] == 1 and decision.blocked is None


def test_a_status_from_before_revisions_counts_its_model_as_revision_1():
    decision = decide(gated(promotion=None), job("/m/v2", {}), {"modelUri": "/m/v1"})
    assert decision.serve["revision"] == 2


@pytest.mark.parametrize("rev, expected", [
    ({"revision": 3, "uri": "/m", "digest": "sha256:0123456789abcdef"}, "r3@0123456789ab"),
    ({"revision": 2, "uri": "/m", "trainingJob": "train", "attempt": 4}, "r2:train#4"),
    ({"revision": 1, "uri": "/m"}, "r1"),
])
def test_the_model_column_is_short(rev, expected):
    assert revisions.short(rev) == expected


def test_history_is_newest_first_names_why_a_revision_stopped_and_is_bounded():
    previous: dict[str, Any] = {}
    for n in range(1, 14):
        serve = {"revision": n, "uri": f"/m/v{n}"}
        status = revisions.with_revisions({"conditions": []}, revisions.RolloutDecision(None, serve), previous, 1, f"t{n}")  # type: ignore[arg-type]
        previous = status
    assert [r["revision"] for r in previous["revisions"]] == list(range(13, 3, -1))
    assert previous["model"] == {"revision": 13, "uri": "/m/v13", "servedAt": "t13"}
    assert previous["revisions"][1]["stoppedReason"] == "replaced: now serving revision 13"
    assert previous["revisions"][1]["stoppedAt"] == "t13" and previous["modelShort"] == "r13"


# The reconciler shell, through the fake client: the rollouts as a user sees them.

def reconcile(kube: FakeKube) -> dict[str, Any]:
    endpoint_controller.reconcile("ml", "mep", client=kube, config=Settings())
    return kube.get(API_VERSION, "ModelEndpoint", "ml", "mep")["status"]


def served_env(kube: FakeKube) -> dict[str, str]:
    container = kube.get("apps/v1", "Deployment", "ml", "mep")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_the_shell_blocks_a_worse_run_promotes_a_better_one_and_rolls_back_on_a_pin():
    endpoint = MakeEndpoint().from_job("train").set("rollout", {"promotion": AT_LEAST_90}).obj()
    kube = FakeKube(endpoint, job("/m/v1", {"accuracy": 0.92}))
    status = reconcile(kube)
    assert (status["modelShort"], served_env(kube)["KUBEFORGE_MODEL_REVISION"]) == ("r1:train#1", "revision=1; uri=/m/v1")

    kube.store(job("/m/v2", {"accuracy": 0.8}, attempt=2))
    status = reconcile(kube)
    assert served_env(kube)["KUBEFORGE_MODEL_URI"] == "/m/v1" and status["modelShort"] == "r1:train#1"
    blocked = condition(status, "RolloutBlocked")
    assert (blocked["status"], blocked["reason"]) == ("True", "PromotionGateFailed")
    assert "accuracy 0.8 fails the threshold accuracy >= 0.9" in blocked["message"]
    assert condition(status, "Stalled")["status"] == "True" and status["reason"] == "PromotionGateFailed"
    assert ("Warning", "PromotionGateFailed") in [(t, r) for t, r, _ in kube.events]
    patches = len(kube.status_patches)
    reconcile(kube)
    assert len(kube.status_patches) == patches  # a blocked endpoint settles: no write per pass

    kube.store(job("/m/v3", {"accuracy": 0.95}, attempt=3))
    status = reconcile(kube)
    assert served_env(kube)["KUBEFORGE_MODEL_URI"] == "/m/v3" and status["modelShort"] == "r2:train#3"
    assert condition(status, "RolloutBlocked")["status"] == "False"
    assert [(r["revision"], r.get("stoppedReason")) for r in status["revisions"]] == [
        (2, None), (1, "replaced: now serving revision 2")]

    pinned = kube.get(API_VERSION, "ModelEndpoint", "ml", "mep")
    pinned["spec"]["model"]["revision"] = 1
    pinned["metadata"]["generation"] = 2
    kube.store(pinned)
    status = reconcile(kube)
    assert served_env(kube)["KUBEFORGE_MODEL_URI"] == "/m/v1" and status["model"]["revision"] == 1
    assert status["revisions"][1]["stoppedReason"] == "rolled back to revision 1 (spec.model.revision): now serving revision 1"


def test_the_gated_sample_parses_to_a_gate_on_accuracy_and_loss():
    import yaml

    from tests.chart import REPO

    spec = ModelEndpointSpec.model_validate(yaml.safe_load((REPO / "samples" / "modelendpoint-gated.yaml").read_text())["spec"])
    assert spec.rollout.promotion is not None
    assert [(t.metric, t.op, t.value) for t in spec.rollout.promotion.thresholds] == [("accuracy", ">=", 0.9), ("loss", "<=", 0.5)]
    assert gate.judge(spec.rollout.promotion, {"accuracy": 0.93, "loss": 0.3}, {"accuracy": 0.932, "loss": 0.31}).passed


def test_a_status_patch_nulls_a_nested_key_the_new_revision_lacks():
    from kubeforge.statuswrite import status_patch

    patch = status_patch({"model": {"revision": 2, "digest": "sha256:2"}, "modelShort": "r2"}, {"model": {"revision": 1}, "modelShort": "r1"})
    assert patch == {"model": {"revision": 1, "digest": None}, "modelShort": "r1"}
