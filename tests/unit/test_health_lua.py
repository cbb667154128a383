"""The Argo CD health checks (examples/argocd/health/*.lua) run in Lua 5.1 against statuses the controllers' own status functions build."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from kubeforge.api.trainingjob import TrainingJob
from kubeforge.modelendpoint.status import Rollout
from kubeforge.trainingjob import observe
from kubeforge.trainingjob import status as job_status
from tests.chart import REPO
from tests.unit.status_samples import (READY_FALSE_SINCE_LONG_AGO, RESOLVED, TRAINING_FAILED, WAITING, blocked_status, endpoint,
                                       endpoint_status_for)
from tests.unit.trainingjob_wrappers import MakeTrainingJob

HEALTH = REPO / "examples" / "argocd" / "health"


def strip_none(value: Any) -> Any:
    """JSON null reaches Argo CD's Lua as nil: drop None the same way."""
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_none(v) for v in value]
    return value


def argocd_health(script: Path, obj: dict[str, Any]) -> tuple[str, str]:
    """Run a health script as Argo CD does (gopher-lua is Lua 5.1): `obj` global in, `hs` table out."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True, register_eval=False)
    lua.globals().obj = lua.table_from(strip_none(obj), recursive=True)
    hs = lua.execute(script.read_text())
    return hs["status"], hs["message"]


ENDPOINT_CASES = {
    "all replicas ready": (endpoint(endpoint_status_for(RESOLVED, Rollout("Complete", 2, 2, 2, 2, True))), "Healthy", "2/2 replicas ready"),
    "rolling out": (endpoint(endpoint_status_for(RESOLVED, Rollout("Rolling", 2, 2, 1, 1))), "Progressing", "1/2 replicas ready"),
    "deployment not yet observed": (endpoint(endpoint_status_for(RESOLVED, Rollout("Unobserved", 2))), "Progressing", "Deployment controller"),
    "waiting for its training job": (endpoint(endpoint_status_for(WAITING, Rollout("Missing", 2))), "Progressing", "waiting for TrainingJob"),
    "training job failed": (endpoint(endpoint_status_for(TRAINING_FAILED, Rollout("Missing", 2))), "Degraded", "OOMKilled"),
    "rollout past its deadline": (endpoint(endpoint_status_for(RESOLVED, Rollout("Stalled", 2, 2, 2, 0))), "Degraded", "progress deadline"),
    "replicas lost after a rollout": (
        endpoint(endpoint_status_for(RESOLVED, Rollout("Short", 2, 2, 2, 1, True), READY_FALSE_SINCE_LONG_AGO)),
        "Degraded",
        "only 1/2 replicas ready",
    ),
    "scaled to zero": (endpoint(endpoint_status_for(RESOLVED, Rollout("Complete", 0)), replicas=0), "Suspended", "zero"),
    "a new model blocked by the promotion gate": (endpoint(blocked_status()), "Degraded", "rollout blocked: new model pvc://models/v2 not promoted: accuracy 0.8"),
    "not yet seen by the operator": (endpoint(None), "Progressing", "observe the endpoint"),
    "spec changed since the last status": (
        endpoint(endpoint_status_for(RESOLVED, Rollout("Complete", 2, 2, 2, 2, True)), generation=2),
        "Progressing",
        "generation 2",
    ),
}


@pytest.mark.parametrize("obj, health, message", ENDPOINT_CASES.values(), ids=ENDPOINT_CASES.keys())
def test_model_endpoint_health(obj, health, message):
    got_health, got_message = argocd_health(HEALTH / "modelendpoint.lua", obj)
    assert (got_health, message in got_message) == (health, True), got_message


def test_an_autoscaled_endpoint_at_its_floor_is_not_suspended():
    obj = endpoint(endpoint_status_for(RESOLVED, Rollout("Complete", 1, 1, 1, 1, True)), replicas=0, autoscaling={"maxReplicas": 4})
    assert argocd_health(HEALTH / "modelendpoint.lua", obj)[0] == "Healthy"


CLOCK = datetime(2026, 1, 1, 0, 10, tzinfo=timezone.utc)


def ready_worker(index: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"train-{index}", "annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def after_passes(job: MakeTrainingJob, *observations: observe.Observed) -> dict[str, Any]:
    """The TrainingJob as it stands after the controller's decide() ran once per observation."""
    manifest = job.obj()
    for obs in observations:
        plan = job_status.decide(TrainingJob.from_manifest(manifest), obs, CLOCK)
        manifest["status"] = plan.status
    return manifest


