"""An endpoint fed by a TrainingJob: it waits, deploys the job's model, rolls to a re-run's, and names a failure.

The test drives the TrainingJob's status itself (status subresource) on a
suspended job, so it does not depend on the TrainingJob controller's timing.
"""

from __future__ import annotations

import pytest

from tests.integration.clusterkit import wait_for
from tests.integration.modelendpoint_kit import Kit, condition, endpoint, env_of, kit_fixture  # noqa: F401 (the fixture `kit`)

pytestmark = pytest.mark.integration

REF = {"trainingJobRef": {"name": "train"}}


def succeed(kit: Kit, model_uri: str) -> None:
    kit.set_job_status("train", {"phase": "Succeeded", "completionTime": "2026-11-29T02:00:00Z",
                                 "result": {"modelUri": model_uri, "metrics": {"accuracy": 0.9}}})


def test_endpoint_waits_for_its_training_job_then_serves_its_model(kit: Kit):
    kit.create_suspended_job("train")
    kit.create(endpoint("served", model=REF, autoscaling={"minReplicas": 2, "maxReplicas": 4, "metric": "inflight"}))

    waiting = kit.wait_phase("served", "WaitingForModel")
    assert condition(waiting, "ModelResolved")["reason"] == "WaitingForTrainingJob"
    assert kit.apps.list_namespaced_deployment(kit.namespace).items == []

    succeed(kit, "/models/train/v1")

    ready = kit.wait_phase("served", "Ready", modelUri="/models/train/v1", ready="2/2")
    assert condition(ready, "ModelResolved")["status"] == "True"
    assert kit.deployment("served").metadata.generation == 1  # created at minReplicas, not scaled up from 1
    assert env_of(kit.deployment("served"))["KUBEFORGE_MODEL_DIR"] == "/models/train/v1"


def test_a_rerun_with_a_new_model_rolls_the_endpoint_to_it(kit: Kit):
    kit.create_suspended_job("train")
    kit.create(endpoint("rolled", model=REF))
    succeed(kit, "/models/train/v1")
    kit.wait_phase("rolled", "Ready", modelUri="/models/train/v1")

    # Re-run: not Succeeded any more (Suspended is what the job's controller keeps it at, so no race).
    kit.set_job_status("train", {"phase": "Suspended", "completionTime": None, "result": None})
    # While the job re-runs the endpoint keeps serving the model it has.
    def kept_serving() -> dict:
        obj = kit.check_phase("rolled", "Ready", modelUri="/models/train/v1")
        assert condition(obj, "ModelResolved")["reason"] == "ServingPreviousModel", condition(obj, "ModelResolved")
        return obj

    wait_for(kept_serving, timeout=30, message="still serving v1 while the job re-runs")
    succeed(kit, "/models/train/v2")

    kit.wait_phase("rolled", "Ready", modelUri="/models/train/v2")
    assert env_of(kit.deployment("rolled"))["KUBEFORGE_MODEL_URI"] == "/models/train/v2"


def test_a_failed_training_job_fails_the_endpoint_with_a_clear_reason(kit: Kit):
    kit.create_suspended_job("train")
    kit.create(endpoint("orphan", model=REF))
    kit.wait_phase("orphan", "WaitingForModel")

    kit.set_job_status("train", {
        "phase": "Failed",
        "conditions": [{"type": "Failed", "status": "True", "reason": "PermanentExitCode",
                        "message": "worker 0 exited 1", "lastTransitionTime": "2026-11-29T02:00:00Z"}],
    })

    failed = kit.wait_phase("orphan", "Failed")
    ready = condition(failed, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "TrainingJobFailed")
    assert "TrainingJob train failed" in ready["message"]


def test_an_endpoint_created_before_its_job_waits_for_it(kit: Kit):
    kit.create(endpoint("early", model=REF))
    assert condition(kit.wait_phase("early", "WaitingForModel"), "ModelResolved")["reason"] == "TrainingJobNotFound"

    kit.create_suspended_job("train")
    succeed(kit, "/models/train/v1")

    kit.wait_phase("early", "Ready", modelUri="/models/train/v1")
