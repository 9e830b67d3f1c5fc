"""Packet-in dispatch and the example module `macdrop`, on a real ovs-vswitchd.

One server, its agent in this process (so the test can read the dispatcher's counters)
with every built-in module and `macdrop` loaded, host A's MAC in macdrop's list, and
three hosts A, B, C on one local network:

- A's frames are dropped by macdrop's flow while B's reach C;
- an LLDP frame from B reaches macdrop's handler, with the network ingress classified it
  into;
- a flood of LLDP from B beyond the handler's rate is counted as limited, not handled.

Both ways the agent and the bridge can meet: the agent dialling the bridge's management
socket (a "service" connection to OVS, which sends packet-ins only once asked), and the
bridge dialling the agent (a "primary" controller).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType

import pytest
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from tests.examples import import_example
from tests.lab.fixtures_ovs import HostFactory, HypervisorFactory
from tests.lab.frames import lldp
from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Host, Hypervisor
from tests.lab.waiting import eventually, settled
from vlcp.agent.agent import Agent
from vlcp.agent.modules import GROUP, discover
from vlcp.agent.packet_in import Counters
from vlcp.lab.servers import BRIDGE, agent_config
from vlcp.model.service import Model
from vlcp.store import open_store

from .running import running
from .wanted import want

pytestmark = [pytest.mark.root, needs_ovs_lab]

HOSTS = {
    "A": ("02:00:00:00:0a:01", "10.0.0.1"),
    "B": ("02:00:00:00:0a:02", "10.0.0.2"),
    "C": ("02:00:00:00:0a:03", "10.0.0.3"),
}
DROPPED = HOSTS["A"][0]
BROADCAST = "ff:ff:ff:ff:ff:ff"
EXPERIMENTAL = 0x88B5


@pytest.fixture
def macdrop() -> ModuleType:
    return import_example("vlcp-macdrop", "vlcp_macdrop")


@dataclass
class Lab:
    hv: Hypervisor
    agent: Agent
    hosts: dict[str, Host]

    def counters(self) -> Counters:
        return self.agent.packet_ins.counters.get("macdrop", Counters())

    async def summary(self) -> str:
        """The dispatcher's counters, for a timeout's message."""
        return f"macdrop: {self.counters()}; unhandled: {dict(self.agent.packet_ins.unhandled)}"


@pytest.fixture(params=[False, True], ids=["dialling", "listening"])
async def lab(
    request: pytest.FixtureRequest,
    macdrop: ModuleType,
    hypervisor_factory: HypervisorFactory,
    host_factory: HostFactory,
    tmp_path: Path,
) -> AsyncIterator[Lab]:
    store = await open_store(f"sqlite://{tmp_path}/store.db")
    model = Model(store)
    await model.create("physical-networks", {"id": "loc", "type": "local"})
    await model.create("logical-networks", {"id": "net", "physicalnetwork": "loc"})
    await model.create("subnets", {"id": "sub", "logicalnetwork": "net", "cidr": "10.0.0.0/24"})
    for name, (mac, ip) in HOSTS.items():
        body = {"id": name, "logicalnetwork": "net", "mac_address": mac, "ip_address": ip}
        await model.create("logical-ports", body)
    # macdrop is installed (its entry point) and wanted with its settings, as the API
    # writes them (`vlcp module load macdrop`, `vlcp module configure macdrop ...`).
    installed = EntryPoint("macdrop", "vlcp_macdrop:MODULE", GROUP)
    discovery = discover(found=[installed])
    wanted = [m.name for m in discovery.catalog]
    await want(store, wanted, settings={"macdrop": {"macs": [DROPPED]}})
    hv = hypervisor_factory("hv0")
    agent = Agent(store, agent_config(hv, "hv0", listen=request.param), discovery)
    async with running(agent, hv, store):
        hosts = {
            name: host_factory(hv, BRIDGE, f"{ip}/24", mac=mac, iface_id=name, name=name)
            for name, (mac, ip) in HOSTS.items()
        }
        for name in hosts:
            await model.wait_port_up(name, timeout=30)
        yield Lab(hv, agent, hosts)


def broadcast(src: str, marker: bytes) -> Packet:
    return Ether(src=src, dst=BROADCAST, type=EXPERIMENTAL) / Raw(marker)


def packets_of(hv: Hypervisor, table: int, match: str) -> int:
    """n_packets of the flow of `table` whose match contains `match` (0 if none)."""
    for line in hv.dump_flows(BRIDGE, table=table, stats=True):
        if match in line and (found := re.search(r"n_packets=(\d+)", line)):
            return int(found.group(1))
    return 0


async def test_frames_from_a_listed_mac_are_dropped_and_others_pass(lab: Lab) -> None:
    a, b, c = (lab.hosts[n] for n in "ABC")
    table = lab.agent.modules.current.pipeline["macdrop"].id
    assert await asyncio.to_thread(b.ping_ok, c.ip, deadline=10)
    dropped, passed = os.urandom(8), os.urandom(8)
    capture = c.capture()
    await asyncio.to_thread(
        a.send, Ether(src=a.mac, dst=BROADCAST, type=EXPERIMENTAL) / Raw(dropped)
    )
    await asyncio.to_thread(
        b.send, Ether(src=b.mac, dst=BROADCAST, type=EXPERIMENTAL) / Raw(passed)
    )
    await asyncio.to_thread(capture.wait_for, lambda p: passed in bytes(p), timeout=10)

    async def matched_the_drop() -> bool:  # A's frame was handled, by the drop flow
        return await asyncio.to_thread(packets_of, lab.hv, table, f"dl_src={DROPPED}") > 0

    await eventually(matched_the_drop, 10, what="A's frame to meet macdrop's drop flow")
    assert not [p for p in capture.stop() if dropped in bytes(p)], "A's frame reached C"
    assert not await asyncio.to_thread(a.ping_ok, c.ip, deadline=2)


async def test_lldp_from_a_vif_reaches_the_handler_within_its_rate(
    lab: Lab, macdrop: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vlcp_macdrop")
    b = lab.hosts["B"]
    seen = macdrop.SEEN[b.ofport]
    await asyncio.to_thread(b.send, lldp(b.mac))

    async def handled(n: int) -> bool:
        return lab.counters().handled == n

    await eventually(
        lambda: handled(1), 10, what="the LLDP frame at macdrop's handler", details=lab.summary
    )
    assert macdrop.SEEN[b.ofport] == seen + 1
    network = lab.agent.local.view.networks["net"].number  # type: ignore[union-attr]
    (record,) = [r for r in caplog.records if r.name == "vlcp_macdrop"]
    assert record.args == ("B", b.ofport, network, b.mac, "eth0", seen + 1)

    # a flood: the port's meter on the switch lets its packet-in budget through (every
    # module's together), the module's own bucket in the controller holds it to its rate
    flood = 200
    start = time.monotonic()
    await asyncio.to_thread(b.send, *[lldp(b.mac)] * flood)
    received = await settled(lambda: lab.counters().received, what="packet-ins")
    elapsed = time.monotonic() - start
    counters = lab.counters()
    rate, burst = lab.agent.modules.current.packet_in_budget()  # type: ignore[misc]
    assert received - 1 <= burst + rate * elapsed + 1, counters  # the switch's meter
    declared = macdrop.MODULE.packet_ins[0]
    allowed = declared.burst - 1 + declared.rate * elapsed + 1  # the bucket, and its refill
    assert counters.errors == counters.malformed == 0
    assert counters.handled + counters.limited == counters.received
    assert 1 <= counters.handled - 1 <= allowed, counters
    meter = await asyncio.to_thread(lab.hv.ofctl, "meter-stats", BRIDGE, f"meter={b.ofport}")
    assert f"packet_in_count:{flood + 1}" in meter, meter  # every frame met it on the switch
