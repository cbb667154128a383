"""spec.model resolution: a URI as given, or the output of a TrainingJob once (and only once) it succeeded."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from kubeforge.api.modelendpoint import ModelEndpointReason as Reason
from kubeforge.modelendpoint.modelsource import resolve_model
from kubeforge.trainingjob import observe
from kubeforge.trainingjob.status import decide
from tests.unit.modelendpoint_wrappers import MakeEndpoint
from tests.unit.trainingjob_wrappers import MakeTrainingJob, worker_job, worker_pod

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=timezone.utc)
JOB_REF = MakeEndpoint().from_job("train").model().model


def job(phase: str, model_uri: str | None = None, message: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if model_uri:
        status["result"] = {"modelUri": model_uri}
    if message:
        status["conditions"] = [{"type": "Failed", "status": "True", "reason": "WorkerFailed", "message": message}]
    return {"metadata": {"name": "train"}, "status": status}


def test_a_uri_is_served_as_given():
    r = resolve_model(MakeEndpoint().uri("pvc://models/a").model().model, None, None)
    assert (r.uri, r.reason, r.resolved) == ("pvc://models/a", Reason.RESOLVED, True)


def test_a_running_job_makes_the_endpoint_wait():
    r = resolve_model(JOB_REF, job("Running"), None)
    assert (r.uri, r.reason) == (None, Reason.WAITING_FOR_TRAINING_JOB)
    assert "train" in r.message and not r.failed


def test_a_missing_job_is_waited_for_not_failed():
    r = resolve_model(JOB_REF, None, None)
    assert (r.uri, r.reason, r.failed) == (None, Reason.TRAINING_JOB_NOT_FOUND, False)


def test_a_succeeded_job_delivers_its_model_uri():
    r = resolve_model(JOB_REF, job("Succeeded", "pvc://models/train/final"), None)
    assert (r.uri, r.reason) == ("pvc://models/train/final", Reason.RESOLVED)


def test_a_succeeded_job_without_a_result_yet_is_still_waited_for():
    assert resolve_model(JOB_REF, job("Succeeded"), None).reason == Reason.WAITING_FOR_TRAINING_JOB


def test_a_failed_job_fails_the_endpoint_with_its_own_message():
    r = resolve_model(JOB_REF, job("Failed", message="worker 1 exited 137 (OOMKilled)"), None)
    assert (r.reason, r.failed, r.uri) == (Reason.TRAINING_JOB_FAILED, True, None)
    assert r.message == "TrainingJob train failed: worker 1 exited 137 (OOMKilled)"


def test_a_rerun_keeps_serving_the_previous_model_until_the_new_one_lands():
    r = resolve_model(JOB_REF, job("Running"), "pvc://models/train/v1")
    assert (r.uri, r.reason, r.resolved) == ("pvc://models/train/v1", Reason.SERVING_PREVIOUS, True)
    r = resolve_model(JOB_REF, job("Succeeded", "pvc://models/train/v2"), "pvc://models/train/v1")
    assert r.uri == "pvc://models/train/v2"


def test_a_job_reporting_an_s3_uri_is_served_from_the_store():
    r = resolve_model(JOB_REF, job("Succeeded", "s3://bucket/model"), None)
    assert (r.uri, r.reason) == ("s3://bucket/model", Reason.RESOLVED)


def test_a_job_reporting_an_unsupported_object_store_uri_is_refused_clearly():
    r = resolve_model(JOB_REF, job("Succeeded", "gs://bucket/model"), None)
    assert (r.reason, r.failed) == (Reason.INVALID_MODEL_URI, True)
    assert "gs:// is not supported yet" in r.message


def test_a_job_failed_by_the_trainingjob_state_machine_explains_itself_to_the_endpoint():
    """Reads what trainingjob.status.decide really writes, so the two kinds cannot drift apart."""
    pods = [worker_pod("train", 1, 0, phase="Failed", exit_code=1), worker_pod("train", 1, 1)]
    failed_job = MakeTrainingJob().nodes(2).model()
    plan = decide(failed_job, observe.observe("train", None, [worker_job("train", 1, "Failed")], pods), NOW)
    r = resolve_model(JOB_REF, {"metadata": {"name": "train"}, "status": plan.status}, None)
    assert (r.reason, r.failed) == (Reason.TRAINING_JOB_FAILED, True)
    assert "worker 0 (pod train-a1-0-xyz) exited with code 1" in r.message
