"""Our custom resources as their watch last reported them: a pass reads one here instead of a GET when it is current.

Each TrainingJob pass began with a GET of the job: a new job's 4-6 passes (its pods' events)
cost as many reads, a quarter of its requests. The watch already delivers every version, so,
as an informer cache does, a pass reads the body the watch (or a status write of ours) left,
but only when its resourceVersion is the latest one the watch reported: one resourceVersion is
one write, so the body is exactly that version, never an older one. A version the watch has not
delivered yet wakes its own pass when it arrives.

Bodies are kept for the most recently active resources only (an LRU of `capacity`): the initial
list of a (re)start records versions, not bodies, so 5,000 idle resources cost a few hundred
bytes each, not a copy of each. A body is kept as its compact JSON (~2 KB, where the dicts took
~8 KB); a pass gets a fresh copy from json.loads, faster than the deepcopy it replaces.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

Key = tuple[str, str, str]  # (kind, namespace, name)
CAPACITY = 1024


class ResourceCache:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._latest: dict[Key, str] = {}  # resourceVersion the watch last reported, for every live resource
        self._bodies: OrderedDict[Key, tuple[str, bytes]] = OrderedDict()  # (resourceVersion, compact JSON)
        self._lock = threading.Lock()  # the watch handlers on the event loop, the passes in worker threads

    def seen(self, kind: str, namespace: str, name: str, resource_version: str | None, body: dict[str, Any] | None = None) -> None:
        """A watch event: the latest version, and its body when given (new work, not a restart's listing)."""
        key = (kind, namespace, name)
        with self._lock:
            if resource_version:
                self._latest[key] = resource_version
            if body is not None:
                self._keep(key, body)

    def gone(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._latest.pop((kind, namespace, name), None)
            self._bodies.pop((kind, namespace, name), None)

    def remember(self, obj: dict[str, Any]) -> None:
        """A body a pass read or a status write returned (kept as a copy); used once the watch reports its version."""
        meta = obj.get("metadata") or {}
        key = (obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))
        with self._lock:
            if meta.get("resourceVersion") and key in self._latest:  # only kinds whose watch reports here
                self._keep(key, obj)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A copy of the latest version the watch reported, or None when that body is not here."""
        key = (kind, namespace, name)
        with self._lock:
            version, body = self._bodies.get(key, (None, b""))
            current = version is not None and version == self._latest.get(key)
        return json.loads(body) if current else None

    def _keep(self, key: Key, obj: dict[str, Any]) -> None:
        meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
        self._bodies[key] = (meta.get("resourceVersion"), json.dumps({**obj, "metadata": meta}, separators=(",", ":")).encode())
        self._bodies.move_to_end(key)
        while len(self._bodies) > self.capacity:
            self._bodies.popitem(last=False)


# One per process: the custom resources' watches fill it, the TrainingJob passes and status writes use it.
CR_CACHE = ResourceCache()
