"""Threshold checks on a model's metrics, shared by the operator's promotion gate and the server's held-out
evaluation (kubeforge_workloads.serve.evaluate), so both say the same words. Pure, stdlib only.

A threshold is a dict {"metric", "op", "value"} and optionally "why" (where it came from, e.g. notWorseThanServing).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def number(value: Any) -> float | None:
    """A metric's value as a float; None for anything that is not a number (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def first_failure(metrics: dict[str, Any], thresholds: Iterable[dict[str, Any]]) -> str | None:
    """The first threshold `metrics` miss, named with the metric, its value and the threshold; None when all hold."""
    for t in thresholds:
        metric, op, limit = t["metric"], t["op"], float(t["value"])
        why = f" ({t['why']})" if t.get("why") else ""
        value = number(metrics.get(metric))
        if value is None:
            return f"metric {metric} not reported by the new model (threshold {metric} {op} {limit:g}){why}"
        if not OPS[op](value, limit):
            return f"{metric} {value:g} fails the threshold {metric} {op} {limit:g}{why}"
    return None
