"""Why a TrainingJob's workers are not all up, said in its own status, and what is done about it.

Pure helpers of status.decide, each working on its draft: Kueue's admission state (from the
Workload), the first blocking reason among the pods (kubeforge.podreasons), a pool that can
never hold the gang (kubeforge.placement), the schedule deadline (Stalled, and without Kueue
the release of partly placed workers), and the suspended-time bookkeeping that keeps queued or
preempted time out of activeDeadlineSeconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from kubeforge import conditions, podreasons, podspec
from kubeforge.api.trainingjob import TrainingJob
from kubeforge.api.trainingjob import TrainingJobConditionType as Type
from kubeforge.api.trainingjob import TrainingJobPhase as Phase
from kubeforge.api.trainingjob import TrainingJobReason as Reason
from kubeforge.placement import Demand, Verdict, judge
from kubeforge.timestamps import parse_rfc3339
from kubeforge.trainingjob import admission, observe

if TYPE_CHECKING:
    from kubeforge.trainingjob.status import _Draft as Draft

NORMAL, WARNING = "Normal", "Warning"
ADMISSION_POLL_SECONDS = 10.0
# Blockers that mean "not placed" (the schedule deadline releases these); the others are "placed, not started".
UNPLACED = (podreasons.MISSING_VOLUME, podreasons.INSUFFICIENT, podreasons.UNTOLERATED_TAINT, podreasons.NO_MATCHING_NODE,
            podreasons.UNSCHEDULABLE)
DEADLINE_REASONS = (Reason.SCHEDULE_DEADLINE_EXCEEDED, Reason.START_DEADLINE_EXCEEDED, Reason.RELEASED)


@dataclass(frozen=True)
class Policy:
    """Operator settings decide() needs (kubeforge.settings), passed in to keep it pure."""

    schedule_deadline_seconds: float = 600.0
    gpu_resource: str = "nvidia.com/gpu"


def queue_of(job: TrainingJob) -> str | None:
    return job.spec.scheduling.queue_name if job.spec.scheduling else None


def deadline_of(d: Draft) -> float:
    return float(d.job.spec.run_policy.schedule_deadline_seconds or d.policy.schedule_deadline_seconds)


def account_suspension(d: Draft) -> None:
    """suspendedSince while the Job is suspended (queued, preempted, released, by the user); its length is
    added to suspendedSeconds when it resumes."""
    suspended = d.obs.job_state == observe.SUSPENDED
    since = d.status.get("suspendedSince")
    if suspended and not since:
        d.status["suspendedSince"] = d.stamp
    elif not suspended and since:
        elapsed = max(0, int((d.now - parse_rfc3339(since)).total_seconds()))
        d.status["suspendedSeconds"] = int(d.status.get("suspendedSeconds") or 0) + elapsed
        d.status.pop("suspendedSince")


def track_admission(d: Draft) -> admission.Admission | None:
    """status.admission from the Workload; counts a preemption once and announces admissions."""
    queue = queue_of(d.job)
    if not queue or d.obs.job_state == observe.MISSING:
        return None
    now = admission.admission(queue, d.obs.workload)
    previous = d.status.get("admission")
    if admission.newly_preempted(previous, now):
        d.status["preemptions"] = int(d.status.get("preemptions") or 0) + 1
        d.event(WARNING, Reason.PREEMPTED, f"{now.message}; the workers stop and resume from the newest checkpoint when readmitted")
    if now.state == admission.ADMITTED and (previous or {}).get("state") != admission.ADMITTED:
        d.event(NORMAL, Reason.ADMITTED, f"{now.message}: starting {d.job.spec.nodes} workers")
    d.status["admission"] = now.to_wire()
    return now


def queued(d: Draft, now: admission.Admission | None) -> None:
    """The Job is suspended for Kueue: waiting for (re)admission, or preempted."""
    d.status.pop("pendingSince", None)
    # Kueue writes its reasons on the Workload, which no watch of ours sees (it does not carry our labels).
    d.plan.requeue(ADMISSION_POLL_SECONDS)
    fit = fits_pool(d)
    if now is not None and (now.state == admission.PREEMPTED or d.status.get("phase") == Phase.PREEMPTED) \
            and now.state != admission.ADMITTED:
        message = f"preempted by Kueue ({d.status.get('preemptions', 1)}x), queued again in {now.queue}; resumes from " \
                  f"{resume_point(d)} when readmitted"
        d.status.update(phase=Phase.PREEMPTED, message=message, reason=Reason.PREEMPTED)
        d.condition(Type.RUNNING, conditions.FALSE, Reason.PREEMPTED, message)
        return
    message = now.message if now else f"waiting for Kueue to admit the workload (queue {queue_of(d.job)})"
    why, short = explain(d, None, fit)
    if fit is not None and not fit.fits:
        stall(d, fit.reason, f"the pool can never hold the workers: {why}")
    waiting(d, f"{message}; {why}" if why else message, Reason.WAITING_FOR_ADMISSION, short or (now.state if now else admission.QUEUED))


def resume_point(d: Draft) -> str:
    checkpoint = d.status.get("lastCheckpoint")
    return f"checkpoint {checkpoint}" if checkpoint else "the newest checkpoint"


def waiting(d: Draft, message: str, reason: str, short: str | None) -> None:
    d.status.update(phase=Phase.PENDING if d.obs.attempt == 1 else Phase.RESTARTING, message=message)
    d.status["reason"] = short
    if short is None:
        d.status.pop("reason")
    d.condition(Type.RUNNING, conditions.FALSE, reason, message)


def fits_pool(d: Draft) -> Verdict | None:
    """The Schedulable condition from the pool's nodes, when the controller read them this pass."""
    if d.obs.nodes is None:
        return None
    spec = d.job.spec
    place = podspec.placement(spec.node_pool, spec.gpus, d.policy.gpu_resource)
    requests = podspec.container_resources(spec.resources, d.policy.gpu_resource).get("requests", {})
    pods = spec.elastic.min_nodes if spec.elastic else spec.nodes
    verdict = judge(Demand(pods, requests, place.get("nodeSelector", {}), tuple(place.get("tolerations", []))), d.obs.nodes)
    before = conditions.find(d.status.get("conditions"), Type.SCHEDULABLE)
    if not verdict.fits and (before is None or before.get("status") == conditions.TRUE):
        d.event(WARNING, verdict.reason, f"the workers can never all be placed: {verdict.message}")
    d.condition(Type.SCHEDULABLE, conditions.TRUE if verdict.fits else conditions.FALSE, verdict.reason, verdict.message)
    return verdict


