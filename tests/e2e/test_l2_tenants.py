"""Two tenants with the same MAC and IP addresses, one over VXLAN and one over VLAN, on two
servers: each tenant's hosts reach each other, and no frame of one reaches the other.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from tests.lab.ovs import missing_tools

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or bool(missing_tools()), reason="needs root and the OVS tools"
    ),
]

MAC1, MAC2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
IP1, IP2 = "10.0.0.1", "10.0.0.2"


async def describe_tenants(model) -> None:
    """Tenant A on VXLAN, tenant B on VLAN, with identical addresses."""
    await model.create(
        "physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[5000, 5999]]}
    )
    await model.create("physical-networks", {"id": "vl", "type": "vlan", "vlanrange": [[100, 199]]})
    await model.create("physical-ports", {"physicalnetwork": "vl", "name": "trunk0"})
    for tenant, physnet in (("a", "vx"), ("b", "vl")):
        await model.create("logical-networks", {"id": f"net-{tenant}", "physicalnetwork": physnet})
        await model.create(
            "subnets",
            {"id": f"sub-{tenant}", "logicalnetwork": f"net-{tenant}", "cidr": "10.0.0.0/24"},
        )
        for n, (mac, ip) in enumerate(((MAC1, IP1), (MAC2, IP2)), start=1):
            await model.create(
                "logical-ports",
                {
                    "id": f"{tenant}{n}",
                    "logicalnetwork": f"net-{tenant}",
                    "subnet": f"sub-{tenant}",
                    "mac_address": mac,
                    "ip_address": ip,
                },
            )


@pytest.fixture
async def tenants(cloud_factory):
    cloud = await cloud_factory(["hv0", "hv1"])
    cloud.trunk("hv0", "hv1", "trunk0")
    await describe_tenants(cloud.model)
    hosts = {
        "a1": cloud.host("hv0", f"{IP1}/24", mac=MAC1, port="a1"),
        "a2": cloud.host("hv1", f"{IP2}/24", mac=MAC2, port="a2"),
        "b1": cloud.host("hv0", f"{IP1}/24", mac=MAC1, port="b1"),
        "b2": cloud.host("hv1", f"{IP2}/24", mac=MAC2, port="b2"),
    }
    for port in hosts:
        await cloud.model.wait_port_up(port, timeout=30)
    # OVS drops the first packet to a new tunnel peer while it resolves the peer's MAC on
    # the underlay; a ping through each path first keeps that out of the isolation checks.
    for src, dst in (("a1", "a2"), ("b1", "b2")):
        assert await asyncio.to_thread(hosts[src].ping_ok, hosts[dst].ip, deadline=10)
    return cloud, hosts


async def test_each_tenant_reaches_its_own_hosts(tenants) -> None:
    _, hosts = tenants
    for src, dst in (("a1", "a2"), ("a2", "a1"), ("b1", "b2"), ("b2", "b1")):
        assert await asyncio.to_thread(hosts[src].ping_ok, hosts[dst].ip, deadline=10), (src, dst)


@pytest.mark.parametrize(
    "dst_mac", ["ff:ff:ff:ff:ff:ff", "02:00:00:00:00:99"], ids=["broadcast", "unknown"]
)
async def test_floods_stay_inside_their_tenant(tenants, dst_mac: str) -> None:
    _, hosts = tenants
    marker = os.urandom(8).hex()
    frame = (
        Ether(src=MAC1, dst=dst_mac) / IP(src=IP1, dst="10.0.0.255") / UDP(dport=9) / Raw(marker)
    )
    captures = {name: hosts[name].capture("udp port 9") for name in ("a2", "b1", "b2")}
    await asyncio.to_thread(hosts["a1"].send, frame)
    seen = await asyncio.to_thread(
        captures["a2"].wait_for, lambda p: marker.encode() in bytes(p), timeout=10
    )
    assert seen, "the frame did not reach the other host of its own tenant"
    for name in ("b1", "b2"):
        leaked = [p for p in captures[name].stop() if marker.encode() in bytes(p)]
        assert leaked == [], f"tenant A's {dst_mac} frame reached {name} of tenant B"
    captures["a2"].stop()
