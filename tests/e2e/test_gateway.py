"""Every server answers its own ports for the subnet's gateway, with the same MAC.

Two servers, one VXLAN network with a subnet and its gateway, a1 on hv0 and a3 on hv1.
Both ping the gateway and resolve it to the same MAC (derived from the subnet id: a VM
that migrates keeps a valid neighbour entry). With the module unloaded on hv0 only, a1's
ARP request for the gateway is flooded through the tunnel to hv1, whose module is loaded:
hv1 does not answer it (frames from the tunnel are the sender's server's to answer), and
a3 is still answered.
"""

from __future__ import annotations

import asyncio

import pytest
from scapy.layers.l2 import ARP, Ether

from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Host
from tests.lab.waiting import eventually
from vlcp.pipeline.gateway import gateway_mac

from .modules import applied
from .tenants import ADDRESSES

pytestmark = [pytest.mark.root, pytest.mark.slow, needs_ovs_lab]

PLACEMENT = {"a1": "hv0", "a3": "hv1"}
GATEWAY = "10.0.0.254"
GATEWAY_MAC = gateway_mac("sub-a")


def neighbour(host: Host) -> str:
    return host.exec("ip", "neigh", "show", GATEWAY, "dev", "eth0").stdout.strip()


async def pings_the_gateway(host: Host) -> bool:
    host.exec("ip", "neigh", "flush", "dev", "eth0")
    return (await asyncio.to_thread(host.ping, GATEWAY, count=2)).received == 2


async def arp_replies(host: Host, wait: float = 1.0) -> list[str]:
    """The senders of every ARP reply for the gateway `host` gets to one request."""
    capture = host.capture("arp")
    request = Ether(src=host.mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=host.mac, psrc=host.ip, pdst=GATEWAY
    )
    await asyncio.to_thread(host.send, request)
    await asyncio.sleep(wait)
    return [str(p[ARP].hwsrc) for p in capture.stop() if ARP in p and p[ARP].op == 2]


async def test_each_server_answers_its_own_ports_with_the_same_mac(cloud_factory) -> None:
    cloud = await cloud_factory(list(dict.fromkeys(PLACEMENT.values())))
    api = cloud.api
    await api.create("physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[5000, 5999]]})
    await api.create("logical-networks", {"id": "net-a", "physicalnetwork": "vx"})
    subnet = {"id": "sub-a", "logicalnetwork": "net-a", "cidr": "10.0.0.0/24", "gateway": GATEWAY}
    await api.create("subnets", subnet)
    hosts: dict[str, Host] = {}
    for (port, server), (mac, ip) in zip(PLACEMENT.items(), ADDRESSES, strict=False):
        body = {"id": port, "logicalnetwork": "net-a", "mac_address": mac, "ip_address": ip}
        await api.create("logical-ports", body)
        hosts[port] = cloud.host(server, f"{ip}/24", mac=mac, port=port)
    for port in PLACEMENT:
        await api.wait_port_up(port, timeout=30)
    a1, a3 = hosts["a1"], hosts["a3"]
    assert await asyncio.to_thread(a1.ping_ok, a3.ip, deadline=10)  # the tunnel is warm

    for host in (a1, a3):
        await eventually(lambda h=host: pings_the_gateway(h), 30, what=f"{host} pings it")
        assert f"lladdr {GATEWAY_MAC}" in neighbour(host), neighbour(host)
    assert await arp_replies(a1) == [GATEWAY_MAC]  # one answer: its own server's

    await api.change_modules("unload", ["gateway"], server="hv0")
    await applied(cloud, lambda r: ("gateway" in r["loaded"]) == (r["server"] != "hv0"))

    async def unanswered() -> bool:  # flooded to hv1 through the tunnel, not answered there
        return await arp_replies(a1) == []

    await eventually(unanswered, 30, what="a1's ARP for the gateway unanswered")
    assert not await pings_the_gateway(a1)
    assert await pings_the_gateway(a3)

    await api.change_modules("load", ["gateway"], server="hv0")
    await applied(cloud, lambda r: "gateway" in r["loaded"])
    await eventually(lambda: pings_the_gateway(a1), 30, what="a1 answered again")
