"""Two tenants with the same MAC and IP addresses, one over VXLAN and one over VLAN, on three
servers: each tenant's hosts reach each other, and no frame of one reaches the other.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from tests.lab.marks import needs_ovs_lab

from .tenants import IP1, IP2, MAC1

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
]


async def test_each_tenant_reaches_its_own_hosts(tenants) -> None:
    cloud, hosts = tenants
    pairs = [(f"{t}{i}", f"{t}{j}") for t in "ab" for i in (1, 2, 3) for j in (1, 2, 3) if i != j]
    for src, dst in pairs:
        assert await asyncio.to_thread(hosts[src].ping_ok, hosts[dst].ip, deadline=10), (src, dst)
    # The controllers doing this (`vlcp run`, API off) never loaded pydantic (issue 16);
    # the `vlcp api` beside them did.
    for server in cloud.servers.values():
        assert not _maps_pydantic(server.controller.pid), server.name
    assert _maps_pydantic(cloud.api_process.pid)


def _maps_pydantic(pid: int | None) -> bool:
    """Whether the process has pydantic's compiled core mapped (loaded, hence imported)."""
    return "pydantic_core" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize(
    "dst_mac", ["ff:ff:ff:ff:ff:ff", "02:00:00:00:00:99"], ids=["broadcast", "unknown"]
)
async def test_floods_stay_inside_their_tenant(tenants, dst_mac: str) -> None:
    _, hosts = tenants
    marker = os.urandom(8).hex()
    frame = (
        Ether(src=MAC1, dst=dst_mac) / IP(src=IP1, dst="10.0.0.255") / UDP(dport=9) / Raw(marker)
    )
    captures = {name: hosts[name].capture("udp port 9") for name in ("a2", "a3", "b1", "b2", "b3")}
    await asyncio.to_thread(hosts["a1"].send, frame)
    for name in ("a2", "a3"):  # over VXLAN to both other servers
        seen = await asyncio.to_thread(
            captures[name].wait_for, lambda p: marker.encode() in bytes(p), timeout=10
        )
        assert seen, f"the frame did not reach {name} of its own tenant"
    for name in ("b1", "b2", "b3"):
        leaked = [p for p in captures[name].stop() if marker.encode() in bytes(p)]
        assert leaked == [], f"tenant A's {dst_mac} frame reached {name} of tenant B"
    for name in ("a2", "a3"):
        captures[name].stop()


async def test_arp_is_answered_on_the_switch_and_never_crosses_the_underlay(tenants) -> None:
    cloud, hosts = tenants
    link = cloud.links[0]  # hv0 <-> hv1
    underlay = link.a.capture(link.port, "udp port 4789")
    await asyncio.to_thread(hosts["a1"].exec, "ip", "neigh", "flush", "all")
    assert await asyncio.to_thread(hosts["a1"].ping_ok, IP2, deadline=10)
    # the ICMP itself crossed the underlay in VXLAN: the capture does see tenant traffic
    await asyncio.to_thread(
        underlay.wait_for, lambda p: p.haslayer(VXLAN) and p.haslayer(ICMP), timeout=10
    )
    arp = [p for p in underlay.stop() if p.haslayer(ARP)]
    assert arp == [], "an ARP frame crossed the underlay instead of being answered locally"
