"""metav1.Condition bookkeeping as pure functions: lastTransitionTime moves only when the status flips."""

from __future__ import annotations

from typing import Any

from kubeforge.api.common import ConditionStatus

TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
) -> list[dict[str, Any]]:
    """A new list with `type_` set; the transition time is kept when the status did not change."""
    previous = find(conditions, type_)
    transition = previous["lastTransitionTime"] if previous and previous.get("status") == status else now
    updated = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": transition,
    }
    if generation is not None:
        updated["observedGeneration"] = generation
    others = [c for c in conditions if c.get("type") != type_]
    return sorted(others + [updated], key=lambda c: c["type"])


def find(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == type_), None)


def is_true(conditions: list[dict[str, Any]] | None, type_: str) -> bool:
    cond = find(conditions, type_)
    return bool(cond and cond.get("status") == TRUE)


def transitions(old: list[dict[str, Any]] | None, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Conditions whose status or reason changed: what deserves an Event."""
    changed = []
    for cond in new:
        before = find(old, cond["type"])
        if not before or before.get("status") != cond["status"] or before.get("reason") != cond["reason"]:
            changed.append(cond)
    return changed
