"""Routing between a router's subnets, on the source server, on real OVS.

Three servers, both tenants of `tenants.py` (same MACs and addresses; A's 10.0.0.0/24 over
VXLAN, B's over VLAN), each given a second network with the same 10.0.1.0/24 subnet and
the same addresses (A's over VLAN, B's over VXLAN) and a router joining the two, created
through the REST API (a router, then its two interfaces in one batch of
`router-interfaces`). Every host routes the other subnet through its gateway, whose
address the router interface holds.

Routed pings go through the same server, across servers and across network types, each
way through exactly one router hop (the request arrives with TTL 63, the reply too),
while every host of the other tenant captures nothing. One of B's paths starts on hv2,
which has no port in B's second network: hv1 lets that routed traffic in from hv2's
tunnel endpoint. A packet whose TTL runs out is not routed (test_routing_icmp.py: the
gateway answers it). A port spoofing its source address is not routed. Removing a
router interface stops routing into its subnet, and only there.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Host
from tests.lab.vlcp_processes import AsyncApi
from tests.lab.waiting import eventually
from vlcp.lab.ovs.host import parse_ping
from vlcp.pipeline.gateway import gateway_mac

from .conftest import Cloud
from .tenants import SERVERS, plug_tenants

pytestmark = [pytest.mark.root, pytest.mark.slow, needs_ovs_lab]

FIRST_GATEWAY, SECOND_GATEWAY = "10.0.0.254", "10.0.1.254"
SECOND = {"a": "vl", "b": "vx"}
"""Each tenant's second network and its physical network: the other type than its first."""
ROUTED_PORTS = {
    4: ("hv0", "02:00:00:00:00:04", "10.0.1.4"),
    5: ("hv1", "02:00:00:00:00:05", "10.0.1.5"),
}
"""Port n of each tenant's second network: its server, MAC and address (the same in both)."""
PATHS = {
    "a": [("a1", "a4"), ("a1", "a5"), ("a3", "a5"), ("a4", "a2")],
    "b": [("b1", "b4"), ("b3", "b5"), ("b5", "b2")],
}
"""Per tenant, routed pings: same server (a1 -> a4, b1 -> b4), across servers, VXLAN to
VLAN (A) and VLAN to VXLAN (B) and back; b3's server hv2 has no port in B's second
network."""
_TTL = re.compile(r"ttl=(\d+)")


def routed(port: str) -> bool:
    """Whether a port is in its tenant's second network."""
    return int(port[1:]) in ROUTED_PORTS


def subnet_of(port: str) -> str:
    return f"sub-{port[0]}2" if routed(port) else f"sub-{port[0]}"


@dataclass
class World:
    api: AsyncApi
    hosts: dict[str, Host]
    cloud: Cloud


async def second_network(cloud, tenant: str, hosts: dict[str, Host]) -> None:
    """The tenant's second network, its subnet and ports 4 and 5, and its router."""
    api = cloud.api
    physnet = SECOND[tenant]
    await api.create("logical-networks", {"id": f"net-{tenant}2", "physicalnetwork": physnet})
    subnet = {
        "id": f"sub-{tenant}2",
        "logicalnetwork": f"net-{tenant}2",
        "cidr": "10.0.1.0/24",
        "gateway": SECOND_GATEWAY,
    }
    await api.create("subnets", subnet)
    for n, (server, mac, ip) in ROUTED_PORTS.items():
        port = {
            "id": f"{tenant}{n}",
            "logicalnetwork": f"net-{tenant}2",
            "subnet": f"sub-{tenant}2",
            "mac_address": mac,
            "ip_address": ip,
        }
        await api.create("logical-ports", port)
        hosts[port["id"]] = cloud.host(server, f"{ip}/24", mac=mac, port=port["id"])
    await api.create("routers", {"id": f"router-{tenant}"})
    interfaces = [
        {
            "action": "create",
            "kind": "router-interfaces",
            "id": f"router-{tenant}",
            "body": {"subnet": s},
        }
        for s in (f"sub-{tenant}", f"sub-{tenant}2")
    ]
    await asyncio.to_thread(api.client.batch, interfaces)


@pytest.fixture
async def world(cloud_factory) -> World:
    """Both tenants routed, every path of `PATHS` answered once (ARP, tunnel peers)."""
    cloud = await cloud_factory(SERVERS)
    gateway = {"gateway": FIRST_GATEWAY}
    hosts = await plug_tenants(cloud, subnets={"a": gateway, "b": gateway})
    for tenant in SECOND:
        await second_network(cloud, tenant, hosts)
    for name, host in hosts.items():
        await cloud.api.wait_port_up(name, timeout=30)
        other, via = (
            ("10.0.0.0/24", SECOND_GATEWAY) if routed(name) else ("10.0.1.0/24", FIRST_GATEWAY)
        )
        host.exec("ip", "route", "add", other, "via", via)
    for src, dst in (p for paths in PATHS.values() for p in paths):
        assert await asyncio.to_thread(hosts[src].ping_ok, hosts[dst].ip, deadline=20), (src, dst)
    return World(cloud.api, hosts, cloud)


