"""The gateway module on a real ovs-vswitchd: a host pings its subnet's gateway.

One server, its agent in this process (every built-in module loaded, the default), a
VXLAN network with a subnet and its gateway, and a host A with an address in it:

- `ping -c 3 <gateway>` from A gets three replies (built by the switch: the kernel checks
  the IP and ICMP checksums, so the switch fixed them), with the reply TTL, and A's
  neighbour table has the gateway at the subnet's gateway MAC;
- with the module unloaded (the wanted set without it), ARP for the gateway is not
  answered and the ping fails; loaded again, both are answered again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

from tests.lab.fixtures_ovs import HostFactory, HypervisorFactory
from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Host
from tests.lab.waiting import eventually
from vlcp.agent.agent import Agent
from vlcp.agent.modules import discover
from vlcp.lab.servers import BRIDGE, agent_config
from vlcp.model.service import Model
from vlcp.pipeline import BUILTIN
from vlcp.pipeline.gateway import REPLY_TTL, gateway_mac
from vlcp.store import Store, open_store

from .running import running
from .wanted import want

pytestmark = [pytest.mark.root, needs_ovs_lab]

A_MAC, A_IP = "02:00:00:00:0e:01", "10.0.0.10"
GATEWAY = "10.0.0.1"
GATEWAY_MAC = gateway_mac("sub")


@dataclass
class Lab:
    store: Store
    a: Host


@pytest.fixture
async def lab(
    hypervisor_factory: HypervisorFactory, host_factory: HostFactory, tmp_path: Path
) -> AsyncIterator[Lab]:
    store = await open_store(f"sqlite://{tmp_path}/store.db")
    model = Model(store)
    await model.create("physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[10, 20]]})
    await model.create("logical-networks", {"id": "net", "physicalnetwork": "vx"})
    subnet = {"id": "sub", "logicalnetwork": "net", "cidr": "10.0.0.0/24", "gateway": GATEWAY}
    await model.create("subnets", subnet)
    port = {"id": "A", "logicalnetwork": "net", "mac_address": A_MAC, "ip_address": A_IP}
    await model.create("logical-ports", port)
    hv = hypervisor_factory("hv0")
    agent = Agent(store, agent_config(hv, "hv0"), discover(found=[]))
    async with running(agent, hv, store):
        a = host_factory(hv, BRIDGE, f"{A_IP}/24", mac=A_MAC, iface_id="A", name="A")
        await model.wait_port_up("A", timeout=30)
        yield Lab(store, a)


def neighbour(host: Host, ip: str) -> str:
    """`ip neigh show <ip>` in the host."""
    return host.exec("ip", "neigh", "show", ip, "dev", "eth0").stdout.strip()


async def arp_answer(host: Host, ip: str, timeout: float = 1.0) -> str | None:
    """The MAC an ARP request from `host` for `ip` is answered with, or None."""
    capture = host.capture("arp")
    request = Ether(src=host.mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=host.mac, psrc=host.ip, pdst=ip
    )
    await asyncio.to_thread(host.send, request)

    def is_reply(p: object) -> bool:
        return ARP in p and p[ARP].op == 2 and p[ARP].psrc == ip  # type: ignore[operator,index]

    try:
        (reply,) = await asyncio.to_thread(capture.wait_for, is_reply, timeout=timeout)
    except TimeoutError:
        return None
    finally:
        capture.stop()
    return str(reply[ARP].hwsrc)


async def answered(host: Host) -> bool:
    host.exec("ip", "neigh", "flush", "dev", "eth0")
    result = await asyncio.to_thread(host.ping, GATEWAY, count=3)
    return result.received == 3


async def test_a_host_pings_its_gateway_and_unloaded_nobody_answers(lab: Lab) -> None:
    await eventually(lambda: answered(lab.a), 30, what="three replies from the gateway")
    assert f"lladdr {GATEWAY_MAC}" in neighbour(lab.a, GATEWAY)
    capture = lab.a.capture("icmp")
    result = await asyncio.to_thread(lab.a.ping, GATEWAY, count=3)
    assert result.received == 3 and f"ttl={REPLY_TTL}" in result.output, result.output
    replies = [p for p in capture.stop() if ICMP in p and p[ICMP].type == 0]
    assert len(replies) == 3
    for reply in replies:  # the checksums the switch fixed, recomputed here
        assert (reply[Ether].src, reply[IP].src, reply[IP].ttl) == (GATEWAY_MAC, GATEWAY, 64)
        fresh = IP(bytes(reply[IP]))
        del fresh.chksum, fresh[ICMP].chksum
        fresh = IP(bytes(fresh))
        assert (reply[IP].chksum, reply[ICMP].chksum) == (fresh.chksum, fresh[ICMP].chksum)
    assert await arp_answer(lab.a, GATEWAY) == GATEWAY_MAC

    every = sorted(m.name for m in BUILTIN)
    await want(lab.store, [m for m in every if m != "gateway"], server="hv0")

    async def unanswered() -> bool:
        """One round with nothing answered: the module's flows go one by one, so a round
        may see the kernel's ARP answered and then the ping not (or the reverse)."""
        lab.a.exec("ip", "neigh", "flush", "dev", "eth0")
        result = await asyncio.to_thread(lab.a.ping, GATEWAY, count=1)
        return (
            result.received == 0
            and f"lladdr {GATEWAY_MAC}" not in neighbour(lab.a, GATEWAY)
            and await arp_answer(lab.a, GATEWAY) is None
        )

    await eventually(unanswered, 30, what="neither ARP nor ping answered for the gateway")

    await want(lab.store, every, server="hv0")
    await eventually(lambda: answered(lab.a), 30, what="the gateway answering again")
    assert await arp_answer(lab.a, GATEWAY) == GATEWAY_MAC
