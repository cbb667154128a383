"""kubeforge.indexgate: kopf's start-up gate still opens exactly when the last listed object is indexed."""

from __future__ import annotations

import asyncio

from kopf._cogs.aiokits import aiotoggles

from kubeforge import indexgate


def test_the_gate_opens_when_the_last_object_is_indexed_and_not_before():
    indexgate.install()

    async def scenario() -> None:
        gate = aiotoggles.ToggleSet(all)
        listing = await gate.make_toggle(name="pods listed")
        objects = [await gate.make_toggle(name=f"pod {i}") for i in range(3)]
        waiter = asyncio.create_task(gate.wait_for(True))
        for toggle in (listing, *objects[:-1]):
            await gate.drop_toggle(toggle)
            await asyncio.sleep(0)
            assert not waiter.done() and gate.is_off()
        await gate.drop_toggles([objects[-1]])
        await asyncio.wait_for(waiter, timeout=5)
        assert gate.is_on()

    asyncio.run(scenario())


def test_a_start_at_scale_is_linear_a_thousand_waiting_workers_pass_the_gate_at_once():
    indexgate.install()

    async def scenario() -> None:
        gate = aiotoggles.ToggleSet(all)
        toggles = [await gate.make_toggle(name=str(i)) for i in range(1000)]

        async def worker(toggle: aiotoggles.Toggle) -> None:  # as kopf's per-object worker does
            await gate.drop_toggle(toggle)
            await gate.wait_for(True)

        await asyncio.wait_for(asyncio.gather(*(worker(t) for t in toggles)), timeout=10)

    asyncio.run(scenario())
