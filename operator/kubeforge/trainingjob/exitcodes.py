"""Why a worker stopped, and whether running the group again can help: the exit-code policy of a TrainingJob."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubeforge.api.trainingjob import RunPolicy
from kubeforge.trainingjob import names

EVICTED, DELETED, EXITED, LOST = "Evicted", "Deleted", "Exited", "Lost"
# Codes from 128 up are signals (128 + n): the process was killed from outside,
# which another attempt may well survive; below 128 the program itself gave up.
FIRST_SIGNAL_CODE = 129


@dataclass(frozen=True)
class WorkerFailure:
    """One failed worker: which pod, how it ended, and the verdict."""

    pod: str
    index: int | None
    how: str  # EVICTED | DELETED | EXITED | LOST
    exit_code: int | None
    retryable: bool

    def describe(self) -> str:
        who = f"worker {self.index} (pod {self.pod})" if self.pod else "a worker"
        if self.how == EVICTED:
            return f"{who} was evicted"
        if self.how == DELETED:
            return f"{who} was deleted"
        if self.how == LOST:
            return "a worker pod was lost (deleted before it could report)"
        return f"{who} exited with code {self.exit_code}"


def is_retryable(code: int, policy: RunPolicy) -> bool:
    """The user's lists decide first; otherwise signals are retryable and program errors permanent."""
    if code in policy.permanent_exit_codes:
        return False
    if code in policy.retryable_exit_codes:
        return True
    return code >= FIRST_SIGNAL_CODE


def exit_code(pod: dict[str, Any]) -> int | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == names.CONTAINER:
            terminated = (status.get("state") or {}).get("terminated")
            return terminated.get("exitCode") if terminated else None
    return None


def completion_index(pod: dict[str, Any]) -> int | None:
    value = (pod["metadata"].get("annotations") or {}).get(names.COMPLETION_INDEX_ANNOTATION)
    return int(value) if value is not None and value.isdigit() else None


def _evicted(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    disrupted = any(c.get("type") == "DisruptionTarget" and c.get("status") == "True" for c in status.get("conditions") or [])
    return status.get("reason") == "Evicted" or disrupted


def pod_failure(pod: dict[str, Any], policy: RunPolicy) -> WorkerFailure | None:
    """None for a pod that has not failed; eviction and deletion are always retryable."""
    meta, phase = pod["metadata"], (pod.get("status") or {}).get("phase")
    deleted = bool(meta.get("deletionTimestamp"))
    if phase != "Failed" and not deleted:
        return None
    code = exit_code(pod)
    how = EVICTED if _evicted(pod) else DELETED if deleted else EXITED
    retryable = how != EXITED or code is None or is_retryable(code, policy)
    return WorkerFailure(pod=meta["name"], index=completion_index(pod), how=how, exit_code=code, retryable=retryable)


def attempt_failure(pods: list[dict[str, Any]], policy: RunPolicy) -> WorkerFailure:
    """The failure that decides a failed attempt: a permanent one if any, else the first worker that went.

    Workers the Job controller stopped after the first failure carry a deletion
    timestamp and code 143; they sort last so the message names the real cause.
    """
    failures = [(f, p) for p in pods if (f := pod_failure(p, policy))]
    if not failures:
        return WorkerFailure(pod="", index=None, how=LOST, exit_code=None, retryable=True)

    def rank(item: tuple[WorkerFailure, dict]) -> tuple:
        failure, pod = item
        return (failure.retryable, failure.how == DELETED, _finished_at(pod), failure.index or 0)

    return min(failures, key=rank)[0]


def _finished_at(pod: dict[str, Any]) -> str:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated") or {}
        if terminated.get("finishedAt"):
            return terminated["finishedAt"]
    return "9999"  # still running or never started: after every finished one
