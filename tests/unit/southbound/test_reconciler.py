"""The reconciler against a switch double that keeps a flow table like OVS does."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from vlcp.southbound.openflow.flow import Flow, output
from vlcp.southbound.reconciler import Reconciler


@dataclass(frozen=True)
class Entry:
    cookie: int
    table: int
    priority: int
    match: tuple


class FakeSwitch:
    """A flow table keyed like OVS (table, priority, match); counts what it is sent."""

    def __init__(self) -> None:
        self.table: dict[tuple, Entry] = {}
        self.mods = 0
        self.fail_next = False
        self.reads = 0

    def key(self, flow: Flow | Entry) -> tuple:
        return (flow.table, flow.priority, flow.match)

    async def read_flows(self) -> list[Entry]:
        self.reads += 1
        await asyncio.sleep(0)
        return list(self.table.values())

    async def apply(self, adds: list[Flow], deletes: list) -> None:
        await asyncio.sleep(0)
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("switch went away mid-update")
        for flow in adds:
            self.table[self.key(flow)] = Entry(flow.cookie, flow.table, flow.priority, flow.match)
        for flow in deletes:
            current = self.table.get(self.key(flow))
            if current is not None and current.cookie == flow.cookie:
                del self.table[self.key(flow)]
        self.mods += len(adds) + len(deletes)

    def cookies(self) -> set[int]:
        return {e.cookie for e in self.table.values()}


def flows(n: int, variant: int = 0, start: int = 0) -> list[Flow]:
    return [
        Flow.make(1, 100, {"reg5": i}, [output(i % 7 + variant)]) for i in range(start, start + n)
    ]


@pytest.fixture
async def reconciler():
    rec = Reconciler("br-test", retry_delay=0)
    rec.desired_complete()
    task = asyncio.create_task(rec.run())
    yield rec
    task.cancel()


async def test_restart_with_same_state_sends_nothing(reconciler: Reconciler) -> None:
    switch = FakeSwitch()
    reconciler.set_flows("ports", flows(1000))
    first = await reconciler.attach(switch)
    assert len(first.adds) == 1000 and switch.mods == 1000

    restarted = Reconciler("br-test")
    restarted.set_flows("ports", flows(1000))
    restarted.desired_complete()
    plan = await restarted.attach(switch)
    assert len(plan) == 0 and restarted.flow_mods_sent == 0


async def test_restart_with_one_percent_changed_sends_only_that(reconciler: Reconciler) -> None:
    switch = FakeSwitch()
    reconciler.set_flows("ports", flows(1000))
    await reconciler.attach(switch)
    changed = flows(990) + flows(10, variant=1, start=990)
    restarted = Reconciler("br-test")
    restarted.set_flows("ports", changed)
    restarted.desired_complete()
    switch.mods = 0
    plan = await restarted.attach(switch)
    # 10 replaced flows: the add overwrites in place, the delete of the old cookie is a no-op
    assert (len(plan.adds), len(plan.deletes)) == (10, 10)
    assert switch.cookies() == {f.cookie for f in changed}


async def test_nothing_is_read_or_deleted_before_the_desired_state_is_complete() -> None:
    """A restarted controller still loading its state must not take the switch's flows
    for unwanted: the switch keeps them all until the state is declared complete."""
    switch = FakeSwitch()
    installed = flows(100)
    first = Reconciler("br-test")
    first.set_flows("ports", installed)
    first.desired_complete()
    await first.attach(switch)
    reads = switch.reads
    restarted = Reconciler("br-test", retry_delay=0)
    task = asyncio.create_task(restarted.run())
    try:
        restarted.set_flows("ports", installed[:10])  # a partial view: the mirror is loading
        attaching = asyncio.create_task(restarted.attach(switch))
        await asyncio.sleep(0.01)
        assert not attaching.done()
        assert switch.cookies() == {f.cookie for f in installed} and switch.reads == reads
        restarted.set_flows("ports", installed)  # the rest arrives
        restarted.desired_complete()
        plan = await attaching
        assert len(plan) == 0 and switch.cookies() == {f.cookie for f in installed}
    finally:
        task.cancel()


async def test_foreign_flows_are_removed_and_ours_kept(reconciler: Reconciler) -> None:
    switch = FakeSwitch()
    switch.table[(0, 0, ())] = Entry(0, 0, 0, ())  # e.g. a NORMAL flow left by someone
    reconciler.set_flows("a", flows(3))
    await reconciler.attach(switch)
    assert switch.cookies() == {f.cookie for f in flows(3)}


async def test_incremental_changes_touch_only_what_changed(reconciler: Reconciler) -> None:
    switch = FakeSwitch()
    shared = Flow.make(0, 1, {}, [output(1)])
    reconciler.set_flows("a", [shared, *flows(2)])
    reconciler.set_flows("b", [shared])
    await reconciler.attach(switch)
    await reconciler.synced()
    switch.mods = 0
    reconciler.remove_owner("b")  # the shared flow is still wanted by "a"
    reconciler.set_flows("a", [shared, *flows(3)])
    await reconciler.synced()
    assert switch.mods == 1
    assert switch.cookies() == {f.cookie for f in [shared, *flows(3)]}
    reconciler.remove_owner("a")
    await reconciler.synced()
    assert switch.cookies() == set()


async def test_changes_made_while_detached_are_applied_on_attach(reconciler: Reconciler) -> None:
    switch = FakeSwitch()
    reconciler.set_flows("a", flows(5))
    await reconciler.attach(switch)
    reconciler.detach()
    reconciler.set_flows("a", flows(6))
    await asyncio.sleep(0)
    assert len(switch.table) == 5  # nothing is sent while detached
    await reconciler.attach(switch)
    await reconciler.synced()
    assert switch.cookies() == {f.cookie for f in flows(6)}


async def test_a_failed_update_is_recovered_by_reading_the_table(reconciler: Reconciler) -> None:
    switch = FakeSwitch()
    reconciler.set_flows("a", flows(5))
    await reconciler.attach(switch)
    switch.fail_next = True
    reconciler.set_flows("a", flows(8))
    await asyncio.wait_for(reconciler.synced(), 5)
    assert switch.cookies() == {f.cookie for f in flows(8)}
    assert switch.reads == 2


async def test_changes_during_attach_are_not_lost(reconciler: Reconciler) -> None:
    switch = FakeSwitch()
    reconciler.set_flows("a", flows(5))
    attaching = asyncio.create_task(reconciler.attach(switch))
    await asyncio.sleep(0)  # attach is now reading the table
    reconciler.set_flows("b", flows(2, variant=3, start=100))
    await attaching
    await asyncio.wait_for(reconciler.synced(), 5)
    expected = {f.cookie for f in flows(5) + flows(2, variant=3, start=100)}
    assert switch.cookies() == expected
