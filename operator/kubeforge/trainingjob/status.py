"""The TrainingJob state machine as a pure function: observed children + clock in, new status and actions out.

The reconciler applies the Plan: create / suspend / delete children first, then
patch status, then post the events. Any crash between two steps is healed by the
next pass: observe adopts a Job created by a pass that died before its status write,
and decide recomputes the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kubeforge import conditions
from kubeforge.api.common import EventType
from kubeforge.api.trainingjob import TERMINAL_PHASES, TrainingJob
from kubeforge.api.trainingjob import TrainingJobConditionType as Type
from kubeforge.api.trainingjob import TrainingJobPhase as Phase
from kubeforge.api.trainingjob import TrainingJobReason as Reason
from kubeforge.timestamps import parse_rfc3339, rfc3339
from kubeforge.trainingjob import names, observe, waiting
from kubeforge.trainingjob.exitcodes import attempt_failure
from kubeforge.trainingjob.waiting import Policy

NORMAL, WARNING = EventType.NORMAL, EventType.WARNING


@dataclass
class Plan:
    """What the reconciler does after computing status; every field is idempotent to apply."""

    status: dict[str, Any]
    create_job: int | None = None  # the attempt whose Job to create
    create_suspended: bool = False  # Kueue admits a Job by unsuspending it
    job_suspend: bool | None = None  # set the current Job's spec.suspend; None leaves it
    delete_jobs: list[str] = field(default_factory=list)
    delete_self: bool = False  # ttlSecondsAfterFinished passed
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue_after: float | None = None

    def requeue(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)


@dataclass
class _Draft:
    job: TrainingJob
    obs: observe.Observed
    now: datetime
    plan: Plan
    policy: Policy = field(default_factory=Policy)

    @property
    def status(self) -> dict[str, Any]:
        return self.plan.status

    @property
    def stamp(self) -> str:
        return rfc3339(self.now)

    def condition(self, type_: str, status: str, reason: str, message: str) -> None:
        current = self.status.get("conditions", [])
        self.status["conditions"] = conditions.set_condition(current, type_, status, reason, message, self.job.generation, self.stamp)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.plan.events.append((type_, reason, message))

    @property
    def current_job(self) -> str:
        return names.worker_job(self.job.name, self.obs.attempt)


def decide(job: TrainingJob, obs: observe.Observed, now: datetime, policy: Policy = Policy()) -> Plan:
    """The whole reconcile decision for one TrainingJob."""
    status = job.status.to_wire()
    status.update(observedGeneration=job.generation, attempt=obs.attempt, restarts=obs.attempt - 1)
    status["workers"] = observe.worker_counts(obs, job.spec.nodes)
    d = _Draft(job, obs, now, Plan(status=status, delete_jobs=list(obs.older_jobs)), policy)
    if status.get("phase") in TERMINAL_PHASES:
        _finished(d)
        return d.plan
    waiting.account_suspension(d)
    if job.spec.run_policy.suspend:
        _suspend(d)
    else:
        _run(d)
    return d.plan


def _finished(d: _Draft) -> None:
    """Terminal: stop what still runs (a deadline hit), and delete the job once its TTL passed."""
    if d.status["phase"] == Phase.FAILED and d.obs.job_state in (observe.ACTIVE, observe.SUSPENDED):
        d.plan.delete_jobs.append(d.current_job)
    ttl = d.job.spec.run_policy.ttl_seconds_after_finished
    finished = parse_rfc3339(d.status.get("completionTime"))
    if ttl is None or finished is None:
        return
    due = finished + timedelta(seconds=ttl)
    if d.now >= due:
        d.plan.delete_self = True
    else:
        d.plan.requeue((due - d.now).total_seconds())


def _suspend(d: _Draft) -> None:
    if d.obs.job_state == observe.ACTIVE:
        d.plan.job_suspend = True
    message = "spec.runPolicy.suspend is true: the workers are stopped, the job is kept"
    if not conditions.is_true(d.status.get("conditions"), Type.SUSPENDED):
        d.event(NORMAL, Reason.SUSPENDED_BY_USER, message)
    d.status.update(phase=Phase.SUSPENDED, message=message, reason=Reason.SUSPENDED_BY_USER)
    d.condition(Type.SUSPENDED, conditions.TRUE, Reason.SUSPENDED_BY_USER, message)
    d.condition(Type.RUNNING, conditions.FALSE, Reason.SUSPENDED_BY_USER, "suspended")


def _run(d: _Draft) -> None:
    if conditions.is_true(d.status.get("conditions"), Type.SUSPENDED):
        d.condition(Type.SUSPENDED, conditions.FALSE, Reason.RESUMED, "spec.runPolicy.suspend is false")
        d.event(NORMAL, Reason.RESUMED, "resuming the workers")
    d.status.setdefault("startTime", d.stamp)
    admitted = waiting.track_admission(d)
    if _deadline_passed(d):
        return
    state = d.obs.job_state
    if state != observe.MISSING:
        _mark_created(d)
    if state == observe.MISSING:
        _create(d)
    elif state == observe.SUSPENDED:
        _unsuspend(d, admitted)
    elif state == observe.COMPLETE:
        _succeed(d)
    elif state == observe.FAILED:
        _attempt_failed(d)
    else:
        _active(d)


def _deadline_passed(d: _Draft) -> bool:
    """activeDeadlineSeconds counts running time: time suspended (queued, preempted, released) is added back."""
    limit = d.job.spec.run_policy.active_deadline_seconds
    if limit is None or d.status.get("suspendedSince"):
        return False
    due = parse_rfc3339(d.status["startTime"]) + timedelta(seconds=limit + int(d.status.get("suspendedSeconds") or 0))
    if d.now < due:
        d.plan.requeue((due - d.now).total_seconds())
        return False
    _fail(d, Reason.DEADLINE_EXCEEDED, f"the job ran longer than activeDeadlineSeconds ({limit}s)")
    return True


def _create(d: _Draft) -> None:
    queue = d.job.spec.scheduling.queue_name if d.job.spec.scheduling else None
    d.plan.create_job = d.obs.attempt
    d.plan.create_suspended = bool(queue)
    if queue:  # queued time is suspended time
        d.status.setdefault("suspendedSince", d.stamp)
    _waiting(d, f"attempt {d.obs.attempt}: {_mark_created(d)}")


def _mark_created(d: _Draft) -> str:
    """The Created condition and its event, once; also for a Job whose creating pass died before its status write."""
    message = f"created Job {d.current_job} with {d.job.spec.nodes} workers"
    if not conditions.find(d.status.get("conditions"), Type.CREATED):
        d.condition(Type.CREATED, conditions.TRUE, Reason.JOB_CREATED, message)
        d.event(NORMAL, Reason.JOB_CREATED, message)
    return message


def _unsuspend(d: _Draft, admitted: waiting.admission.Admission | None) -> None:
    if waiting.queue_of(d.job):
        # Kueue unsuspends the Job when it admits the workload; resuming it ourselves would jump the queue.
        waiting.queued(d, admitted)
        return
    if waiting.still_released(d):
        return
    d.plan.job_suspend = False
    _waiting(d, "resuming the workers")


def _waiting(d: _Draft, message: str, reason: str = Reason.WORKERS_PENDING) -> None:
    waiting.waiting(d, message, reason, None)


def _active(d: _Draft) -> None:
    workers, nodes = d.status["workers"], d.job.spec.nodes
    _record_progress(d)
    if _too_few_elastic_workers(d):
        return
    needed = d.job.spec.elastic.min_nodes if d.job.spec.elastic else nodes
    if workers["ready"] + workers["succeeded"] < needed:
        counted = f"attempt {d.obs.attempt}: {workers['ready']}/{nodes} workers ready"
        if d.status.get("preemptions"):
            counted += f"; readmitted after preemption, resuming from {waiting.resume_point(d)}"
        waiting.workers_not_up(d, counted)
        return
    if d.status.get("phase") != Phase.RUNNING:
        # The stall clock starts when the workers are up, not when the Job was created (nor readmitted).
        d.status["lastProgressTime"] = d.stamp
    waiting.all_up(d)
    message = f"attempt {d.obs.attempt}: {workers['ready']}/{nodes} workers running" + waiting.resumed_note(d)
    d.status.update(phase=Phase.RUNNING, message=message)
    d.condition(Type.RUNNING, conditions.TRUE, Reason.ALL_WORKERS_READY, message)
    _check_stall(d)


def _too_few_elastic_workers(d: _Draft) -> bool:
    """An elastic group lives on while the Job controller replaces lost workers, down to minNodes."""
    elastic = d.job.spec.elastic
    if elastic is None or d.status.get("phase") != Phase.RUNNING:
        return False
    alive = sum(1 for p in d.obs.live_pods if (p.get("status") or {}).get("phase") in ("Pending", "Running", "Succeeded"))
    if alive >= elastic.min_nodes:
        return False
    _restart_or_fail(d, f"only {alive} workers left, fewer than elastic.minNodes ({elastic.min_nodes})")
    return True


def _record_progress(d: _Draft) -> None:
    record = observe.progress(d.obs)
    if record is None:
        return
    checkpoint = record.pop("checkpoint", None)
    if checkpoint:
        d.status["lastCheckpoint"] = str(checkpoint)
    if (d.status.get("progress") or {}).get("step") != record["step"]:
        d.status["lastProgressTime"] = d.stamp
        # Only a step that moved clears Stalled; a restarted group has yet to prove itself.
        if conditions.is_true(d.status.get("conditions"), Type.STALLED):
            d.condition(Type.STALLED, conditions.FALSE, Reason.PROGRESSING, f"step {record['step']} reached")
    d.status["progress"] = record


def _check_stall(d: _Draft) -> None:
    limit = d.job.spec.run_policy.progress_deadline_seconds
    if limit is None:
        return
    due = parse_rfc3339(d.status["lastProgressTime"]) + timedelta(seconds=limit)
    if d.now < due:
        d.plan.requeue((due - d.now).total_seconds())
        return
    message = f"no progress for {limit}s (progressDeadlineSeconds)"
    d.condition(Type.STALLED, conditions.TRUE, Reason.PROGRESS_DEADLINE_EXCEEDED, message)
    _restart_or_fail(d, message)


def _attempt_failed(d: _Draft) -> None:
    failure = attempt_failure(d.obs.pods, d.job.spec.run_policy)
    if not failure.retryable:
        _fail(d, Reason.PERMANENT_EXIT_CODE, f"{failure.describe()}, a permanent failure (runPolicy.permanentExitCodes)")
        return
    _restart_or_fail(d, failure.describe())


def _restart_or_fail(d: _Draft, why: str) -> None:
    """A group restart as the next attempt, unless backoffLimit restarts were already spent."""
    restarts, limit = d.obs.attempt - 1, d.job.spec.run_policy.backoff_limit
    if restarts >= limit:
        _fail(d, Reason.BACKOFF_LIMIT_EXCEEDED, f"{why}; already restarted {restarts} times (backoffLimit {limit})")
        return
    attempt = d.obs.attempt + 1
    message = f"attempt {d.obs.attempt} failed: {why}; restarting the group as attempt {attempt}"
    d.plan.delete_jobs.append(d.current_job)
    d.plan.create_job = attempt
    d.status.update(phase=Phase.RESTARTING, attempt=attempt, restarts=attempt - 1, message=message, reason=Reason.RESTARTING)
    for key in ("pendingSince", "releasedAt"):  # the new attempt's clock starts afresh
        d.status.pop(key, None)
    d.status["workers"] = {"summary": f"0/{d.job.spec.nodes}", "total": d.job.spec.nodes, "ready": 0, "succeeded": 0, "failed": 0}
    d.condition(Type.RUNNING, conditions.FALSE, Reason.RESTARTING, message)
    d.event(WARNING, Reason.RESTARTING, message)


def _succeed(d: _Draft) -> None:
    _record_progress(d)
    summary, raw = observe.result(d.obs)
    if summary is not None and d.job.spec.output:
        summary.setdefault("modelUri", d.job.spec.output.uri)
    if summary is not None:
        d.status["result"] = summary
    message = f"all {d.job.spec.nodes} workers finished" + (f": {raw}" if raw else "")
    d.status.update(phase=Phase.SUCCEEDED, completionTime=d.stamp, message=message)
    d.status.pop("reason", None)
    d.condition(Type.RUNNING, conditions.FALSE, Reason.COMPLETED, message)
    d.condition(Type.SUCCEEDED, conditions.TRUE, Reason.COMPLETED, message)
    d.event(NORMAL, Reason.COMPLETED, message)
    _finished(d)


def _fail(d: _Draft, reason: str, message: str) -> None:
    d.status.update(phase=Phase.FAILED, completionTime=d.stamp, message=message, reason=reason)
    d.condition(Type.RUNNING, conditions.FALSE, Reason.FINISHED, message)
    d.condition(Type.SUCCEEDED, conditions.FALSE, reason, message)
    d.condition(Type.FAILED, conditions.TRUE, reason, message)
    d.event(WARNING, reason, message)
    _finished(d)



# What rank 0's reports move; a write that changes nothing else can wait (progress_hold).
PROGRESS_KEYS = frozenset({"progress", "lastProgressTime", "lastCheckpoint"})


def progress_hold(previous: dict[str, Any], new: dict[str, Any], now: datetime, interval: float) -> float | None:
    """Seconds to hold back a status write that only moves progress; None: write now.

    Rank 0 reports every few seconds; one status write per report per job does not scale
    (1,000 jobs at one report per 10 s are 100 writes/s). A job's progress is written at
    most once per `interval`, counted from the last written step; anything else in the
    status (phase, workers, a condition) goes out at once and takes the progress along.
    """
    if interval <= 0 or previous == new or "progress" not in previous or not previous.get("lastProgressTime"):
        return None
    rest = lambda status: {k: v for k, v in status.items() if k not in PROGRESS_KEYS}  # noqa: E731
    if rest(previous) != rest(new):
        return None
    wait = interval - (now - parse_rfc3339(previous["lastProgressTime"])).total_seconds()
    return wait if wait > 0 else None


# A new attempt's workers come up within moments of each other, each a pod event: a status write
# per worker (0/4, 1/4, ... then Running) is four writes where two say it all. Within this many
# seconds of the Job's creation, a write that only moves the count waits (starting_hold).
STARTING_QUIET_SECONDS = 5.0


def starting_hold(previous: dict[str, Any], new: dict[str, Any], now: datetime, quiet: float = STARTING_QUIET_SECONDS) -> float | None:
    """Seconds to hold back a write that only moves how far a Pending job's workers are; None: write now.

    Counted from the Created condition (the Job's creation), so it needs no memory of past writes:
    a job whose workers are all up within `quiet` seconds writes Pending, then Running, and nothing
    between; one slower than that shows its count from then on. A new phase, reason or condition
    status goes out at once.
    """
    created = conditions.find(previous.get("conditions"), Type.CREATED)
    if previous == new or previous.get("phase") != Phase.PENDING or new.get("phase") != Phase.PENDING or created is None:
        return None
    if _gist(previous) != _gist(new):
        return None
    wait = quiet - (now - parse_rfc3339(created["lastTransitionTime"])).total_seconds()
    return wait if wait > 0 else None


def _gist(status: dict[str, Any]) -> dict[str, Any]:
    """A status without what a starting job's passes move: the worker count and the messages saying it."""
    rest = {k: v for k, v in status.items() if k not in ("workers", "message", "conditions")}
    return {**rest, "conditions": [(c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or []]}

