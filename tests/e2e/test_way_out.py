"""The way out of vlcp (outbound), on real OVS.

The routed world of `test_routing` (two tenants with identical addresses, each with a
router), plus an external subnet (`isexternal`, 10.200.0.0/24 on a VLAN network of the
lab's physical segment) that both routers join, each at an address of its own. Its
gateway, 10.200.0.1, is the "data center router": a namespace on hv2's br-phy (the lab's
top-of-rack switch) in that VLAN, with 198.51.100.1 behind it.

A router on an external subnet routes by default through its gateway, which the
controllers resolve by ARP: both tenants' pings to 198.51.100.1 arrive there with TTL 63,
each from its own router's MAC on the external subnet, and no port of the other tenant
sees them. Every lab server has the physical link; the way back in and forwarding
servers for servers without the link are not done.
"""

from __future__ import annotations

import asyncio

import pytest
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

from tests.lab.marks import needs_ovs_lab
from vlcp.pipeline.gateway import gateway_mac

from .routed import route_through_gateway, routed_tenants
from .test_outside_next_hops import BEYOND, arrive, requests_to

pytestmark = [pytest.mark.root, pytest.mark.slow, needs_ovs_lab]

GATEWAY_MAC = "02:00:00:00:0d:01"


@pytest.fixture
async def world(cloud_factory):
    cloud, hosts = await routed_tenants(cloud_factory)
    api = cloud.api
    await api.create("logical-networks", {"id": "net-ext", "physicalnetwork": "vl"})
    subnet = {
        "id": "sub-ext",
        "logicalnetwork": "net-ext",
        "cidr": "10.200.0.0/24",
        "gateway": "10.200.0.1",
        "isexternal": True,
    }
    await api.create("subnets", subnet)
    for tenant in "ab":
        await asyncio.to_thread(api.client.add_interface, f"router-{tenant}", {"subnet": "sub-ext"})
    for name, host in hosts.items():
        route_through_gateway(name, host, "198.51.100.0/24")
    vlan = (await api.get("logical-networks", "net-ext"))["vlanid"]
    hv = cloud.servers["hv2"].hv
    datacenter = cloud.hosts(hv, "br-phy", "10.200.0.1/24", mac=GATEWAY_MAC, name="datacenter")
    hv.vsctl("set", "port", datacenter.port_name, f"tag={vlan}")
    datacenter.exec("ip", "addr", "add", f"{BEYOND}/32", "dev", "lo")
    return hosts, datacenter


async def test_both_tenants_go_out_through_the_external_gateway_each_from_its_router(
    world,
) -> None:
    hosts, datacenter = world
    for tenant, other in (("a", "b"), ("b", "a")):
        watchers = {n: h.capture("icmp") for n, h in hosts.items() if n.startswith(other)}
        for sender in (f"{tenant}1", f"{tenant}3", f"{tenant}4"):  # hv0, hv2; VXLAN, VLAN
            requests = await arrive(hosts[sender], datacenter)
            assert {p[IP].ttl for p in requests} == {63}, sender
            router_mac = gateway_mac(f"sub-ext/router-{tenant}")
            assert {(p[Ether].src, p[Ether].dst) for p in requests} == {(router_mac, GATEWAY_MAC)}
        for name, capture in watchers.items():
            leaked = [p for p in capture.stop() if requests_to(BEYOND)(p)]
            assert leaked == [], f"{name} of tenant {other} saw {tenant}'s packets"
