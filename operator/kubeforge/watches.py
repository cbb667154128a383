"""Watch-to-queue wiring: kopf watch events only enqueue a key; the level-triggered reconcilers do the rest.

Each controller's setup() calls these to say which watches wake it; main passes in the
kopf registry and the work queue, so nothing registers itself on import.
"""

from __future__ import annotations

from typing import Any

import kopf

from kubeforge import GROUP, VERSION, metrics
from kubeforge.workqueue import WorkQueue


def enqueue_on_event(registry: kopf.OperatorRegistry, queue: WorkQueue, kind: str, plural: str) -> None:
    """Every watch event on one of our custom resources enqueues its own key."""

    # async on purpose: kopf runs sync handlers in a thread pool, and WorkQueue.add touches an
    # asyncio.Queue, which is safe from the event loop's thread only.
    @kopf.on.event(GROUP, VERSION, plural, id=f"enqueue-{kind}", registry=registry)
    async def _enqueue(namespace: str, name: str, **_: Any) -> None:
        metrics.WATCH_EVENTS.labels(resource=plural).inc()
        queue.add(kind, namespace, name)


def enqueue_owner_on_child_event(
    registry: kopf.OperatorRegistry, queue: WorkQueue, group: str, version: str, plural: str, label: str, owner_kind: str
) -> None:
    """Child objects carry the owner's name in `label`; their events wake the owner's reconciler."""

    # A distinct id per owner: TrainingJob and ModelEndpoint both watch some child kinds.
    @kopf.on.event(group, version, plural, labels={label: kopf.PRESENT}, id=f"enqueue-{owner_kind}-for-{plural}", registry=registry)
    async def _enqueue_owner(namespace: str, labels: dict[str, str], **_: Any) -> None:
        metrics.WATCH_EVENTS.labels(resource=plural).inc()
        queue.add(owner_kind, namespace, labels[label])
