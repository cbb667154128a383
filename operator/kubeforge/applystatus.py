"""The ChildrenApplied condition: what a status may claim when the API server refused a child.

Pure: status in, status out. A refused apply keeps what the API server accepted before and
adds the condition with its own words; nothing says a child exists that it refused.
"""

from __future__ import annotations

from typing import Any

from kubeforge import conditions
from kubeforge.api.common import CHILDREN_APPLIED, ChildrenAppliedReason as Reason
from kubeforge.apierrors import Refusal


def describe(refusal: Refusal) -> str:
    if refusal.reason == Reason.NAME_CONFLICT:
        return refusal.message
    return f"the API server refused {refusal.target} ({refusal.code} {refusal.reason}): {refusal.message}"


def refused(status: dict[str, Any], refusal: Refusal, generation: int | None, now: str,
            unconfirmed: tuple[str, ...] = (), summary: str = "message") -> dict[str, Any]:
    """`status` with ChildrenApplied=False; `unconfirmed` condition types are dropped. The refusal also goes
    into status[`summary`]: the message (TrainingJob), or the one-word reason (ModelEndpoint's REASON column)."""
    out = dict(status)
    kept = [c for c in status.get("conditions", []) if c.get("type") not in unconfirmed]
    reason = Reason.NAME_CONFLICT if refusal.reason == Reason.NAME_CONFLICT else Reason.REFUSED_BY_API_SERVER
    message = describe(refusal)
    out["conditions"] = conditions.set_condition(kept, CHILDREN_APPLIED, conditions.FALSE, reason, message, generation, now)
    out[summary] = message if summary == "message" else str(reason)
    return out


def applied(status: dict[str, Any], generation: int | None, now: str) -> dict[str, Any]:
    """After a successful apply, a ChildrenApplied=False from an earlier pass turns True; otherwise unchanged."""
    current = conditions.find(status.get("conditions"), CHILDREN_APPLIED)
    if current is None or current.get("status") == conditions.TRUE:
        return status
    message = "every child was applied"
    return {**status, "conditions": conditions.set_condition(status["conditions"], CHILDREN_APPLIED, conditions.TRUE, Reason.APPLIED,
                                                               message, generation, now)}
