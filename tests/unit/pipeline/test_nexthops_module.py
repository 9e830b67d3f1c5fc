"""The nexthops module's flows and handler, on the l3 scenario: tenant A's router routes
198.51.100.0/24 through 10.0.1.50, a host outside vlcp on A's VLAN network (tenant-a2,
VLAN 102 on the physical port); tenant B, with the same addresses, has no such route."""

from __future__ import annotations

import dataclasses
import ipaddress
import struct

import pytest

from vlcp.pipeline import DEFAULT, Learned, View, render_all
from vlcp.pipeline.fields import IN_KIND, NETWORK, InKind
from vlcp.pipeline.module import BadPacket, Received
from vlcp.pipeline.nexthops import all_outside_hops, learn

from .scenario import M1, PHYS_VLAN
from .sim import CONTROLLER, trace
from .test_l3_module import (
    A1,
    A21,
    ALL_NETWORKS,
    B1,
    GW1,
    MAC_A0,
    MAC_A1,
    MAC_B0,
    ROUTED,
    ROUTERS,
    flows,
    udp,
)
from .test_static_routes_module import delivered

HOP, OUTSIDE_MAC = "10.0.1.50", "02:00:00:00:0a:50"
ROUTE = ("198.51.100.0/24", HOP)
A2 = ALL_NETWORKS["tenant-a2"]


def routed_view(neighbours: dict | None = None, routes=(ROUTE,)) -> View:
    return dataclasses.replace(
        ROUTED,
        routers={**ROUTERS, "ra": dataclasses.replace(ROUTERS["ra"], routes=routes)},
        neighbours=neighbours or {},
        members=None,
        router_ids=None,
    )


UNRESOLVED = routed_view()
RESOLVED = routed_view({("tenant-a2", HOP): OUTSIDE_MAC})
OUT = udp(M1, MAC_A0, "10.0.0.1", "198.51.100.7")


def arp_reply(sender: str, target: str, sha: str = OUTSIDE_MAC, op: int = 2) -> bytes:
    mac = bytes.fromhex(sha.replace(":", ""))
    return (
        b"\x02\x00\x00\x00\x00\x99"
        + mac
        + struct.pack("!H", 0x0806)
        + struct.pack(
            "!HHBBH6s4s6s4s",
            1,
            0x0800,
            6,
            4,
            op,
            mac,
            ipaddress.IPv4Address(sender).packed,
            bytes(6),
            ipaddress.IPv4Address(target).packed,
        )
    )


def arp_reply_fields(sender: str, target: str) -> dict:
    return {
        "eth_src": OUTSIDE_MAC,
        "eth_dst": "02:00:00:00:00:99",
        "eth_type": 0x0806,
        "vlan_vid": 0x1000 | 102,
        "arp_op": 2,
        "arp_spa": sender,
        "arp_tpa": target,
        "arp_sha": OUTSIDE_MAC,
    }


def test_unresolved_the_route_drops_and_floods_nothing() -> None:
    assert delivered(trace(flows(view=UNRESOLVED), A1, OUT)) == []


def test_resolved_the_route_leaves_by_the_physical_port_only_to_the_learned_mac() -> None:
    (out,) = trace(flows(view=RESOLVED), A1, OUT)
    assert (out.port, out["vlan_vid"]) == (PHYS_VLAN, 0x1000 | 102)
    assert (out["eth_src"], out["eth_dst"], out["nw_ttl"]) == (MAC_A1, OUTSIDE_MAC, 63)
    assert A21.ofport not in {o.port for o in trace(flows(view=RESOLVED), A1, OUT)}


def test_the_other_tenant_does_not_use_the_route() -> None:
    for dst_mac in (MAC_B0, MAC_A0):
        outs = trace(flows(view=RESOLVED), B1, udp(M1, dst_mac, "10.0.0.1", "198.51.100.7"))
        assert {o[NETWORK.reg] for o in outs} <= {ALL_NETWORKS["tenant-b"].number}


def test_only_the_next_hops_replies_to_the_interface_reach_the_controller() -> None:
    found = flows(view=UNRESOLVED)
    (out,) = trace(found, PHYS_VLAN, arp_reply_fields(HOP, GW1))
    assert out.port == CONTROLLER and out[NETWORK.reg] == A2.number
    assert out[IN_KIND.reg] & 3 == InKind.PHYSICAL
    for sender, target in (("10.0.1.51", GW1), (HOP, "10.0.1.4")):
        outs = trace(found, PHYS_VLAN, arp_reply_fields(sender, target))
        assert CONTROLLER not in {o.port for o in outs}, (sender, target)


def test_flows_per_next_hop_owned_by_its_network() -> None:
    def ours(view: View) -> list[str]:
        without = DEFAULT.unload("nexthops").compile_owner(view, ("network", "tenant-a2"))
        mine = DEFAULT.compile_owner(view, ("network", "tenant-a2")) - without
        return render_all(mine)

    assert len(ours(UNRESOLVED)) == 2  # the entrance and the catch of its replies
    resolved = ours(RESOLVED)
    assert len(resolved) == 3
    assert (
        "table=l3 priority=84 reg6=0x1,eth_type=0x0800,ipv4_dst=198.51.100.0/255.255.255.0 "
        f"actions=set_field:{OUTSIDE_MAC}->eth_dst,set_field:{MAC_A1}->eth_src,dec_ttl(),"
        f"push_vlan:0x8100,set_field:0x1066->vlan_vid,output:{PHYS_VLAN}"
    ) in resolved


def test_a_next_hop_a_port_holds_is_not_outside() -> None:
    view = routed_view(routes=(("198.51.100.0/24", A21.ip),))
    assert all_outside_hops(view) == []
    assert [h.ip for h in all_outside_hops(UNRESOLVED)] == [HOP]


def received(data: bytes, network: int = A2.number) -> Received:
    return Received(PHYS_VLAN, network, data)


def test_the_handler_learns_a_next_hops_answer_only() -> None:
    ctx = DEFAULT.context("nexthops")
    assert learn(ctx, UNRESOLVED, received(arp_reply(HOP, GW1))) == (
        Learned("tenant-a2", HOP, OUTSIDE_MAC),
    )
    assert learn(ctx, UNRESOLVED, received(arp_reply("10.0.1.51", GW1))) == ()
    other = ALL_NETWORKS["tenant-b2"].number
    assert learn(ctx, UNRESOLVED, received(arp_reply(HOP, GW1), other)) == ()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        arp_reply(HOP, GW1)[:30],
        arp_reply(HOP, GW1, op=1),
        arp_reply(HOP, GW1, sha="01:00:5e:00:00:01"),
        arp_reply(HOP, GW1, sha="00:00:00:00:00:00"),
        arp_reply(HOP, GW1)[:12] + b"\x08\x00" + arp_reply(HOP, GW1)[14:],
    ],
)
def test_a_malformed_reply_is_a_bad_packet(data: bytes) -> None:
    with pytest.raises(BadPacket):
        learn(DEFAULT.context("nexthops"), UNRESOLVED, received(data))
