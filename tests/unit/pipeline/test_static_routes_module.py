"""The static_routes module's flows, traced through the simulator on the l3 scenario:
tenant A's router sends 192.0.2.0/24 to an appliance port (a21, local), the more specific
192.0.2.128/25 to another (a2r, on another server over VLAN), and the rest to a21 by a
default route; tenant B, with the same addresses, has no route and gets none of it."""

from __future__ import annotations

import dataclasses

from vlcp.pipeline import BUILTIN, DEFAULT, ModuleSet, render_all
from vlcp.pipeline.changes import PutRouter, apply
from vlcp.pipeline.compile import compile_owner
from vlcp.pipeline.fields import NETWORK

from .scenario import M3, M4, PHYS_VLAN, TUNNEL, VTEP4
from .sim import CONTROLLER, Output, trace
from .test_l3_module import (
    A1,
    A21,
    ALL_NETWORKS,
    B1,
    MAC_A0,
    MAC_A1,
    MAC_B0,
    ROUTED,
    ROUTERS,
    flows,
    routed,
    udp,
)

ROUTES = (
    ("192.0.2.0/24", "10.0.1.4"),
    ("192.0.2.128/25", "10.0.1.3"),
    ("0.0.0.0/0", "10.0.1.4"),
    ("198.51.100.0/24", "10.0.1.99"),
    ("2001:db8::/64", "fd00::1"),
)
"""A's routes: through a local port, through a remote one, default; through an address
no port holds (routes nothing, here), and an IPv6 one (not routed)."""
VIEW = dataclasses.replace(
    ROUTED,
    routers={**ROUTERS, "ra": dataclasses.replace(ROUTERS["ra"], routes=ROUTES)},
    members=None,
    router_ids=None,
)
FLOWS = flows(view=VIEW)


def delivered(outs: list[Output]) -> list[Output]:
    """What left by a port: not what went to the controller (`icmp_errors` answers a
    packet no route takes, or whose TTL ran out, from there)."""
    return [o for o in outs if o.port != CONTROLLER]


def test_the_longest_prefix_wins() -> None:
    (out,) = trace(FLOWS, A1, udp("02:00:00:00:00:01", MAC_A0, "10.0.0.1", "192.0.2.5"))
    assert out.port == A21.ofport
    routed(out, MAC_A1, M4)
    (out,) = trace(FLOWS, A1, udp("02:00:00:00:00:01", MAC_A0, "10.0.0.1", "192.0.2.200"))
    assert (out.port, out["vlan_vid"]) == (PHYS_VLAN, 0x1000 | 102)
    routed(out, MAC_A1, M3)
    assert out[NETWORK.reg] == ALL_NETWORKS["tenant-a2"].number
    (out,) = trace(FLOWS, A1, udp("02:00:00:00:00:01", MAC_A0, "10.0.0.1", "203.0.113.1"))
    assert out.port == A21.ofport  # the default route


def test_a_port_of_an_attached_subnet_is_reached_directly_not_by_the_default_route() -> None:
    (out,) = trace(FLOWS, A1, udp("02:00:00:00:00:01", MAC_A0, "10.0.0.1", "10.0.1.3"))
    assert (out.port, out["eth_dst"]) == (PHYS_VLAN, M3)


def test_the_ttl_runs_out_on_a_static_route_as_on_any() -> None:
    assert (
        delivered(
            trace(FLOWS, A1, udp("02:00:00:00:00:01", MAC_A0, "10.0.0.1", "192.0.2.5", ttl=1))
        )
        == []
    )


def test_a_next_hop_no_port_holds_routes_nothing() -> None:
    without_default = dataclasses.replace(
        VIEW,
        routers={**ROUTERS, "ra": dataclasses.replace(ROUTERS["ra"], routes=ROUTES[3:])},
        members=None,
        router_ids=None,
    )
    packet = udp("02:00:00:00:00:01", MAC_A0, "10.0.0.1", "198.51.100.1")
    assert delivered(trace(flows(view=without_default), A1, packet)) == []


