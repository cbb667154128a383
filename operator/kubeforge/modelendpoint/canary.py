"""Strategy Canary (and the candidate of a held-out evaluation): the canary Deployment's manifest and the bake
verdict, judged from what the API server reports about the canary pods: their status (Ready, restarts, the kubelet's
waiting reasons), their evaluation step's termination message (evaluation.py), and at the bake's end the
traffic their servers reported into a ConfigMap (canaryreport.py: error rate, p95). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubeforge import podreasons
from kubeforge.api.modelendpoint import Canary
from kubeforge.api.modelendpoint import ModelEndpointReason as Reason
from kubeforge.modelendpoint import canaryreport, evaluation
from kubeforge.timestamps import parse_rfc3339

CANARY_OF = "kubeforge.io/canary-of"  # selects an endpoint's canary pods (its Deployment's selector)
CANARY_REVISION = "kubeforge.io/canary-revision"  # which revision a canary pod runs
# Held-back reasons that waiting will not fix: the canary fails at once.
# A claim not bound yet is not among them: the PV controller binds an Immediate claim a moment after it is
# created, and the scheduler retries; the canary waits and says why (a real-node run once failed a canary
# on "unbound immediate PersistentVolumeClaims" one second before its claim bound).
_FATAL = (podreasons.CRASH_LOOP, podreasons.OOM_KILLED, podreasons.IMAGE_PULL, podreasons.CONFIG_ERROR)


def name(endpoint: str) -> str:
    return f"{endpoint}-canary"


def selector(endpoint: str) -> str:
    return f"{CANARY_OF}={endpoint}"


def as_canary(deployment: dict[str, Any], endpoint: str, revision: int, replicas: int) -> dict[str, Any]:
    """The stable Deployment as built for the new model, turned into the canary: its own name, selector and count.

    Its pods keep the endpoint's label, so the Service (and the scale subresource's selector) include
    them: traffic splits by replica ratio with no mesh. The stable Deployment's selector matches them
    too, but a ReplicaSet never adopts pods another controller owns."""
    own = {CANARY_OF: endpoint}
    template = deployment["spec"]["template"]
    labels = {**template["metadata"]["labels"], **own, CANARY_REVISION: str(revision)}
    spec = {**deployment["spec"], "replicas": replicas, "selector": {"matchLabels": own},
            "template": {**template, "metadata": {**template["metadata"], "labels": labels}}}
    metadata = {**deployment["metadata"], "name": name(endpoint)}
    return {**deployment, "metadata": metadata, "spec": spec}


@dataclass(frozen=True)
class Bake:
    """How a canary is judged: its pod count, how long it must stay Ready, and whether its pods evaluate the model."""

    replicas: int
    seconds: float
    evaluated: bool = False  # spec.rollout.promotion.evaluation: a passed held-out evaluation is required
    limits: Canary | None = None  # strategy Canary: the canary's own error rate and p95 are judged at the bake's end
    gate: str | None = None  # revisions.gate_key of the spec judging it: kept with a failure


@dataclass(frozen=True)
class Verdict:
    state: str  # Baking | Passed | Failed
    record: dict[str, Any]  # status.canary
    message: str
    recheck_after: float | None = None


def judge(rev: dict[str, Any], previous: dict[str, Any] | None, pods: tuple[dict[str, Any], ...], bake: Bake, now: str,
          report_map: dict[str, Any] | None = None) -> Verdict:
    """`rev` is the candidate revision; `previous` the status.canary last written; `pods` the canary pods;
    `report_map` the ConfigMap the canary's servers report their traffic into (canaryreport.py)."""
    # A failed record is final under its gate (revisions._canary keeps the model blocked); reaching here with one
    # means the gate changed since: the model is judged afresh.
    again = previous and not previous.get("failed") and previous.get("revision") == rev["revision"] and previous.get("uri") == rev["uri"]
    record = dict(previous) if again else {"revision": rev["revision"], "uri": rev["uri"], "startedAt": now}
    if rev.get("digest"):
        record["digest"] = rev["digest"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")
            and (p["metadata"].get("labels") or {}).get(CANARY_REVISION) == str(rev["revision"])]
    report = evaluation.evaluation_report(live) if bake.evaluated else evaluation.EvalReport()
    if report.failure:
        return failed(record, report.failure, Reason.EVALUATION_FAILED, bake.gate)
    failure = next((f for f in map(_failure, live) if f), None)
    if failure:
        return failed(record, failure, Reason.CANARY_FAILED, bake.gate)
    if report.metrics:
        record["evaluation"] = report.metrics
    ready = sum(1 for p in live if _ready(p))
    record["ready"] = f"{ready}/{bake.replicas}"
    if ready < bake.replicas or (bake.evaluated and "evaluation" not in record):
        record.pop("readySince", None)
        waiting = "" if ready < bake.replicas else ", waiting for the held-out evaluation's report"
        blocker = next((b for b in map(podreasons.pod_blocker, live) if b), None)
        waiting += f" ({blocker.describe()})" if blocker and ready < bake.replicas else ""
        return Verdict("Baking", record, f"canary of revision {rev['revision']}: {ready}/{bake.replicas} pods ready{waiting}")
    since = record.setdefault("readySince", now)
    baked = (parse_rfc3339(now) - parse_rfc3339(since)).total_seconds()
    if baked >= bake.seconds:
        scored = f", held-out {_shown(record['evaluation'])}" if "evaluation" in record else ""
        if bake.limits is not None:
            seen = canaryreport.traffic(report_map, [p["metadata"]["name"] for p in live])
            record["traffic"] = {"requests": seen.requests, "errors": seen.errors, "p95Ms": seen.p95_ms}
            too_bad = canaryreport.failure(seen, bake.limits)
            if too_bad:
                return failed(record, f"{too_bad} during the bake", Reason.CANARY_FAILED, bake.gate)
            scored += f", {seen.describe()}"
        return Verdict("Passed", record, f"canary of revision {rev['revision']} Ready with no restart for {int(baked)}s{scored}")
    return Verdict("Baking", record, f"canary of revision {rev['revision']} baking: {int(baked)}/{bake.seconds:g}s Ready",
                   bake.seconds - baked)


def failed(record: dict[str, Any], message: str, reason: str, gate: str | None = None) -> Verdict:
    """The canary failed: `message` (naming the pod and what it did, or metric, value and threshold) stays in status.canary,
    with the gate it failed under."""
    record = {**record, "failed": message, "reason": reason, **({"gate": gate} if gate else {})}
    return Verdict("Failed", record, message)


def _shown(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in metrics.items() if k in ("accuracy", "f1", "loss") and isinstance(v, (int, float)))


def _failure(pod: dict[str, Any]) -> str | None:
    pod_name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    if status.get("phase") == "Failed":
        codes = [t["exitCode"] for c in status.get("containerStatuses") or [] if (t := (c.get("state") or {}).get("terminated"))]
        return f"pod {pod_name} failed" + (f" (exit code {codes[0]})" if codes else "")
    blocker = podreasons.pod_blocker(pod)
    if blocker and blocker.reason.startswith(_FATAL):
        return blocker.describe()
    restarts = sum(c.get("restartCount") or 0 for c in status.get("containerStatuses") or [])
    return f"pod {pod_name} restarted {restarts} times" if restarts else None


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])
