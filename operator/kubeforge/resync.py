"""The slow, jittered periodic re-list: catches any event a watch missed, and feeds kubeforge.health.

Every resync period (jittered, so many operators or restarts do not list in step) each watched
kind is listed with limit=1: a success is evidence the kind can still be listed and watched.
Every relist period, every TrainingJob and ModelEndpoint is listed and enqueued, so an edit made
while a watch was down is reconciled even if no event for it ever arrives.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Callable

from kubeforge import API_VERSION, kube
from kubeforge.health import WatchHealth

log = logging.getLogger(__name__)


def jittered(seconds: float, rand: Callable[[], float] = random.random) -> float:
    """seconds +-20%."""
    return seconds * (0.8 + 0.4 * rand())


class Resync:
    def __init__(self, health: WatchHealth, enqueue: Callable[[str, str, str], None], namespaces: tuple[str, ...],
                 resync_seconds: float, relist_seconds: float, owner_kinds: tuple[str, ...], client: Any = kube) -> None:
        self.health, self.enqueue, self.client = health, enqueue, client
        self.namespaces: tuple[str | None, ...] = namespaces or (None,)
        self.resync_seconds, self.relist_seconds = resync_seconds, relist_seconds
        self.owner_kinds = owner_kinds  # custom resource kinds whose objects the relist enqueues

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_relist = loop.time() + jittered(self.relist_seconds)
        while True:
            await asyncio.sleep(jittered(self.resync_seconds))
            await asyncio.to_thread(self.probe_lists)
            if loop.time() >= next_relist:
                next_relist = loop.time() + jittered(self.relist_seconds)
                for kind, namespace, name in await asyncio.to_thread(self.owner_keys):
                    self.enqueue(kind, namespace, name)

    def probe_lists(self) -> None:
        for plural, watched in list(self.health.kinds.items()):
            try:
                for namespace in self.namespaces:
                    self.client.list_(watched.api_version, watched.kind, namespace, watched.selector, limit=1)
            except Exception as exc:  # noqa: BLE001 - reported by /healthz once stale
                log.warning("cannot list %s: %s", plural, getattr(exc, "reason", exc))
                continue
            self.health.seen(plural)

    def owner_keys(self) -> list[tuple[str, str, str]]:
        keys = []
        for kind in self.owner_kinds:
            for namespace in self.namespaces:
                try:
                    items = self.client.list_(API_VERSION, kind, namespace)
                except Exception as exc:  # noqa: BLE001 - the next relist tries again
                    log.warning("relist of %s failed: %s", kind, getattr(exc, "reason", exc))
                    continue
                keys += [(kind, o["metadata"]["namespace"], o["metadata"]["name"]) for o in items]
        return keys
