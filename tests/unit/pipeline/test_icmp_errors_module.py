"""The icmp_errors module's flows, traced through the simulator (the routed scenario of
test_l3_module.py): what the router cannot forward reaches the controller through the
sender's meter, and only that; routed packets, and the gateway's own answers, are as
they were; unloading it gives back l3's drops, exactly."""

from __future__ import annotations

from vlcp.pipeline import (
    BUILTIN,
    DEFAULT,
    LocalPort,
    ModuleSet,
    Network,
    Router,
    RouterInterface,
    View,
    render_all,
)
from vlcp.pipeline.fields import NETWORK
from vlcp.pipeline.icmp_errors import ICMP_ERRORS, PRIO_NO_ROUTE, PRIO_TTL
from vlcp.southbound.openflow.codec import codec_for
from vlcp.southbound.openflow.wire import OFP13, OFP14

from .scenario import M1, M3
from .sim import CONTROLLER, trace
from .test_gateway_module import ping
from .test_l3_module import (
    A1,
    A21,
    ALL_NETWORKS,
    B1,
    FLOWS,
    GW0,
    MAC_A0,
    MAC_A1,
    MAC_B0,
    ROUTED,
    flows,
    routed,
    udp,
)

WITHOUT = flows(DEFAULT.unload("icmp_errors"))
OURS = FLOWS - WITHOUT


def test_its_table_comes_after_l3_so_no_id_moves() -> None:
    ids = {t.name: t.id for t in BUILTIN.pipeline}
    assert (ids["l3"], ids["icmp_errors"]) == (7, 8)


def test_an_expiring_routed_packet_goes_to_the_controller_through_its_ports_meter() -> None:
    for ttl in (0, 1):
        (out,) = trace(FLOWS, A1, udp(M1, MAC_A0, "10.0.0.1", "10.0.1.4", ttl=ttl))
        assert (out.port, out["meter"], out["nw_ttl"]) == (CONTROLLER, A1, ttl)
        # as the port sent it, with its own network: what the handler answers from
        assert (out["eth_dst"], out[NETWORK.reg]) == (MAC_A0, ALL_NETWORKS["tenant-a"].number)


def test_a_destination_no_route_matches_goes_to_the_controller() -> None:
    for nowhere in ("10.0.2.1", "192.0.2.1", "10.0.1.99"):
        (out,) = trace(FLOWS, A1, udp(M1, MAC_A0, "10.0.0.1", nowhere))
        assert (out.port, out["meter"], out["ipv4_dst"]) == (CONTROLLER, A1, nowhere)


def test_routed_packets_and_the_gateways_answers_are_unchanged() -> None:
    (out,) = trace(FLOWS, A1, udp(M1, MAC_A0, "10.0.0.1", "10.0.1.4", ttl=2))
    assert out.port == A21.ofport
    routed(out, MAC_A1, "02:00:00:00:00:04", ttl=1)
    assert trace(FLOWS, A1, ping(M1, MAC_A0, "10.0.0.1", GW0)) == trace(
        WITHOUT, A1, ping(M1, MAC_A0, "10.0.0.1", GW0)
    )


def test_only_what_enters_routing_reaches_it() -> None:
    """TTL 1 within the subnet is bridged (no router), and a frame to the other tenant's
    gateway MAC never enters routing: no packet-in for either."""
    within = udp(M1, M3, "10.0.0.1", "10.0.0.3", ttl=1)
    assert trace(FLOWS, A1, within) == trace(WITHOUT, A1, within)
    foreign = udp(M1, MAC_B0, "10.0.0.1", "10.0.2.1", ttl=1)
    assert CONTROLLER not in {o.port for o in trace(FLOWS, A1, foreign)}
    (out,) = trace(FLOWS, B1, udp(M1, MAC_B0, "10.0.0.1", "10.0.2.1", ttl=1))
    assert (out.port, out["meter"]) == (CONTROLLER, B1)


def test_flows_per_server_and_per_routed_port_and_unloading() -> None:
    """3 in l3 whatever the view; 1 per local port of a network with a router interface
    (a1, a2, b1, b2, a21; not the ports of unrouted networks); unloading removes exactly
    these."""
    table = BUILTIN.pipeline[ICMP_ERRORS.name].id
    in_l3 = {f for f in OURS if f.table != table}
    assert {f.priority for f in in_l3} == {PRIO_TTL, PRIO_NO_ROUTE} and len(in_l3) == 3
    metered = {f for f in OURS if f.table == table}
    routed_ports = [p for p in ROUTED.ports.values() if ROUTED.router_ids.get(p.network)]
    assert {dict(f.match)["in_port"] for f in metered} == {p.ofport for p in routed_ports}
    assert len(metered) == 5
    assert WITHOUT | OURS == FLOWS
    assert flows(ModuleSet(BUILTIN, set(DEFAULT.loaded) - {"icmp_errors"})) == WITHOUT


def test_golden_flows_and_every_one_encodes() -> None:
    """A routed network with one local port: its metered flow is the network's; the
    entrances from l3 are base flows; os-ken parses each back (nw_ttl is a Nicira
    field)."""
    interface = RouterInterface("s-blue", "blue", "10.0.0.0/24", GW0, "02:00:00:00:aa:00")
    view = View(
        networks={"blue": Network("blue", "vxlan", 1, 5001)},
        ports={"p": LocalPort("p", "blue", 5, M1, "10.0.0.1")},
        routers={"R": Router("R", 7, (interface,))},
    )
    table = BUILTIN.pipeline[ICMP_ERRORS.name].id
    compiled = DEFAULT.compile_all(view)
    assert render_all(f for f in compiled[("network", "blue")] if f.table == table) == [
        "table=icmp_errors priority=100 in_port=5 actions=controller(max_len=65535,"
        "meter_id=5,reason=0)"
    ]
    assert render_all(f for f in compiled[("base",)] if f in OURS) == [
        "table=l3 priority=110 eth_type=0x0800,nw_ttl=0 actions=goto_table:icmp_errors",
        "table=l3 priority=110 eth_type=0x0800,nw_ttl=1 actions=goto_table:icmp_errors",
        "table=l3 priority=1 eth_type=0x0800 actions=goto_table:icmp_errors",
    ]
    for version in (OFP13, OFP14):
        codec = codec_for(version)
        for flow in OURS | compiled[("network", "blue")]:
            assert codec.parse(codec.add_flow(flow)).cookie == flow.cookie
