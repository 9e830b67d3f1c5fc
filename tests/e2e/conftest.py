"""Servers for end-to-end tests, run the way users run vlcp.

Each lab server is a private OVS in its own namespace with its own `vlcp run` process (the
controller alone, configured by a TOML file); one `vlcp api` process serves the cloud, and
the test describes networks through it over HTTP. Processes can be killed, stopped and
started again by PID, so a test sees what a crash or a restart really does. Everything
shares one store: sqlite, or a ZooKeeper ensemble. Process logs are in the test's tmp dir
and their tails are attached to a failing test's report.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab.fixtures_ovs import HostFactory, HypervisorFactory
from tests.lab.naming import unique_name
from tests.lab.netns import create_veth
from tests.lab.ovs import Host, Hypervisor, UnderlayLink, connect_underlay
from tests.lab.vlcp_processes import (
    ApiProcess,
    AsyncApi,
    Controller,
    VlcpProcess,
    VtepProcess,
)
from tests.lab.vtep import VtepSwitch
from vlcp.lab.servers import BRIDGE
from vlcp.layout import port_status
from vlcp.store import Store, open_store

from .tenants import SERVERS, plug_tenants

__all__ = ["BRIDGE", "Cloud", "Server"]

_PROCESSES = pytest.StashKey[list[VlcpProcess]]()


@dataclass
class Server:
    """One hypervisor and its controller, a `vlcp run` process."""

    name: str
    hv: Hypervisor
    controller: Controller


@dataclass
class Cloud:
    """Servers sharing one store, the API users call, and the store to check things in."""

    api: AsyncApi
    """REST v1 over HTTP, served by the `vlcp api` process."""
    api_process: ApiProcess
    store: Store
    """The test's own client of the store: to look, never to describe networks."""
    servers: dict[str, Server]
    hosts: HostFactory
    store_url: str
    links: list[UnderlayLink]
    """The underlay veths between consecutive servers (capture there to see what crosses)."""

    def host(self, server: str, ip: str, *, mac: str, port: str) -> Host:
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

    async def port_status(self, port: str) -> dict | None:
        """What the binding server reported about `port` (`lport-status/`), None if nothing."""
        key = port_status(port)
        return (await self.store.read([key])).values.get(key)


CloudFactory = Callable[..., Awaitable[Cloud]]
"""``await cloud_factory(names, *, listen=False, pythonpath=())``"""

STORES = ["sqlite", "zookeeper"]


@pytest.fixture
def session_ttl() -> float:
    """Seconds before the store reaps a dead controller's liveness session (its
    `servers/` and `chassis/` keys). A test module may override this fixture."""
    return 4.0


@pytest.fixture
def embedded_store_url(tmp_path: Path) -> str:
    """A private embedded store: for a test module whose subject does not depend on the
    store (it overrides `store_url` with this), so the suite runs it once, not per store."""
    return f"sqlite://{tmp_path}/{unique_name('s')}.db"


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path, session_ttl: float) -> str:
    """Every end-to-end test runs on the embedded store and on a ZooKeeper ensemble."""
    if request.param == "sqlite":
        return request.getfixturevalue("embedded_store_url")
    ensemble = request.getfixturevalue("zookeeper_ensemble_shared")
    ensemble.start_all()  # no test stops a member; this only checks that a quorum serves
    query = f"timeout=5&session_timeout={session_ttl:g}"
    return f"zookeeper://{ensemble.hosts}/{unique_name('e2e')}?{query}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[pytest.TestReport]:
    """A failing test's report ends with the tail of every vlcp process's log."""
    report: pytest.TestReport = yield
    if report.failed:
        for process in item.stash.get(_PROCESSES, []):
            report.sections.append((f"{process.name} ({process.log})", process.log_tail()))
    return report


@pytest.fixture
async def cloud_factory(
    request: pytest.FixtureRequest,
    hypervisor_factory: HypervisorFactory,
    host_factory: HostFactory,
    store_url: str,
    session_ttl: float,
    tmp_path: Path,
) -> AsyncIterator[CloudFactory]:
    """Builds N servers joined by an underlay, each with its `vlcp run`, and one `vlcp api`."""
    processes: list[VlcpProcess] = request.node.stash.setdefault(_PROCESSES, [])
    stores: list[Store] = []

    async def build(
        names: list[str], *, listen: bool = False, pythonpath: Sequence[Path] = ()
    ) -> Cloud:
        """`listen`: the controllers listen for their switch (see `agent_config`);
        `pythonpath`: directories first on their PYTHONPATH, e.g. a module package as
        installed (`tests.examples.installed_example`)."""
        api = ApiProcess(tmp_path, store_url)
        processes.append(api)
        api.start()  # its start-up overlaps the hypervisors'
        hvs = [hypervisor_factory(name) for name in names]
        links = [connect_underlay(left, right) for left, right in itertools.pairwise(hvs)]
        servers = {}
        for name, hv in zip(names, hvs, strict=True):
            controller = Controller(
                hv,
                name,
                tmp_path,
                store_url,
                session_ttl=session_ttl,
                listen=listen,
                pythonpath=pythonpath,
            )
            processes.append(controller)
            controller.start()
            servers[name] = Server(name, hv, controller)
        store = await open_store(store_url)
        stores.append(store)
        await api.ready()
        await asyncio.gather(*(s.controller.ready(store) for s in servers.values()))
        return Cloud(AsyncApi(api.client()), api, store, servers, host_factory, store_url, links)

    yield build
    for process in processes:  # in parallel: each exits in a fraction of a second
        process.terminate()
    for process in processes:
        process.stop()
    for store in stores:
        with contextlib.suppress(Exception):
            await store.close()


VtepFactory = Callable[[VtepSwitch, str], VtepProcess]
"""``vtep_factory(switch, node)``: a started `vlcp vtep run` for `switch`, named `node`."""


@pytest.fixture
def vtep_factory(
    request: pytest.FixtureRequest, store_url: str, tmp_path: Path
) -> Iterator[VtepFactory]:
    """VTEP controllers of emulated switches, stopped by PID after the test; their logs
    join a failing test's report (with the cloud's, when `cloud_factory` runs too)."""
    started: list[VtepProcess] = []

    def start(switch: VtepSwitch, node: str) -> VtepProcess:
        process = VtepProcess(switch.manager, switch.name, tmp_path, store_url, node)
        started.append(process)
        request.node.stash.setdefault(_PROCESSES, []).append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
async def tenants(cloud_factory: CloudFactory) -> tuple[Cloud, dict[str, Host]]:
    """Three servers with both tenants plugged and warm (see `tenants.plug_tenants`)."""
    cloud = await cloud_factory(SERVERS)
    return cloud, await plug_tenants(cloud)
