"""Is the cloud where a fresh start would put it? Flows by cookie, and the store's invariants.

A switch's flows are compared with what a controller started now would compute from the
same store and the same OVS ports (the pure pipeline, from scratch); the store is run
through the model's invariant checker. After any sequence of changes or failures, both
must hold: nothing half-done, nothing left behind.
"""

from __future__ import annotations

import asyncio
import re

from tests.lab.waiting import eventually
from tests.unit.model.invariants import check
from vlcp.agent.binding import bridge_ports
from vlcp.agent.view_builder import Identity, build_view
from vlcp.lab.servers import BRIDGE
from vlcp.pipeline.compile import compile_all
from vlcp.southbound.ovsdb.client import OvsdbClient
from vlcp.southbound.ovsdb.monitor import Monitor
from vlcp.southbound.ovsdb.vswitch import BINDING_TABLES, DB
from vlcp.store import Store

COOKIE = re.compile(r"cookie=(0x[0-9a-f]+)")
FLOW = re.compile(r"cookie=(0x[0-9a-f]+),(?:.* table=(\d+),)?.* priority=(\d+)")
"""A `dump-flows --no-stats` line: its cookie, table (not printed for 0) and priority."""


async def expected_cookies(store: Store, server) -> set[int]:
    """What a controller started now would install on `server` (a conftest `Server`)."""
    values = (await store.read_prefix("")).values
    async with OvsdbClient(server.hv.db_target) as client:
        monitor = await Monitor(client, DB, BINDING_TABLES).start()
        ports = bridge_ports(monitor, BRIDGE)
        await monitor.stop()
    me = Identity(system_id=server.name, bridge=BRIDGE, vtep=server.hv.vtep_ip)
    flows = compile_all(build_view(values, ports, me))
    return {flow.cookie for owned in flows.values() for flow in owned}


async def installed_cookies(server) -> set[int]:
    """The cookies of the flows `server`'s switch holds now."""
    flows = await asyncio.to_thread(server.hv.dump_flows, BRIDGE)
    return {int(m[1], 16) for f in flows if (m := COOKIE.search(f))}


async def installed_flows(server) -> dict[int, tuple[int, int]]:
    """The flows `server`'s switch holds now: cookie -> (table, priority)."""
    found = {}
    for line in await asyncio.to_thread(server.hv.dump_flows, BRIDGE):
        if match := FLOW.search(line):
            cookie, table, priority = match.groups()
            found[int(cookie, 16)] = (int(table or 0), int(priority))
    return found


async def differences(store: Store, server) -> str | None:
    """None if `server`'s switch holds exactly a fresh controller's flows, else how not."""
    expected, installed = await expected_cookies(store, server), await installed_cookies(server)
    if expected == installed:
        return None
    return (
        f"{server.name}: {len(expected - installed)} flows missing, "
        f"{len(installed - expected)} extra (of {len(expected)} expected)"
    )


async def wait_like_fresh_controllers(store: Store, servers, timeout: float = 30) -> None:
    """Wait until every one of `servers` holds exactly a fresh controller's flows."""

    async def all_equal() -> bool:
        return not [d for s in servers if (d := await differences(store, s))]

    async def why() -> str:
        return "\n".join([d for s in servers if (d := await differences(store, s))])

    await eventually(all_equal, timeout, what="flows equal to a fresh controller's", details=why)


async def check_invariants(store: Store) -> None:
    """The model's invariant checker on the whole store (AssertionError names the breach)."""
    check((await store.read_prefix("")).values)
