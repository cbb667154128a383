"""Kueue's view of a queued TrainingJob, read from the Workload Kueue made for its Job: queued, admitted, preempted.

Pure. How kubeforge meets Kueue (hack/kueue/README.md): each attempt's Indexed Job is created
with `spec.suspend: true` and the label `kueue.x-k8s.io/queue-name`; Kueue's batch/Job
integration makes one Workload per Job (label `kueue.x-k8s.io/job-uid`, one pod set of
`parallelism` pods with the worker's requests), reserves quota for all of them at once and
unsuspends the Job. Preemption suspends the Job again; readmission unsuspends the same Job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WORKLOAD_API = "kueue.x-k8s.io/v1beta2"
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"

# Admission states (status.admission.state).
QUEUED = "Queued"
"""Kueue has not reserved quota for the workload yet (or has not made it yet)."""
INADMISSIBLE = "Inadmissible"
"""Kueue cannot consider the workload: its LocalQueue or ClusterQueue is missing or stopped."""
ADMITTED = "Admitted"
"""Quota is reserved for every worker; the Job is unsuspended."""
PREEMPTED = "Preempted"
"""Kueue evicted the workload for a higher-priority one: the Job is suspended until readmitted."""
EVICTED = "Evicted"
"""Kueue evicted the workload for another reason (e.g. PodsReadyTimeout); it is queued again."""


@dataclass(frozen=True)
class Admission:
    queue: str
    state: str
    message: str
    cluster_queue: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire = {"queue": self.queue, "state": self.state, "message": self.message}
        if self.cluster_queue:
            wire["clusterQueue"] = self.cluster_queue
        return wire


def _conditions(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type"): c for c in (workload.get("status") or {}).get("conditions") or []}


def _true(conds: dict[str, dict[str, Any]], type_: str) -> dict[str, Any] | None:
    cond = conds.get(type_)
    return cond if cond and cond.get("status") == "True" else None


def admission(queue: str, workload: dict[str, Any] | None) -> Admission:
    """The state of the current attempt's Workload (None: Kueue has not made one, or does not run)."""
    if workload is None:
        return Admission(queue, QUEUED, f"waiting for Kueue to admit the workload (queue {queue})")
    conds = _conditions(workload)
    cluster_queue = (((workload.get("status") or {}).get("admission") or {}).get("clusterQueue")) or None
    evicted = _true(conds, "Evicted")
    admitted = _true(conds, "Admitted")
    if evicted and not admitted:
        state = PREEMPTED if evicted.get("reason") == "Preempted" else EVICTED
        message = _first_line(evicted.get("message")) or evicted.get("reason", "")
        return Admission(queue, state, f"{state.lower()} by Kueue: {message}; queued again", cluster_queue)
    if admitted:
        return Admission(queue, ADMITTED, f"admitted by ClusterQueue {cluster_queue}" if cluster_queue else "admitted", cluster_queue)
    reserved = conds.get("QuotaReserved") or {}
    message = _first_line(reserved.get("message"))
    if reserved.get("reason") == "Inadmissible":
        return Admission(queue, INADMISSIBLE, message or f"Kueue cannot admit the workload (queue {queue})")
    return Admission(queue, QUEUED, f"queued in {queue}" + (f": {message}" if message else ""))


def newly_preempted(previous: dict[str, Any] | None, now: Admission) -> bool:
    """A transition into Preempted (counted once: the previous status already says Preempted on later passes)."""
    return now.state == PREEMPTED and (previous or {}).get("state") != PREEMPTED


def workload_of(job_uid: str | None, workloads: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The Workload Kueue made for the Job with this uid (by label, or by owner reference)."""
    if not job_uid:
        return None
    for wl in workloads:
        meta = wl["metadata"]
        if (meta.get("labels") or {}).get(JOB_UID_LABEL) == job_uid or any(r.get("uid") == job_uid for r in meta.get("ownerReferences") or []):
            return wl
    return None


def _first_line(text: str | None) -> str:
    return next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
