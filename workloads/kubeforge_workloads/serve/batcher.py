"""Dynamic batching: a bounded queue of texts grouped up to maxBatchSize or maxDelayMs, run off the event loop."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .errors import DeadlineExceeded, InferenceFailed, ModelNotReady, QueueFull

log = logging.getLogger("kubeforge.serve")

INLINE_YIELDS = 3


@dataclass
class _Item:
    payload: object
    request: int
    future: asyncio.Future
    deadline: float  # time.monotonic() past which its request is answered 504


class DynamicBatcher:
    """Groups texts from concurrent requests into one model call.

    It waits up to max_delay_ms for a batch to fill only while more requests
    are known to be on their way (in flight but not yet queued): a lone
    request runs at once instead of paying the delay for company that will
    not come, and under load batches fill as the queue builds behind the
    running batch.

    A lone small request (nothing else in flight, queued or running, and
    run_inline(payloads) true) runs on the event-loop thread itself: the two
    thread hops to and from the inference thread cost ~0.3 ms of a ~4 ms
    request here, and the loop has nothing else to do meanwhile; whatever
    arrives during that run waits at most one small model call, as it would
    behind the inference thread.

    Deadlines cost no timer per request: one watchdog task fails every queued
    or running text whose request is older than request_timeout_s (504, up
    to a tenth of it late), and a batch running longer than that marks the
    batcher stuck (readiness fails, new requests get 503). An inline run
    cannot be interrupted; if one hung, the blocked event loop fails liveness.
    """

    def __init__(self, run_batch: Callable[[list], np.ndarray], *, max_batch_size: int, max_delay_ms: float,
                 max_queue: int, requests_in_flight: Callable[[], int] = lambda: 0,
                 on_batch: Callable[[int, float], None] = lambda size, seconds: None,
                 run_inline: Callable[[list], bool] = lambda payloads: False,
                 request_timeout_s: float = 3600.0):
        self._run_batch = run_batch
        self._run_inline = run_inline
        self._running = False  # a batch is on the inference thread
        self._batch: list[_Item] = []  # the batch on the inference thread (or the last one)
        self._batch_started = 0.0  # when it went there (time.monotonic)
        self.request_timeout_s = request_timeout_s
        self.abandoned_thread = False
        self._watchdog: asyncio.Task | None = None
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_ms / 1000.0
        self.max_queue = max_queue
        self._in_flight = requests_in_flight
        self._on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._task: asyncio.Task | None = None
        self._next_request = 0
        self.batch_seconds = 0.01  # moving estimate of one batch's run time, for Retry-After

    @property
    def depth(self) -> int:
        return len(self._queue)

    def stuck(self) -> bool:
        """The running batch has outlived any request's deadline: the model hangs."""
        return self._running and time.monotonic() - self._batch_started > self.request_timeout_s

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._loop(), name="dynamic-batcher")
        self._watchdog = loop.create_task(self._expire_overdue(), name="deadline-watchdog")

    async def stop(self) -> None:
        """Called after the HTTP server drained: fail anything left, stop the loop and the thread.

        A stuck inference thread cannot be joined: it is left behind, and `abandoned_thread` tells the process
        to exit without waiting for it (cli.py)."""
        self.abandoned_thread = self.stuck()
        for task in (self._task, self._watchdog):
            if task:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(ModelNotReady("server is shutting down"))
        self._executor.shutdown(wait=not self.abandoned_thread, cancel_futures=True)

    async def submit(self, payloads: list) -> list:
        """Queue one request's texts; resolves to their result rows, in order. Raises QueueFull."""
        if self._task is None or self._task.done():
            raise ModelNotReady("the batcher is not running")
        if self.stuck():  # fail fast: queueing behind a hung model only ends in a 504
            raise ModelNotReady(f"the model has not finished a batch in {self.request_timeout_s:g} s")
        if len(self._queue) + len(payloads) > self.max_queue:
            retry = max(1, math.ceil(self.batch_seconds * (len(self._queue) / self.max_batch_size + 1)))
            raise QueueFull(f"queue full ({len(self._queue)} of {self.max_queue} texts waiting)",
                            headers={"Retry-After": str(retry)})
        if self._alone() and self._run_inline(payloads):
            # A few turns of the loop first (accept, read, start the handler): requests that arrived with
            # this one then count as in flight, so a burst is batched rather than run inline one by one.
            for _ in range(INLINE_YIELDS):
                await asyncio.sleep(0)
            if self._alone():
                return self._inline(payloads)
        loop = asyncio.get_running_loop()
        self._next_request += 1
        deadline = time.monotonic() + self.request_timeout_s
        items = [_Item(p, self._next_request, loop.create_future(), deadline) for p in payloads]
        self._queue.extend(items)
        self._arrived.set()
        if len(items) == 1:  # the common case: no gathering future and its callbacks
            return [await items[0].future]
        return list(await asyncio.gather(*(i.future for i in items)))

    def _alone(self) -> bool:
        return not self._queue and not self._running and self._in_flight() <= 1

    def _inline(self, payloads: list) -> list:
        try:
            rows, seconds = self._timed_run(payloads)
        except Exception as exc:  # a failure here is this request's alone
            raise _failure(exc) from exc
        self._record(len(payloads), seconds)
        return list(rows)

    def _timed_run(self, payloads: list) -> tuple[object, float]:
        """The model call and its duration, timed on the thread that runs it (no hand-off included)."""
        start = time.perf_counter()
        rows = self._run_batch(payloads)
        return rows, time.perf_counter() - start

    def _record(self, size: int, seconds: float) -> None:
        self.batch_seconds = 0.8 * self.batch_seconds + 0.2 * seconds
        self._on_batch(size, seconds)

    def _take(self, batch: list[_Item]) -> None:
        while self._queue and len(batch) < self.max_batch_size:
            item = self._queue.popleft()
            if not item.future.done():  # its request was cancelled (client gone)
                batch.append(item)

    def _company_expected(self, batch: list[_Item]) -> bool:
        return self._in_flight() > len({i.request for i in batch})

    async def _collect(self) -> list[_Item]:
        batch: list[_Item] = []
        while not batch:
            self._arrived.clear()
            self._take(batch)
            if not batch:
                await self._arrived.wait()
        deadline = asyncio.get_running_loop().time() + self.max_delay_s
        while len(batch) < self.max_batch_size and self._company_expected(batch):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
            self._take(batch)
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._batch = batch = await self._collect()
            payloads = [i.payload for i in batch]
            self._batch_started = start = time.monotonic()
            self._running = True
            try:
                rows, seconds = await loop.run_in_executor(self._executor, self._timed_run, payloads)
            except Exception:  # the model failed on something in this batch: find what, serve the rest
                log.exception("batch of %d failed; splitting it to isolate the failing texts", len(batch))
                rows = await loop.run_in_executor(self._executor, self._isolate, payloads)
                seconds = time.monotonic() - start
            finally:
                self._running = False
            self._record(len(batch), seconds)
            for item, row in zip(batch, rows):
                if item.future.done():
                    continue
                if isinstance(row, Exception):
                    item.future.set_exception(row)
                else:
                    item.future.set_result(row)

    async def _expire_overdue(self) -> None:
        tick = min(0.25, self.request_timeout_s / 10)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for item in (*self._batch, *self._queue) if self._running or self._queue else ():
                if item.deadline <= now and not item.future.done():
                    item.future.set_exception(DeadlineExceeded(
                        f"no answer within the request deadline of {self.request_timeout_s:g} s"))

    def _isolate(self, payloads: list) -> list:
        """Rows for a batch that raised: halves are retried until each failing text stands alone.

        A failing text's row is its InferenceFailed; one bad text among n costs ~2 log2(n) extra calls,
        paid only when a batch fails.
        """
        try:
            return list(self._run_batch(payloads))
        except Exception as exc:
            if len(payloads) == 1:
                return [_failure(exc)]
        mid = len(payloads) // 2
        return self._isolate(payloads[:mid]) + self._isolate(payloads[mid:])


def _failure(exc: Exception) -> InferenceFailed:
    return InferenceFailed(f"the model failed on this input: {type(exc).__name__}: {str(exc)[:200]}")
