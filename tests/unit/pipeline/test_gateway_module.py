"""The gateway module's flows, traced through the simulator: a local port's ARP request
for its subnet's gateway and its ping to it are answered on the switch, out of its port;
nothing else changes, nothing from the tunnel is answered, and unloading the module
removes exactly its flows."""

from __future__ import annotations

import dataclasses

import pytest

from vlcp.pipeline import BUILTIN, DEFAULT, ModuleSet, Subnet, View
from vlcp.pipeline.gateway import MODULE, Settings, gateway_mac
from vlcp.southbound.openflow.flow import Flow

from .scenario import M1, M2, M3, PORT, TUNNEL, VIEW, VTEP2, arp_request, ipv4
from .sim import trace

GW = "10.0.0.254"
SUBNETS = {
    "sa": Subnet("sa", "tenant-a", "10.0.0.0/24", GW),
    "sb": Subnet("sb", "tenant-b", "10.0.0.0/24", GW),
}
WITH_GATEWAYS = dataclasses.replace(VIEW, subnets=SUBNETS, members=None, subnet_ids=None)
"""tenant-a and tenant-b (same addresses, two tenants) each have a subnet with a gateway;
the other networks have none."""
MAC_A, MAC_B = gateway_mac("sa"), gateway_mac("sb")


def flows(modules: ModuleSet = DEFAULT, view: View = WITH_GATEWAYS) -> frozenset[Flow]:
    return frozenset().union(*modules.compile_all(view).values())


def ping(src: str, dst_mac: str, ip_src: str, ip_dst: str = GW) -> dict:
    echo = {"ip_proto": 1, "icmpv4_type": 8, "icmpv4_code": 0, "nw_ttl": 63}
    return {**ipv4(src, dst_mac, ip_src, ip_dst), **echo}


def test_its_table_comes_after_every_other_so_no_id_moves() -> None:
    ids = {t.name: t.id for t in BUILTIN.pipeline}
    assert (ids["l2_forward"], ids["dhcp"], ids["gateway"]) == (4, 5, 6)


def test_the_gateway_mac_is_the_subnets_on_every_server_local_and_unicast() -> None:
    assert gateway_mac("sa") == MAC_A != MAC_B
    first = int(MAC_A[:2], 16)
    assert first & 0b10 and not first & 0b01
    assert Settings(mac="02:00:5E:00:00:01").mac == "02:00:5e:00:00:01"
    with pytest.raises(ValueError, match="unicast"):
        Settings(mac="01:00:5e:00:00:01")


def test_an_arp_request_for_the_gateway_is_answered_with_its_mac() -> None:
    (out,) = trace(flows(), PORT["a1"].ofport, arp_request(M1, "10.0.0.1", GW))
    assert out.port == PORT["a1"].ofport
    assert (out["eth_src"], out["eth_dst"], out["arp_op"]) == (MAC_A, M1, 2)
    assert (out["arp_sha"], out["arp_spa"]) == (MAC_A, GW)
    assert (out["arp_tha"], out["arp_tpa"]) == (M1, "10.0.0.1")
    (out,) = trace(flows(), PORT["b1"].ofport, arp_request(M1, "10.0.0.1", GW))
    assert (out.port, out["arp_sha"]) == (PORT["b1"].ofport, MAC_B)  # its own tenant's
    unicast = {**arp_request(M1, "10.0.0.1", GW), "eth_dst": MAC_A}  # a neighbour probe
    (out,) = trace(flows(), PORT["a1"].ofport, unicast)
    assert (out.port, out["arp_sha"]) == (PORT["a1"].ofport, MAC_A)


def test_an_echo_request_to_the_gateway_is_answered() -> None:
    (out,) = trace(flows(), PORT["a2"].ofport, ping(M2, MAC_A, "10.0.0.2"))
    assert out.port == PORT["a2"].ofport
    assert (out["eth_src"], out["eth_dst"]) == (MAC_A, M2)
    assert (out["ipv4_src"], out["ipv4_dst"]) == (GW, "10.0.0.2")
    assert (out["icmpv4_type"], out["icmpv4_code"], out["nw_ttl"]) == (0, 0, 64)


def test_what_is_not_for_the_gateway_goes_on_as_before() -> None:
    before = flows(DEFAULT.unload("gateway"))
    a1 = PORT["a1"].ofport
    for packet in (
        arp_request(M1, "10.0.0.1", "10.0.0.9"),  # nobody's: flooded
        arp_request(M1, "10.0.0.1", "10.0.0.2"),  # a2's: answered with its MAC
        ping(M1, M2, "10.0.0.1", "10.0.0.2"),  # a ping to a2
        ping(M1, MAC_B, "10.0.0.1"),  # the other tenant's gateway MAC: unknown here
    ):
        assert trace(flows(), a1, packet) == trace(before, a1, packet)
    other = arp_request(M1, "10.0.0.1", GW)  # vlan-a has no subnet
    assert trace(flows(), PORT["va1"].ofport, other) == trace(before, PORT["va1"].ofport, other)


