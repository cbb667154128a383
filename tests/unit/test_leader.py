"""Leader election on a Lease: the pure decision, and two candidates against one in-memory Lease."""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime, timezone

from kubernetes.client.exceptions import ApiException

from kubeforge.leader import LeaderElector, decide

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def held_by(holder: str, transitions: int = 0) -> dict:
    return {"holderIdentity": holder, "leaseDurationSeconds": 10, "renewTime": "2026-01-01T11:59:59.000000Z",
            "leaseTransitions": transitions}


def test_a_candidate_takes_a_lease_nobody_holds():
    decision = decide({}, "a", 0, 10, NOW)
    assert decision.leading and decision.spec["holderIdentity"] == "a" and decision.spec["leaseTransitions"] == 0


def test_the_holder_renews_its_lease():
    decision = decide(held_by("a"), "a", 0, 10, NOW)
    assert decision.leading and decision.spec["renewTime"] == "2026-01-01T12:00:00.000000Z"


def test_a_candidate_waits_while_the_holders_record_keeps_changing():
    assert decide(held_by("a"), "b", 9.9, 10, NOW).spec is None


def test_a_candidate_takes_over_a_record_unchanged_for_the_lease_duration():
    decision = decide(held_by("a", transitions=3), "b", 10, 10, NOW)
    assert decision.leading and decision.spec["holderIdentity"] == "b" and decision.spec["leaseTransitions"] == 4


def test_a_released_lease_is_taken_at_once():
    assert decide(held_by(""), "b", 0, 10, NOW).leading


class FakeLeases:
    """get / create / replace with the API server's optimistic concurrency (409 on a stale resourceVersion)."""

    def __init__(self) -> None:
        self.lease: dict | None = None
        self.version = 0

    def get(self, api_version, kind, namespace, name):
        return copy.deepcopy(self.lease)

    def create(self, obj):
        if self.lease is not None:
            raise ApiException(status=409)
        return self._store(obj)

    def replace(self, obj):
        if obj["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiException(status=409)
        return self._store(obj)

    def _store(self, obj):
        self.version += 1
        self.lease = copy.deepcopy(obj)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_of_two_candidates_one_leads_and_the_other_takes_over_only_after_the_lease_duration():
    leases, clock = FakeLeases(), Clock()
    a = LeaderElector("ns", "lease", "a", duration=10, client=leases, clock=clock)
    b = LeaderElector("ns", "lease", "b", duration=10, client=leases, clock=clock)
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    clock.now = 9  # a stopped renewing at 0
    assert not b.try_acquire_or_renew()
    clock.now = 10
    assert b.try_acquire_or_renew() and leases.lease["spec"]["holderIdentity"] == "b"
    assert not a.try_acquire_or_renew() and not a.leading


def test_a_leader_that_stops_cleanly_hands_the_lease_over_at_once():
    leases, clock = FakeLeases(), Clock()
    a = LeaderElector("ns", "lease", "a", client=leases, clock=clock)
    b = LeaderElector("ns", "lease", "b", client=leases, clock=clock)
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    a.release()
    assert b.try_acquire_or_renew()


def test_a_leader_that_loses_its_lease_stops_leading():
    leases, clock = FakeLeases(), Clock()
    a = LeaderElector("ns", "lease", "a", retry=0.01, client=leases, clock=clock)
    events = []

    async def lead() -> None:
        events.append("lead")
        await asyncio.sleep(3600)

    async def scenario() -> None:
        run = asyncio.create_task(a.run(lead, stop=lambda: events.append("stop")))
        while "lead" not in events:
            await asyncio.sleep(0.01)
        leases.lease["spec"]["holderIdentity"] = "b"  # another replica took it over
        leases.lease["spec"]["renewTime"] = "later"
        await asyncio.wait_for(run, 5)

    asyncio.run(scenario())
    assert events == ["lead", "stop"]
