"""The work queue deduplicates keys, re-runs a key touched while in flight, retries failures, and keeps keys added before run()."""

import asyncio
import threading

import pytest

from kubeforge.workqueue import WorkQueue


async def until(predicate, timeout=5.0):
    """Poll on the event loop until `predicate` holds; fail at the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.01)


def run_queue(scenario, reconciler, workers=2):
    async def main():
        queue = WorkQueue(workers=workers)
        queue.register("Thing", reconciler)
        task = asyncio.create_task(queue.run())
        try:
            await scenario(queue)
        finally:
            task.cancel()

    asyncio.run(main())


def test_duplicate_adds_while_queued_reconcile_once():
    calls = []
    gate = threading.Event()

    def reconcile(ns, name):
        gate.wait(5)
        calls.append(name)

    async def scenario(queue):
        queue.add("Thing", "ns", "blocker")
        await until(lambda: ("Thing", "ns", "blocker") in queue.running)
        queue.add("Thing", "ns", "blocker2")  # occupies the second worker
        await until(lambda: len(queue.running) == 2)
        for _ in range(3):
            queue.add("Thing", "ns", "a")
        assert queue.depth == 1
        gate.set()
        await until(lambda: queue.idle)
        assert calls.count("a") == 1

    run_queue(scenario, reconcile)


def test_key_added_while_in_flight_runs_again_after():
    calls = []
    started = threading.Event()
    release = threading.Event()

    def reconcile(ns, name):
        calls.append(name)
        if len(calls) == 1:
            started.set()
            release.wait(5)

    async def scenario(queue):
        queue.add("Thing", "ns", "a")
        await until(started.is_set)
        queue.add("Thing", "ns", "a")
        release.set()
        await until(lambda: len(calls) == 2)

    run_queue(scenario, reconcile)


def test_failures_are_retried_and_requeue_after_is_honoured():
    calls = []

    def reconcile(ns, name):
        calls.append(name)
        if len(calls) == 1:
            raise RuntimeError("API server hiccup")
        return 0.05 if len(calls) < 4 else None

    async def scenario(queue):
        queue.add("Thing", "ns", "a")
        await until(lambda: len(calls) == 4)
        # idle means no timer is left either: None asked for no further pass.
        await until(lambda: queue.idle)
        assert len(calls) == 4 and queue.scheduled == 0

    run_queue(scenario, reconcile)


def test_a_key_added_before_run_is_reconciled_once_the_workers_start():
    calls = []

    async def main():
        queue = WorkQueue(workers=1)
        queue.register("Thing", lambda ns, name: calls.append((ns, name)))
        queue.add("Thing", "ns", "early")
        queue.add("Thing", "ns", "early")
        assert queue.depth == 1
        task = asyncio.create_task(queue.run())
        try:
            await until(lambda: queue.idle)
        finally:
            task.cancel()

    asyncio.run(main())
    assert calls == [("ns", "early")]


def test_a_delayed_add_outside_the_event_loop_is_an_error_not_a_silent_drop():
    with pytest.raises(RuntimeError):
        WorkQueue().add("Thing", "ns", "a", after=1.0)


def test_a_delayed_add_of_a_key_already_queued_is_left_to_the_pass_it_waits_for():
    queue = WorkQueue()
    queue.add("Thing", "ns", "a")
    queue.add("Thing", "ns", "a", after=0.2)  # a child's event: the queued pass reads the state when it runs
    assert (queue.depth, queue.scheduled) == (1, 0)


def test_a_key_waiting_for_its_requeue_is_scheduled_not_queued():
    async def scenario(queue):
        queue.add("Thing", "ns", "a", after=60)
        assert (queue.depth, queue.scheduled, queue.idle) == (0, 1, False)
        queue.add("Thing", "ns", "a", after=120)  # the earlier timer wins
        assert queue.scheduled == 1

    run_queue(scenario, lambda ns, name: None)


def test_a_429_is_retried_no_sooner_than_its_retry_after():
    from kubernetes.client.exceptions import ApiException

    import time

    calls = []

    def reconcile(ns, name):
        calls.append(time.monotonic())
        if len(calls) == 1:
            busy = ApiException(status=429, reason="TooManyRequests")
            busy.headers = {"Retry-After": "1.5"}
            raise busy

    async def scenario(queue):
        queue.add("Thing", "ns", "a")
        await until(lambda: len(calls) == 2, timeout=10)
        assert calls[1] - calls[0] >= 1.4  # the first backoff alone would be 0.5 s

    run_queue(scenario, reconcile)