def test_the_other_tenant_gets_no_route() -> None:
    """B's router has no routes: B's packets to the same destinations are dropped, and
    to A's router's MAC they are only B's network's unknown unicast (as without routes)."""
    for dst in ("192.0.2.5", "192.0.2.200", "203.0.113.1"):
        assert delivered(trace(FLOWS, B1, udp("02:00:00:00:00:01", MAC_B0, "10.0.0.1", dst))) == []
        to_a = trace(FLOWS, B1, udp("02:00:00:00:00:01", MAC_A0, "10.0.0.1", dst))
        assert {o[NETWORK.reg] for o in to_a} <= {ALL_NETWORKS["tenant-b"].number}


def test_one_flow_per_ipv4_route_owned_by_its_next_hop_and_unloading() -> None:
    ours = DEFAULT.compile_all(VIEW)
    without = ModuleSet(BUILTIN, set(DEFAULT.loaded) - {"static_routes"}).compile_all(VIEW)
    added = {o: ours[o] - without.get(o, frozenset()) for o in ours}
    assert {o: len(f) for o, f in added.items() if f} == {("port", "a21"): 2, ("remote", "a2r"): 1}
    assert render_all(added[("remote", "a2r")]) == [
        "table=l3 priority=85 reg6=0x1,eth_type=0x0800,ipv4_dst=192.0.2.128/255.255.255.128 "
        f"actions=set_field:{M3}->eth_dst,set_field:{MAC_A1}->eth_src,dec_ttl(),"
        f"load:{ALL_NETWORKS['tenant-a2'].number:#x}->reg4,resubmit(,l2_forward)"
    ]
    assert "priority=60 reg6=0x1,eth_type=0x0800 actions" in " ".join(
        render_all(added[("port", "a21")])
    )
    assert frozenset().union(*without.values()) == flows(DEFAULT.unload("static_routes"), VIEW)


def test_removing_a_route_recomputes_its_next_hop_and_drops_its_flow() -> None:
    fewer = dataclasses.replace(VIEW.routers["ra"], routes=ROUTES[:1])
    after, owners = apply(VIEW, PutRouter(fewer))
    assert {("port", "a21"), ("remote", "a2r")} <= owners
    assert compile_owner(after, ("remote", "a2r")) == compile_owner(ROUTED, ("remote", "a2r"))
    packet = udp("02:00:00:00:00:01", MAC_A0, "10.0.0.1", "192.0.2.200")
    (out,) = trace(flows(view=after), A1, packet)
    assert out.port == A21.ofport  # the /24 now
    packet = udp("02:00:00:00:00:01", MAC_A0, "10.0.0.1", "203.0.113.1")
    assert delivered(trace(flows(view=after), A1, packet)) == []


def test_identical_routes_of_two_tenants_each_reach_their_own_next_hop() -> None:
    """Both routers send 192.0.2.128/25 to 10.0.1.3: A's is a2r (VLAN 102), B's is b2r
    (VXLAN 5003 on VTEP4); each tenant's packets reach its own only."""
    route = ROUTES[1:2]
    both = dataclasses.replace(
        VIEW,
        routers={r: dataclasses.replace(ROUTERS[r], routes=route) for r in ("ra", "rb")},
        members=None,
        router_ids=None,
    )
    found = flows(view=both)
    (out,) = trace(found, A1, udp("02:00:00:00:00:01", MAC_A0, "10.0.0.1", "192.0.2.200"))
    assert (out.port, out["vlan_vid"]) == (PHYS_VLAN, 0x1000 | 102)
    (out,) = trace(found, B1, udp("02:00:00:00:00:01", MAC_B0, "10.0.0.1", "192.0.2.200"))
    assert (out.port, out["tun_ipv4_dst"], out["tunnel_id"]) == (TUNNEL, VTEP4, 5003)
    assert out[NETWORK.reg] == ALL_NETWORKS["tenant-b2"].number
