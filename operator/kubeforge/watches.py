"""Watch-to-queue wiring: kopf watch events only enqueue a key; the level-triggered reconcilers do the rest.

Each controller's setup() calls these to say which watches wake it; main passes in the
kopf registry and the work queue, so nothing registers itself on import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kopf

from kubeforge import API_VERSION, GROUP, VERSION, kube, metrics
from kubeforge.childcache import LISTED, Listed, trimmed
from kubeforge.crcache import ResourceCache
from kubeforge.health import HEALTH, WatchedKind
from kubeforge.statuswrite import OWN_WRITES
from kubeforge.workqueue import WorkQueue

# On every child of every kind (names.labels, modelendpoint.builders.labels): the one server-side
# selector left when two owners with different labels watch the same child kind.
MANAGED_BY_SELECTOR = "app.kubernetes.io/managed-by=kubeforge"


def _watched(api_version: str, plural: str, selector: str = "") -> None:
    """Tell kubeforge.health a kind is watched: /healthz then expects events or lists of it."""
    kind = next((k for k, p in kube.PLURALS.items() if p == plural), plural)
    HEALTH.watch(WatchedKind(api_version, kind, plural, selector))


def enqueue_on_event(registry: kopf.OperatorRegistry, queue: WorkQueue, kind: str, plural: str, cache: ResourceCache | None = None) -> None:
    """Every watch event on one of our custom resources enqueues its own key (and, with `cache`, tells it the version)."""

    _watched(API_VERSION, plural)

    # async on purpose: kopf runs sync handlers in a thread pool, and WorkQueue.add touches an
    # asyncio.Queue, which is safe from the event loop's thread only.
    @kopf.on.event(GROUP, VERSION, plural, id=f"enqueue-{kind}", registry=registry)
    async def _enqueue(namespace: str, name: str, meta: kopf.Meta, status: kopf.Status, body: kopf.Body, type: str | None,
                       **_: Any) -> None:
        metrics.WATCH_EVENTS.labels(resource=plural).inc()
        HEALTH.seen(plural)
        LISTED.handler_called()
        if cache is not None and type == "DELETED":
            cache.gone(kind, namespace, name)
        elif cache is not None:  # a restart's listing (type None) records versions only: bodies are for active work
            cache.seen(kind, namespace, name, meta.get("resourceVersion"), trimmed(body) if type is not None else None)
        if OWN_WRITES.is_own(kind, namespace, name, meta.get("resourceVersion")):
            return  # only our own status write: the pass that made it saw everything
        # The initial list (type None: a start or restart) re-checks what a previous run already
        # reconciled: behind new objects and edits, so those are handled first.
        queue.add(kind, namespace, name, background=type is None and already_reconciled(meta, status))

    # kopf runs index functions before it holds events for the initial lists (childcache.LISTED), which
    # after a restart at scale take many seconds: new work (an object no run acted on yet, an edit) is
    # queued from here meanwhile, and its pass reads the API server until the indexes are complete.
    @kopf.index(GROUP, VERSION, plural, id=f"early-{kind}", registry=registry)
    async def _early(namespace: str, name: str, meta: kopf.Meta, status: kopf.Status, **_: Any) -> dict:
        queue_new_work_early(queue, LISTED, kind, namespace, name, meta, status)
        return {}  # indexes nothing


def queue_new_work_early(queue: WorkQueue, listed: Listed, kind: str, namespace: str, name: str, meta: Any, status: Any) -> None:
    """While kopf holds the event handlers for its initial lists: queue what no run acted on yet (the rest waits)."""
    if not listed.done and not already_reconciled(meta, status):
        queue.add(kind, namespace, name)


def already_reconciled(meta: Any, status: Any) -> bool:
    """Status reports the object's current generation: some run of the operator acted on this spec."""
    return bool(status) and status.get("observedGeneration") == meta.get("generation")


def enqueue_owner_on_child_event(
    registry: kopf.OperatorRegistry, queue: WorkQueue, group: str, version: str, plural: str, label: str, owner_kind: str,
    delay: float | Callable[[str, str], float] = 0.0,
) -> None:
    """Child objects carry the owner's name in `label`; their events wake the owner's reconciler (after `delay`
    seconds, or after `delay(namespace, owner)` when it is a function)."""
    _watched(f"{group}/{version}" if group else version, plural, label)
    child_kind = next((k for k, p in kube.PLURALS.items() if p == plural), plural)

    # A distinct id per owner: TrainingJob and ModelEndpoint both watch some child kinds.
    @kopf.on.event(group, version, plural, labels={label: kopf.PRESENT}, id=f"enqueue-{owner_kind}-for-{plural}", registry=registry)
    async def _enqueue_owner(namespace: str, name: str, labels: dict[str, str], meta: kopf.Meta, type: str | None,
                             **_: Any) -> None:
        metrics.WATCH_EVENTS.labels(resource=plural).inc()
        HEALTH.seen(plural)
        LISTED.handler_called()
        if type == "DELETED":  # gone: the next pass must apply it again, not skip it as unchanged
            kube.APPLIED.forget(child_kind, namespace, name)
        elif OWN_WRITES.is_own(child_kind, namespace, name, meta.get("resourceVersion")):
            return  # the child as our own apply left it: the pass that applied it knew that much
        # A (re)start lists every live child: its owner's own listing event already queues it, and these
        # must not lift a thousand re-checks ahead of new work (their owners at normal priority).
        owner = labels[label]
        queue.add(owner_kind, namespace, owner, after=delay(namespace, owner) if callable(delay) else delay, background=type is None)

    select_server_side(registry, group, version, plural, label)


def select_server_side(registry: kopf.OperatorRegistry, group: str, version: str, plural: str, label: str) -> None:
    """List and watch only the children that carry `label`, filtered by the API server.

    kopf's `labels=` filter on a handler is applied client-side: without this, every Pod, Job
    and Deployment in the cluster streams through the operator. kopf joins the selectors of
    one resource with "and", so a second owner label on the same kind (pods of TrainingJobs
    and of ModelEndpoints) falls back to the label both share; the handlers' own `labels=`
    filters still pick their children.
    """

    @kopf.on.startup(id=f"select-{plural}-{label}", registry=registry)
    async def _select(settings: kopf.OperatorSettings, **_: Any) -> None:
        selectors, key = settings.watching.label_selectors, (group, version, plural)
        selectors[key] = child_selector(selectors.get(key), label)


def child_selector(current: str | None, label: str) -> str:
    """The server-side selector of a child kind that one more owner, with `label`, watches."""
    return label if current in (None, label) else MANAGED_BY_SELECTOR
