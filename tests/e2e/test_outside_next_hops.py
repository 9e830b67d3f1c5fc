"""Static routes through next hops outside vlcp, learned by ARP, on real OVS.

The world of `test_routing` (three servers, two tenants with identical addresses and
routers), plus one "outside" host per tenant: a namespace on the physical segment (an
access port of hv2's br-phy, the lab's top-of-rack switch) in the VLAN of one of the
tenant's networks, holding an address no vlcp port holds (A's: 10.0.1.50 in A's second
network; B's: 10.0.0.50 in B's first), and both 198.51.100.1 behind it. Each router
routes 198.51.100.0/24 through its tenant's outside host; A's also routes 10.99.0.0/16
through 10.0.1.77, which nobody holds.

The controllers resolve the next hops by ARP from the router interfaces (each server with
its own source MAC) and route to the learned MAC: pings from A's ports on hv0 and hv2
arrive at A's outside host with TTL 63 from the interface's MAC, B's at B's, and neither
outside host sees the other tenant's. Traffic to the unresolved next hop reaches no host
at all (no flood). A malformed ARP reply from outside is refused by the handler and
logged once however many come, and the controllers keep serving. With a short lifetime
(the module's settings), an outside host that takes another MAC is re-resolved and the
routed packets follow it. The
way back (the outside host routing to the tenants through the router) is not part of
this step: the tests look at what arrives outside.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Host
from tests.lab.waiting import eventually
from vlcp.pipeline.gateway import gateway_mac

from .modules import applied
from .routed import route_through_gateway, routed_tenants, set_routes
from .test_routing import SECOND_GATEWAY

pytestmark = [pytest.mark.root, pytest.mark.slow, needs_ovs_lab]


@pytest.fixture
def store_url(embedded_store_url: str) -> str:
    """The embedded store only: next hops are resolved by each controller from the
    switch, not the store; the stores are proven under routing by test_routing.py, on both."""
    return embedded_store_url


BEYOND = "198.51.100.1"
OUTSIDE = {
    "a": ("net-a2", "10.0.1.50/24", "02:00:00:00:0a:50", "sub-a2"),
    "b": ("net-b", "10.0.0.50/24", "02:00:00:00:0b:50", "sub-b"),
}
"""Per tenant: the network whose VLAN its outside host is on, its address and MAC, and
the subnet whose router interface routes to it (its MAC is the routed frames' source)."""
NOBODY = "10.0.1.77"
MOVED = "02:00:00:00:0c:50"


def requests_to(address: str):
    return lambda p: ICMP in p and p[ICMP].type == 8 and p[IP].dst == address


async def _outside_host(cloud, tenant: str) -> Host:
    network, cidr, mac, _ = OUTSIDE[tenant]
    vlan = (await cloud.api.get("logical-networks", network))["vlanid"]
    hv = cloud.servers["hv2"].hv
    host = cloud.hosts(hv, "br-phy", cidr, mac=mac, name=f"outside-{tenant}")
    hv.vsctl("set", "port", host.port_name, f"tag={vlan}")
    host.exec("ip", "addr", "add", f"{BEYOND}/32", "dev", "lo")
    return host


@pytest.fixture
async def world(cloud_factory):
    cloud, hosts = await routed_tenants(cloud_factory)
    for name, host in hosts.items():
        route_through_gateway(name, host, "198.51.100.0/24", "10.99.0.0/16")
    outside = {tenant: await _outside_host(cloud, tenant) for tenant in "ab"}
    await set_routes(
        cloud, "router-a", [["198.51.100.0/24", "10.0.1.50"], ["10.99.0.0/16", NOBODY]]
    )
    await set_routes(cloud, "router-b", [["198.51.100.0/24", "10.0.0.50"]])
    return cloud, hosts, outside


async def arrive(sender: Host, outside: Host, count: int = 3, to_mac: str | None = None) -> list:
    """Ping from `sender` to the address behind `outside` until `count` requests arrived
    there (to `to_mac`, if given; the first ones may go while the next hop is
    unresolved); returns them."""
    arrived = outside.capture("icmp")
    ping = asyncio.ensure_future(asyncio.to_thread(sender.ping, BEYOND, count=20))

    def wanted(p) -> bool:
        return requests_to(BEYOND)(p) and to_mac in (None, p[Ether].dst)

    try:
        return await asyncio.to_thread(arrived.wait_for, wanted, count=count, timeout=20)
    finally:
        await ping
        arrived.stop()


async def test_routes_through_outside_next_hops_learned_by_arp_stay_in_their_tenant(
    world,
) -> None:
    _, hosts, outside = world
    seen = {tenant: outside[tenant].capture("icmp") for tenant in "ab"}
    for tenant, senders in (("a", ["a1", "a3"]), ("b", ["b1"])):  # a1 on hv0, a3 on hv2
        _, _, mac, subnet = OUTSIDE[tenant]
        for sender in senders:
            requests = await arrive(hosts[sender], outside[tenant])
            assert {p[IP].ttl for p in requests} == {63}, sender
            assert {(p[Ether].src, p[Ether].dst) for p in requests} == {(gateway_mac(subnet), mac)}
            assert {p[IP].src for p in requests} == {hosts[sender].ip}
    for tenant, other in (("a", "b"), ("b", "a")):
        sources = {p[Ether].src for p in seen[tenant].stop() if requests_to(BEYOND)(p)}
        assert sources == {gateway_mac(OUTSIDE[tenant][3])}, f"{tenant}'s outside saw {other}'s"


async def test_an_unresolved_next_hop_floods_nothing(world) -> None:
    _, hosts, outside = world
    everyone = {**hosts, **{f"outside-{t}": h for t, h in outside.items()}}
    captures = {name: host.capture("icmp") for name, host in everyone.items() if name != "a1"}
    await asyncio.to_thread(hosts["a1"].ping, "10.99.0.1", count=5)
    assert await asyncio.to_thread(hosts["a1"].ping_ok, hosts["a5"].ip)  # a positive control
    for name, capture in captures.items():
        leaked = [p for p in capture.stop() if requests_to("10.99.0.1")(p)]
        assert leaked == [], f"{name} saw packets for the unresolved next hop"


async def test_malformed_replies_are_dropped_and_removing_the_route_stops_traffic(world) -> None:
    cloud, hosts, outside = world
    out_a = outside["a"]
    await arrive(hosts["a1"], out_a)
    # A reply from the next hop to the interface, with a multicast sender MAC: the switch
    # hands it to the controllers (broadcast, every server's trunk has it), whose handler
    # refuses it, logged once however many come; frames the switch cannot parse as ARP
    # never leave it.
    junk = Ether(src=out_a.mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=2, psrc="10.0.1.50", pdst=SECOND_GATEWAY, hwsrc="01:00:5e:00:00:01"
    )
    truncated = Raw(bytes(Ether(src=out_a.mac, dst="ff:ff:ff:ff:ff:ff", type=0x0806))[:14] + b"\0")
    out_a.send(*([junk] * 20), truncated, Raw(os.urandom(60)))
    logged = "nexthops: malformed packet-in"
    hv0 = cloud.servers["hv0"].controller

    async def refused() -> bool:
        return logged in hv0.log_tail(400)

    await eventually(refused, 10, what="the malformed replies refused")
    await arrive(hosts["a1"], out_a)  # still routed, still learned
    assert hv0.log_tail(400).count(logged) == 1
    for server in cloud.servers.values():
        server.controller.assert_running()
    await set_routes(cloud, "router-a", [["10.99.0.0/16", NOBODY]])

    async def stopped() -> bool:
        arrived = out_a.capture("icmp")
        await asyncio.to_thread(hosts["a1"].ping, BEYOND, count=2)
        return not [p for p in arrived.stop() if requests_to(BEYOND)(p)]

    await eventually(stopped, 20, what="198.51.100.1 no longer routed")


async def test_a_next_hop_that_moves_is_re_resolved(world) -> None:
    """With a 4 s lifetime (module settings), an answer is refreshed every 2 s: once the
    outside host takes another MAC, the routed packets follow it."""
    cloud, hosts, outside = world
    settings = {"lifetime": 4.0, "retry": 0.5}
    await asyncio.to_thread(cloud.api.client.configure_module, "nexthops", settings)
    await applied(cloud, lambda report: report["settings"].get("nexthops") == settings)
    out_a = outside["a"]
    await arrive(hosts["a1"], out_a, to_mac=OUTSIDE["a"][2])
    out_a.exec("ip", "link", "set", "eth0", "address", MOVED)
    await arrive(hosts["a1"], out_a, to_mac=MOVED)
