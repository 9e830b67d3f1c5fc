"""The l3 module's flows, traced through the simulator: two tenants with the same
addresses, each with a router joining 10.0.0.0/24 to 10.0.1.0/24, route their own ports'
packets to local and remote ports of the other subnet (MACs rewritten, TTL decremented),
never into the other tenant, never with a spoofed source, and drop what has no route."""

from __future__ import annotations

import dataclasses

from vlcp.pipeline import (
    BUILTIN,
    DEFAULT,
    LocalPort,
    ModuleSet,
    Network,
    RemotePort,
    Router,
    RouterInterface,
    Subnet,
    View,
    network_numbers,
    render_all,
)
from vlcp.pipeline.fields import NETWORK
from vlcp.pipeline.gateway import gateway_mac
from vlcp.pipeline.l3 import PRIO_ENTER
from vlcp.southbound.openflow.codec import codec_for
from vlcp.southbound.openflow.flow import Flow
from vlcp.southbound.openflow.wire import OFP13, OFP14

from .scenario import (
    M1,
    M3,
    M4,
    NETWORKS,
    PHYS_VLAN,
    PORT,
    PORTS,
    REMOTES,
    TUNNEL,
    VIEW,
    VTEP2,
    VTEP3,
    VTEP4,
    ipv4,
)
from .sim import CONTROLLER, Output, trace
from .test_gateway_module import ping

GW0, GW1 = "10.0.0.254", "10.0.1.254"
SECOND = {"tenant-a2": ("vlan", 102, "pv"), "tenant-b2": ("vxlan", 5003, None)}
"""Each tenant's second network: A's over VLAN, B's over VXLAN."""
NUMBERS = network_numbers([*NETWORKS, *SECOND])
ALL_NETWORKS = {
    **{n: dataclasses.replace(net, number=NUMBERS[n]) for n, net in NETWORKS.items()},
    **{n: Network(n, kind, NUMBERS[n], tag, phys) for n, (kind, tag, phys) in SECOND.items()},
}
SUBNETS = {
    s.id: s
    for s in (
        Subnet("sa", "tenant-a", "10.0.0.0/24", GW0),
        Subnet("sa2", "tenant-a2", "10.0.1.0/24", GW1),
        Subnet("sb", "tenant-b", "10.0.0.0/24", GW0),
        Subnet("sb2", "tenant-b2", "10.0.1.0/24", GW1),
    )
}


def interface(subnet: str, ip: str) -> RouterInterface:
    s = SUBNETS[subnet]
    return RouterInterface(subnet, s.network, s.cidr, ip, gateway_mac(subnet))


ROUTERS = {
    "ra": Router("ra", 1, (interface("sa", GW0), interface("sa2", GW1))),
    "rb": Router("rb", 2, (interface("sb", GW0), interface("sb2", GW1))),
}
A21 = LocalPort("a21", "tenant-a2", 11, M4, "10.0.1.4", subnet="sa2")
A2R = RemotePort("a2r", "tenant-a2", M3, VTEP2, "10.0.1.3")
B2R = RemotePort("b2r", "tenant-b2", M3, VTEP4, "10.0.1.3")
ROUTED = View(
    networks=ALL_NETWORKS,
    ports={p.id: p for p in [*PORTS, A21]},
    remotes={r.id: r for r in [*REMOTES, A2R, B2R]},
    physical_ports=VIEW.physical_ports,
    tunnel_ofport=TUNNEL,
    subnets=SUBNETS,
    routers=ROUTERS,
)
"""The behaviour scenario (tenants A and B on 10.0.0.0/24 with the same MACs), plus each
tenant's router to its second network: A's has a local port there (a21) and a remote
one on VTEP2, B's only a remote one, on a server (VTEP4) with no port in tenant-b."""
MAC_A0, MAC_A1, MAC_B0, MAC_B1 = (gateway_mac(s) for s in ("sa", "sa2", "sb", "sb2"))
A1, B1 = PORT["a1"].ofport, PORT["b1"].ofport


def flows(modules: ModuleSet = DEFAULT, view: View = ROUTED) -> frozenset[Flow]:
    return frozenset().union(*modules.compile_all(view).values())


FLOWS = flows()


def udp(src_mac: str, dst_mac: str, ip_src: str, ip_dst: str, ttl: int = 64) -> dict:
    return ipv4(src_mac, dst_mac, ip_src, ip_dst, nw_ttl=ttl)


