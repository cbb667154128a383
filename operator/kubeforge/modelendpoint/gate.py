"""The promotion gate: does a new model's training metrics pass spec.rollout.promotion? Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubeforge.api.modelendpoint import Promotion, Threshold
from kubeforge.thresholds import first_failure
from kubeforge.thresholds import number as _number

DEFAULT_COMPARED = Threshold(metric="accuracy", op=">=", value=0.0)  # notWorseThanServing without thresholds


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    message: str  # names the metric, its value and the threshold it missed (or what passed)


def judge(promotion: Promotion, candidate: dict[str, Any], serving: dict[str, Any] | None) -> GateVerdict:
    """`candidate` and `serving` are metrics dicts (a TrainingJob's status.result.metrics); serving None: nothing served."""
    failed = first_failure(candidate, [t.model_dump() for t in promotion.thresholds])
    if failed:
        return GateVerdict(False, failed)
    if promotion.not_worse_than_serving and serving is not None:
        for t in promotion.thresholds or [DEFAULT_COMPARED]:
            failed = _worse_than_serving(t, candidate, serving, promotion.tolerance)
            if failed:
                return GateVerdict(False, failed)
    return GateVerdict(True, _passed_message(promotion, candidate))


def _worse_than_serving(t: Threshold, candidate: dict[str, Any], serving: dict[str, Any], tolerance: float) -> str | None:
    new, old = _number(candidate.get(t.metric)), _number(serving.get(t.metric))
    if old is None:
        return None  # nothing to compare with: the serving model never reported this metric
    if new is None:
        return f"metric {t.metric} not reported by the new model (serving has {old:g})"
    higher_is_better = t.op in (">=", ">")
    floor = old - tolerance if higher_is_better else old + tolerance
    worse = new < floor if higher_is_better else new > floor
    if worse:
        return (f"{t.metric} {new:g} is worse than the serving model's {old:g} "
                f"(notWorseThanServing, tolerance {tolerance:g}: needs {'>=' if higher_is_better else '<='} {floor:g})")
    return None


def pod_thresholds(promotion: Promotion, serving: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The gate as the server's held-out evaluation applies it: the thresholds, and with notWorseThanServing a floor
    (or ceiling) from the serving revision's held-out metrics (`serving`; None or a metric missing: no floor)."""
    gate = [t.model_dump() for t in promotion.thresholds]
    if promotion.not_worse_than_serving and serving:
        for t in promotion.thresholds or [DEFAULT_COMPARED]:
            old = _number(serving.get(t.metric))
            if old is None:
                continue
            higher_is_better = t.op in (">=", ">")
            floor = old - promotion.tolerance if higher_is_better else old + promotion.tolerance
            why = f"notWorseThanServing: serving has {old:g}, tolerance {promotion.tolerance:g}"
            gate.append({"metric": t.metric, "op": ">=" if higher_is_better else "<=", "value": round(floor, 9), "why": why})
    return gate


def _passed_message(promotion: Promotion, candidate: dict[str, Any]) -> str:
    named = [t.metric for t in promotion.thresholds] or [DEFAULT_COMPARED.metric]
    shown = ", ".join(f"{m} {candidate[m]:g}" for m in dict.fromkeys(named) if _number(candidate.get(m)) is not None)
    return f"passed the promotion gate ({shown})" if shown else "passed the promotion gate"
