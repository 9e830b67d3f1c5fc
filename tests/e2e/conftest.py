"""Servers for end-to-end tests: a private OVS each, a vlcp agent each, one shared store."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab.fixtures_ovs import HostFactory, HypervisorFactory
from tests.lab.naming import unique_name
from tests.lab.netns import create_veth
from tests.lab.ovs import Hypervisor, UnderlayLink, connect_underlay
from vlcp.agent.agent import Agent
from vlcp.lab.servers import BRIDGE, agent_config, wait_for_bridge
from vlcp.model.service import Model
from vlcp.store import Store, open_store


@dataclass
class Server:
    """One hypervisor with its agent running in this test's event loop."""

    name: str
    hv: Hypervisor
    agent: Agent
    task: asyncio.Task[None]
    store: Store


@dataclass
class Cloud:
    """Servers sharing one store, and the model to describe networks with."""

    model: Model
    servers: dict[str, Server]
    hosts: HostFactory
    store_url: str
    links: list[UnderlayLink]
    """The underlay veths between consecutive servers (capture there to see what crosses)."""

    def host(self, server: str, ip: str, *, mac: str, port: str):  # a lab Host
        """A VM on `server` plugged as logical port `port` (external_ids:iface-id)."""
        return self.hosts(self.servers[server].hv, BRIDGE, ip, mac=mac, iface_id=port)

    def trunks(self, name: str = "trunk0") -> None:
        """A 'physical' VLAN port `name` on every server, all on one L2 segment.

        Each server's integration bridge gets a veth into its underlay bridge (a learning
        switch chained to the other servers'), like a NIC cabled to a top-of-rack switch.
        """
        for server in self.servers.values():
            create_veth(name, server.hv.netns, f"{name}-phy", server.hv.netns)
            server.hv.vsctl("add-port", BRIDGE, name)
            server.hv.vsctl("add-port", "br-phy", f"{name}-phy")


STORES = ["sqlite", "zookeeper"]


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every end-to-end test runs on the embedded store and on a ZooKeeper ensemble."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/{unique_name('s')}.db"
    ensemble = request.getfixturevalue("zookeeper_ensemble")
    return f"zookeeper://{ensemble.hosts}/{unique_name('e2e')}?timeout=5&session_timeout=4"


@pytest.fixture
async def cloud_factory(
    hypervisor_factory: HypervisorFactory, host_factory: HostFactory, store_url: str
) -> AsyncIterator[Callable[..., object]]:
    """Builds N servers joined by an underlay, each running an agent on one store."""
    started: list[Server] = []
    stores: list[Store] = []

    async def build(names: list[str], *, listen: bool = False) -> Cloud:
        """`listen`: the agents listen for their switch (see `agent_config`)."""
        url = store_url
        hvs = [hypervisor_factory(name) for name in names]
        links = [connect_underlay(left, right) for left, right in itertools.pairwise(hvs)]
        servers = {}
        for name, hv in zip(names, hvs, strict=True):
            store = await open_store(url)
            stores.append(store)
            agent = Agent(store, agent_config(hv, name, listen=listen))
            task = asyncio.create_task(agent.run())
            server = Server(name, hv, agent, task, store)
            started.append(server)
            servers[name] = server
            await wait_for_bridge(hv, task)
        model_store = await open_store(url)
        stores.append(model_store)
        return Cloud(Model(model_store), servers, host_factory, url, links)

    yield build
    for server in started:
        server.task.cancel()
        with contextlib.suppress(BaseException):
            await server.task
    for store in stores:
        with contextlib.suppress(Exception):
            await store.close()
