"""Property: after any sequence of changes, each switch holds exactly the flows a freshly
started controller would compute from the same store and the same OVS ports.

Random sequences (seeded, so a failure names its seed) of model changes and plugging,
unplugging and moving interfaces run against live servers; then every switch's flow table
is compared, by cookie, with a from-scratch computation of the pure pipeline.
"""

from __future__ import annotations

import random

import pytest

from tests.lab.marks import needs_ovs_lab

from .conftest import BRIDGE
from .converged import wait_like_fresh_controllers
from .tenants import describe_tenants

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
]

STEPS = 15


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
        rng, api = self.rng, self.cloud.api
        action = rng.choice(["create", "create", "delete", "plug", "unplug", "move"])
        if action == "create" or not self.ports:
            self.serial += 1
            port = f"r{self.serial}"
            network = rng.choice(["net-a", "net-b"])
            await api.create("logical-ports", {"id": port, "logicalnetwork": network})
            self.ports[port] = None
            if rng.random() < 0.7:
                self.plug(port, rng.choice(sorted(self.cloud.servers)))
            return
        port = rng.choice(sorted(self.ports))
        if action == "delete":
            await api.delete("logical-ports", port)
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
    await describe_tenants(cloud.api)
    scenario = Scenario(cloud, seed)
    for _ in range(STEPS):
        await scenario.step()
    await wait_like_fresh_controllers(cloud.store, cloud.servers.values())
