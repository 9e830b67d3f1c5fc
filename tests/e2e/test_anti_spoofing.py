"""A VIF sends only from its port's addresses, until the port's allowed address pairs say more.

Host a1 (hv0) is the spoofer; a2 shares its server and a3 is across the VXLAN underlay.
Each negative check sends the forged frame first and an honest one last, on one socket:
frames from one sender through one path arrive in order, so once the honest frame is in
a capture a forwarded forged one would be there too. Then the forged address goes into
a1's `allowed_address_pairs` through the API, and the very same frame arrives.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw

from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Host
from tests.lab.vlcp_processes import AsyncApi
from vlcp.lab.netns import wait_until

from .tenants import ADDRESSES, IP1, IP2, IP3, MAC2

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
]

PLACEMENT = {"a1": "hv0", "a2": "hv0", "a3": "hv1"}
BROADCAST = "ff:ff:ff:ff:ff:ff"
FORGED = "10.0.0.77"
"""An address of a1's subnet that no port has."""
PAIRS = "allowed_address_pairs"


@dataclass
class World:
    api: AsyncApi
    hosts: dict[str, Host]

    async def allow(self, port: str, address: str) -> None:
        """Add `address` to the port's allowed address pairs, through the API."""
        body = {PAIRS: [{"ip_address": address}]}
        await asyncio.to_thread(self.api.client.update, "logical-ports", port, body)


@pytest.fixture
async def world(cloud_factory) -> World:
    """One VXLAN network, a1..a3 up, every path a test uses warm (ARP, tunnel peer)."""
    cloud = await cloud_factory(["hv0", "hv1"])
    api = cloud.api
    await api.create("physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[5000, 5999]]})
    await api.create("logical-networks", {"id": "net-a", "physicalnetwork": "vx"})
    await api.create("subnets", {"id": "sub-a", "logicalnetwork": "net-a", "cidr": "10.0.0.0/24"})
    hosts = {}
    for (port, server), (mac, ip) in zip(PLACEMENT.items(), ADDRESSES, strict=True):
        body = {"id": port, "logicalnetwork": "net-a", "mac_address": mac, "ip_address": ip}
        await api.create("logical-ports", body)
        hosts[port] = cloud.host(server, f"{ip}/24", mac=mac, port=port)
    for port in PLACEMENT:
        await api.wait_port_up(port, timeout=30)
    for src, dst in (("a1", IP2), ("a1", IP3), ("a3", IP2)):
        assert await asyncio.to_thread(hosts[src].ping_ok, dst, deadline=10), (src, dst)
    return World(api, hosts)


def datagram(mac: str, source: str, marker: bytes) -> Packet:
    """A UDP broadcast from `source`: flooded to every host of the network if allowed."""
    return (
        Ether(src=mac, dst=BROADCAST)
        / IP(src=source, dst="10.0.0.255")
        / UDP(dport=9)
        / Raw(marker)
    )


def gratuitous_arp(mac: str, claimed: str) -> Packet:
    """An ARP reply, broadcast, saying `claimed` is at `mac`: how an address is taken over
    (or a neighbour's cache poisoned). Linux overrides a fresh cache entry with it only in
    this exact form: target address = sender address, target MAC = sender MAC."""
    return Ether(src=mac, dst=BROADCAST) / ARP(
        op=2, hwsrc=mac, psrc=claimed, hwdst=mac, pdst=claimed
    )


def carries(marker: bytes) -> Callable[[Packet], bool]:
    return lambda p: marker in bytes(p)


async def arrives(sender: Host, frame: Packet, capture, seen: Callable[[Packet], bool]) -> None:
    """Send `frame` until `capture` sees it: an API change takes effect once the port's
    server has installed its flows, which is what a user retrying would notice."""
    deadline = time.monotonic() + 20
    while True:
        await asyncio.to_thread(sender.send, frame)
        try:
            await asyncio.to_thread(capture.wait_for, seen, timeout=0.5)
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def neighbour(host: Host, ip: str) -> str | None:
    """The MAC `host` has cached for `ip`, if any."""
    entries = json.loads(host.exec("ip", "-j", "neigh", "show", ip, "dev", "eth0").stdout)
    return entries[0].get("lladdr") if entries else None


async def test_a_forged_source_address_is_dropped_until_the_port_allows_it(world: World) -> None:
    hosts = world.hosts
    a1 = hosts["a1"]
    forged, honest = os.urandom(8), os.urandom(8)
    captures = {name: hosts[name].capture("udp port 9") for name in ("a2", "a3")}
    await asyncio.to_thread(
        a1.send, datagram(a1.mac, FORGED, forged), datagram(a1.mac, IP1, honest)
    )
    for name, capture in captures.items():
        await asyncio.to_thread(capture.wait_for, carries(honest), timeout=10)
        assert not [p for p in capture.stop() if forged in bytes(p)], f"{name} got it"
    assert await asyncio.to_thread(a1.ping_ok, IP3, deadline=10), "a1's own address works"

    await world.allow("a1", FORGED)
    captures = {name: hosts[name].capture("udp port 9") for name in ("a2", "a3")}
    await arrives(a1, datagram(a1.mac, FORGED, forged), captures["a3"], carries(forged))
    await asyncio.to_thread(captures["a2"].wait_for, carries(forged), timeout=10)
    for capture in captures.values():
        capture.stop()


async def test_a_gratuitous_arp_for_another_ports_address_never_poisons(world: World) -> None:
    """a1 claims a2's address: a3, which talks to a2, keeps a2's MAC."""
    a1, a3 = world.hosts["a1"], world.hosts["a3"]
    assert await asyncio.to_thread(neighbour, a3, IP2) == MAC2
    marker = os.urandom(8)
    capture = a3.capture()
    honest = Ether(src=a1.mac, dst=BROADCAST, type=0x88B5) / Raw(marker)
    await asyncio.to_thread(a1.send, gratuitous_arp(a1.mac, IP2), honest)
    await asyncio.to_thread(capture.wait_for, carries(marker), timeout=10)

    def is_claim(p: Packet) -> bool:
        return p.haslayer(ARP) and p[ARP].psrc == IP2 and p[ARP].hwsrc == a1.mac

    assert not [p for p in capture.stop() if is_claim(p)], "the claim reached a3"
    assert await asyncio.to_thread(neighbour, a3, IP2) == MAC2, "a3's cache was poisoned"

    await world.allow("a1", IP2)  # a takeover the operator wants (VRRP-like)
    capture = a3.capture("arp")
    await arrives(a1, gratuitous_arp(a1.mac, IP2), capture, is_claim)
    capture.stop()
    # The check above would have seen a poisoning: a3 now believes the claim.
    await asyncio.to_thread(
        wait_until, lambda: neighbour(a3, IP2) == a1.mac, timeout=5, message="a3 learns a1"
    )
