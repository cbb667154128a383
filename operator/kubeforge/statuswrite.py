"""Writing a custom resource's status: one merge patch on the status subresource, and only when it changed.

Shared by both reconcilers, so "changed" means the same thing for both: the new status
differs from the previous one as a whole (a dropped key counts).
"""

from __future__ import annotations

import logging
from typing import Any

from kubeforge import metrics
from kubeforge.kube import KubeClient

log = logging.getLogger(__name__)


def status_patch(previous: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch from `previous` to `new`, or None when they are equal.

    A merge patch keeps the keys it does not mention, so the ones `new` dropped are nulled out,
    in nested objects too (RFC 7386 merges them: status.model going from one revision to another
    must not keep the old one's digest).
    """
    if previous == new:
        return None
    return _merge_patch(previous, new)


def _merge_patch(previous: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {k: None for k in previous if k not in new}
    for key, value in new.items():
        before = previous.get(key)
        patch[key] = _merge_patch(before, value) if isinstance(value, dict) and isinstance(before, dict) else value
    return patch


def patch_status_if_changed(client: KubeClient, obj: dict[str, Any], previous: dict[str, Any], new: dict[str, Any]) -> bool:
    """Patch `obj`'s status from `previous` to `new` when they differ; True when a patch was sent."""
    patch = status_patch(previous, new)
    if patch is None:
        return False
    meta = obj["metadata"]
    client.patch_status(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"], patch)
    if previous.get("phase") != new.get("phase"):
        metrics.TRANSITIONS.labels(kind=obj["kind"], phase=new.get("phase")).inc()
        log.info("%s %s/%s: %s -> %s: %s", obj["kind"], meta["namespace"], meta["name"], previous.get("phase"),
                 new.get("phase"), new.get("message") or new.get("reason") or new.get("ready") or "")
    return True
