"""Routing unloaded, loaded and reloaded on a live cluster, under traffic: the routed
world of test_routing.py, a 50 pps ping between a1 (hv0) and a2 (hv1) in one network
all along, and flow monitors on every switch.

- `l3` unloaded everywhere (`POST /v1/modules/unload`): a1 no longer reaches a5 in the
  other subnet; exactly the routing flows left the switches (routes in `l3`, entrances
  in `gateway`) and the monitors saw no other flow change; the L2 ping lost nothing
  (the controller never flushes a switch). Loaded back: routed again, the very same
  flows back.
- `l3` reloaded (same code) under a routed 50 pps ping too: no flow changes, nothing
  lost on either path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.lab.marks import needs_ovs_lab
from tests.lab.waiting import eventually
from vlcp.pipeline.builtin import PIPELINE
from vlcp.pipeline.l3 import PRIO_ENTER, PRIO_ROUTE

from . import test_routing
from .converged import installed_flows
from .failures import Observation, observe
from .modules import applied
from .test_routing import World

pytestmark = [pytest.mark.root, pytest.mark.slow, needs_ovs_lab]

world = test_routing.world
"""test_routing.py's fixture, a fixture of this module too."""

FAST = 0.02
"""Seconds between pings: 50 a second."""
BRIDGED = (("a1", "a2"),)
"""hv0 -> hv1 in tenant A's first network (VXLAN): never routed."""
ROUTED = (("a1", "a5"),)
"""hv0 -> hv1, from A's first network into its second (VLAN): routed."""
ROUTING_FLOWS = {(PIPELINE["l3"].id, PRIO_ROUTE), (PIPELINE["gateway"].id, PRIO_ENTER)}
"""(table, priority) of l3's flows: its routes, and its entrances in the gateway table."""


@asynccontextmanager
async def watched(
    world: World, pairs: tuple[tuple[str, str], ...], directory: Path
) -> AsyncIterator[Observation]:
    """Once every controller has applied its modules: 50 pps pings over `pairs` and flow
    monitors on every switch for the block's span (`failures.observe`)."""
    cloud = world.cloud
    await applied(cloud)
    servers = list(cloud.servers)
    async with observe(cloud, world.hosts, pairs, servers, directory, interval=FAST) as seen:
        yield seen


def unrouted(world: World):
    """Whether an echo request from a1 to a5 goes unanswered (a condition to wait for)."""
    a1, a5 = world.hosts["a1"], world.hosts["a5"]

    async def check() -> bool:
        return (await asyncio.to_thread(a1.ping, a5.ip, count=1)).received == 0

    return check


async def test_unloading_l3_stops_routing_and_loading_it_back_restores_it_alone(
    world: World, tmp_path: Path
) -> None:
    cloud, hosts = world.cloud, world.hosts
    servers = list(cloud.servers)
    async with watched(world, BRIDGED, tmp_path) as seen:
        before = {s: await installed_flows(cloud.servers[s]) for s in servers}

        await cloud.api.change_modules("unload", ["l3"])
        await applied(cloud, lambda r: "l3" not in r["loaded"])
        gone = {}
        for s in servers:
            after = await installed_flows(cloud.servers[s])
            assert after.items() <= before[s].items(), s  # nothing added or changed
            gone[s] = {c: before[s][c] for c in before[s].keys() - after.keys()}
            assert gone[s] and set(gone[s].values()) <= ROUTING_FLOWS, (s, gone[s])
        await eventually(unrouted(world), 10, what="a1 -> a5 no longer routed")

        await cloud.api.change_modules("load", ["l3"])
        await applied(cloud, lambda r: "l3" in r["loaded"])
        for s in servers:
            assert await installed_flows(cloud.servers[s]) == before[s], s
        assert await asyncio.to_thread(hosts["a1"].ping_ok, hosts["a5"].ip, deadline=10)
    assert seen.lost(BRIDGED) == [] and seen.ended_early == []
    for s in servers:  # the monitors saw routing's flows go and come back, and no other
        events = seen.watchers[s].events()
        deleted = sorted(e.cookie for e in events if e.event == "DELETED")
        added = sorted(e.cookie for e in events if e.event == "ADDED")
        assert deleted == added == sorted(gone[s]), s
        assert all(e.event in ("DELETED", "ADDED") for e in events), s


async def test_reloading_l3_under_routed_traffic_loses_nothing(
    world: World, tmp_path: Path
) -> None:
    cloud, servers = world.cloud, list(world.cloud.servers)
    async with watched(world, BRIDGED + ROUTED, tmp_path) as seen:
        wanted = await cloud.api.change_modules("reload", ["l3"])
        generation = wanted["all"]["reload"]["l3"]
        await applied(cloud, lambda r: r["generations"].get("l3") == generation)
    assert seen.lost(BRIDGED + ROUTED) == [] and seen.ended_early == []
    assert {s: seen.watchers[s].events() for s in servers} == {s: [] for s in servers}
