"""Strategy Canary: the canary Deployment's manifest and the bake verdict, judged from the canary pods' status
as the API server reports it (Ready, restarts, the kubelet's waiting reasons). Pure.

Why pod status and not the server's Prometheus metrics: the operator needs no Prometheus to
decide, every cluster has pod status, and a crash-looping or unready model is what a bake
catches first. Error rate and p95 latency per canary are not judged (see the README).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubeforge import podreasons
from kubeforge.timestamps import parse_rfc3339

CANARY_OF = "kubeforge.io/canary-of"  # selects an endpoint's canary pods (its Deployment's selector)
CANARY_REVISION = "kubeforge.io/canary-revision"  # which revision a canary pod runs
# Held-back reasons that waiting will not fix: the canary fails at once.
_FATAL = (podreasons.CRASH_LOOP, podreasons.OOM_KILLED, podreasons.IMAGE_PULL, podreasons.CONFIG_ERROR, podreasons.MISSING_VOLUME)


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
class Verdict:
    state: str  # Baking | Passed | Failed
    record: dict[str, Any]  # status.canary
    message: str
    recheck_after: float | None = None


def judge(rev: dict[str, Any], previous: dict[str, Any] | None, pods: tuple[dict[str, Any], ...], replicas: int,
          bake_seconds: float, now: str) -> Verdict:
    """`rev` is the candidate revision; `previous` the status.canary last written; `pods` the canary pods."""
    record = dict(previous) if previous and previous.get("revision") == rev["revision"] and previous.get("uri") == rev["uri"] else {
        "revision": rev["revision"], "uri": rev["uri"], "startedAt": now}
    if rev.get("digest"):
        record["digest"] = rev["digest"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")
            and (p["metadata"].get("labels") or {}).get(CANARY_REVISION) == str(rev["revision"])]
    failure = next((f for f in map(_failure, live) if f), None)
    if failure:
        return Verdict("Failed", {**record, "failed": failure}, f"canary of revision {rev['revision']} failed: {failure}")
    ready = sum(1 for p in live if _ready(p))
    record["ready"] = f"{ready}/{replicas}"
    if ready < replicas:
        record.pop("readySince", None)
        return Verdict("Baking", record, f"canary of revision {rev['revision']}: {ready}/{replicas} pods ready")
    since = record.setdefault("readySince", now)
    baked = (parse_rfc3339(now) - parse_rfc3339(since)).total_seconds()
    if baked >= bake_seconds:
        return Verdict("Passed", record, f"canary of revision {rev['revision']} Ready with no restart for {int(baked)}s")
    return Verdict("Baking", record, f"canary of revision {rev['revision']} baking: {int(baked)}/{bake_seconds:g}s Ready",
                   bake_seconds - baked)


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
