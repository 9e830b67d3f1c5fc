"""The dhcp module's flows, traced through the simulator: a port's requests reach the
controller and nowhere else, other servers' replies from VIFs are dropped, what it does
not answer goes on as before, and unloading it removes exactly its flows."""

from __future__ import annotations

import dataclasses

from scapy.layers.l2 import Ether

from vlcp.pipeline import BUILTIN, DEFAULT, ModuleSet, Received, Subnet, View, dhcp
from vlcp.pipeline.dhcp.settings import Settings
from vlcp.pipeline.fields import NETWORK
from vlcp.pipeline.module import Context
from vlcp.southbound.openflow.flow import Flow

from .scenario import BROADCAST, M1, M2, M3, NUMBERS, PORT, TUNNEL, VIEW, VTEP2, ipv4
from .sim import CONTROLLER, trace
from .test_dhcp_responder import frame

SUBNETS = {
    "sa": Subnet("sa", "tenant-a", "10.0.0.0/24", "10.0.0.254"),
    "sb": Subnet("sb", "tenant-b", "10.0.0.0/24", "10.0.0.254"),
}
WITH_SUBNETS = View(
    networks=VIEW.networks,
    ports={
        **VIEW.ports,
        "a1": dataclasses.replace(PORT["a1"], subnet="sa"),
        "b1": dataclasses.replace(PORT["b1"], subnet="sb"),
    },
    remotes=VIEW.remotes,
    physical_ports=VIEW.physical_ports,
    tunnel_ofport=VIEW.tunnel_ofport,
    subnets=SUBNETS,
)
"""a1 and b1 (same MAC and address, two tenants) have an address in a subnet; a2 has an
address in no subnet."""
DISCOVER = ipv4(M1, BROADCAST, "0.0.0.0", "255.255.255.255", udp_src=68, udp_dst=67)
RENEW = ipv4(M1, "02:00:00:00:00:fe", "10.0.0.1", "10.0.0.254", udp_src=68, udp_dst=67)
SERVER_REPLY = ipv4(M2, BROADCAST, "10.0.0.2", "255.255.255.255", udp_src=67, udp_dst=68)


def flows(modules: ModuleSet = DEFAULT) -> frozenset[Flow]:
    return frozenset().union(*modules.compile_all(WITH_SUBNETS).values())


def test_its_table_comes_after_every_other_so_no_id_moves() -> None:
    pipeline = BUILTIN.pipeline
    assert [t.name for t in pipeline][:5] == [
        "ingress",
        "port_security",
        "nd_guard",
        "arp_responder",
        "l2_forward",
    ]
    assert pipeline["dhcp"].id == 5


def test_a_ports_requests_reach_the_controller_and_nowhere_else() -> None:
    for packet in (DISCOVER, RENEW):
        (out,) = trace(flows(), PORT["a1"].ofport, packet)
        assert out.port == CONTROLLER
        assert out["meter"] == PORT["a1"].ofport  # through the port's own meter
        assert NETWORK.extract(out[NETWORK.reg]) == NUMBERS["tenant-a"]
    (out,) = trace(flows(), PORT["b1"].ofport, DISCOVER)  # the other tenant's: its network
    assert NETWORK.extract(out[NETWORK.reg]) == NUMBERS["tenant-b"]


def test_a_spoofed_request_does_not_reach_it() -> None:
    spoofed = {**RENEW, "ipv4_src": "10.0.0.7"}
    assert trace(flows(), PORT["a1"].ofport, spoofed) == []  # anti-spoofing drops it


def test_what_it_does_not_answer_goes_on_as_before() -> None:
    before = flows(DEFAULT.unload("dhcp"))
    no_subnet = {**DISCOVER, "eth_src": M2}
    a2 = PORT["a2"].ofport  # an address, but in no subnet
    assert trace(flows(), a2, no_subnet) == trace(before, a2, no_subnet)
    assert {o.port for o in trace(flows(), a2, no_subnet)} >= {PORT["a1"].ofport, TUNNEL}
    from_tunnel = {**DISCOVER, "eth_src": M3, "tunnel_id": 5001, "tun_ipv4_src": VTEP2}
    outputs = trace(flows(), TUNNEL, from_tunnel)
    assert CONTROLLER not in {o.port for o in outputs}
    assert outputs == trace(before, TUNNEL, from_tunnel)


def test_dhcp_server_replies_from_vifs_are_dropped_in_networks_it_serves() -> None:
    assert trace(flows(), PORT["a2"].ofport, SERVER_REPLY) == []  # tenant-a has a subnet
    unloaded = DEFAULT.unload("dhcp")
    assert trace(flows(unloaded), PORT["a2"].ofport, SERVER_REPLY)  # forwarded before
    elsewhere = {**SERVER_REPLY, "eth_src": M1, "ipv4_src": "10.0.0.1"}
    own_server = trace(flows(), PORT["va1"].ofport, elsewhere)  # vlan-a: no subnet
    assert own_server and own_server == trace(flows(unloaded), PORT["va1"].ofport, elsewhere)


def test_unloading_it_removes_exactly_its_flows_and_dhcp_is_forwarded_as_before() -> None:
    on, off = flows(), flows(DEFAULT.unload("dhcp"))
    gone = on - off
    assert off < on
    dhcp_id, security_id = BUILTIN.pipeline["dhcp"].id, BUILTIN.pipeline["port_security"].id
    assert {f.table for f in gone} == {dhcp_id, security_id}
    guarded = {"a1", "a2", "b1", "b2"}  # the ports of the two networks with a subnet
    assert len([f for f in gone if f.table == security_id]) == len(guarded) + 2 * 2  # a1, b1
    outputs = trace(off, PORT["a1"].ofport, DISCOVER)
    assert CONTROLLER not in {o.port for o in outputs}
    assert PORT["a2"].ofport in {o.port for o in outputs}  # flooded in its network


def test_the_handler_answers_out_of_the_port_and_counts() -> None:
    ctx = Context(BUILTIN.pipeline, Settings())
    before = dhcp.OUTCOMES["offer"]  # through the module: other tests reload it
    data = frame("discover", mac=M1)
    (out,) = dhcp.answer(ctx, WITH_SUBNETS, Received(PORT["a1"].ofport, NUMBERS["tenant-a"], data))
    assert out.port == PORT["a1"].ofport and Ether(out.data).dst == M1
    assert dhcp.OUTCOMES["offer"] == before + 1
    assert dhcp.answer(ctx, WITH_SUBNETS, Received(PORT["a2"].ofport, None, data)) == ()
    assert dhcp.MODULE.packet_ins[0].table == "dhcp"
