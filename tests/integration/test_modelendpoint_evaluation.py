"""A model from a plain URI gated on the held-out evaluation its own server pods run (spec.rollout.promotion.evaluation),
against the real API server: the first model runs alone as a candidate until its report says passed, a worse one is
blocked (RolloutBlocked EvaluationFailed naming metric, value and threshold, a Warning Event, the old model serving),
and a better one is promoted across an operator restart.

kwok plays the kubelet: the test writes what the init container model-eval would have reported into the candidate
pod's status (its termination message), as the kubelet does; tests/workload/test_serve_evaluation.py runs the real
evaluation. `pytest -s` prints the `kubectl get mep` lines and the status at each step.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.clusterkit import wait_for
from tests.integration.modelendpoint_kit import Kit, condition, endpoint, env_of, kit_fixture  # noqa: F401 (the fixture `kit`)

pytestmark = pytest.mark.integration

HELD_OUT = "/data/heldout.jsonl"
ROLLOUT = {"promotion": {"thresholds": [{"metric": "accuracy", "op": ">=", "value": 0.9}], "notWorseThanServing": True,
                         "tolerance": 0.01, "evaluation": {"uri": HELD_OUT}}}


def candidate_pods(kit: Kit) -> list[Any]:
    return [p for p in kit.core.list_namespaced_pod(kit.namespace, label_selector="kubeforge.io/canary-of=scored").items
            if p.metadata.deletion_timestamp is None]


def report_evaluation(kit: Kit, accuracy: float, floor: float) -> str:
    """What the kubelet shows once model-eval ended on the candidate pod: exit 0 and the report, or (below the
    floor) exit 1 and a crash loop. Returns the pod's name."""
    pod = wait_for(lambda: candidate_pods(kit) or None, timeout=60, message="the candidate pod")[0]
    report = {"metrics": {"accuracy": accuracy, "f1": accuracy, "loss": round(1 - accuracy, 6), "samples": 200},
              "data": HELD_OUT, "passed": accuracy >= floor}
    if accuracy >= floor:
        state, last = {"terminated": {"exitCode": 0, "reason": "Completed", "message": json.dumps(report)}}, {}
    else:
        report["failed"] = f"accuracy {accuracy:g} fails the threshold accuracy >= {floor:g}"
        last = {"terminated": {"exitCode": 1, "reason": "Error", "message": json.dumps(report)}}
        state = {"waiting": {"reason": "CrashLoopBackOff"}}
    status = {"name": "model-eval", "image": "server", "imageID": "", "ready": False, "restartCount": 0 if last == {} else 2,
              "state": state, "lastState": last}
    kit.core.patch_namespaced_pod_status(pod.metadata.name, kit.namespace, {"status": {"initContainerStatuses": [status]}})
    return pod.metadata.name


def show(kit: Kit, step: str) -> None:
    print(f"\n--- {step}\n$ kubectl get mep scored -o wide\n" + kit.kubectl("get", "mep", "scored", "-o", "wide"))
    for field in ("{.status.model}", "{.status.canary}", "{.status.conditions[?(@.type==\"RolloutBlocked\")]}"):
        print(f"$ kubectl get mep scored -o jsonpath='{field}'\n" + kit.kubectl("get", "mep", "scored", "-o", f"jsonpath={field}"))


def serving(kit: Kit, uri: str) -> dict[str, Any]:
    obj = kit.check_phase("scored", "Ready", modelUri=uri)
    assert env_of(kit.deployment("scored"))["KUBEFORGE_MODEL_URI"] == uri
    return obj


def canary_gone(kit: Kit) -> bool:
    return not candidate_pods(kit) and kit.cluster.kubectl("-n", kit.namespace, "get", "deploy", "scored-canary", check=False).returncode != 0


