"""The operator's entry point: kopf settings, the work queue, health and metrics endpoints.

`kubeforge-operator` and `python -m kubeforge` both land in `main()`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
from typing import Any

import kopf
from prometheus_client import start_http_server

from kubeforge import GROUP, VERSION, logsetup, metrics
from kubeforge.settings import SETTINGS
from kubeforge.workqueue import QUEUE

log = logging.getLogger("kubeforge")
# Each controller module registers its reconciler and its kopf.on.event handlers on import.
CONTROLLERS = ("kubeforge.trainingjob.controller", "kubeforge.modelendpoint.controller")


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # A watch that silently stops delivering events is kopf's most reported failure:
    # the server closes each watch after server_timeout, and the client gives up on a
    # stream quiet for longer than client_timeout, so a stalled stream is re-established.
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    # Scanning CRDs and namespaces would need cluster-wide list/watch on both; the
    # resources we serve are fixed, so least-privilege RBAC wins.
    settings.scanning.disabled = True
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = max(8, SETTINGS.workers * 2)
    host, port = SETTINGS.metrics_addr.rsplit(":", 1)
    start_http_server(int(port), addr=host)
    memo.queue_task = asyncio.create_task(QUEUE.run(), name="kubeforge-workqueue")
    log.info("kubeforge operator started; metrics on http://%s/metrics", SETTINGS.metrics_addr)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("queue_task")
    if task:
        task.cancel()


@kopf.on.probe(id="queue")
def queue_probe(**_: Any) -> dict[str, int]:
    """Part of /healthz: a wedged queue shows up as a growing depth."""
    return {"depth": len(QUEUE._queued), "running": len(QUEUE._running)}


def enqueue_on_event(kind: str, plural: str) -> None:
    """Every watch event on a custom resource enqueues its key; the reconciler does the rest."""

    # async on purpose: kopf runs sync handlers in a thread pool, and QUEUE.add touches an
    # asyncio.Queue, which is safe from the event loop's thread only.
    @kopf.on.event(GROUP, VERSION, plural, id=f"enqueue-{kind}")
    async def _enqueue(namespace: str, name: str, type: str | None, **_: Any) -> None:
        metrics.WATCH_EVENTS.labels(resource=plural).inc()
        QUEUE.add(kind, namespace, name)


def enqueue_owner_on_child_event(group: str, version: str, plural: str, label: str, owner_kind: str) -> None:
    """Child objects carry the owner's name in `label`; their events wake the owner's reconciler."""

    # A distinct id per owner: TrainingJob and ModelEndpoint both watch some child kinds.
    @kopf.on.event(group, version, plural, labels={label: kopf.PRESENT}, id=f"enqueue-{owner_kind}-for-{plural}")
    async def _enqueue_owner(namespace: str, labels: dict[str, str], **_: Any) -> None:
        metrics.WATCH_EVENTS.labels(resource=plural).inc()
        QUEUE.add(owner_kind, namespace, labels[label])


def load_controllers() -> list[str]:
    loaded = []
    for module in CONTROLLERS:
        try:
            importlib.import_module(module)
            loaded.append(module)
        except ModuleNotFoundError as e:
            if not e.name or not module.startswith(e.name):
                raise
            log.warning("controller %s is not available", module)
    return loaded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kubeforge-operator", description="Run the kubeforge operator.")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logsetup.configure(args.verbose)
    loaded = load_controllers()
    log.info("controllers: %s; namespaces: %s", loaded, SETTINGS.watch_namespaces or "all")
    QUEUE.workers = SETTINGS.workers
    kopf.run(
        clusterwide=not SETTINGS.watch_namespaces,
        namespaces=list(SETTINGS.watch_namespaces),
        liveness_endpoint=f"http://{SETTINGS.health_addr}/healthz",
        standalone=True,
    )


if __name__ == "__main__":
    main()
