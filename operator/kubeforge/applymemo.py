"""What this process last applied, per object and field manager: an apply of the same desired object is skipped.

Each pass rebuilds every child, and most passes change nothing; a server-side apply of an
unchanged object still costs a write request and an etcd read (the API server compares and
writes nothing). An entry lives `ttl` seconds (the resync period), so drift someone made by
hand is undone at the latest then; a child deleted meanwhile is forgotten at once, by
kube.delete or by the child watches (kubeforge.watches), and re-applied on the next pass.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

ObjectKey = tuple[str, str, str]  # (kind, namespace, name)


class ApplyMemo:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._seen: dict[ObjectKey, dict[str, tuple[str, float]]] = {}
        self._lock = threading.Lock()  # reconcilers run in worker threads

    def unchanged(self, obj: dict[str, Any], field_manager: str) -> bool:
        """True when `obj` is what this process applied as `field_manager` less than `ttl` ago."""
        with self._lock:
            hit = self._seen.get(object_key(obj), {}).get(field_manager)
        return hit is not None and hit[0] == digest(obj) and self.clock() - hit[1] < self.ttl

    def record(self, obj: dict[str, Any], field_manager: str) -> None:
        now = self.clock()
        with self._lock:
            self._seen.setdefault(object_key(obj), {})[field_manager] = (digest(obj), now)
            if len(self._seen) % 1024 == 0:
                self._prune(now)

    def forget(self, kind: str, namespace: str | None, name: str) -> None:
        with self._lock:
            self._seen.pop((kind, namespace or "", name), None)

    def __len__(self) -> int:
        return len(self._seen)

    def _prune(self, now: float) -> None:
        """Drops expired entries (children of deleted owners that no watch reported gone)."""
        for key in [k for k, by_manager in self._seen.items() if all(now - at >= self.ttl for _, at in by_manager.values())]:
            del self._seen[key]


def object_key(obj: dict[str, Any]) -> ObjectKey:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace") or "", meta["name"])


# Preconditions, not content: kubeforge.ownership pins a known child's uid, and creates a new one with a
# resourceVersion no object has (ownership.ABSENT).
PRECONDITIONS = frozenset({"uid", "resourceVersion"})


def digest(obj: dict[str, Any]) -> str:
    """The desired object's content, without its preconditions (PRECONDITIONS): the first apply of a child
    (a create) carries other ones than the next passes, and counting them would re-send every child once
    on the pass after its creation."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in PRECONDITIONS}
    return hashlib.sha256(json.dumps({**obj, "metadata": meta}, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
