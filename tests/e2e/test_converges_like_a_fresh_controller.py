"""Property: after any sequence of changes, each switch holds exactly the flows a freshly
started controller would compute from the same store and the same OVS ports.

Random sequences (seeded, so a failure names its seed) of model changes and plugging,
unplugging and moving interfaces run against live servers; then every switch's flow table
is compared, by cookie, with a from-scratch computation of the pure pipeline.
"""

from __future__ import annotations

import asyncio
import os
import random
import re

import pytest

from tests.lab.ovs import missing_tools
from vlcp.agent.binding import bridge_ports
from vlcp.agent.view_builder import Identity, build_view
from vlcp.pipeline.compile import compile_all
from vlcp.southbound.ovsdb.client import OvsdbClient
from vlcp.southbound.ovsdb.monitor import Monitor
from vlcp.southbound.ovsdb.vswitch import BINDING_TABLES, DB

from .conftest import BRIDGE
from .test_l2_tenants import describe_tenants

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or bool(missing_tools()), reason="needs root and the OVS tools"
    ),
]

STEPS = 15
COOKIE = re.compile(r"cookie=(0x[0-9a-f]+)")


async def expected_cookies(cloud, server) -> set[int]:
    """What a controller started now would install on `server`."""
    values = (await cloud.model.store.read_prefix("")).values
    async with OvsdbClient(server.hv.db_target) as client:
        monitor = await Monitor(client, DB, BINDING_TABLES).start()
        ports = bridge_ports(monitor, BRIDGE)
        await monitor.stop()
    me = Identity(system_id=server.name, bridge=BRIDGE, vtep=server.hv.vtep_ip)
    flows = compile_all(build_view(values, ports, me))
    return {flow.cookie for owned in flows.values() for flow in owned}


async def installed_cookies(server) -> set[int]:
    flows = await asyncio.to_thread(server.hv.dump_flows, BRIDGE)
    return {int(m[1], 16) for f in flows if (m := COOKIE.search(f))}


class Scenario:
    """Random changes: ports created and deleted in the model, interfaces plugged,
    unplugged and moved between servers."""

    def __init__(self, cloud, seed: int) -> None:
        self.cloud, self.rng = cloud, random.Random(seed)
        self.ports: dict[str, str | None] = {}  # logical port -> server it is plugged on
        self.serial = 0

    def plug(self, port: str, server: str) -> None:
        name = f"p-{port}"
        self.cloud.servers[server].hv.plug_internal(BRIDGE, name, port)
        self.ports[port] = server

    def unplug(self, port: str) -> None:
        server = self.ports[port]
        if server is not None:
            self.cloud.servers[server].hv.vsctl("--if-exists", "del-port", BRIDGE, f"p-{port}")
        self.ports[port] = None

    async def step(self) -> None:
        rng, model = self.rng, self.cloud.model
        action = rng.choice(["create", "create", "delete", "plug", "unplug", "move"])
        if action == "create" or not self.ports:
            self.serial += 1
            port = f"r{self.serial}"
            network = rng.choice(["net-a", "net-b"])
            await model.create("logical-ports", {"id": port, "logicalnetwork": network})
            self.ports[port] = None
            if rng.random() < 0.7:
                self.plug(port, rng.choice(sorted(self.cloud.servers)))
            return
        port = rng.choice(sorted(self.ports))
        if action == "delete":
            await model.delete("logical-ports", port)
            self.unplug(port)
            del self.ports[port]
        elif action == "plug" and self.ports[port] is None:
            self.plug(port, rng.choice(sorted(self.cloud.servers)))
        elif action == "unplug":
            self.unplug(port)
        elif action == "move":
            self.unplug(port)
            self.plug(port, rng.choice(sorted(self.cloud.servers)))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_flows_equal_a_fresh_computation(cloud_factory, seed: int) -> None:
    cloud = await cloud_factory(["hv0", "hv1"])
    cloud.trunks("trunk0")
    await describe_tenants(cloud.model)
    scenario = Scenario(cloud, seed)
    for _ in range(STEPS):
        await scenario.step()

    async def converged() -> bool:
        for server in cloud.servers.values():
            if await installed_cookies(server) != await expected_cookies(cloud, server):
                return False
        return True

    try:
        async with asyncio.timeout(30):
            while not await converged():
                await asyncio.sleep(0.2)
    except TimeoutError:
        server = cloud.servers["hv0"]
        missing = await expected_cookies(cloud, server) - await installed_cookies(server)
        extra = await installed_cookies(server) - await expected_cookies(cloud, server)
        pytest.fail(f"seed {seed}: hv0 differs: {len(missing)} missing, {len(extra)} extra")
