"""What the child indexes keep of a Pod, Job or ConfigMap: only the fields a pass reads, not the whole body.

The TrainingJob passes read their Jobs, pods and progress ConfigMap from kopf indexes
(kubeforge.childcache). A pod as the API server sends it is 4-8 KB of JSON and several times
that as Python dicts (spec, managedFields, every container's env, volume mounts, IPs); with
thousands of live pods the whole bodies were the operator's largest memory. The readers are
kubeforge.trainingjob.observe, .exitcodes, .status, .waiting, kubeforge.podreasons and the
controller's ownership checks; a field they start to read must be kept here too
(tests/unit/test_projection.py reads a real pod through both and compares).

Repeated short strings (namespaces, condition types, phases, reasons, label values) are interned:
a thousand pods then share one "Ready", not a thousand copies.
"""

from __future__ import annotations

import sys
from typing import Any

# Labels and annotations the passes read (kubeforge.trainingjob.names); the Job controller's own
# labels (job-name, controller-uid, twice each) are dropped.
KEPT_LABEL_PREFIX = "kubeforge.io/"
KEPT_ANNOTATIONS = ("batch.kubernetes.io/job-completion-index",)
KEPT_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp")
KEPT_OWNER_REF = ("apiVersion", "kind", "name", "uid", "controller")
KEPT_CONDITION = ("type", "status", "reason", "message")
# A container's status without imageID, containerID, resources, volumeMounts, user (newer API servers add them).
KEPT_CONTAINER_STATUS = ("name", "image", "ready", "started", "restartCount", "state", "lastState")
KEPT_POD_STATUS = ("phase", "reason", "message")
KEPT_JOB_SPEC = ("suspend", "completions", "parallelism")
KEPT_JOB_STATUS = ("active", "ready", "succeeded", "failed", "startTime", "completionTime")


def project(body: dict[str, Any], data_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """The part of a child the passes read; `data_keys`: the ConfigMap keys to keep (none by default)."""
    kind = body.get("kind")
    out: dict[str, Any] = {"apiVersion": _s(body.get("apiVersion")), "kind": _s(kind), "metadata": metadata(body.get("metadata") or {})}
    if kind == "Pod":
        out["spec"] = {"nodeName": _s((body.get("spec") or {}).get("nodeName"))}
        out["status"] = pod_status(body.get("status") or {})
    elif kind == "Job":
        out["spec"] = _pick(body.get("spec") or {}, KEPT_JOB_SPEC)
        status = body.get("status") or {}
        out["status"] = {**_pick(status, KEPT_JOB_STATUS), "conditions": conditions(status.get("conditions"))}
    elif kind == "ConfigMap":
        data = body.get("data") or {}
        out["data"] = {k: data[k] for k in data_keys if k in data}
    return out


def metadata(meta: dict[str, Any]) -> dict[str, Any]:
    out = {k: _s(meta[k]) for k in KEPT_METADATA if meta.get(k) is not None}
    labels = {_s(k): _s(v) for k, v in (meta.get("labels") or {}).items() if k.startswith(KEPT_LABEL_PREFIX)}
    annotations = {_s(k): _s(v) for k, v in (meta.get("annotations") or {}).items() if k in KEPT_ANNOTATIONS}
    refs = [{k: _s(ref[k]) for k in KEPT_OWNER_REF if k in ref} for ref in meta.get("ownerReferences") or []]
    for key, value in (("labels", labels), ("annotations", annotations), ("ownerReferences", refs)):
        if value:
            out[key] = value
    return out


def pod_status(status: dict[str, Any]) -> dict[str, Any]:
    out = _pick(status, KEPT_POD_STATUS)
    out["conditions"] = conditions(status.get("conditions"))
    for key in ("initContainerStatuses", "containerStatuses"):
        if status.get(key):
            out[key] = [_pick(c, KEPT_CONTAINER_STATUS) for c in status[key]]
    return out


def conditions(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [_pick(c, KEPT_CONDITION) for c in items or []]


def _pick(source: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: _s(source[k]) for k in keys if source.get(k) is not None}


def _s(value: Any) -> Any:
    """Short strings interned (shared by every child that carries them); anything else as it is."""
    return sys.intern(value) if isinstance(value, str) and len(value) <= 64 else value