def test_a_plain_uri_is_served_only_after_its_held_out_evaluation_passes(kit: Kit, operator):  # noqa: F811
    kit.create(endpoint("scored", model={"uri": "/models/v1"}, replicas=2, rollout=ROLLOUT))
    waiting = kit.wait_phase("scored", "WaitingForModel")
    assert condition(waiting, "ModelResolved")["reason"] == "EvaluatingModel"
    init = kit.apps.read_namespaced_deployment("scored-canary", kit.namespace).spec.template.spec.init_containers[0]
    assert init.name == "model-eval" and {e.name: e.value for e in init.env}["KUBEFORGE_EVAL_URI"] == HELD_OUT
    show(kit, "revision 1 evaluating alone (nothing serves yet)")

    report_evaluation(kit, 0.93, 0.9)
    obj = wait_for(lambda: serving(kit, "/models/v1"), timeout=60, message="revision 1 served after its evaluation passed")
    assert obj["status"]["model"]["evaluation"]["accuracy"] == 0.93
    wait_for(lambda: canary_gone(kit), timeout=30, message="the candidate removed")
    show(kit, "revision 1 passed (held-out accuracy 0.93): served")

    kit.patch_spec("scored", {"model": {"uri": "/models/v2"}})
    floor = 0.92  # notWorseThanServing: 0.93 - 0.01
    candidate = report_evaluation(kit, 0.85, floor)

    def blocked() -> dict[str, Any]:
        obj = serving(kit, "/models/v1")
        assert condition(obj, "RolloutBlocked")["status"] == "True", condition(obj, "RolloutBlocked")
        return obj
    obj = wait_for(blocked, timeout=60, message="the worse model blocked, v1 still served")
    assert condition(obj, "RolloutBlocked")["reason"] == "EvaluationFailed" and obj["status"]["reason"] == "EvaluationFailed"
    assert condition(obj, "RolloutBlocked")["message"] == (
        f"new model /models/v2 not promoted: held-out evaluation on {HELD_OUT}: accuracy 0.85 fails the threshold accuracy >= 0.92"
        f" (pod {candidate}); canary removed")
    assert condition(obj, "Stalled")["status"] == "True" and condition(obj, "Ready")["status"] == "True"
    wait_for(lambda: [e for e in kit.core.list_namespaced_event(kit.namespace, field_selector="involvedObject.name=scored").items
                      if e.reason == "EvaluationFailed" and e.type == "Warning"] or None, timeout=30, message="a Warning Event")
    wait_for(lambda: canary_gone(kit), timeout=30, message="the failed candidate removed")
    show(kit, "revision 2 failed its held-out evaluation (0.85 < 0.92): blocked, v1 serving")

    kit.patch_spec("scored", {"model": {"uri": "/models/v3"}})
    wait_for(lambda: candidate_pods(kit) or None, timeout=60, message="v3's candidate pod")
    operator.restart()  # mid-evaluation: the candidate and status.canary carry on
    report_evaluation(kit, 0.95, floor)
    obj = wait_for(lambda: serving(kit, "/models/v3"), timeout=90, message="v3 promoted")
    assert condition(obj, "RolloutBlocked")["status"] == "False"
    assert (obj["status"]["model"]["revision"], obj["status"]["model"]["evaluation"]["accuracy"]) == (2, 0.95)
    assert [(r["revision"], r["uri"]) for r in obj["status"]["revisions"]] == [(2, "/models/v3"), (1, "/models/v1")]
    wait_for(lambda: canary_gone(kit), timeout=30, message="the candidate removed after promotion")
    show(kit, "revision 2 (/models/v3, held-out accuracy 0.95) promoted, operator restarted mid-evaluation")


def test_the_api_server_refuses_an_evaluation_file_it_cannot_read(kit: Kit):
    from kubernetes.client.exceptions import ApiException

    bad = {"promotion": {"thresholds": [{"metric": "accuracy", "op": ">=", "value": 0.9}], "evaluation": {"uri": "gs://b/h.jsonl"}}}
    with pytest.raises(ApiException) as refused:
        kit.create(endpoint("bad", rollout=bad))
    assert refused.value.status == 422 and "spec.rollout.promotion.evaluation.uri" in refused.value.body, refused.value.body


def test_the_evaluated_sample_is_accepted_by_the_api_server(kit: Kit):
    from tests.chart import REPO

    out = kit.kubectl("apply", "--dry-run=server", "-f", str(REPO / "samples" / "modelendpoint-evaluated.yaml"))
    assert "sentiment-evaluated created (server dry run)" in out
