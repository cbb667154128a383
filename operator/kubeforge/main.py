"""The operator's entry point: kopf settings, the work queue, health and metrics endpoints.

`kubeforge-operator` and `python -m kubeforge` both land in `main()`.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import functools
import logging
import os
from pathlib import Path
from typing import Any

import kopf
from prometheus_client import start_http_server

from kubeforge import identity, indexgate, logsetup, metrics
from kubeforge.api.modelendpoint import KIND as MODEL_ENDPOINT
from kubeforge.api.trainingjob import KIND as TRAINING_JOB
from kubeforge.health import HEALTH
from kubeforge.leader import LeaderElector
from kubeforge.modelendpoint import controller as modelendpoint_controller
from kubeforge.resync import Resync
from kubeforge.settings import SETTINGS, Settings
from kubeforge.trainingjob import controller as trainingjob_controller
from kubeforge.workqueue import WorkQueue

log = logging.getLogger("kubeforge")
# Each controller's setup registers its reconciler on the queue and its watches on the registry.
CONTROLLERS = (trainingjob_controller.setup, modelendpoint_controller.setup)
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def setup(registry: kopf.OperatorRegistry, queue: WorkQueue, config: Settings = SETTINGS) -> None:
    """Everything the operator runs, registered on `registry`: the controllers, the queue's lifecycle, its probe."""
    identity.setup(registry)
    for setup_controller in CONTROLLERS:
        setup_controller(registry, queue)
    # The relist re-checks what is already reconciled: behind new work in the queue.
    resync = Resync(HEALTH, functools.partial(queue.add, background=True), config.watch_namespaces, config.resync_seconds, config.relist_seconds,
                    owner_kinds=(TRAINING_JOB, MODEL_ENDPOINT))

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure_kopf(settings, config)
        host, port = config.metrics_addr.rsplit(":", 1)
        start_http_server(int(port), addr=host)
        # The watches run in every replica (a standby's are warm when it takes over); the queue's
        # workers, and with them every write, only in the one holding the Lease.
        if config.leader_election:
            memo.elector = elector(config)
            memo.queue_task = asyncio.create_task(memo.elector.run(queue.run, stop=lost_lease), name="kubeforge-leader")
        else:
            metrics.LEADER.set(1)
            memo.queue_task = asyncio.create_task(queue.run(), name="kubeforge-workqueue")
        # A watched kind with neither an event nor a list for three resync periods is a dead watch.
        HEALTH.stale_after = 3 * config.resync_seconds + 30
        memo.resync_task = asyncio.create_task(resync.run(), name="kubeforge-resync")
        log.info("kubeforge operator started; metrics on http://%s/metrics", config.metrics_addr)

    @kopf.on.cleanup(registry=registry)
    async def stop(memo: kopf.Memo, **_: Any) -> None:
        for task in (memo.get("queue_task"), memo.get("resync_task")):
            if task:
                task.cancel()
        if memo.get("elector"):
            await asyncio.to_thread(memo.elector.release)

    @kopf.on.probe(id="watches", registry=registry)
    async def watch_probe(memo: kopf.Memo, **_: Any) -> dict[str, int]:
        """/healthz fails (kopf answers 500) when a watch died or went silent, or the queue died: see kubeforge.health."""
        queue_task = memo.get("queue_task")
        tasks = [t.get_name() for t in asyncio.all_tasks()]
        problems = HEALTH.problems(tasks, queue_alive=queue_task is None or not queue_task.done())
        if problems:
            log.error("unhealthy: %s", "; ".join(problems))
            raise kopf.PermanentError("; ".join(problems))
        return {"kinds": len(HEALTH.kinds)}

    @kopf.on.probe(id="queue", registry=registry)
    def queue_probe(**_: Any) -> dict[str, int]:
        """Part of /healthz: a wedged queue shows up as a growing depth."""
        return {"depth": queue.depth, "running": len(queue.running)}


def elector(config: Settings) -> LeaderElector:
    namespace = config.leader_election_namespace or _pod_namespace() or "default"
    return LeaderElector(namespace, config.leader_election_lease, identity.IDENTITY, duration=config.lease_duration_seconds,
                         renew_deadline=0.7 * config.lease_duration_seconds, retry=max(0.5, config.lease_duration_seconds / 5))


def _pod_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    except OSError:
        return ""


def lost_lease() -> None:
    """Another replica may lead from now on: stop at once, before a pass in flight writes (client-go exits too)."""
    logging.shutdown()
    os._exit(1)


def configure_kopf(kopf_settings: kopf.OperatorSettings, config: Settings) -> None:
    # A watch that silently stops delivering events is kopf's most reported failure:
    # the server closes each watch after server_timeout, and the client gives up on a
    # stream quiet for longer than client_timeout, so a stalled stream is re-established.
    # The API server parses timeoutSeconds as an integer ("120.0" is a 400).
    kopf_settings.watching.server_timeout = int(config.watch_timeout_seconds)
    kopf_settings.watching.client_timeout = int(config.watch_timeout_seconds) + 30
    kopf_settings.watching.connect_timeout = 10
    # The initial list of each watch in pages, not one response with every object of a kind.
    kopf_settings.watching.chunk_size = 500
    kopf_settings.networking.request_timeout = 30
    # Scanning CRDs and namespaces would need cluster-wide list/watch on both; the
    # resources we serve are fixed, so least-privilege RBAC wins.
    kopf_settings.scanning.disabled = True
    kopf_settings.posting.level = logging.WARNING
    kopf_settings.execution.max_workers = max(8, config.workers * 2)


# glibc's M_ARENA_MAX: its default (8 per core) gives each of the reconciler threads an arena of its own,
# and the memory freed in each stays mapped: RSS grew by ~25 MB with 16 workers (README, at scale).
M_ARENA_MAX, MALLOC_ARENAS = -8, 2


def limit_malloc_arenas() -> None:
    """Two malloc arenas for the whole process (MALLOC_ARENA_MAX=2), before any worker thread starts; no-op off glibc."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kubeforge-operator", description="Run the kubeforge operator.")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logsetup.configure(args.verbose)
    limit_malloc_arenas()
    indexgate.install()  # a start at scale in linear time, not minutes (kopf's index gate)
    # The default registry, not a bare OperatorRegistry: kopf's own fallback login handlers stay
    # unused beside ours (kubeforge.identity), but are there should it return nothing.
    registry = kopf.get_default_registry()
    setup(registry, WorkQueue(workers=SETTINGS.workers))
    log.info("controllers: %s; namespaces: %s", [c.__module__ for c in CONTROLLERS], SETTINGS.watch_namespaces or "all")
    kopf.run(
        registry=registry,
        clusterwide=not SETTINGS.watch_namespaces,
        namespaces=list(SETTINGS.watch_namespaces),
        liveness_endpoint=f"http://{SETTINGS.health_addr}/healthz",
        standalone=True,
    )


if __name__ == "__main__":
    main()
