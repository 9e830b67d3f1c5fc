"""Static routes through appliance ports, on real OVS.

The world of `test_routing` (three servers, two tenants with identical addresses, each
with a router joining 10.0.0.0/24 to 10.0.1.0/24), where ports 4 (hv0) and 5 (hv1) of
each tenant's second network are appliances: each holds an address of 192.0.2.0/24 on
its loopback (5: 192.0.2.1, 4: 192.0.2.129, in both tenants) and may send from that
network (an allowed address pair). Tenant A's router routes 192.0.2.0/24 to a5 and the
more specific 192.0.2.128/25 to a4; B's router has no route.

a1 (hv0, VXLAN) reaches both appliances' addresses through the router, with the longest
prefix winning (a4 on its own server, a5 across servers over VLAN), each way through one
router hop; none of B's hosts, which hold the same addresses, sees any of it, and B's
ports reach neither. Removing the route stops the traffic.
"""

from __future__ import annotations

import asyncio

import pytest
from scapy.layers.inet import ICMP, IP

from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Host
from tests.lab.waiting import eventually

from .routed import route_through_gateway, routed_tenants, set_routes
from .test_routing import routed

pytestmark = [pytest.mark.root, pytest.mark.slow, needs_ovs_lab]


@pytest.fixture
def store_url(embedded_store_url: str) -> str:
    """The embedded store only: static routes are flows from each controller's view; the
    stores are proven under routing by test_routing.py, on both."""
    return embedded_store_url


APPLIANCES = {"5": "192.0.2.1", "4": "192.0.2.129"}
"""Port number -> the address it holds behind it (the same in both tenants)."""
ROUTES = [["192.0.2.0/24", "10.0.1.5"], ["192.0.2.128/25", "10.0.1.4"]]


async def _appliances(cloud, hosts: dict[str, Host]) -> None:
    """Ports 4 and 5 of both tenants hold their address of 192.0.2.0/24 and may send
    from it; every host routes the other subnets through its gateway."""
    for name, host in hosts.items():
        route_through_gateway(name, host, "192.0.2.0/24")
        if routed(name):
            host.exec("ip", "addr", "add", f"{APPLIANCES[name[1:]]}/32", "dev", "lo")
            pairs = [{"ip_address": "192.0.2.0/24", "mac_address": host.mac}]
            await asyncio.to_thread(
                cloud.api.client.update,
                "logical-ports",
                name,
                {"allowed_address_pairs": pairs},
            )


@pytest.fixture
async def world(cloud_factory):
    cloud, hosts = await routed_tenants(cloud_factory)
    await _appliances(cloud, hosts)
    for tenant in "ab":  # routed paths warm, and the appliances' pairs in force
        for port in ("4", "5"):
            src, dst = hosts[f"{tenant}1"], hosts[f"{tenant}{port}"]
            assert await asyncio.to_thread(src.ping_ok, dst.ip, deadline=20), (tenant, port)
    await set_routes(cloud, "router-a", ROUTES)
    return cloud, hosts


def _to(address: str):
    return lambda p: ICMP in p and p[IP].dst == address and p[ICMP].type == 8


async def test_static_routes_reach_appliances_by_longest_prefix_and_only_in_their_tenant(
    world,
) -> None:
    _, hosts = world
    a1 = hosts["a1"]
    for address in APPLIANCES.values():  # B has no route: its own ports reach neither
        result = await asyncio.to_thread(hosts["b1"].ping, address, count=1)
        assert result.received == 0, result.output
    watchers = {n: h.capture("icmp") for n, h in hosts.items() if n.startswith("b")}
    for port, address in APPLIANCES.items():
        appliance = hosts[f"a{port}"]
        arrived = appliance.capture("icmp")
        assert await asyncio.to_thread(a1.ping_ok, address, deadline=20), address
        result = await asyncio.to_thread(a1.ping, address, count=3)
        assert result.received == 3, (address, result.output)
        assert "ttl=63" in result.output, result.output
        requests = await asyncio.to_thread(arrived.wait_for, _to(address), count=3)
        arrived.stop()
        assert {p[IP].ttl for p in requests} == {63}, address
    for name, capture in watchers.items():
        assert capture.stop() == [], f"{name} of tenant b saw a's routed packets"


async def test_removing_the_route_stops_the_traffic(world) -> None:
    cloud, hosts = world
    a1, a5 = hosts["a1"], hosts["a5"]
    assert await asyncio.to_thread(a1.ping_ok, "192.0.2.1", deadline=20)
    await set_routes(cloud, "router-a", ROUTES[1:])

    async def unrouted() -> bool:
        result = await asyncio.to_thread(a1.ping, "192.0.2.1", count=1)
        return result.received == 0

    await eventually(unrouted, 20, what="192.0.2.1 no longer routed")
    arrived = a5.capture("icmp")
    assert (await asyncio.to_thread(a1.ping, "192.0.2.1", count=2)).received == 0
    assert [p for p in arrived.stop() if _to("192.0.2.1")(p)] == []
    assert await asyncio.to_thread(a1.ping_ok, "192.0.2.129", deadline=10)  # the /25 stays
