"""ModelEndpoint status from the model resolution and the Deployment's rollout: phase, conditions, counts."""

from __future__ import annotations

import pytest

from kubeforge.api.modelendpoint import ModelEndpointReason as Reason
from kubeforge.modelendpoint import status
from kubeforge.modelendpoint.modelsource import ModelResolution
from tests.unit.modelendpoint_wrappers import MakeDeployment, MakeEndpoint

NOW = "2026-11-29T02:00:00Z"
SERVING = ModelResolution("pvc://models/run-1", Reason.RESOLVED, "serving pvc://models/run-1")
WAITING = ModelResolution(None, Reason.WAITING_FOR_TRAINING_JOB, "waiting for TrainingJob train to succeed (phase Running)")
FAILED = ModelResolution(None, Reason.TRAINING_JOB_FAILED, "TrainingJob train failed: OOM")


def rollout(deployment: MakeDeployment | None, desired: int = 2) -> status.Rollout:
    return status.observe_rollout(deployment.obj() if deployment else None, desired)


def compute(resolution=SERVING, deployment: MakeDeployment | None = None, previous=None, desired=2, now=NOW):
    return status.build_status(
        name="mep", namespace="ml", generation=3, resolution=resolution, runtime="onnxruntime",
        rollout=rollout(deployment, desired), previous=previous or {}, now=now, degraded_after=60,
    )


def condition(st: dict, type_: str) -> tuple[str, str]:
    c = next(c for c in st["conditions"] if c["type"] == type_)
    return c["status"], c["reason"]


@pytest.mark.parametrize(
    "deployment, state",
    [
        (None, "Missing"),
        (MakeDeployment(2, generation=2).unobserved(), "Unobserved"),
        (MakeDeployment(2).counts(replicas=2, updated=1, ready=2), "Rolling"),
        (MakeDeployment(2).counts(replicas=3, updated=2, ready=3), "Rolling"),
        (MakeDeployment(2).counts(replicas=2, updated=2, ready=1), "Short"),
        (MakeDeployment(2).counts(replicas=2, updated=2, ready=2), "Complete"),
        (MakeDeployment(2).counts(replicas=3, updated=1, ready=2).progressing("ProgressDeadlineExceeded"), "Stalled"),
    ],
    ids=["missing", "unobserved", "half updated", "old pod still there", "one not ready", "complete", "deadline"],
)
def test_rollout_states_from_deployment_status(deployment, state):
    assert rollout(deployment).state == state


@pytest.mark.parametrize(
    "resolution, deployment, phase, ready, progressing",
    [
        (WAITING, None, "WaitingForModel", ("False", "WaitingForModel"), ("True", "WaitingForModel")),
        (FAILED, None, "Failed", ("False", "TrainingJobFailed"), ("False", "TrainingJobFailed")),
        (SERVING, None, "Pending", ("False", "DeploymentPending"), ("True", "RollingOut")),
        (SERVING, MakeDeployment(2).counts(2, 1, 1), "Deploying", ("False", "RollingOut"), ("True", "RollingOut")),
        (SERVING, MakeDeployment(2).counts(2, 2, 0), "Deploying", ("False", "RollingOut"), ("True", "RollingOut")),
        (SERVING, MakeDeployment(2).counts(2, 2, 2), "Ready", ("True", "AllReplicasReady"), ("False", "RolloutComplete")),
        (SERVING, MakeDeployment(2).counts(3, 1, 2).progressing("ProgressDeadlineExceeded"), "Degraded",
         ("False", "ProgressDeadlineExceeded"), ("False", "ProgressDeadlineExceeded")),
    ],
    ids=["waiting for job", "job failed", "no deployment yet", "rolling", "first pods starting", "ready", "stalled"],
)
def test_phase_and_conditions(resolution, deployment, phase, ready, progressing):
    st, _ = compute(resolution, deployment)
    assert st["phase"] == phase
    assert condition(st, "Ready") == ready
    assert condition(st, "Progressing") == progressing


def test_waiting_for_a_training_job_is_spelled_out_in_model_resolved():
    st, _ = compute(WAITING)
    assert condition(st, "ModelResolved") == ("False", "WaitingForTrainingJob")
    assert "modelUri" not in st and "url" not in st


