"""A deduplicating, delayed work queue feeding level-triggered reconcilers, as controller-runtime does.

Why not kopf's own handlers: kopf's change handlers keep state in annotations on the
object, and its daemons and timers add finalizers. kubeforge keeps no state on the
object besides status, so `kopf.on.event` handlers only enqueue a key here, and a
reconciler rebuilds everything it needs from the API server each time. One key is
never reconciled twice at once; a key re-added while in flight runs again after.
"""

from __future__ import annotations

import asyncio
import itertools
from concurrent.futures import ThreadPoolExecutor
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubeforge import metrics
from kubeforge.apierrors import retry_after

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (kind, namespace, name)
# A reconciler gets namespace and name, and returns seconds until it wants to run again (or None).
Reconciler = Callable[[str, str], "float | None"]

MAX_BACKOFF = 60.0


@dataclass
class WorkQueue:
    workers: int = 4
    reconcilers: dict[str, Reconciler] = field(default_factory=dict)
    # Unbounded, so put_nowait never needs the loop: keys added before run() wait here for it.
    # Entries are (priority, sequence, key): new work (0) goes ahead of background re-checks (1).
    _queue: asyncio.PriorityQueue = field(default_factory=asyncio.PriorityQueue)
    _queued: dict = field(default_factory=dict)  # key -> the priority it waits at
    _since: dict = field(default_factory=dict)  # key -> when it was first queued (kubeforge_operator_queue_wait_seconds)
    _sequence: itertools.count = field(default_factory=itertools.count)
    _running: set = field(default_factory=set)
    _dirty: set = field(default_factory=set)
    _failures: dict = field(default_factory=dict)
    _timers: dict = field(default_factory=dict)
    _background_timers: set = field(default_factory=set)  # keys whose timer re-adds them in the background
    _executor: ThreadPoolExecutor | None = None

    @property
    def depth(self) -> int:
        """Keys waiting for a worker (what /healthz and the queue-depth gauge show)."""
        return len(self._queued)

    @property
    def running(self) -> frozenset[Key]:
        """Keys a worker is reconciling right now."""
        return frozenset(self._running)

    @property
    def scheduled(self) -> int:
        """Keys waiting for a delayed re-add (a requeue_after or a failure backoff)."""
        return len(self._timers)

    @property
    def idle(self) -> bool:
        """Nothing queued, running or scheduled."""
        return not (self._queued or self._running or self._timers)

    def register(self, kind: str, reconciler: Reconciler) -> None:
        self.reconcilers[kind] = reconciler

    def add(self, kind: str, namespace: str, name: str, after: float = 0.0, background: bool = False) -> None:
        """Enqueue now, or after `after` seconds (an earlier pending timer wins). Loop thread only.

        `background`: a re-check of something already reconciled (a restart's initial list, the
        periodic relist); it waits behind every other key, so new work is not stuck behind a
        thousand re-checks. A key added again without it moves up.
        Before run() the key is queued all the same and waits for the workers; a delayed add
        needs the running event loop (asyncio raises RuntimeError without one).
        """
        key = (kind, namespace, name)
        if after > 0:
            if key not in self._queued:  # a queued pass runs later anyway, and reads the state then
                self._schedule(key, after, background)
            return
        priority = 1 if background else 0
        if key in self._running:
            self._dirty.add(key)
        elif self._queued.get(key, 2) > priority:
            # Queued at a lower priority (or not at all): one more entry; the worker skips the stale one.
            self._queued[key] = priority
            self._since.setdefault(key, time.monotonic())
            self._queue.put_nowait((priority, next(self._sequence), key))
            metrics.QUEUE_DEPTH.set(len(self._queued))

    def _schedule(self, key: Key, after: float, background: bool = False) -> None:
        """One timer per key, the earliest; it fires in the background only when every add behind it asked so."""
        loop = asyncio.get_running_loop()
        due = loop.time() + after
        existing = self._timers.get(key)
        background = background and (existing is None or key in self._background_timers)
        if existing and existing.when() <= due:
            if not background:
                self._background_timers.discard(key)
            return
        if existing:
            existing.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)
        (self._background_timers.add if background else self._background_timers.discard)(key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        background = key in self._background_timers
        self._background_timers.discard(key)
        self.add(*key, background=background)

    async def run(self) -> None:
        # Our own threads, one per worker: asyncio.to_thread's default executor has min(32, cores + 4),
        # 6 on 2 cores, so more workers than that would wait for a thread, not for the API server.
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="kubeforge-reconcile")
        tasks = [asyncio.create_task(self._worker(i)) for i in range(self.workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _worker(self, index: int) -> None:
        while True:
            priority, _, key = await self._queue.get()
            if self._queued.get(key) != priority:
                continue  # taken already through its higher-priority entry
            del self._queued[key]
            metrics.QUEUE_DEPTH.set(len(self._queued))
            metrics.QUEUE_WAIT_SECONDS.labels(kind=key[0]).observe(time.monotonic() - self._since.pop(key, time.monotonic()))
            self._running.add(key)
            try:
                requeue = await self._reconcile(key)
            finally:
                self._running.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self.add(*key)
            elif requeue is not None:
                self.add(*key, after=max(0.05, requeue))

    async def _reconcile(self, key: Key) -> float | None:
        kind, namespace, name = key
        reconciler = self.reconcilers.get(kind)
        if reconciler is None:
            log.error("no reconciler registered for %s", kind)
            return None
        start = time.monotonic()
        try:
            requeue = await asyncio.get_running_loop().run_in_executor(self._executor, reconciler, namespace, name)
        except Exception as e:  # a reconciler bug or an API error: back off, never drop the key
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            # Never sooner than a 429 / 5xx's Retry-After: the API server says when it can take more.
            delay = max(min(MAX_BACKOFF, 0.5 * 2 ** (failures - 1)), retry_after(e) or 0.0)
            log.exception("reconcile %s %s/%s failed (%d in a row), retry in %.1fs", kind, namespace, name, failures, delay)
            metrics.RECONCILES.labels(kind=kind, result="error").inc()
            return delay
        finally:
            metrics.RECONCILE_SECONDS.labels(kind=kind).observe(time.monotonic() - start)
        self._failures.pop(key, None)
        metrics.RECONCILES.labels(kind=kind, result="ok").inc()
        return requeue

