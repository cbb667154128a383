"""A ModelEndpoint's status says why it is not Ready: a model claim that does not exist, its pods' first blocking reason."""

from __future__ import annotations

from kubeforge import conditions
from kubeforge.modelendpoint import modelsource
from kubeforge.modelendpoint.modelsource import ModelResolution
from kubeforge.modelendpoint.status import Rollout, build_status
from kubeforge.podreasons import Blocker
from tests.unit.status_samples import NOW, RESOLVED, WAITING

CRASH = Blocker("CrashLoopBackOff", "container server exited with code 3: ValueError: no model; restarted 5 times", 2, "mep-abc")
NOT_READY_SINCE_100S = {"conditions": [{"type": "Ready", "status": "False", "reason": "RollingOut", "message": "",
                                        "lastTransitionTime": "2026-01-01T00:08:20Z"}]}


def status_for(resolution, rollout, blocker=None, previous=None, start_deadline=300.0):
    return build_status(name="minilm", namespace="ml", generation=1, resolution=resolution, runtime="onnxruntime", rollout=rollout,
                        previous=previous or {}, now=NOW, degraded_after=60.0, blocker=blocker, start_deadline=start_deadline)


def ready(status) -> dict:
    return conditions.find(status["conditions"], "Ready")


def test_a_pvc_model_whose_claim_is_missing_is_not_resolved():
    missing = modelsource.require_claim(RESOLVED, claim_exists=False)
    assert missing == ModelResolution(None, "ModelClaimNotFound",
                                      'persistentvolumeclaim "models" not found: pvc://models/minilm cannot be mounted')
    assert modelsource.require_claim(RESOLVED, claim_exists=True) is RESOLVED
    assert modelsource.model_claim(ModelResolution("/models/minilm", "ModelResolved", "")) is None
    status, _ = status_for(missing, Rollout("Missing", 2))
    assert status["phase"] == "WaitingForModel" and status["reason"] == "ModelClaimNotFound"
    resolved = conditions.find(status["conditions"], "ModelResolved")
    assert (resolved["status"], resolved["reason"]) == ("False", "ModelClaimNotFound")


def test_the_pods_reason_reaches_the_ready_message_and_the_reason_column():
    status, recheck = status_for(RESOLVED, Rollout("Rolling", 2, 2, 2, 0), CRASH)
    assert status["phase"] == "Deploying" and status["reason"] == "CrashLoopBackOff"
    assert ready(status)["message"] == "0/2 replicas ready, 2 up to date; 2 pods: " + CRASH.message
    assert recheck == 300.0


def test_held_back_past_the_start_deadline_is_degraded():
    status, _ = status_for(RESOLVED, Rollout("Rolling", 2, 2, 2, 0), CRASH, NOT_READY_SINCE_100S, start_deadline=60)
    assert status["phase"] == "Degraded" and status["reason"] == "CrashLoopBackOff"
    assert (ready(status)["reason"], ready(status)["message"]) == (
        "StartDeadlineExceeded", "server pods not ready for 100s (start deadline 60s): 2 pods: " + CRASH.message)
    assert conditions.find(status["conditions"], "Stalled")["status"] == "True"
    before, recheck = status_for(RESOLVED, Rollout("Rolling", 2, 2, 2, 0), CRASH, NOT_READY_SINCE_100S, start_deadline=300)
    assert before["phase"] == "Deploying" and recheck == 200.0


def test_a_ready_endpoint_has_no_reason_and_a_waiting_one_names_its_wait():
    done, _ = status_for(RESOLVED, Rollout("Complete", 2, 2, 2, 2, True))
    assert "reason" not in done
    waiting, _ = status_for(WAITING, Rollout("Missing", 2))
    assert waiting["reason"] == "WaitingForTrainingJob"
