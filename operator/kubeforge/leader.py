"""Leader election on a coordination.k8s.io Lease: one replica reconciles; the others keep their watches warm and write nothing.

kopf's peering pauses operators that see each other's presence; it is not leader election
(no lease, no fencing). This follows client-go's leaderelection: every `retry` seconds the
candidate reads the Lease and creates, renews or takes it over with an optimistic-concurrency
write (resourceVersion); a holder is taken over only after its record went unchanged for
`duration` seconds as this candidate observed it (its own clock, never the holder's
renewTime, so clock skew does not matter). A leader that cannot renew for `renew_deadline`
(< duration) stops the process before anyone may take over, and a leader that stops cleanly
releases the Lease so a standby takes over within one retry period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kubeforge import kube, metrics

log = logging.getLogger(__name__)

LEASE_API = "coordination.k8s.io/v1"


def micro_time(now: datetime) -> str:
    """metav1.MicroTime: RFC 3339 with microseconds."""
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Decision:
    """What the candidate does with the Lease it read: write `spec` (None: wait), and whether it then leads."""

    spec: dict[str, Any] | None
    leading: bool


def decide(spec: dict[str, Any], identity: str, unchanged_for: float, duration: int, now: datetime) -> Decision:
    """Pure: the Lease's spec as read (empty when there is none), how long its record stayed the same as we saw it."""
    holder = spec.get("holderIdentity") or ""
    stamp = micro_time(now)
    if holder == identity:
        return Decision({**spec, "renewTime": stamp, "leaseDurationSeconds": duration}, True)
    expired = not holder or unchanged_for >= (spec.get("leaseDurationSeconds") or duration)
    if not expired:
        return Decision(None, False)
    transitions = (spec.get("leaseTransitions") or 0) + (1 if holder else 0)
    return Decision({"holderIdentity": identity, "leaseDurationSeconds": duration, "acquireTime": stamp,
                     "renewTime": stamp, "leaseTransitions": transitions}, True)


@dataclass
class LeaderElector:
    namespace: str
    name: str
    identity: str
    duration: int = 10
    renew_deadline: float = 7.0
    retry: float = 2.0
    client: Any = kube
    clock: Callable[[], float] = time.monotonic
    leading: bool = False
    _observed: tuple[Any, float] = field(default=(None, 0.0))  # (record as last read, when it last changed)

    async def run(self, lead: Callable[[], Awaitable[None]], stop: Callable[[], None]) -> None:
        """Waits for the Lease, runs `lead()` while holding it, calls `stop()` when it can no longer renew."""
        while not await self._try():
            await asyncio.sleep(self.retry)
        log.info("leader election: %s leads (Lease %s/%s)", self.identity, self.namespace, self.name)
        task = asyncio.create_task(lead(), name="kubeforge-leading")
        renewed = self.clock()
        try:
            while True:
                await asyncio.sleep(self.retry)
                if await self._try():
                    renewed = self.clock()
                elif self.clock() - renewed >= self.renew_deadline or not self.leading:
                    log.error("leader election: %s lost Lease %s/%s; stopping", self.identity, self.namespace, self.name)
                    stop()
                    return
        finally:
            task.cancel()

    async def _try(self) -> bool:
        try:
            return await asyncio.to_thread(self.try_acquire_or_renew)
        except Exception as err:  # the API server unreachable, a conflict: try again next period
            log.warning("leader election: %s", err)
            return False

    def try_acquire_or_renew(self) -> bool:
        """One round: read the Lease, write it when ours to take or renew; True while this replica leads."""
        lease = self.client.get(LEASE_API, "Lease", self.namespace, self.name)
        spec = (lease or {}).get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        now = self.clock()
        if record != self._observed[0]:
            self._observed = (record, now)
        decision = decide(spec, self.identity, now - self._observed[1], self.duration, datetime.now(timezone.utc))
        if decision.spec is None:
            self.leading = False
            return False
        body = {"apiVersion": LEASE_API, "kind": "Lease", "spec": decision.spec,
                "metadata": {"name": self.name, "namespace": self.namespace,
                             **({"resourceVersion": lease["metadata"]["resourceVersion"]} if lease else {})}}
        if lease:
            self.client.replace(body)  # 409 when another candidate wrote first: we lost this round
        else:
            self.client.create(body)
        self.leading = decision.leading
        metrics.LEADER.set(1 if self.leading else 0)
        return self.leading

    def release(self) -> None:
        """On a clean stop: hand the Lease over at once (client-go's ReleaseOnCancel)."""
        if not self.leading:
            return
        lease = self.client.get(LEASE_API, "Lease", self.namespace, self.name)
        if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
            lease["spec"].update(holderIdentity="", leaseDurationSeconds=1)
            self.client.replace(lease)
        self.leading = False
        metrics.LEADER.set(0)