def explain(d: Draft, blocker: podreasons.Blocker | None, fit: Verdict | None) -> tuple[str, str | None]:
    """Every reason the workers wait, most fundamental first, and the one word for the REASON column."""
    parts: list[str] = []
    short = None
    if fit is not None and not fit.fits:
        parts.append(f"never fits: {fit.message}")
        short = fit.reason
    if d.obs.missing_claims:
        parts.append(", ".join(f'persistentvolumeclaim "{claim}" not found' for claim in d.obs.missing_claims))
        short = short or podreasons.MISSING_VOLUME
    if blocker is not None and not (blocker.reason == podreasons.MISSING_VOLUME and d.obs.missing_claims):
        parts.append(blocker.describe(total=d.job.spec.nodes))
        short = short or blocker.reason
    return "; ".join(parts), short


def workers_not_up(d: Draft, counted: str) -> None:
    """An active attempt short of workers: say why, and act on a pool that never fits or a passed deadline."""
    queue = queue_of(d.job)
    blocker = podreasons.first_blocker(d.obs.live_pods, d.policy.gpu_resource)
    fit = fits_pool(d)
    why, short = explain(d, blocker, fit)
    message = f"{counted}; {why}" if why else counted
    if fit is not None and not fit.fits and not queue:
        release(d, Reason.SCHEDULE_DEADLINE_EXCEEDED, f"the pool can never hold the workers: {why}", short)
        return
    since = d.status.setdefault("pendingSince", d.stamp)
    limit = deadline_of(d)
    due = parse_rfc3339(since) + timedelta(seconds=limit)
    if d.now < due:
        d.plan.requeue((due - d.now).total_seconds())
        waiting(d, message, Reason.WORKERS_PENDING, short)
        return
    unplaced = blocker is None or blocker.reason.startswith(UNPLACED) or bool(d.obs.missing_claims)
    reason = Reason.SCHEDULE_DEADLINE_EXCEEDED if unplaced else Reason.START_DEADLINE_EXCEEDED
    what = "placed" if unplaced else "started"
    stalled = f"workers not all {what} within {limit:g}s (scheduleDeadlineSeconds): {message}"
    if unplaced and not queue and _any_placed(d):
        release(d, reason, stalled, short)
        return
    stall(d, reason, stalled)
    waiting(d, message, reason, short or reason)


def stall(d: Draft, reason: str, message: str) -> None:
    if not conditions.is_true(d.status.get("conditions"), Type.STALLED):
        d.event(WARNING, reason, message)
    d.condition(Type.STALLED, conditions.TRUE, reason, message)


def release(d: Draft, reason: str, why: str, short: str | None) -> None:
    """Without Kueue nothing stops a gang from holding part of its GPUs forever: suspend the Job (its pods go)."""
    limit = deadline_of(d)
    message = f"{why}; released the placed workers (Job suspended), placing again in {limit:g}s"
    d.plan.job_suspend = True
    d.status["releasedAt"] = d.stamp
    d.status.setdefault("suspendedSince", d.stamp)
    d.status.pop("pendingSince", None)
    stall(d, reason, message)
    d.event(WARNING, Reason.RELEASED, message)
    waiting(d, message, Reason.RELEASED, short or reason)
    d.plan.requeue(limit)


def still_released(d: Draft) -> bool:
    """A Job this operator released: keep it suspended until the retry time, or while the pool can never hold it."""
    released = d.status.get("releasedAt")
    if not released:
        return False
    fit = fits_pool(d)
    due = parse_rfc3339(released) + timedelta(seconds=deadline_of(d))
    if (fit is not None and not fit.fits) or d.now < due:
        if d.now < due:
            d.plan.requeue((due - d.now).total_seconds())
        stalled = conditions.find(d.status.get("conditions"), Type.STALLED) or {}
        short = fit.reason if fit is not None and not fit.fits else d.status.get("reason")
        waiting(d, stalled.get("message") or "workers released", Reason.RELEASED, short)
        return True
    d.status.pop("releasedAt")
    return False


def all_up(d: Draft) -> None:
    """The workers run: nothing to explain any more; a deadline stall is over."""
    for key in ("reason", "pendingSince", "releasedAt"):
        d.status.pop(key, None)
    stalled = conditions.find(d.status.get("conditions"), Type.STALLED)
    if stalled and stalled.get("status") == conditions.TRUE and stalled.get("reason") in DEADLINE_REASONS:
        d.condition(Type.STALLED, conditions.FALSE, Reason.ALL_WORKERS_READY, "all workers placed and started")


def resumed_note(d: Draft) -> str:
    """Appended to the Running message after a preemption: where the workers resumed from."""
    count = d.status.get("preemptions")
    return f"; resumed from {resume_point(d)} after {count} preemption{'s' if count != 1 else ''}" if count else ""


def _any_placed(d: Draft) -> bool:
    return any((p.get("spec") or {}).get("nodeName") for p in d.obs.live_pods)
