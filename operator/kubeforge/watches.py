"""Watch-to-queue wiring: kopf watch events only enqueue a key; the level-triggered reconcilers do the rest.

Each controller's setup() calls these to say which watches wake it; main passes in the
kopf registry and the work queue, so nothing registers itself on import.
"""

from __future__ import annotations

from typing import Any

import kopf

from kubeforge import API_VERSION, GROUP, VERSION, kube, metrics
from kubeforge.health import HEALTH, WatchedKind
from kubeforge.workqueue import WorkQueue


def _watched(api_version: str, plural: str, selector: str = "") -> None:
    """Tell kubeforge.health a kind is watched: /healthz then expects events or lists of it."""
    kind = next((k for k, p in kube.PLURALS.items() if p == plural), plural)
    HEALTH.watch(WatchedKind(api_version, kind, plural, selector))


def enqueue_on_event(registry: kopf.OperatorRegistry, queue: WorkQueue, kind: str, plural: str) -> None:
    """Every watch event on one of our custom resources enqueues its own key."""

    _watched(API_VERSION, plural)

    # async on purpose: kopf runs sync handlers in a thread pool, and WorkQueue.add touches an
    # asyncio.Queue, which is safe from the event loop's thread only.
    @kopf.on.event(GROUP, VERSION, plural, id=f"enqueue-{kind}", registry=registry)
    async def _enqueue(namespace: str, name: str, **_: Any) -> None:
        metrics.WATCH_EVENTS.labels(resource=plural).inc()
        HEALTH.seen(plural)
        queue.add(kind, namespace, name)


def enqueue_owner_on_child_event(
    registry: kopf.OperatorRegistry, queue: WorkQueue, group: str, version: str, plural: str, label: str, owner_kind: str,
    delay: float = 0.0,
) -> None:
    """Child objects carry the owner's name in `label`; their events wake the owner's reconciler (after `delay`)."""
    _watched(f"{group}/{version}" if group else version, plural, label)

    # A distinct id per owner: TrainingJob and ModelEndpoint both watch some child kinds.
    @kopf.on.event(group, version, plural, labels={label: kopf.PRESENT}, id=f"enqueue-{owner_kind}-for-{plural}", registry=registry)
    async def _enqueue_owner(namespace: str, labels: dict[str, str], **_: Any) -> None:
        metrics.WATCH_EVENTS.labels(resource=plural).inc()
        HEALTH.seen(plural)
        queue.add(owner_kind, namespace, labels[label], after=delay)
