"""Reads what the children say: the attempt Job's state, worker counts, rank 0's progress and result."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kubeforge.contract import PROGRESS_KEY
from kubeforge.trainingjob import admission, names
from kubeforge.trainingjob.exitcodes import completion_index

COMPLETE, FAILED, ACTIVE, SUSPENDED, MISSING = "Complete", "Failed", "Active", "Suspended", "Missing"


@dataclass(frozen=True)
class Observed:
    """One attempt as the API server shows it; pure data for status.decide."""

    attempt: int
    job_state: str  # COMPLETE | FAILED | ACTIVE | SUSPENDED | MISSING
    job_started: str | None = None  # the Job's creationTimestamp: when this attempt began
    pods: list[dict[str, Any]] = field(default_factory=list)
    older_jobs: list[str] = field(default_factory=list)  # Jobs of earlier attempts, to delete
    job_uid: str | None = None
    workload: dict[str, Any] | None = None  # Kueue's Workload for the current Job (queued jobs only)
    nodes: list[dict[str, Any]] | None = None  # the pool's nodes, read while workers wait; None: not read
    missing_claims: tuple[str, ...] = ()  # PVCs the workers mount that do not exist (checked while they wait)
    progress_record: str | None = None  # rank 0's JSON from the job's progress ConfigMap

    @property
    def live_pods(self) -> list[dict[str, Any]]:
        return [p for p in self.pods if not p["metadata"].get("deletionTimestamp")]

    def rank0(self) -> dict[str, Any] | None:
        return next((p for p in self.live_pods if completion_index(p) == 0), None) or next(
            (p for p in self.pods if completion_index(p) == 0), None
        )


def job_state(job: dict[str, Any] | None) -> str:
    """Complete / Failed per the Job's conditions; FailureTarget counts as failed (set before pods finish)."""
    if job is None or job["metadata"].get("deletionTimestamp"):
        return MISSING
    conditions = {c.get("type"): c.get("status") for c in (job.get("status") or {}).get("conditions") or []}
    if conditions.get("Complete") == "True":
        return COMPLETE
    if conditions.get("Failed") == "True" or conditions.get("FailureTarget") == "True":
        return FAILED
    return SUSPENDED if job["spec"].get("suspend") else ACTIVE


def observe(name: str, recorded_attempt: int | None, jobs: list[dict[str, Any]], pods: list[dict[str, Any]],
            workloads: list[dict[str, Any]] | None = None, nodes: list[dict[str, Any]] | None = None,
            missing_claims: tuple[str, ...] = (), progress_map: dict[str, Any] | None = None) -> Observed:
    """`jobs` and `pods`: every child the job label selects; only the current attempt's count.

    The current attempt is the one status records, or a newer one whose Job exists: the
    reconciler creates a Job before it writes status, so after a crash in between the
    next pass adopts that Job instead of creating the attempt again. `workloads`: Kueue's Workloads for
    these Jobs (the current Job's is kept), `nodes` and `missing_claims` as read while the workers wait,
    `progress_map`: the job's progress ConfigMap, where rank 0 reports.
    """
    attempt = max(recorded_attempt or 1, newest_attempt(jobs))
    current = next((j for j in jobs if j["metadata"]["name"] == names.worker_job(name, attempt)), None)
    uid = current["metadata"].get("uid") if current else None
    older = [j["metadata"]["name"] for j in jobs if (names.attempt_of(j) or 0) < attempt and not j["metadata"].get("deletionTimestamp")]
    return Observed(
        attempt=attempt,
        job_state=job_state(current),
        job_started=current["metadata"].get("creationTimestamp") if current else None,
        pods=[p for p in pods if names.attempt_of(p) == attempt],
        older_jobs=sorted(older),
        job_uid=uid,
        workload=admission.workload_of(uid, workloads or []),
        nodes=nodes,
        missing_claims=missing_claims,
        progress_record=((progress_map or {}).get("data") or {}).get(PROGRESS_KEY),
    )


def newest_attempt(jobs: list[dict[str, Any]]) -> int:
    """The highest attempt a child Job exists for."""
    return max((names.attempt_of(j) or 0 for j in jobs), default=0)


def is_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )


def worker_counts(observed: Observed, total: int) -> dict[str, Any]:
    phases = [(p.get("status") or {}).get("phase") for p in observed.pods]
    ready = sum(1 for p in observed.live_pods if is_ready(p))
    return {
        "summary": f"{ready}/{total}",
        "total": total,
        "ready": ready,
        "succeeded": phases.count("Succeeded"),
        "failed": phases.count("Failed"),
    }


def progress(observed: Observed) -> dict[str, Any] | None:
    """Rank 0's record in the progress ConfigMap, or None when absent, unreadable or an earlier attempt's."""
    record = _json_object(observed.progress_record)
    if record is None or not isinstance(record.get("step"), int):
        return None
    if record.get("attempt", observed.attempt) != observed.attempt:
        return None
    return {k: record[k] for k in ("step", "totalSteps", "loss", "epoch", "checkpoint") if record.get(k) is not None}


def result(observed: Observed) -> tuple[dict[str, Any] | None, str | None]:
    """Rank 0's termination message: (parsed JSON summary, None) or (None, the raw text) when not JSON."""
    pod = observed.rank0()
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        message = ((status.get("state") or {}).get("terminated") or {}).get("message")
        if status.get("name") == names.CONTAINER and message:
            parsed = _json_object(message)
            return (parsed, None) if parsed is not None else (None, message.strip()[-512:])
    return None, None


def _json_object(raw: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