def test_other_traffic_to_the_gateway_mac_is_dropped_until_routing_comes() -> None:
    udp = ipv4(M1, MAC_A, "10.0.0.1", GW)
    assert trace(flows(), PORT["a1"].ofport, udp) == []
    offlink = ping(M1, MAC_A, "10.0.0.1", "192.0.2.9")
    assert trace(flows(), PORT["a1"].ofport, offlink) == []


def test_spoofed_or_remote_requests_are_not_answered() -> None:
    spoofed = arp_request(M1, "10.0.0.7", GW)
    assert trace(flows(), PORT["a1"].ofport, spoofed) == []  # anti-spoofing drops it
    assert trace(flows(), PORT["a1"].ofport, ping(M1, MAC_A, "10.0.0.7")) == []
    before = flows(DEFAULT.unload("gateway"))
    tunnel = {"tunnel_id": 5001, "tun_ipv4_src": VTEP2}
    for packet in (
        {**arp_request(M3, "10.0.0.3", GW), **tunnel},
        {**ping(M3, MAC_A, "10.0.0.3"), **tunnel},
    ):
        outputs = trace(flows(), TUNNEL, packet)
        assert TUNNEL not in {o.port for o in outputs}  # the sender's server answers
        assert outputs == trace(before, TUNNEL, packet)


def test_a_port_holding_the_gateway_address_answers_for_itself() -> None:
    subnet = dataclasses.replace(SUBNETS["sa"], gateway="10.0.0.2")  # a2: a tenant's router
    view = dataclasses.replace(WITH_GATEWAYS, subnets={"sa": subnet}, subnet_ids=None)
    (out,) = trace(flows(view=view), PORT["a1"].ofport, arp_request(M1, "10.0.0.1", "10.0.0.2"))
    assert out["arp_sha"] == M2
    ping_a2 = ping(M1, M2, "10.0.0.1", "10.0.0.2")
    assert [o.port for o in trace(flows(view=view), PORT["a1"].ofport, ping_a2)] == [2]


def test_a_fixed_mac_from_the_settings() -> None:
    fixed = "02:00:5e:00:00:01"
    modules = ModuleSet(BUILTIN, DEFAULT.loaded, {"gateway": Settings(mac=fixed)})
    (out,) = trace(flows(modules), PORT["b1"].ofport, arp_request(M1, "10.0.0.1", GW))
    assert out["arp_sha"] == fixed
    (out,) = trace(flows(modules), PORT["b1"].ofport, ping(M1, fixed, "10.0.0.1"))
    assert (out["eth_src"], out["icmpv4_type"]) == (fixed, 0)


def test_only_networks_with_a_local_port_get_flows() -> None:
    ports = {k: p for k, p in VIEW.ports.items() if p.network != "tenant-b"}
    view = dataclasses.replace(WITH_GATEWAYS, ports=ports, members=None)
    gateway = BUILTIN.pipeline["gateway"].id
    owners = DEFAULT.compile_all(view)
    assert {f.table for f in owners[("network", "tenant-a")]} >= {gateway}
    only_remotes = owners.get(("network", "tenant-b"), frozenset())
    assert gateway not in {f.table for f in only_remotes}
    assert MODULE.network is not None
    assert MODULE.network(DEFAULT.context("gateway"), view, "tenant-b") == frozenset()


def test_unloading_it_removes_exactly_its_flows_and_loading_it_back_answers_again() -> None:
    on, off = flows(), flows(DEFAULT.unload("gateway"))
    assert off < on
    gone = on - off
    ids = {BUILTIN.pipeline[t].id for t in ("arp_responder", "gateway")}
    assert {f.table for f in gone} == ids
    assert len(gone) == 2 * 4  # two networks, one gateway each
    request = arp_request(M1, "10.0.0.1", GW)
    assert PORT["a1"].ofport not in {o.port for o in trace(off, PORT["a1"].ofport, request)}
    flooded = trace(off, PORT["a1"].ofport, ping(M1, MAC_A, "10.0.0.1"))  # an unknown MAC
    assert all(o["icmpv4_type"] == 8 and o.port != PORT["a1"].ofport for o in flooded)
    back = flows(DEFAULT.unload("gateway").load("gateway"))
    assert back == on
