"""The ModelEndpoint's status as a pure function of the model resolution and the Deployment's rollout.

Conditions follow metav1.Condition; their types, reasons and the phases are constants in
kubeforge.api.modelendpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubeforge import conditions as cond
from kubeforge import podreasons
from kubeforge.api.modelendpoint import ModelEndpointSpec
from kubeforge.api.modelendpoint import ModelEndpointConditionType as Type
from kubeforge.api.modelendpoint import ModelEndpointPhase as Phase
from kubeforge.api.modelendpoint import ModelEndpointReason as Reason
from kubeforge.modelendpoint import builders, modelsource
from kubeforge.modelendpoint.modelsource import ModelResolution
from kubeforge.timestamps import parse_rfc3339

# The Deployment controller's own (apps/v1) condition type and reasons, as it reports them.
DEPLOYMENT_PROGRESSING = "Progressing"
DEPLOYMENT_SETTLED = "NewReplicaSetAvailable"
DEPLOYMENT_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


@dataclass(frozen=True)
class Rollout:
    """The Deployment's rollout as counted from its status."""

    state: str  # Missing | Unobserved | Rolling | Stalled | Short | Complete
    desired: int
    replicas: int = 0
    updated: int = 0
    ready: int = 0
    settled_once: bool = False  # the Deployment finished a rollout (reason NewReplicaSetAvailable)


def desired_replicas(spec: ModelEndpointSpec, deployment: dict[str, Any] | None) -> int:
    """With autoscaling the HPA owns the count: the Deployment's spec.replicas is the truth."""
    if spec.autoscaling:
        live = ((deployment or {}).get("spec") or {}).get("replicas")
        return live if live is not None else spec.autoscaling.min_replicas
    return spec.replicas


def observe_rollout(deployment: dict[str, Any] | None, desired: int) -> Rollout:
    if deployment is None:
        return Rollout("Missing", desired)
    status = deployment.get("status") or {}
    counts = dict(
        replicas=status.get("replicas", 0),
        updated=status.get("updatedReplicas", 0),
        ready=status.get("readyReplicas", 0),
    )
    progressing = cond.find(status.get("conditions"), DEPLOYMENT_PROGRESSING) or {}
    settled = progressing.get("reason") == DEPLOYMENT_SETTLED
    if status.get("observedGeneration", 0) < deployment["metadata"].get("generation", 1):
        return Rollout("Unobserved", desired, **counts)
    if progressing.get("reason") == DEPLOYMENT_DEADLINE_EXCEEDED:
        return Rollout("Stalled", desired, **counts)
    if counts["updated"] < desired or counts["replicas"] > counts["updated"]:
        return Rollout("Rolling", desired, settled_once=settled, **counts)
    if counts["ready"] < desired:
        return Rollout("Short", desired, settled_once=settled, **counts)
    return Rollout("Complete", desired, settled_once=settled, **counts)


@dataclass(frozen=True)
class Verdict:
    phase: str
    ready: tuple[str, str, str]  # status, reason, message
    progressing: tuple[str, str, str]
    recheck_after: float | None = None  # seconds until the verdict may change without an event


def judge(resolution: ModelResolution, rollout: Rollout, short_since: float | None, degraded_after: float) -> Verdict:
    """Phase and conditions; `short_since` is how many seconds Ready has already been False."""
    if resolution.failed:
        return Verdict(Phase.FAILED, (cond.FALSE, resolution.reason, resolution.message), (cond.FALSE, resolution.reason, resolution.message))
    if resolution.uri is None:
        return Verdict(Phase.WAITING_FOR_MODEL, (cond.FALSE, Reason.WAITING_FOR_MODEL, resolution.message), (cond.TRUE, Reason.WAITING_FOR_MODEL, resolution.message))
    counted = f"{rollout.ready}/{rollout.desired} replicas ready, {rollout.updated} up to date"
    if rollout.state in ("Missing", "Unobserved"):
        msg = "waiting for the Deployment controller"
        return Verdict(Phase.PENDING if rollout.state == "Missing" else Phase.DEPLOYING, (cond.FALSE, Reason.DEPLOYMENT_PENDING, msg), (cond.TRUE, Reason.ROLLING_OUT, msg))
    if rollout.state == "Stalled":
        msg = f"rollout exceeded its progress deadline; {counted}"
        return Verdict(Phase.DEGRADED, (cond.FALSE, Reason.PROGRESS_DEADLINE_EXCEEDED, msg), (cond.FALSE, Reason.PROGRESS_DEADLINE_EXCEEDED, msg))
    if rollout.state == "Complete":
        msg = f"{rollout.ready}/{rollout.desired} replicas ready"
        return Verdict(Phase.READY, (cond.TRUE, Reason.ALL_REPLICAS_READY, msg), (cond.FALSE, Reason.ROLLOUT_COMPLETE, msg))
    if rollout.state == "Short" and rollout.settled_once:
        waited = short_since or 0.0
        if waited >= degraded_after:
            msg = f"only {rollout.ready}/{rollout.desired} replicas ready for {int(waited)}s"
            return Verdict(Phase.DEGRADED, (cond.FALSE, Reason.REPLICAS_UNAVAILABLE, msg), (cond.FALSE, Reason.REPLICAS_UNAVAILABLE, msg))
        return Verdict(Phase.DEPLOYING, (cond.FALSE, Reason.ROLLING_OUT, counted), (cond.TRUE, Reason.ROLLING_OUT, counted), degraded_after - waited)
    return Verdict(Phase.DEPLOYING, (cond.FALSE, Reason.ROLLING_OUT, counted), (cond.TRUE, Reason.ROLLING_OUT, counted))