def test_ready_endpoint_reports_counts_url_selector_and_model():
    st, recheck = compute(SERVING, MakeDeployment(2).counts(2, 2, 2).progressing("NewReplicaSetAvailable"))
    assert (st["replicas"], st["readyReplicas"], st["ready"]) == (2, 2, "2/2")
    assert st["url"] == "http://mep.ml.svc"
    assert st["selector"] == "kubeforge.io/modelendpoint=mep"
    assert st["modelUri"] == "pvc://models/run-1" and st["runtime"] == "onnxruntime"
    assert st["observedGeneration"] == 3
    assert recheck is None


def test_a_lost_replica_is_deploying_within_the_grace_period_and_says_when_to_look_again():
    previous, _ = compute(SERVING, MakeDeployment(2).counts(2, 2, 2).progressing("NewReplicaSetAvailable"))
    short = MakeDeployment(2).counts(2, 2, 1).progressing("NewReplicaSetAvailable")
    st, recheck = compute(SERVING, short, previous, now="2026-11-29T02:00:20Z")
    assert st["phase"] == "Deploying"
    assert recheck == 60  # Ready just turned False
    later, recheck = compute(SERVING, short, st, now="2026-11-29T02:00:50Z")
    assert later["phase"] == "Deploying" and recheck == 30


def test_a_lost_replica_degrades_the_endpoint_after_the_grace_period():
    previous, _ = compute(SERVING, MakeDeployment(2).counts(2, 2, 2).progressing("NewReplicaSetAvailable"))
    short = MakeDeployment(2).counts(2, 2, 1).progressing("NewReplicaSetAvailable")
    st, _ = compute(SERVING, short, previous, now="2026-11-29T02:00:10Z")
    st, _ = compute(SERVING, short, st, now="2026-11-29T02:01:20Z")
    assert st["phase"] == "Degraded"
    assert condition(st, "Ready") == ("False", "ReplicasUnavailable")


def test_a_first_rollout_with_slow_pods_is_not_degraded():
    slow = MakeDeployment(2).counts(2, 2, 0).progressing("ReplicaSetUpdated")
    st, _ = compute(SERVING, slow, now="2026-11-29T02:00:00Z")
    st, _ = compute(SERVING, slow, st, now="2026-11-29T02:09:00Z")
    assert st["phase"] == "Deploying"


def test_transition_time_moves_only_when_ready_flips():
    first, _ = compute(SERVING, MakeDeployment(2).counts(2, 1, 1), now="2026-11-29T02:00:00Z")
    second, _ = compute(SERVING, MakeDeployment(2).counts(2, 2, 1), first, now="2026-11-29T02:00:30Z")
    ready_at = lambda st: next(c for c in st["conditions"] if c["type"] == "Ready")["lastTransitionTime"]  # noqa: E731
    assert ready_at(second) == "2026-11-29T02:00:00Z"
    third, _ = compute(SERVING, MakeDeployment(2).counts(2, 2, 2), second, now="2026-11-29T02:01:00Z")
    assert ready_at(third) == "2026-11-29T02:01:00Z"


def test_desired_replicas_come_from_the_hpa_managed_deployment_when_autoscaled():
    auto = MakeEndpoint().autoscale(2, 8).model()
    assert status.desired_replicas(auto, MakeDeployment(5).obj()) == 5
    assert status.desired_replicas(auto, None) == 2
    assert status.desired_replicas(MakeEndpoint().replicas(3).model(), MakeDeployment(5).obj()) == 3


def test_failures_are_warnings_and_progress_is_normal():
    failed, _ = compute(FAILED)
    ready = next(c for c in failed["conditions"] if c["type"] == "Ready")
    assert status.is_warning(ready)
    ok, _ = compute(SERVING, MakeDeployment(2).counts(2, 2, 2))
    assert not status.is_warning(next(c for c in ok["conditions"] if c["type"] == "Ready"))


@pytest.mark.parametrize(
    "resolution, deployment, reconciling, stalled",
    [
        (WAITING, None, "True", "False"),
        (SERVING, MakeDeployment(2).counts(2, 1, 1), "True", "False"),
        (SERVING, MakeDeployment(2).counts(2, 2, 2), "False", "False"),
        (FAILED, None, "False", "True"),
        (SERVING, MakeDeployment(2).counts(3, 1, 2).progressing("ProgressDeadlineExceeded"), "False", "True"),
    ],
    ids=["waiting", "rolling", "ready", "failed", "stalled rollout"],
)
def test_kstatus_reads_reconciling_and_stalled(resolution, deployment, reconciling, stalled):
    st, _ = compute(resolution, deployment)
    assert (condition(st, "Reconciling")[0], condition(st, "Stalled")[0]) == (reconciling, stalled)