def routed(out: Output, eth_src: str, eth_dst: str, ttl: int = 63) -> None:
    """The packet left as routed: MACs rewritten, TTL one less, addresses kept."""
    assert (out["eth_src"], out["eth_dst"], out["nw_ttl"]) == (eth_src, eth_dst, ttl)
    assert out["ipv4_src"] == "10.0.0.1"


def test_its_table_comes_last_so_no_id_moves() -> None:
    ids = {t.name: t.id for t in BUILTIN.pipeline}
    assert (ids["l2_forward"], ids["dhcp"], ids["gateway"], ids["l3"]) == (4, 5, 6, 7)


def test_routed_to_a_local_port_of_the_other_subnet() -> None:
    (out,) = trace(FLOWS, A1, udp(M1, MAC_A0, "10.0.0.1", "10.0.1.4"))
    assert out.port == A21.ofport
    routed(out, MAC_A1, M4)
    assert out[NETWORK.reg] == ALL_NETWORKS["tenant-a2"].number


def test_routed_to_a_remote_port_over_vlan_and_over_vxlan() -> None:
    (out,) = trace(FLOWS, A1, udp(M1, MAC_A0, "10.0.0.1", "10.0.1.3"))
    assert (out.port, out["vlan_vid"]) == (PHYS_VLAN, 0x1000 | 102)
    routed(out, MAC_A1, M3)
    (out,) = trace(FLOWS, B1, udp(M1, MAC_B0, "10.0.0.1", "10.0.1.3"))
    assert (out.port, out["tun_ipv4_dst"], out["tunnel_id"]) == (TUNNEL, VTEP4, 5003)
    routed(out, MAC_B1, M3)


def test_routed_back_into_the_first_subnet() -> None:
    (out,) = trace(FLOWS, A21.ofport, udp(M4, MAC_A1, "10.0.1.4", "10.0.0.3"))
    assert (out.port, out["tun_ipv4_dst"], out["tunnel_id"]) == (TUNNEL, VTEP2, 5001)
    assert (out["eth_src"], out["eth_dst"], out["nw_ttl"]) == (MAC_A0, M3, 63)


def test_without_icmp_errors_ttl_expiry_and_unknown_destinations_are_dropped() -> None:
    """On the switch, by `dec_ttl` and the table's miss (`icmp_errors` answers them, see
    test_icmp_errors_module.py)."""
    routing = flows(DEFAULT.unload("icmp_errors"))
    assert trace(routing, A1, udp(M1, MAC_A0, "10.0.0.1", "10.0.1.4", ttl=1)) == []
    (out,) = trace(routing, A1, udp(M1, MAC_A0, "10.0.0.1", "10.0.1.4", ttl=2))
    assert out["nw_ttl"] == 1
    for nowhere in ("10.0.1.99", "10.0.2.1", "192.0.2.1"):
        assert trace(routing, A1, udp(M1, MAC_A0, "10.0.0.1", nowhere)) == []


def test_tenants_with_the_same_addresses_never_reach_each_other() -> None:
    """10.0.1.4 is only A's: B's router has no route to it (only the controller sees
    the packet, to say so), and A's MAC is unknown in B."""
    assert [o.port for o in trace(FLOWS, B1, udp(M1, MAC_B0, "10.0.0.1", "10.0.1.4"))] == [
        CONTROLLER
    ]
    assert trace(FLOWS, B1, udp(M1, MAC_A0, "10.0.0.1", "10.0.1.4")) == trace(
        flows(DEFAULT.unload("l3")), B1, udp(M1, MAC_A0, "10.0.0.1", "10.0.1.4")
    )
    b_networks = {ALL_NETWORKS[n].number for n in ("tenant-b", "tenant-b2")}
    for dst in ("10.0.1.3", "10.0.1.4", "10.0.0.3"):
        for out in trace(FLOWS, B1, udp(M1, MAC_B0, "10.0.0.1", dst)):
            assert out[NETWORK.reg] in b_networks


def test_a_spoofed_source_is_not_routed() -> None:
    assert trace(FLOWS, A1, udp(M1, MAC_A0, "10.0.0.9", "10.0.1.4")) == []
    assert trace(FLOWS, A1, udp(M1, MAC_A0, "10.0.1.3", "10.0.1.4")) == []


def test_frames_from_the_underlay_are_not_routed_here() -> None:
    """Their own server routed them (or will): a frame from the tunnel to the router's MAC
    is not routed a second time."""
    packet = {**udp(M3, MAC_A0, "10.0.0.3", "10.0.1.4"), "tunnel_id": 5001, "tun_ipv4_src": VTEP2}
    outs = trace(FLOWS, TUNNEL, packet)
    assert outs == trace(flows(DEFAULT.unload("l3")), TUNNEL, packet)
    assert A21.ofport not in {o.port for o in outs}


