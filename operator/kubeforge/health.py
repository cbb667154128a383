"""Liveness beyond "the process answers": every watched kind is still watched, and the work queue still runs.

kopf ends a kind's watcher task for good on a watch ERROR other than 410 or on a 403 (RBAC
changed during an upgrade); the operator then looks alive while that kind is never watched
again, kopf's most reported failure. /healthz fails (so the kubelet restarts the operator) when:
  - a watcher task seen running has ended;
  - a watched kind had neither a watch event nor a successful list for `stale_after` seconds
    (kubeforge.resync lists every watched kind with limit=1 every resync period);
  - the work queue's task has died.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Callable

# kopf names each watcher task "watcher for <resource>@<namespace>" (kopf/_core/reactor/orchestration.py).
WATCHER_TASK_PREFIX = "watcher for "


@dataclass(frozen=True)
class WatchedKind:
    """One kind the operator watches: enough to list it (kubeforge.kube) and to name it."""

    api_version: str
    kind: str
    plural: str
    selector: str = ""


@dataclass
class WatchHealth:
    stale_after: float = 300.0
    clock: Callable[[], float] = time.monotonic
    kinds: dict[str, WatchedKind] = field(default_factory=dict)
    _evidence: dict[str, float] = field(default_factory=dict)
    _watchers_seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, kind: WatchedKind) -> None:
        """Register a watched kind; the first evidence is due `stale_after` from now."""
        with self._lock:
            self.kinds.setdefault(kind.plural, kind)
            self._evidence.setdefault(kind.plural, self.clock())

    def seen(self, plural: str) -> None:
        """A watch event or a successful list of `plural` just arrived."""
        with self._lock:
            self._evidence[plural] = self.clock()

    def problems(self, task_names: Iterable[str], queue_alive: bool = True) -> list[str]:
        """What makes the operator unhealthy now; empty when healthy."""
        alive = {name for name in task_names if name.startswith(WATCHER_TASK_PREFIX)}
        now = self.clock()
        with self._lock:
            ended = sorted(self._watchers_seen - alive)
            self._watchers_seen |= alive
            stale = sorted((p, now - t) for p, t in self._evidence.items() if now - t > self.stale_after)
        found = [f"{name} has ended" for name in ended]
        found += [f"no watch event or list of {plural} for {age:.0f}s" for plural, age in stale]
        if not queue_alive:
            found.append("the work queue task has died")
        return found


HEALTH = WatchHealth()
