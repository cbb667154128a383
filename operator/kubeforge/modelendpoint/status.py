"""The ModelEndpoint's status as a pure function of the model resolution and the Deployment's rollout.

Conditions follow metav1.Condition; Ready is what Argo CD / Flux kstatus and
`kubectl wait --for=condition=Ready` read, phase is what `kubectl get mep` shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubeforge import conditions as cond
from kubeforge.api.modelendpoint import ModelEndpointSpec
from kubeforge.modelendpoint import builders, modelsource
from kubeforge.modelendpoint.modelsource import ModelResolution

# Condition types.
MODEL_RESOLVED, READY, PROGRESSING = "ModelResolved", "Ready", "Progressing"
# kstatus' standard "abnormal-true" pair (sigs.k8s.io/cli-utils/pkg/kstatus), which Flux and
# `kubectl`-side waiters read on custom resources: without them kstatus calls a resource
# Current as soon as observedGeneration matches, even while it waits for its model.
RECONCILING, STALLED = "Reconciling", "Stalled"
KSTATUS_TYPES = (RECONCILING, STALLED)

# Ready / Progressing reasons (ModelResolved reasons live in modelsource).
ALL_READY = "AllReplicasReady"
"""Every desired replica runs the current pod template and is Ready."""
WAITING_FOR_MODEL = "WaitingForModel"
"""No model to serve yet, so no Deployment either."""
DEPLOYMENT_PENDING = "DeploymentPending"
"""The Deployment was applied but its controller has not reported on it yet."""
ROLLING_OUT = "RollingOut"
"""The Deployment is replacing or adding pods."""
REPLICAS_UNAVAILABLE = "ReplicasUnavailable"
"""The rollout had completed, but fewer replicas than desired have been Ready for longer than the grace period."""
PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
"""The Deployment controller gave up waiting for the rollout (progressDeadlineSeconds)."""
ROLLOUT_COMPLETE = "RolloutComplete"
"""Nothing left to roll out."""


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
    progressing = cond.find(status.get("conditions"), "Progressing") or {}
    settled = progressing.get("reason") == "NewReplicaSetAvailable"
    if status.get("observedGeneration", 0) < deployment["metadata"].get("generation", 1):
        return Rollout("Unobserved", desired, **counts)
    if progressing.get("reason") == PROGRESS_DEADLINE:
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
        return Verdict("Failed", (cond.FALSE, resolution.reason, resolution.message), (cond.FALSE, resolution.reason, resolution.message))
    if resolution.uri is None:
        return Verdict("WaitingForModel", (cond.FALSE, WAITING_FOR_MODEL, resolution.message), (cond.TRUE, WAITING_FOR_MODEL, resolution.message))
    counted = f"{rollout.ready}/{rollout.desired} replicas ready, {rollout.updated} up to date"
    if rollout.state in ("Missing", "Unobserved"):
        msg = "waiting for the Deployment controller"
        return Verdict("Pending" if rollout.state == "Missing" else "Deploying", (cond.FALSE, DEPLOYMENT_PENDING, msg), (cond.TRUE, ROLLING_OUT, msg))
    if rollout.state == "Stalled":
        msg = f"rollout exceeded its progress deadline; {counted}"
        return Verdict("Degraded", (cond.FALSE, PROGRESS_DEADLINE, msg), (cond.FALSE, PROGRESS_DEADLINE, msg))
    if rollout.state == "Complete":
        msg = f"{rollout.ready}/{rollout.desired} replicas ready"
        return Verdict("Ready", (cond.TRUE, ALL_READY, msg), (cond.FALSE, ROLLOUT_COMPLETE, msg))
    if rollout.state == "Short" and rollout.settled_once:
        waited = short_since or 0.0
        if waited >= degraded_after:
            msg = f"only {rollout.ready}/{rollout.desired} replicas ready for {int(waited)}s"
            return Verdict("Degraded", (cond.FALSE, REPLICAS_UNAVAILABLE, msg), (cond.FALSE, REPLICAS_UNAVAILABLE, msg))
        return Verdict("Deploying", (cond.FALSE, ROLLING_OUT, counted), (cond.TRUE, ROLLING_OUT, counted), degraded_after - waited)
    return Verdict("Deploying", (cond.FALSE, ROLLING_OUT, counted), (cond.TRUE, ROLLING_OUT, counted))


def seconds_not_ready(previous: dict[str, Any], now: str) -> float:
    """How long the Ready condition has been False (0 when it is True or absent)."""
    ready = cond.find(previous.get("conditions"), READY)
    if not ready or ready.get("status") != cond.FALSE:
        return 0.0
    return max(0.0, (_parse(now) - _parse(ready["lastTransitionTime"])).total_seconds())


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


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
) -> tuple[dict[str, Any], float | None]:
    """The full status to write, and seconds until it should be recomputed without an event (or None)."""
    verdict = judge(resolution, rollout, seconds_not_ready(previous, now), degraded_after)
    conditions = list(previous.get("conditions") or [])
    model_status = cond.TRUE if resolution.resolved else cond.FALSE
    conditions = cond.set_condition(conditions, MODEL_RESOLVED, model_status, resolution.reason, resolution.message, generation, now)
    conditions = cond.set_condition(conditions, READY, *verdict.ready, generation, now)
    conditions = cond.set_condition(conditions, PROGRESSING, *verdict.progressing, generation, now)
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
    return status, verdict.recheck_after


def _kstatus_conditions(conditions: list[dict[str, Any]], verdict: Verdict, generation: int, now: str) -> list[dict[str, Any]]:
    _, reason, message = verdict.ready
    reconciling = cond.TRUE if verdict.phase in ("Pending", "WaitingForModel", "Deploying") else cond.FALSE
    stalled = cond.TRUE if verdict.phase in ("Failed", "Degraded") else cond.FALSE
    conditions = cond.set_condition(conditions, RECONCILING, reconciling, reason, message, generation, now)
    return cond.set_condition(conditions, STALLED, stalled, reason, message, generation, now)


def is_warning(condition: dict[str, Any]) -> bool:
    """Which condition transitions deserve a Warning event rather than a Normal one."""
    return condition["reason"] in (modelsource.FAILURES | {PROGRESS_DEADLINE, REPLICAS_UNAVAILABLE})
