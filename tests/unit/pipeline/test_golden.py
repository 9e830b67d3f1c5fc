"""Golden flows, written with table names, and every flow checked against the codec."""

from __future__ import annotations

import pytest

from vlcp.pipeline import (
    AddressPair,
    LocalPort,
    Network,
    RemotePort,
    Subnet,
    View,
    compile_all,
    render_all,
)
from vlcp.southbound.openflow.codec import codec_for
from vlcp.southbound.openflow.wire import OFP13, OFP14

from .scenario import FLOWS
from .scenario import VIEW as SCENARIO

M1, M2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
VRRP = "00:00:5e:00:01:01"
VIEW = View(
    networks={
        "blue": Network("blue", "vxlan", 1, 5001),
        "red": Network("red", "vlan", 2, 100, "phys"),
        "green": Network("green", "native", 3, None, "flat"),
    },
    ports={
        "p1": LocalPort("p1", "blue", 1, M1, "10.0.0.1", subnet="s1"),
        "p2": LocalPort("p2", "red", 2, M1),
        "p3": LocalPort(
            "p3",
            "green",
            3,
            M1,
            "fd00::3",
            (AddressPair("10.0.8.0/24", VRRP), AddressPair("fd00:1::/64", M1)),
        ),
    },
    remotes={
        "r1": RemotePort("r1", "blue", M2, "192.0.2.2", "10.0.0.2"),
        "r2": RemotePort("r2", "red", M2, "192.0.2.2"),
    },
    physical_ports={"phys": 200, "flat": 201},
    tunnel_ofport=100,
    subnets={"s1": Subnet("s1", "blue", "10.0.0.0/24", "10.0.0.254")},
)

