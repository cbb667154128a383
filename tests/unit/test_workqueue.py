"""The work queue deduplicates keys, re-runs a key touched while in flight, and retries failures."""

import asyncio
import threading

from kubeforge.workqueue import WorkQueue


async def until(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.01)


def run_queue(scenario, reconciler, workers=2):
    async def main():
        queue = WorkQueue(workers=workers)
        queue.register("Thing", reconciler)
        task = asyncio.create_task(queue.run())
        await asyncio.sleep(0)  # let run() create its queue
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
        await until(lambda: ("Thing", "ns", "blocker") in queue._running)
        queue.add("Thing", "ns", "blocker2")  # occupies the second worker
        await until(lambda: len(queue._running) == 2)
        for _ in range(3):
            queue.add("Thing", "ns", "a")
        gate.set()
        await until(lambda: "a" in calls)
        await asyncio.sleep(0.1)
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
        await asyncio.sleep(0.2)
        assert len(calls) == 4  # None: no further requeue

    run_queue(scenario, reconcile)
