"""The nodes of a node pool, read at most once per few seconds for all the TrainingJobs that wait on it.

A pass reads the pool while its workers wait (kubeforge.trainingjob.waiting judges whether they
can ever fit). A thousand new jobs on one pool would each list the same nodes on each of their
first passes, a full list of every node per pass; one read per selector serves them all for
`ttl` seconds, so a pool's change (a node added, tainted, gone) shows in status that much later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from kubeforge import kube
from kubeforge.kube import KubeClient

# Nodes come and go in minutes; a verdict 5 s old costs nothing, a list per pass costs a lot.
POOL_TTL_SECONDS = 5.0


class PoolNodes:
    def __init__(self, ttl: float = POOL_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._read: dict[str, tuple[float, list[dict[str, Any]] | None]] = {}
        self._reading: dict[str, threading.Lock] = {}  # one read per selector in flight
        self._lock = threading.Lock()

    def read(self, client: KubeClient, selector: str) -> list[dict[str, Any]] | None:
        """The nodes `selector` matches; None when Nodes may not be read (403) or are not served (404).

        When the last read went stale, one pass reads again and the passes meanwhile take the stale one:
        with a thousand jobs waiting, every pass in flight as the read expired used to list the nodes
        itself (727 lists in 13 minutes with 1,000 new jobs, at half a second each on a loaded API server).
        """
        with self._lock:
            hit = self._read.get(selector)
            reading = self._reading.setdefault(selector, threading.Lock())
        if hit is not None and self.clock() - hit[0] < self.ttl:
            return hit[1]
        if not reading.acquire(blocking=hit is None):  # a first read waits for the one in flight
            return hit[1]
        try:
            with self._lock:
                latest = self._read.get(selector)
            if latest is not None and latest is not hit and self.clock() - latest[0] < self.ttl:
                return latest[1]  # read by the pass this one waited for
            now = self.clock()
            nodes = kube.unless_refused(lambda: client.list_("v1", "Node", None, selector), None)
            with self._lock:
                self._read[selector] = (now, nodes)
            return nodes
        finally:
            reading.release()