REPLY_P1 = (
    "move:eth_src->eth_dst,set_field:02:00:00:00:00:01->eth_src,set_field:2->arp_op,"
    "move:arp_sha->arp_tha,move:arp_spa->arp_tpa,set_field:02:00:00:00:00:01->arp_sha,"
    "set_field:10.0.0.1->arp_spa,output:IN_PORT"
)
REPLY_R1 = REPLY_P1.replace(":01->", ":02->").replace("10.0.0.1", "10.0.0.2")
ARP_REQ = "arp_op=1,arp_tpa={},eth_type=0x0806"
GW, GW_MAC = "10.0.0.254", "aa:c5:21:a9:a8:31"
"""s1's gateway, and its MAC (from the subnet id: the same on every server)."""
REPLY_GW = REPLY_P1.replace("02:00:00:00:00:01", GW_MAC).replace("10.0.0.1", GW)
GOLDEN = {
    ("base",): [
        "table=ingress priority=1100 eth_src=01:00:00:00:00:00/01:00:00:00:00:00 actions=drop",
        "table=ingress priority=1000 eth_dst=01:80:c2:00:00:00/ff:ff:ff:ff:ff:f0 actions=drop",
        "table=ingress priority=0 actions=drop",
        "table=port_security priority=30 eth_type=0x0800,ip_proto=17,ipv4_dst=255.255.255.255,"
        "ipv4_src=0.0.0.0,udp_dst=67,udp_src=68 actions=goto_table:arp_responder",
        "table=port_security priority=30 eth_type=0x86dd,ip_proto=58,ipv6_src=:: "
        "actions=goto_table:nd_guard",
        "table=port_security priority=30 eth_type=0x86dd,ipv6_src=fe80::/ffc0:: "
        "actions=goto_table:nd_guard",
        "table=port_security priority=10 eth_type=0x0800 actions=drop",
        "table=port_security priority=10 eth_type=0x0806 actions=drop",
        "table=port_security priority=10 eth_type=0x86dd actions=drop",
        "table=port_security priority=0 actions=goto_table:arp_responder",
        "table=nd_guard priority=30 eth_type=0x86dd,icmpv6_type=136,ip_proto=58,"
        "ipv6_nd_target=fe80::/ffc0:: actions=goto_table:arp_responder",
        "table=nd_guard priority=10 eth_type=0x86dd,icmpv6_type=136,ip_proto=58 actions=drop",
        "table=nd_guard priority=0 actions=goto_table:arp_responder",
        "table=arp_responder priority=0 actions=goto_table:l2_forward",
        "table=l2_forward priority=0 actions=drop",
        "table=dhcp priority=0 actions=drop",
        "table=gateway priority=0 actions=drop",
        "table=l3 priority=110 eth_type=0x0800,nw_ttl=0 actions=goto_table:icmp_errors",
        "table=l3 priority=110 eth_type=0x0800,nw_ttl=1 actions=goto_table:icmp_errors",
        "table=l3 priority=1 eth_type=0x0800 actions=goto_table:icmp_errors",
        "table=l3 priority=0 actions=drop",
        "table=icmp_errors priority=0 actions=drop",
        "table=neighbours priority=0 actions=drop",
    ],
    ("network", "blue"): [
        "table=ingress priority=100 in_port=100,tun_ipv4_src=192.0.2.2,tunnel_id=5001 "
        "actions=load:0x1->reg4,load:0x2->reg5[0..1],goto_table:arp_responder",
        f"table=arp_responder priority=90 reg4=0x1,reg5=0x1/0x3,{ARP_REQ.format(GW)} "
        "actions=goto_table:gateway",
        f"table=arp_responder priority=90 reg4=0x1,reg5=0x1/0x3,eth_dst={GW_MAC} "
        "actions=goto_table:gateway",
        "table=l2_forward priority=10 reg4=0x1,reg5=0x1/0x3 actions=output:1,"
        "set_field:5001->tunnel_id,set_field:192.0.2.2->tun_ipv4_dst,output:100",
        "table=l2_forward priority=5 reg4=0x1 actions=output:1",
        f"table=gateway priority=100 reg4=0x1,{ARP_REQ.format(GW)} actions={REPLY_GW}",
        f"table=gateway priority=100 reg4=0x1,eth_dst={GW_MAC},eth_type=0x0800,icmpv4_code=0,"
        f"icmpv4_type=8,ip_proto=1,ipv4_dst={GW} actions=move:eth_src->eth_dst,"
        f"set_field:{GW_MAC}->eth_src,move:ipv4_src->ipv4_dst,set_field:{GW}->ipv4_src,"
        "set_field:64->nw_ttl,set_field:0->icmpv4_type,output:IN_PORT",
    ],
    ("network", "red"): [
        "table=ingress priority=100 in_port=200,vlan_vid=0x1064 "
        "actions=pop_vlan,load:0x2->reg4,load:0x3->reg5[0..1],goto_table:arp_responder",
        "table=l2_forward priority=10 reg4=0x2,reg5=0x1/0x3 "
        "actions=output:2,push_vlan:0x8100,set_field:0x1064->vlan_vid,output:200",
        "table=l2_forward priority=5 reg4=0x2 actions=output:2",
    ],
    ("network", "green"): [
        "table=ingress priority=100 in_port=201,vlan_vid=0x0000 "
        "actions=load:0x3->reg4,load:0x3->reg5[0..1],goto_table:arp_responder",
        "table=l2_forward priority=10 reg4=0x3,reg5=0x1/0x3 actions=output:3,output:201",
        "table=l2_forward priority=5 reg4=0x3 actions=output:3",
    ],
    ("port", "p1"): [
        "table=ingress priority=100 in_port=1,eth_src=02:00:00:00:00:01,vlan_vid=0x0000 "
        "actions=load:0x1->reg4,load:0x1->reg5[0..1],goto_table:port_security",
        "table=port_security priority=50 in_port=1,eth_type=0x0800,ip_proto=17,ipv4_src=0.0.0.0,"
        "udp_dst=67,udp_src=68 actions=goto_table:dhcp",
        "table=port_security priority=50 in_port=1,eth_type=0x0800,ip_proto=17,ipv4_src=10.0.0.1,"
        "udp_dst=67,udp_src=68 actions=goto_table:dhcp",
        "table=port_security priority=50 in_port=1,eth_type=0x0800,ip_proto=17,udp_dst=68,"
        "udp_src=67 actions=drop",
        "table=port_security priority=30 in_port=1,arp_sha=02:00:00:00:00:01,arp_spa=0.0.0.0,"
        "eth_type=0x0806 actions=goto_table:arp_responder",
        "table=port_security priority=30 in_port=1,arp_sha=02:00:00:00:00:01,arp_spa=10.0.0.1,"
        "eth_type=0x0806 actions=goto_table:arp_responder",
        "table=port_security priority=30 in_port=1,eth_src=02:00:00:00:00:01,eth_type=0x0800,"
        "ipv4_src=10.0.0.1 actions=goto_table:arp_responder",
        f"table=arp_responder priority=200 in_port=1,{ARP_REQ.format('10.0.0.1')} "
        "actions=goto_table:l2_forward",
        f"table=arp_responder priority=100 reg4=0x1,reg5=0x1/0x3,{ARP_REQ.format('10.0.0.1')} "
        f"actions={REPLY_P1}",
        "table=l2_forward priority=100 reg4=0x1,eth_dst=02:00:00:00:00:01 actions=output:1",
        "table=dhcp priority=100 in_port=1,eth_type=0x0800,ip_proto=17,udp_dst=67,udp_src=68 "
        "actions=controller(max_len=65535,meter_id=1,reason=0)",
    ],
    ("port", "p2"): [
        "table=ingress priority=100 in_port=2,eth_src=02:00:00:00:00:01,vlan_vid=0x0000 "
        "actions=load:0x2->reg4,load:0x1->reg5[0..1],goto_table:port_security",
        "table=port_security priority=40 in_port=2 actions=goto_table:arp_responder",
        "table=l2_forward priority=100 reg4=0x2,eth_dst=02:00:00:00:00:01 actions=output:2",
    ],
    ("port", "p3"): [
        "table=ingress priority=100 in_port=3,eth_src=00:00:5e:00:01:01,vlan_vid=0x0000 "
        "actions=load:0x3->reg4,load:0x1->reg5[0..1],goto_table:port_security",
        "table=ingress priority=100 in_port=3,eth_src=02:00:00:00:00:01,vlan_vid=0x0000 "
        "actions=load:0x3->reg4,load:0x1->reg5[0..1],goto_table:port_security",
        "table=port_security priority=30 in_port=3,arp_sha=00:00:5e:00:01:01,arp_spa=0.0.0.0,"
        "eth_type=0x0806 actions=goto_table:arp_responder",
        "table=port_security priority=30 in_port=3,arp_sha=00:00:5e:00:01:01,"
        "arp_spa=10.0.8.0/255.255.255.0,eth_type=0x0806 actions=goto_table:arp_responder",
        "table=port_security priority=30 in_port=3,eth_src=00:00:5e:00:01:01,eth_type=0x0800,"
        "ipv4_src=10.0.8.0/255.255.255.0 actions=goto_table:arp_responder",
        "table=port_security priority=30 in_port=3,eth_src=02:00:00:00:00:01,eth_type=0x86dd,"
        "ipv6_src=fd00:1::/ffff:ffff:ffff:ffff:: actions=goto_table:nd_guard",
        "table=port_security priority=30 in_port=3,eth_src=02:00:00:00:00:01,eth_type=0x86dd,"
        "ipv6_src=fd00::3 actions=goto_table:nd_guard",
        "table=nd_guard priority=30 in_port=3,eth_type=0x86dd,icmpv6_type=136,ip_proto=58,"
        "ipv6_nd_target=fd00:1::/ffff:ffff:ffff:ffff:: actions=goto_table:arp_responder",
        "table=nd_guard priority=30 in_port=3,eth_type=0x86dd,icmpv6_type=136,ip_proto=58,"
        "ipv6_nd_target=fd00::3 actions=goto_table:arp_responder",
        "table=l2_forward priority=100 reg4=0x3,eth_dst=02:00:00:00:00:01 actions=output:3",
    ],
    ("remote", "r1"): [
        f"table=arp_responder priority=100 reg4=0x1,reg5=0x1/0x3,{ARP_REQ.format('10.0.0.2')} "
        f"actions={REPLY_R1}",
        "table=l2_forward priority=100 reg4=0x1,eth_dst=02:00:00:00:00:02 "
        "actions=set_field:192.0.2.2->tun_ipv4_dst,set_field:5001->tunnel_id,output:100",
    ],
    ("remote", "r2"): [
        "table=l2_forward priority=100 reg4=0x2,eth_dst=02:00:00:00:00:02 "
        "actions=push_vlan:0x8100,set_field:0x1064->vlan_vid,output:200",
    ],
}


def test_golden_flows_by_owner() -> None:
    compiled = compile_all(VIEW)
    assert {owner: render_all(flows) for owner, flows in compiled.items()} == GOLDEN


@pytest.mark.parametrize("version", [OFP13, OFP14], ids=["of13", "of14"])
def test_every_flow_encodes_and_parses_back(version: int) -> None:
    """os-ken accepts every match field, value and action the pipeline produces."""
    codec = codec_for(version)
    for flow in FLOWS | frozenset().union(*compile_all(VIEW).values()):
        msg = codec.parse(codec.add_flow(flow))
        assert (msg.table_id, msg.priority, msg.cookie) == (flow.table, flow.priority, flow.cookie)


@pytest.mark.parametrize("view", [VIEW, SCENARIO], ids=["golden", "scenario"])
def test_no_two_flows_share_table_priority_and_match(view: View) -> None:
    """Equal (table, priority, match) would replace each other on the switch."""
    compiled = compile_all(view)
    seen: dict[tuple[object, ...], object] = {}
    for owner, flows in compiled.items():
        for flow in flows:
            key = (flow.table, flow.priority, flow.match)
            assert key not in seen, (owner, seen.get(key), flow)
            seen[key] = owner