def with_pod_reason(verdict: Verdict, blocker: podreasons.Blocker | None, waited: float, start_deadline: float) -> Verdict:
    """The pods' first blocking reason in the Ready message; held back past the start deadline, the endpoint is Degraded."""
    if blocker is None or verdict.phase in (Phase.READY, Phase.FAILED, Phase.WAITING_FOR_MODEL):
        return verdict
    why = blocker.describe()
    if waited >= start_deadline and verdict.phase != Phase.DEGRADED:
        msg = f"server pods not ready for {int(waited)}s (start deadline {start_deadline:g}s): {why}"
        return Verdict(Phase.DEGRADED, (cond.FALSE, Reason.START_DEADLINE_EXCEEDED, msg), (cond.FALSE, Reason.START_DEADLINE_EXCEEDED, msg))
    ready, progressing = verdict.ready, verdict.progressing
    recheck = [t for t in (verdict.recheck_after, start_deadline - waited if waited < start_deadline else None) if t is not None]
    return Verdict(verdict.phase, (ready[0], ready[1], f"{ready[2]}; {why}"), (progressing[0], progressing[1], f"{progressing[2]}; {why}"),
                   min(recheck) if recheck else None)


def short_reason(verdict: Verdict, resolution: ModelResolution, blocker: podreasons.Blocker | None) -> str | None:
    """One word for the REASON column: why the endpoint is not Ready (None when it is)."""
    if verdict.phase == Phase.READY:
        return None
    if not resolution.resolved:
        return resolution.reason
    if blocker is not None:
        return blocker.reason
    return verdict.ready[1]


def seconds_not_ready(previous: dict[str, Any], now: str) -> float:
    """How long the Ready condition has been False (0 when it is True or absent)."""
    ready = cond.find(previous.get("conditions"), Type.READY)
    if not ready or ready.get("status") != cond.FALSE:
        return 0.0
    return max(0.0, (parse_rfc3339(now) - parse_rfc3339(ready["lastTransitionTime"])).total_seconds())


def build_status(
    *,
    name: str,
    namespace: str,
    generation: int,
    resolution: ModelResolution,
    runtime: str,
    rollout: Rollout,
    previous: dict[str, Any],
    now: str,
    degraded_after: float,
    blocker: podreasons.Blocker | None = None,
    start_deadline: float = 300.0,
    model_digest: str | None = None,
) -> tuple[dict[str, Any], float | None]:
    """The full status to write, and seconds until it should be recomputed without an event (or None)."""
    waited = seconds_not_ready(previous, now)
    verdict = with_pod_reason(judge(resolution, rollout, waited, degraded_after), blocker, waited, start_deadline)
    conditions = list(previous.get("conditions") or [])
    model_status = cond.TRUE if resolution.resolved else cond.FALSE
    conditions = cond.set_condition(conditions, Type.MODEL_RESOLVED, model_status, resolution.reason, resolution.message, generation, now)
    conditions = cond.set_condition(conditions, Type.READY, *verdict.ready, generation, now)
    conditions = cond.set_condition(conditions, Type.PROGRESSING, *verdict.progressing, generation, now)
    conditions = _kstatus_conditions(conditions, verdict, generation, now)
    status: dict[str, Any] = {
        "phase": verdict.phase,
        "conditions": conditions,
        "observedGeneration": generation,
        "replicas": rollout.replicas,
        "readyReplicas": rollout.ready,
        "desiredReplicas": rollout.desired,
        "ready": f"{rollout.ready}/{rollout.desired}",
        "selector": builders.selector_string(name),
        "runtime": runtime,
    }
    if resolution.uri:
        status["modelUri"] = resolution.uri
        status["url"] = builders.service_url(name, namespace)
    reason = short_reason(verdict, resolution, blocker)
    if reason:
        status["reason"] = reason
    if model_digest:
        status["modelDigest"] = model_digest
    return status, verdict.recheck_after


def _kstatus_conditions(conditions: list[dict[str, Any]], verdict: Verdict, generation: int, now: str) -> list[dict[str, Any]]:
    _, reason, message = verdict.ready
    reconciling = cond.TRUE if verdict.phase in (Phase.PENDING, Phase.WAITING_FOR_MODEL, Phase.DEPLOYING) else cond.FALSE
    stalled = cond.TRUE if verdict.phase in (Phase.FAILED, Phase.DEGRADED) else cond.FALSE
    conditions = cond.set_condition(conditions, Type.RECONCILING, reconciling, reason, message, generation, now)
    return cond.set_condition(conditions, Type.STALLED, stalled, reason, message, generation, now)


def is_warning(condition: dict[str, Any]) -> bool:
    """Which condition transitions deserve a Warning event rather than a Normal one."""
    return condition["reason"] in (modelsource.FAILURES | {Reason.PROGRESS_DEADLINE_EXCEEDED, Reason.REPLICAS_UNAVAILABLE,
                                                           Reason.START_DEADLINE_EXCEEDED, Reason.MODEL_CLAIM_NOT_FOUND,
                                                           Reason.PROMOTION_GATE_FAILED, Reason.REVISION_NOT_FOUND,
                                                           Reason.CANARY_FAILED, Reason.EVALUATION_FAILED})
