"""Model revisions: which model an endpoint serves (the promotion gate, a pinned revision) and status.revisions. Pure.

A revision is one model the endpoint has served, identified by its URI and (when the TrainingJob reports
one, status.result.modelDigest) its content digest, numbered 1, 2, ... in the order first served.
Level-triggered like the rest of the reconciler: everything is recomputed from the spec, the
TrainingJob and the last written status, so an operator restart continues where it was.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from kubeforge import conditions as cond
from kubeforge.api.modelendpoint import ModelEndpointConditionType as Type
from kubeforge.api.modelendpoint import ModelEndpointReason as Reason
from kubeforge.api.modelendpoint import ModelEndpointSpec
from kubeforge.modelendpoint import canary, gate
from kubeforge.modelendpoint.modelsource import ModelResolution

HISTORY = 10  # revisions kept in status (newest first); an object must stay well under etcd's limit
_STOPPED = ("stoppedAt", "stoppedReason")


@dataclass(frozen=True)
class RolloutDecision:
    """What to deploy, the revision it is, and why a newer model was not deployed (None: nothing blocked)."""

    resolution: ModelResolution
    serve: dict[str, Any] | None = None  # the revision record the Deployment serves (servedAt is added at write time)
    blocked: tuple[str, str] | None = None  # (reason, message) for RolloutBlocked=True
    allowed: str | None = None  # RolloutBlocked=False's message, where a gate or pin decided
    stop_reason: str = "replaced"  # why the revision served before stops, when `serve` is another
    canary: dict[str, Any] | None = None  # strategy Canary: the new revision to run as canary (not judged yet)
    canary_record: dict[str, Any] | None = None  # status.canary to write
    recheck_after: float | None = None  # when the canary's bake ends

    @property
    def header(self) -> str | None:
        """The value of the server's X-Kubeforge-Model response header: which model answered."""
        return model_header(self.serve) if self.serve else None


def model_header(rev: dict[str, Any]) -> str:
    identity = f"digest={rev['digest']}" if rev.get("digest") else f"uri={rev['uri']}"
    return f"revision={rev['revision']}; {identity}"


def short(rev: dict[str, Any]) -> str:
    """A few characters for the MODEL column: r<n> and the digest's first 12 hex digits, or the run."""
    label = f"r{rev['revision']}"
    if rev.get("digest"):
        return f"{label}@{rev['digest'].split(':')[-1][:12]}"
    if rev.get("trainingJob"):
        return f"{label}:{rev['trainingJob']}#{rev.get('attempt') or 1}"
    return label


def candidate(uri: str, training_job: dict[str, Any] | None) -> dict[str, Any]:
    """The revision record for a model about to be served (no number yet)."""
    rec: dict[str, Any] = {"uri": uri}
    if training_job is None:
        return rec
    status = training_job.get("status") or {}
    result = status.get("result") or {}
    if result.get("modelUri") != uri:
        return rec
    rec["trainingJob"] = training_job["metadata"]["name"]
    rec["attempt"] = status.get("attempt") or 1
    if result.get("modelDigest"):
        rec["digest"] = result["modelDigest"]
    if isinstance(result.get("metrics"), dict):
        rec["metrics"] = result["metrics"]
    return rec