def test_the_tunnel_takes_routed_packets_from_servers_routing_into_the_network() -> None:
    """VTEP4 has no port in tenant-b, but one in tenant-b2 routed to it: its routed
    packets are let in; floods from tenant-b's ports still reach tenant-b's peers only."""
    packet = {**udp(M3, M1, "10.0.1.3", "10.0.0.1"), "tunnel_id": 5002, "tun_ipv4_src": VTEP4}
    assert [o.port for o in trace(FLOWS, TUNNEL, packet)] == [B1]
    flood = trace(FLOWS, B1, udp(M1, "ff:ff:ff:ff:ff:ff", "10.0.0.1", "10.0.0.255"))
    assert {o["tun_ipv4_dst"] for o in flood if o.port == TUNNEL} == {VTEP3}


def test_the_gateway_still_answers_ping() -> None:
    (out,) = trace(FLOWS, A1, ping(M1, MAC_A0, "10.0.0.1", GW0))
    assert (out.port, out["ipv4_src"], out["icmpv4_type"]) == (A1, GW0, 0)


def test_flows_per_interface_and_per_routed_port_and_unloading() -> None:
    """One flow per router interface of a network with a local port, one per routed port
    (a local port without an address in a routed subnet has none), and unloading the
    module removes exactly these."""
    without = flows(DEFAULT.unload("l3"))
    ours = FLOWS - without
    l3 = BUILTIN.pipeline["l3"].id
    entries = {f for f in ours if f.table != l3}
    routes = {f for f in ours if f.table == l3}
    # A: sa (a1, a2) and sa2 (a21); B: sb (b1, b2), not sb2 (no local port)
    assert len(entries) == 3
    # a1 a2 a3 a4 a5 a21 a2r; b1 b2 b3 b2r
    assert len(routes) == 11
    assert without | ours == FLOWS
    assert flows(ModuleSet(BUILTIN, set(DEFAULT.loaded) - {"l3"})) == without


def test_golden_flows_and_every_one_encodes() -> None:
    """One router joining blue (a local port) to red (a port on another server): the
    entry is blue's, each route its port's; os-ken parses each back."""
    iface = {
        name: RouterInterface(f"s-{name}", name, cidr, gw, mac)
        for name, cidr, gw, mac in (
            ("blue", "10.0.0.0/24", GW0, "02:00:00:00:aa:00"),
            ("red", "10.0.1.0/24", GW1, "02:00:00:00:aa:01"),
        )
    }
    view = View(
        networks={
            "blue": Network("blue", "vxlan", 1, 5001),
            "red": Network("red", "vxlan", 2, 5002),
        },
        ports={"p": LocalPort("p", "blue", 1, M1, "10.0.0.1")},
        remotes={"r": RemotePort("r", "red", M3, VTEP2, "10.0.1.3")},
        tunnel_ofport=TUNNEL,
        routers={"R": Router("R", 7, tuple(iface.values()))},
    )
    route = (
        "table=l3 priority=100 reg6=0x7,eth_type=0x0800,ipv4_dst={ip} actions="
        "set_field:{mac}->eth_dst,set_field:{gw}->eth_src,dec_ttl(),load:{net}->reg4,"
        "resubmit(,l2_forward)"
    )
    l3, entrance = BUILTIN.pipeline["l3"].id, BUILTIN.pipeline["gateway"].id
    ours = {
        owner: render_all(
            f for f in flows if f.table == l3 or (f.table, f.priority) == (entrance, PRIO_ENTER)
        )
        for owner, flows in DEFAULT.compile_all(view).items()
    }
    assert {o: r for o, r in ours.items() if r and o != ("base",)} == {
        ("network", "blue"): [
            "table=gateway priority=50 reg4=0x1,eth_dst=02:00:00:00:aa:00,eth_type=0x0800 "
            "actions=load:0x7->reg6,goto_table:l3"
        ],
        ("port", "p"): [route.format(ip="10.0.0.1", mac=M1, gw="02:00:00:00:aa:00", net="0x1")],
        ("remote", "r"): [route.format(ip="10.0.1.3", mac=M3, gw="02:00:00:00:aa:01", net="0x2")],
    }
    for version in (OFP13, OFP14):
        codec = codec_for(version)
        for flow in flows(view=view) | FLOWS:
            assert codec.parse(codec.add_flow(flow)).cookie == flow.cookie
