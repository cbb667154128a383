"""Writing a custom resource's status: one merge patch on the status subresource, and only when it changed.

Shared by both reconcilers, so "changed" means the same thing for both: the new status
differs from the previous one as a whole (a dropped key counts).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kubeforge import metrics
from kubeforge.crcache import CR_CACHE
from kubeforge.kube import KubeClient

log = logging.getLogger(__name__)


class OwnWrites:
    """The resourceVersion each of our status writes produced, so its watch event wakes no reconciler.

    The pass that wrote the status already acted on everything it saw; the event of its own
    write carries nothing new (one resourceVersion is one write), and reconciling it again
    would cost a GET and more for every status write.
    """

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()  # written from worker threads, read on the event loop

    def record(self, kind: str, namespace: str, name: str, resource_version: str | None) -> None:
        if resource_version:
            with self._lock:
                self._versions[(kind, namespace, name)] = resource_version

    def is_own(self, kind: str, namespace: str, name: str, resource_version: str | None) -> bool:
        """True, once, for the event of our last write on this object."""
        with self._lock:
            if resource_version and self._versions.get((kind, namespace, name)) == resource_version:
                del self._versions[(kind, namespace, name)]
                return True
            return False


# One per process: the reconcilers' writes and the watches' events meet here.
OWN_WRITES = OwnWrites()


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
    result = client.patch_status(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"], patch) or {}
    CR_CACHE.remember(result)  # the next pass reads it once the watch reports this version
    written = result.get("metadata", {})
    # A spec change that landed between our read and this write shows as a newer generation: its
    # event must wake the reconciler, even if kopf folded it into the event of our write.
    if written.get("generation") == meta.get("generation"):
        OWN_WRITES.record(obj["kind"], meta["namespace"], meta["name"], written.get("resourceVersion"))
    if previous.get("phase") != new.get("phase"):
        metrics.TRANSITIONS.labels(kind=obj["kind"], phase=new.get("phase")).inc()
        log.info("%s %s/%s: %s -> %s: %s", obj["kind"], meta["namespace"], meta["name"], previous.get("phase"),
                 new.get("phase"), new.get("message") or new.get("reason") or new.get("ready") or "")
    return True