def same_model(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get("uri") == b.get("uri") and a.get("digest") == b.get("digest")


def serving(previous: dict[str, Any]) -> dict[str, Any] | None:
    """The revision served now; a status from before revisions (modelUri only) counts as revision 1."""
    if previous.get("model"):
        return previous["model"]
    return {"uri": previous["modelUri"], "revision": 1} if previous.get("modelUri") else None


def decide(spec: ModelEndpointSpec, resolution: ModelResolution, training_job: dict[str, Any] | None,
           previous: dict[str, Any]) -> RolloutDecision:
    """`resolution` is the spec's own (modelsource.resolve_model); the decision may keep the served model instead."""
    current = serving(previous)
    history = previous.get("revisions") or ([current] if current else [])
    if spec.model.revision is not None:
        return _pinned(spec.model.revision, history, current, resolution)
    if not resolution.uri or resolution.reason != Reason.RESOLVED:  # waiting, failed, or keeping the previous model
        kept = current if current and resolution.uri == current["uri"] else None
        return RolloutDecision(resolution, kept or (_numbered(candidate(resolution.uri, None), history) if resolution.uri else None))
    new = candidate(resolution.uri, training_job)
    if current and same_model(new, current):
        return RolloutDecision(resolution, current, allowed=_allowed(spec, f"serving revision {current['revision']}"))
    known = next((r for r in history if same_model(new, r)), None)
    if known:  # served before (a pin was lifted, or the job's output went back): no gate
        return RolloutDecision(resolution, _unstopped(known), allowed=_allowed(spec, f"revision {known['revision']} was served before"))
    promotion = spec.rollout.promotion
    numbered = _numbered(new, history)
    if promotion is not None and promotion.evaluation is not None:
        # Judged on the held-out file by the candidate's own pods (canary.judge), never on training metrics.
        return _canary(current, numbered, resolution, previous.get("canary"), gate_key(spec))
    if promotion is not None:
        verdict = gate.judge(promotion, new.get("metrics") or {}, (current or {}).get("metrics") if current else None)
        if not verdict.passed:
            return _keep(current, resolution, Reason.PROMOTION_GATE_FAILED, f"new model {new['uri']} not promoted: {verdict.message}")
        if spec.rollout.strategy == "Canary" and current:
            return _canary(current, numbered, resolution, previous.get("canary"), gate_key(spec))
        return RolloutDecision(resolution, numbered, allowed=f"revision {numbered['revision']} ({new['uri']}) {verdict.message}")
    if spec.rollout.strategy == "Canary" and current:
        return _canary(current, numbered, resolution, previous.get("canary"), gate_key(spec))
    return RolloutDecision(resolution, numbered)


def gate_key(spec: ModelEndpointSpec) -> str:
    """A short digest of what judges a canary (spec.rollout.promotion, canary.maxErrorRate and maxP95Ms): a model that
    failed is tried again only when this changed (a fixed held-out file path, a new threshold), never by waiting, nor
    by a new bake length."""
    limits = spec.rollout.canary
    judged = json.dumps([spec.rollout.promotion.to_wire() if spec.rollout.promotion else None, limits.max_error_rate, limits.max_p95_ms],
                        sort_keys=True)
    return hashlib.sha256(judged.encode()).hexdigest()[:12]


def _canary(current: dict[str, Any] | None, new: dict[str, Any], resolution: ModelResolution,
            last: dict[str, Any] | None, key: str) -> RolloutDecision:
    """The new revision runs as canary beside the serving one (alone, for a first model under evaluation);
    a model whose canary failed is not tried again under the same gate."""
    if last and last.get("failed") and same_model(new, last) and last.get("gate", key) == key:
        blocked = _keep(current, resolution, last.get("reason") or Reason.CANARY_FAILED, _not_promoted(new, last))
        return replace(blocked, canary_record=last)
    if current is None:
        kept = ModelResolution(None, Reason.EVALUATING, f"revision {new['revision']} ({new['uri']}) runs alone as a canary"
                               " until its held-out evaluation passes; nothing serves yet")
    else:
        kept = ModelResolution(current["uri"], Reason.RESOLVED,
                               f"serving revision {current['revision']} ({current['uri']}); revision {new['revision']} ({new['uri']}) runs as canary",
                               current.get("digest"))
    return RolloutDecision(kept, current, canary=new)


def _not_promoted(rev: dict[str, Any], record: dict[str, Any]) -> str:
    """RolloutBlocked's message: an evaluation names metric, value and threshold; a bake, the pod and what it did."""
    evaluated = record.get("reason") == Reason.EVALUATION_FAILED
    what = record["failed"] if evaluated else f"canary of revision {rev['revision']} failed: {record['failed']}"
    return f"new model {rev['uri']} not promoted: {what}; canary removed"


def baked(decision: RolloutDecision, verdict: canary.Verdict, candidate: ModelResolution) -> RolloutDecision:
    """The decision once the canary was judged (`candidate` is the spec's resolution of the new model)."""
    rev = decision.canary
    assert rev is not None
    if verdict.state == "Passed":
        why = f"replaced after the canary of revision {rev['revision']} passed"
        # What the canary measured stays with the revision: the held-out metrics (notWorseThanServing compares the
        # next model with them) and the traffic its servers reported during the bake.
        promoted = {**rev, **{key: verdict.record[k] for k, key in (("evaluation", "evaluation"), ("traffic", "canaryTraffic"))
                              if k in verdict.record}}
        return RolloutDecision(candidate, promoted, allowed=f"{verdict.message}: promoted", stop_reason=why)
    if verdict.state == "Failed":
        blocked = _keep(decision.serve, candidate, verdict.record["reason"], _not_promoted(rev, verdict.record))
        return replace(blocked, canary_record=verdict.record)
    return replace(decision, canary_record=verdict.record, allowed=verdict.message, recheck_after=verdict.recheck_after)


def _pinned(number: int, history: list[dict[str, Any]], current: dict[str, Any] | None, resolution: ModelResolution) -> RolloutDecision:
    rev = next((r for r in history if r.get("revision") == number), None)
    if rev is None:
        known = ", ".join(str(r.get("revision")) for r in history) or "none"
        return _keep(current, resolution, Reason.REVISION_NOT_FOUND, f"spec.model.revision {number} is not in status.revisions (known: {known})")
    message = f"pinned by spec.model.revision to revision {number}: {rev['uri']}"
    going_back = bool(current) and number < (current.get("revision") or 0)
    why = f"rolled back to revision {number} (spec.model.revision)" if going_back else f"pinned revision {number} (spec.model.revision)"
    resolved = ModelResolution(rev["uri"], Reason.RESOLVED, message, rev.get("digest"))
    return RolloutDecision(resolved, _unstopped(rev), allowed=message, stop_reason=why)


def _keep(current: dict[str, Any] | None, resolution: ModelResolution, reason: str, message: str) -> RolloutDecision:
    """Blocked: the served model stays (nothing is served when nothing was)."""
    if current is None:
        return RolloutDecision(ModelResolution(None, reason, message), None, (reason, message))
    kept = ModelResolution(current["uri"], Reason.SERVING_PREVIOUS, f"{message}; serving revision {current['revision']} ({current['uri']})",
                           current.get("digest"))
    return RolloutDecision(kept, current, (reason, message))


def _allowed(spec: ModelEndpointSpec, message: str) -> str | None:
    return message if spec.rollout.promotion is not None else None


def _numbered(rec: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    last = max((r.get("revision") or 0 for r in history), default=0)
    return {"revision": last + 1, **rec}


def _unstopped(rev: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rev.items() if k not in _STOPPED and k != "servedAt"}


def with_revisions(status: dict[str, Any], decision: RolloutDecision, previous: dict[str, Any], generation: int, now: str) -> dict[str, Any]:
    """The status with model, modelShort, revisions and the RolloutBlocked condition (and kstatus Stalled while blocked)."""
    status = {**status, **_history(decision, previous, now)}
    if decision.canary_record:
        status["canary"] = decision.canary_record
    conditions = status["conditions"]
    if decision.blocked:
        reason, message = decision.blocked
        conditions = cond.set_condition(conditions, Type.ROLLOUT_BLOCKED, cond.TRUE, reason, message, generation, now)
        # kstatus (Flux, kubectl-side waiters): the spec's model cannot be served until something changes.
        # build_status just set Stalled from the phase: keep the transition time of the last written one.
        stalled = [c for c in conditions if c["type"] != Type.STALLED] + [c for c in previous.get("conditions") or [] if c["type"] == Type.STALLED]
        conditions = cond.set_condition(stalled, Type.STALLED, cond.TRUE, reason, message, generation, now)
        status["reason"] = reason  # the REASON column: the spec's model is not served, whatever else holds
    elif decision.allowed or cond.find(conditions, Type.ROLLOUT_BLOCKED):
        message = decision.allowed or "no rollout is blocked"
        conditions = cond.set_condition(conditions, Type.ROLLOUT_BLOCKED, cond.FALSE, Reason.ROLLOUT_ALLOWED, message, generation, now)
    status["conditions"] = conditions
    return status


def _history(decision: RolloutDecision, previous: dict[str, Any], now: str) -> dict[str, Any]:
    current, revisions = serving(previous), [dict(r) for r in previous.get("revisions") or []]
    serve = decision.serve
    if serve is None:
        return {"revisions": revisions} if revisions else {}
    if previous.get("model") and current and current.get("revision") == serve["revision"]:
        model = current
    else:
        model = {**serve, "servedAt": now}
        if current and current.get("revision") != serve["revision"]:
            stopped = {**current, "stoppedAt": now, "stoppedReason": f"{decision.stop_reason}: now serving revision {serve['revision']}"}
            revisions = [stopped] + [r for r in revisions if r.get("revision") != current.get("revision")]
        revisions = [model] + [r for r in revisions if r.get("revision") != serve["revision"]]
    if not any(r.get("revision") == model["revision"] for r in revisions):
        revisions = [model] + revisions
    return {"model": model, "modelShort": short(model), "revisions": revisions[:HISTORY]}