def echo_requests_to(ip: str):
    return lambda p: ICMP in p and p[ICMP].type == 8 and p[IP].dst == ip


async def test_routed_pings_take_one_hop_and_never_reach_the_other_tenant(world: World) -> None:
    hosts = world.hosts
    for tenant, other in (("a", "b"), ("b", "a")):
        watchers = {n: h.capture("icmp") for n, h in hosts.items() if n.startswith(other)}
        for src, dst in PATHS[tenant]:
            arrived = hosts[dst].capture("icmp")
            result = await asyncio.to_thread(hosts[src].ping, hosts[dst].ip, count=3)
            assert result.received == 3, (src, dst, result.output)
            assert _TTL.findall(result.output) == ["63"] * 3, (src, dst, result.output)
            requests = await asyncio.to_thread(
                arrived.wait_for, echo_requests_to(hosts[dst].ip), count=3
            )
            arrived.stop()
            assert {p[IP].ttl for p in requests} == {63}, (src, dst)
            assert {p[Ether].src for p in requests} == {gateway_mac(subnet_of(dst))}
        for name, capture in watchers.items():
            assert capture.stop() == [], f"{name} of tenant {other} saw {tenant}'s packets"


def datagram(host: Host, source: str, destination: str, marker: bytes) -> Packet:
    """A UDP datagram from `host` to its gateway MAC, for `destination` behind the router."""
    return (
        Ether(src=host.mac, dst=gateway_mac("sub-a"))
        / IP(src=source, dst=destination)
        / UDP(dport=9)
        / Raw(marker)
    )


async def test_a_spoofed_source_is_not_routed(world: World) -> None:
    """a1 sends to a5 from an address not its own, then from its own, on one socket: the
    honest datagram arrives, routed; the forged one, sent first on the same path, not."""
    a1, a5 = world.hosts["a1"], world.hosts["a5"]
    forged, honest = os.urandom(8), os.urandom(8)
    capture = a5.capture("udp port 9")
    await asyncio.to_thread(
        a1.send,
        datagram(a1, "10.0.0.77", a5.ip, forged),
        datagram(a1, a1.ip, a5.ip, honest),
    )
    (routed,) = await asyncio.to_thread(capture.wait_for, lambda p: honest in bytes(p))
    assert (routed[IP].ttl, routed[Ether].src) == (63, gateway_mac("sub-a2"))
    assert not [p for p in capture.stop() if forged in bytes(p)]


async def test_removing_a_router_interface_stops_routing_to_its_subnet(world: World) -> None:
    hosts = world.hosts
    await asyncio.to_thread(world.api.client.remove_interface, "router-a", "sub-a2")

    async def unrouted(src: str, dst: str) -> bool:
        result = await asyncio.to_thread(hosts[src].ping, hosts[dst].ip, count=1)
        return result.received == 0

    async def both_unrouted() -> bool:
        # One condition: each server drops the interface on its own (a1 -> a5 fails as
        # soon as hv1 stops routing a5's replies, while hv0 may still route a1 -> a4).
        return await unrouted("a1", "a5") and await unrouted("a1", "a4")

    await eventually(both_unrouted, 20, what="a1 -> a5 and a1 -> a4 no longer routed")
    for src, dst in (("b1", "b4"), ("b3", "b5"), ("a1", "a2")):  # B's router, A's own network
        assert await asyncio.to_thread(hosts[src].ping_ok, hosts[dst].ip), (src, dst)


async def test_a_packet_whose_ttl_runs_out_is_not_routed(world: World) -> None:
    """Echo requests with TTL 1 leave a1 and are not routed (no reply; the time exceeded
    they get is test_routing_icmp.py's), then TTL 2 ones arrive at a4 with 1 left: on one
    path, in order, so the first ones would be in the capture too had they been routed."""
    a1, a4 = world.hosts["a1"], world.hosts["a4"]
    arrived = a4.capture("icmp")
    for ttl, replies in ((1, 0), (2, 2)):
        ping = ("ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-t", str(ttl), a4.ip)
        proc = await asyncio.to_thread(a1.exec, *ping, check=False)
        assert parse_ping(proc.stdout + proc.stderr, proc.returncode).received == replies, ttl
    await asyncio.to_thread(arrived.wait_for, echo_requests_to(a4.ip), count=2)
    requests = [p for p in arrived.stop() if echo_requests_to(a4.ip)(p)]
    assert [p[IP].ttl for p in requests] == [1, 1]