MISSING = observe.Observed(1, observe.MISSING)
RUNNING = observe.Observed(1, observe.ACTIVE, pods=[ready_worker(0), ready_worker(1)])
COMPLETE = observe.Observed(1, observe.COMPLETE)
FAILED = observe.Observed(1, observe.FAILED)

JOB_CASES = {
    "job just created": (after_passes(MakeTrainingJob().nodes(2), MISSING), "Progressing", "created Job"),
    "all workers running": (after_passes(MakeTrainingJob().nodes(2), MISSING, RUNNING), "Progressing", "2/2 workers running"),
    "restarting after a lost worker": (
        after_passes(MakeTrainingJob().nodes(2).set("runPolicy.backoffLimit", 3), MISSING, FAILED),
        "Progressing",
        "restarting the group as attempt 2",
    ),
    "succeeded": (after_passes(MakeTrainingJob().nodes(2), MISSING, RUNNING, COMPLETE), "Healthy", "all 2 workers finished"),
    "restarts exhausted": (
        after_passes(MakeTrainingJob().nodes(2).set("runPolicy.backoffLimit", 0), MISSING, FAILED),
        "Degraded",
        "backoffLimit 0",
    ),
    "suspended by the user": (
        after_passes(MakeTrainingJob().nodes(2).set("runPolicy.suspend", True), MISSING),
        "Suspended",
        "suspend is true",
    ),
    "not yet seen by the operator": (MakeTrainingJob().obj(), "Progressing", "observe the job"),
    "spec changed since the last status": (
        {**after_passes(MakeTrainingJob().nodes(2), MISSING), "metadata": {"name": "train", "generation": 2}},
        "Progressing",
        "generation 2",
    ),
}


@pytest.mark.parametrize("obj, health, message", JOB_CASES.values(), ids=JOB_CASES.keys())
def test_training_job_health(obj, health, message):
    got_health, got_message = argocd_health(HEALTH / "trainingjob.lua", obj)
    assert (got_health, message in got_message) == (health, True), got_message


def test_a_stalled_running_job_says_so():
    manifest = after_passes(MakeTrainingJob().nodes(2), MISSING, RUNNING)
    stalled = {"type": "Stalled", "status": "True", "reason": "ProgressDeadlineExceeded", "message": "no progress for 600s"}
    manifest["status"]["conditions"].append(stalled)
    assert argocd_health(HEALTH / "trainingjob.lua", manifest) == ("Progressing", "no progress for 600s; " + manifest["status"]["message"])


def stuck_job(**stalled_reason: str) -> dict[str, Any]:
    manifest = after_passes(MakeTrainingJob().nodes(2), MISSING)
    manifest["status"]["conditions"].append({"type": stalled_reason["type"], "status": stalled_reason.get("status", "True"),
                                             "reason": stalled_reason["reason"], "message": "the reason, with numbers"})
    return manifest


@pytest.mark.parametrize("obj, health", [
    pytest.param(stuck_job(type="Schedulable", status="False", reason="ExceedsPoolCapacity"), "Degraded", id="never-fits"),
    pytest.param(stuck_job(type="Stalled", reason="ScheduleDeadlineExceeded"), "Degraded", id="not-placed-in-time"),
    pytest.param(stuck_job(type="Stalled", reason="StartDeadlineExceeded"), "Degraded", id="not-started-in-time"),
])
def test_a_job_that_waiting_will_not_fix_is_degraded_with_its_reason(obj, health):
    assert argocd_health(HEALTH / "trainingjob.lua", obj) == (health, "the reason, with numbers")


def test_a_preempted_job_is_suspended_until_readmitted():
    manifest = after_passes(MakeTrainingJob().nodes(2), MISSING)
    manifest["status"].update(phase="Preempted", message="preempted by Kueue (1x), queued again in team-a")
    assert argocd_health(HEALTH / "trainingjob.lua", manifest) == ("Suspended", "preempted by Kueue (1x), queued again in team-a")


@pytest.mark.parametrize("kind, script", [("ModelEndpoint", "modelendpoint.lua"), ("TrainingJob", "trainingjob.lua")])
def test_the_argocd_config_map_carries_each_script_verbatim(kind, script):
    config = yaml.safe_load((REPO / "examples" / "argocd" / "argocd-cm-health.yaml").read_text())
    assert config["data"][f"resource.customizations.health.kubeforge.io_{kind}"] == (HEALTH / script).read_text()
