"""A live controller follows its wanted module set: real ovs-vswitchd, an agent in process.

Writing `modules/<system-id>` without `arp_responder` makes the switch lose exactly that
module's flows (its table keeps its miss: it passes packets on), every other flow keeping
its cookie; writing the full set back brings the same flows back. `module-status/<id>`
says what is known and loaded all along.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Hypervisor
from vlcp.agent.agent import Agent
from vlcp.agent.modules import Discovery, discover
from vlcp.lab.servers import BRIDGE, agent_config, wait_for_bridge
from vlcp.layout import module_status, modules_key, port_status
from vlcp.pipeline import BUILTIN, Catalog, Module
from vlcp.southbound.openflow.flow import Flow
from vlcp.store import Resync, Store, Transaction, open_store

pytestmark = [pytest.mark.root, needs_ovs_lab]

ME = "hv1"
OBJECTS: dict[str, Any] = {
    "physnet/vx": {"type": "vxlan"},
    "lognet/n0": {"physicalnetwork": "vx", "vni": 5001},
    "lport/p0": {
        "logicalnetwork": "n0",
        "mac_address": "02:00:00:00:00:01",
        "ip_address": "10.0.0.1",
    },
    "lport/p1": {
        "logicalnetwork": "n0",
        "mac_address": "02:00:00:00:00:02",
        "ip_address": "10.0.0.2",
    },
}
ARP = BUILTIN.pipeline["arp_responder"].id
EVERY = sorted(m.name for m in BUILTIN)
_FLOW = re.compile(r"cookie=(0x[0-9a-f]+),(?:.* table=(\d+),)?.* priority=(\d+)")
"""A `dump-flows --no-stats` line (table 0 is not printed)."""


async def put(store: Store, values: dict[str, Any]) -> None:
    async def write(txn: Transaction) -> None:
        for key, value in values.items():
            txn.put(key, value)

    await store.transact(write)


async def until(store: Store, key: str, done: Callable[[Any], bool]) -> Any:
    """The value of `key` once `done(value)`, as the store's watch delivers it."""
    async with asyncio.timeout(30):
        async for item in store.watch(prefix=key[: key.rindex("/") + 1]):
            values = (
                item.values if isinstance(item, Resync) else {c.key: c.value for c in item.changes}
            )
            if key in values and done(values[key]):
                return values[key]
    raise AssertionError("the watch ended")


async def flows(hv: Hypervisor) -> dict[int, tuple[int, int]]:
    """The switch's flows: cookie -> (table, priority)."""
    found = {}
    for line in await asyncio.to_thread(hv.dump_flows, BRIDGE):
        match = _FLOW.search(line)
        assert match, line
        cookie, table, priority = match.groups()
        found[int(cookie, 16)] = (int(table or 0), int(priority))
    return found


def _in_table(flows: dict[int, tuple[int, int]], table: int) -> set[int]:
    """The cookies of a table's own flows (its miss, priority 0, is the pipeline's)."""
    return {c for c, (t, priority) in flows.items() if t == table and priority > 0}


async def flows_until(hv: Hypervisor, done: Callable[[dict[int, tuple[int, int]]], bool]) -> dict:
    """The switch's flows once `done(flows)` (there is no event to wait on: dump-flows)."""
    async with asyncio.timeout(30):
        while not done(current := await flows(hv)):
            await asyncio.sleep(0.05)
    return current


def broken_port_flows(*args: object) -> frozenset[Flow]:
    raise RuntimeError("a third-party bug")


BROKEN = Module("broken", doc="raises for every port", depends=("ingress",), port=broken_port_flows)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite://{tmp_path}/state.db")
    yield store
    await store.close()


async def test_unloading_a_module_removes_exactly_its_flows_on_the_switch(
    hypervisor: Hypervisor, store: Store
) -> None:
    await put(store, OBJECTS)
    agent = Agent(store, agent_config(hypervisor, ME), discover(BUILTIN, []))  # built-ins only
    task = asyncio.create_task(agent.run())
    try:
        await wait_for_bridge(hypervisor, task)
        hypervisor.plug_internal_many(BRIDGE, [("v0", "p0"), ("v1", "p1")])
        for port in ("p0", "p1"):
            await until(store, port_status(port), lambda v: v.get("state") == "up")
        status = await until(store, module_status(ME), lambda v: True)
        assert status["loaded"] == EVERY
        assert sorted(status["known"]) == EVERY and status["default"] == EVERY
        assert status["errors"] == {}
        before = await flows(hypervisor)
        arp = _in_table(before, ARP)
        assert len(arp) == 4  # each port: its answer, and its own requests passed on

        without = [m for m in EVERY if m != "arp_responder"]
        await put(store, {modules_key(ME): {"modules": without, "reload": {}}})
        after = await flows_until(hypervisor, lambda f: not f.keys() & arp)
        assert after == {c: where for c, where in before.items() if c not in arp}
        status = await until(store, module_status(ME), lambda v: v["loaded"] == without)
        assert sorted(status["known"]) == EVERY and status["errors"] == {}

        await put(store, {modules_key(ME): {"modules": EVERY, "reload": {}}})
        assert await flows_until(hypervisor, lambda f: f.keys() >= arp) == before
        await until(store, module_status(ME), lambda v: v["loaded"] == EVERY)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_module_that_raises_is_unloaded_and_the_controller_serves_on(
    hypervisor: Hypervisor, store: Store
) -> None:
    await put(store, {**OBJECTS, modules_key(ME): {"modules": [*EVERY, "broken"], "reload": {}}})
    discovery = Discovery(Catalog([*BUILTIN, BROKEN]), {}, frozenset(EVERY))
    task = asyncio.create_task(Agent(store, agent_config(hypervisor, ME), discovery).run())
    try:
        await wait_for_bridge(hypervisor, task)
        hypervisor.plug_internal(BRIDGE, "v0", "p0")
        await until(store, port_status("p0"), lambda v: v.get("state") == "up")
        status = await until(store, module_status(ME), lambda v: "broken" in v["errors"])
        assert "RuntimeError: a third-party bug" in status["errors"]["broken"]
        assert status["loaded"] == EVERY
        hypervisor.plug_internal(BRIDGE, "v1", "p1")  # the controller still follows changes
        await until(store, port_status("p1"), lambda v: v.get("state") == "up")
        arp = await flows_until(hypervisor, lambda f: len(_in_table(f, ARP)) == 4)
        assert len(arp) > 4  # and every other module's flows
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
