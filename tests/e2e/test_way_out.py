"""The way out of vlcp and back in, through forwarding servers, on real OVS.

The routed world of `test_routing` (two tenants with identical addresses, each with a
router), plus an external subnet (`isexternal`, 10.200.0.0/24 on a VLAN network of the
lab's physical segment) that both routers join, each at an address of its own. Its
gateway, 10.200.0.1, is the "data center router": a namespace on hv2's br-phy (the lab's
top-of-rack switch) in that VLAN, with 198.51.100.1 behind it.

A router on an external subnet routes by default through its gateway, which the
forwarding server (the lowest id of the live servers with the link: hv0 here) resolves
by ARP: both tenants' pings to 198.51.100.1 arrive there with TTL 63, each from its own
router's MAC on the external subnet, and no port of the other tenant sees them.

The way back in: the data center routes the tenant CIDRs through router A's external
address, which the forwarding server answers ARP for, and routes what comes to its MAC
into tenant A's subnets (TTL one less), never into B's. A server without the link
(hv0, its trunk unplugged) goes out and comes back in through the forwarding server over
the overlay; when that server dies (its controller killed, its link gone, its session
expired), the next one takes over and the path recovers.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether

from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Host
from tests.lab.waiting import eventually
from vlcp.lab.servers import BRIDGE
from vlcp.layout import chassis_key
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
        route_through_gateway(name, host, "198.51.100.0/24", "10.200.0.0/24")
    vlan = (await api.get("logical-networks", "net-ext"))["vlanid"]
    hv = cloud.servers["hv2"].hv
    datacenter = cloud.hosts(hv, "br-phy", "10.200.0.1/24", mac=GATEWAY_MAC, name="datacenter")
    hv.vsctl("set", "port", datacenter.port_name, f"tag={vlan}")
    datacenter.exec("ip", "addr", "add", f"{BEYOND}/32", "dev", "lo")
    interfaces = await asyncio.to_thread(api.client.interfaces, "router-a")
    external = next(i["ip_address"] for i in interfaces if i["subnet"] == "sub-ext")
    for tenant_cidr in ("10.0.0.0/24", "10.0.1.0/24"):  # only through router A
        datacenter.exec("ip", "route", "add", tenant_cidr, "via", external)
    return cloud, hosts, datacenter, external


def _from_outside(p) -> bool:
    return ICMP in p and p[ICMP].type == 8 and p[IP].src in ("10.200.0.1", BEYOND)


async def _round_trips(hosts: dict[str, Host], datacenter: Host, *senders: str) -> None:
    """Each sender reaches the address behind the data center and back, and the data
    center reaches each sender: pings both ways (retried while paths settle)."""
    for sender in senders:
        assert await asyncio.to_thread(hosts[sender].ping_ok, BEYOND, deadline=20), sender
        reached = await asyncio.to_thread(datacenter.ping_ok, hosts[sender].ip, deadline=20)
        assert reached, f"the data center does not reach {sender}"


async def test_both_tenants_go_out_through_the_external_gateway_each_from_its_router(
    world,
) -> None:
    _, hosts, datacenter, _ = world
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


async def test_the_way_back_in_reaches_only_the_tenant_of_the_router_addressed(world) -> None:
    cloud, hosts, datacenter, external = world
    watchers = {n: h.capture("icmp") for n, h in hosts.items() if n.startswith("b")}
    arrivals = hosts["a5"].capture("icmp")
    await _round_trips(hosts, datacenter, "a1", "a3", "a4", "a5")  # hv0..hv2; VXLAN, VLAN
    neighbour = datacenter.exec("ip", "neigh", "show", external).stdout
    assert gateway_mac("sub-ext/router-a") in neighbour  # answered by the forwarding server
    pings = [p for p in arrivals.stop() if _from_outside(p) and p[IP].dst == hosts["a5"].ip]
    assert pings and {p[IP].ttl for p in pings} == {63}  # one router hop
    assert {p[Ether].src for p in pings} == {gateway_mac("sub-a2")}
    # the same addresses in tenant B, through router A's address: never there
    for name, capture in watchers.items():
        leaked = [p for p in capture.stop() if _from_outside(p)]
        assert leaked == [], f"{name} of tenant b saw the data center's packets for tenant a"
    # the forwarding server's controller restarts (killed: its session lingers meanwhile);
    # it announces its link again from the start, so no other server takes over
    restarted = cloud.servers["hv0"].controller
    restarted.kill()
    restarted.start()
    await restarted.ready(cloud.store)
    await _round_trips(hosts, datacenter, "a1", "a5")
    for name in ("hv1", "hv2"):
        log = cloud.servers[name].controller.log_tail(1000)
        assert "forwarding server of" not in log, f"{name} took over during hv0's restart"


async def _forwards(cloud, server: str) -> list[str] | None:
    """What a server's presence says it may forward on (None: not alive)."""
    key = chassis_key(server)
    value = (await cloud.store.read([key])).values.get(key)
    return None if value is None else value.get("forwards")


async def test_a_server_without_the_link_goes_through_the_forwarding_server_which_fails_over(
    world, session_ttl: float
) -> None:
    cloud, hosts, datacenter, _ = world
    hv0, hv1 = cloud.servers["hv0"], cloud.servers["hv1"]
    hv0.hv.vsctl("del-port", BRIDGE, "trunk0")  # hv0 loses its link: hv1 forwards

    async def linkless() -> bool:
        return await _forwards(cloud, "hv0") == [] and await _forwards(cloud, "hv1") == ["vl"]

    await eventually(linkless, 20, what="hv0 to say it has no link")
    await _round_trips(hosts, datacenter, "a1", "a2", "a3")  # a1 on the link-less hv0
    answers = [f for f in hv1.hv.dump_flows(BRIDGE, table=0) if "arp_op=1" in f]
    assert answers, "hv1, the forwarding server, answers ARP for the routers"
    assert not [f for f in hv0.hv.dump_flows(BRIDGE, table=0) if "arp_op=1" in f]
    # hv1 dies: its controller killed, its link gone; its session expires and hv2 takes over
    hv1.controller.kill()
    hv1.hv.vsctl("del-port", BRIDGE, "trunk0")
    died = time.monotonic()

    async def recovered() -> bool:
        return await asyncio.to_thread(hosts["a1"].ping_ok, BEYOND, deadline=2)

    await eventually(recovered, 40, what="a1 to reach the outside through hv2")
    took = time.monotonic() - died
    print(f"the way out recovered {took:.1f} s after hv1 died (session TTL {session_ttl:g} s)")
    assert await _forwards(cloud, "hv1") is None
    await _round_trips(hosts, datacenter, "a1", "a3")
