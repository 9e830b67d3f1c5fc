"""The external module's flows, traced through the simulator, on the l3 scenario plus an
external network (VLAN 150 on the physical port) that both tenants' routers join, each
at an address and MAC of its own, with the default route through its gateway, the data
center's router (learned by ARP).

On the forwarding server: ARP for a router's external address answered from the
physical port; what comes in to a router's MAC routed into that router's subnets only
(to a local port, through the tunnel, or back out of the physical port to a VLAN
network's port on another server); what another server sends it over the tunnel routed
out. On the others: the way out goes to the forwarding server through the tunnel,
unrouted, and nothing is answered or routed from the physical side."""

from __future__ import annotations

import dataclasses

from vlcp.pipeline import DEFAULT, Forwarder, Network, RouterInterface, Subnet, View
from vlcp.pipeline.external import TRANSIT_VNI
from vlcp.pipeline.fields import NETWORK
from vlcp.pipeline.gateway import gateway_mac

from . import test_l3_module as routed_world
from .scenario import M1, M3, PHYS_VLAN, TUNNEL, VTEP4
from .sim import trace
from .test_l3_module import A1, A21, B1, MAC_A0, MAC_A1, MAC_B0, flows, udp
from .test_static_routes_module import delivered

EXT = Network("ext", "vlan", 77, 150, "pv")
EXT_SUBNET = Subnet("sx", "ext", "10.200.0.0/24", "10.200.0.1")
DC, DC_MAC, BEYOND = "10.200.0.1", "02:00:00:00:0d:01", "198.51.100.7"
ADDRESS = {"ra": "10.200.0.11", "rb": "10.200.0.12"}
EXT_MAC = {r: gateway_mac(f"sx/{r}") for r in ADDRESS}
FORWARDER = "192.0.2.50"
TAGGED = 0x1000 | 150


def _view(forwarder: Forwarder) -> View:
    routers = {
        r: dataclasses.replace(
            router,
            interfaces=(
                *router.interfaces,
                RouterInterface("sx", "ext", "10.200.0.0/24", ADDRESS[r], EXT_MAC[r], True),
            ),
            routes=(("0.0.0.0/0", DC),),
        )
        for r, router in routed_world.ROUTERS.items()
    }
    return dataclasses.replace(
        routed_world.ROUTED,
        networks={**routed_world.ALL_NETWORKS, "ext": EXT},
        subnets={**routed_world.SUBNETS, "sx": EXT_SUBNET},
        routers=routers,
        neighbours={("ext", DC): DC_MAC},
        forwarders={"ext": forwarder},
        members=None,
        router_ids=None,
        subnet_ids=None,
        vni_users=None,
    )


HERE = _view(Forwarder(FORWARDER, here=True))
ELSEWHERE = _view(Forwarder(FORWARDER))


def arp_request(target: str) -> dict:
    return {
        "eth_src": DC_MAC,
        "eth_dst": "ff:ff:ff:ff:ff:ff",
        "eth_type": 0x0806,
        "vlan_vid": TAGGED,
        "arp_op": 1,
        "arp_spa": DC,
        "arp_sha": DC_MAC,
        "arp_tpa": target,
    }


def inbound(router: str, dst: str) -> dict:
    return {**udp(DC_MAC, EXT_MAC[router], BEYOND, dst), "vlan_vid": TAGGED}


def test_the_forwarding_server_answers_arp_for_each_router_with_its_own_mac() -> None:
    found = flows(view=HERE)
    for router, address in ADDRESS.items():
        (out,) = trace(found, PHYS_VLAN, arp_request(address))
        assert (out.port, out["vlan_vid"], out["arp_op"]) == (PHYS_VLAN, TAGGED, 2)
        assert (out["arp_sha"], out["arp_spa"], out["eth_src"]) == (
            EXT_MAC[router],
            address,
            EXT_MAC[router],
        )
        assert (out["arp_tha"], out["arp_tpa"], out["eth_dst"]) == (DC_MAC, DC, DC_MAC)
    assert trace(flows(view=ELSEWHERE), PHYS_VLAN, arp_request(ADDRESS["ra"])) == []


def test_the_way_in_reaches_only_the_addressed_routers_ports() -> None:
    found = flows(view=HERE)
    (out,) = trace(found, PHYS_VLAN, inbound("ra", "10.0.0.1"))
    assert (out.port, out["eth_src"], out["eth_dst"], out["nw_ttl"]) == (A1, MAC_A0, M1, 63)
    (out,) = trace(found, PHYS_VLAN, inbound("rb", "10.0.0.1"))
    assert (out.port, out["eth_src"], out[NETWORK.reg]) == (
        B1,
        MAC_B0,
        routed_world.ALL_NETWORKS["tenant-b"].number,
    )
    # to A's port on a VLAN network of another server: back out of the port it came in by
    (out,) = trace(found, PHYS_VLAN, inbound("ra", "10.0.1.3"))
    assert (out.port, out["vlan_vid"], out["eth_src"], out["eth_dst"]) == (
        PHYS_VLAN,
        0x1000 | 102,
        MAC_A1,
        M3,
    )
    (out,) = trace(found, PHYS_VLAN, inbound("rb", "10.0.1.3"))  # B's is on VXLAN, at VTEP4
    assert (out.port, out["tun_ipv4_dst"], out["tunnel_id"]) == (TUNNEL, VTEP4, 5003)
    # the same addresses, through the other router's MAC: never the other tenant's port
    # (B has no 10.0.1.4: B's default route sends it back to the data center)
    (out,) = trace(found, PHYS_VLAN, inbound("rb", "10.0.1.4"))
    assert (out.port, out["vlan_vid"], out["eth_dst"]) == (PHYS_VLAN, TAGGED, DC_MAC)
    assert trace(found, PHYS_VLAN, inbound("ra", "10.0.1.4"))[0].port == A21.ofport


def test_elsewhere_nothing_comes_in_from_the_physical_port() -> None:
    assert delivered(trace(flows(view=ELSEWHERE), PHYS_VLAN, inbound("ra", "10.0.0.1"))) == []


def test_the_forwarding_server_goes_out_itself_and_for_the_others() -> None:
    found = flows(view=HERE)
    (out,) = trace(found, A1, udp(M1, MAC_A0, "10.0.0.1", BEYOND))
    assert (out.port, out["vlan_vid"], out["eth_src"], out["eth_dst"]) == (
        PHYS_VLAN,
        TAGGED,
        EXT_MAC["ra"],
        DC_MAC,
    )
    transit = {**udp(M1, EXT_MAC["ra"], "10.0.0.5", BEYOND), "tunnel_id": TRANSIT_VNI}
    (out,) = trace(found, TUNNEL, {**transit, "tun_ipv4_src": VTEP4})  # a5's server
    assert (out.port, out["vlan_vid"], out["eth_dst"], out["nw_ttl"]) == (
        PHYS_VLAN,
        TAGGED,
        DC_MAC,
        63,
    )
    # from a server that routes for no router of this one: dropped
    assert trace(found, TUNNEL, {**transit, "tun_ipv4_src": "192.0.2.99"}) == []


def test_the_others_send_the_way_out_to_the_forwarding_server_unrouted() -> None:
    found = flows(view=ELSEWHERE)
    (out,) = trace(found, A1, udp(M1, MAC_A0, "10.0.0.1", BEYOND))
    assert (out.port, out["tun_ipv4_dst"], out["tunnel_id"]) == (TUNNEL, FORWARDER, TRANSIT_VNI)
    assert (out["eth_dst"], out["nw_ttl"]) == (EXT_MAC["ra"], 64)  # the forwarding server routes
    (out,) = trace(found, B1, udp(M1, MAC_B0, "10.0.0.1", BEYOND))
    assert out["eth_dst"] == EXT_MAC["rb"]
    # and they let the forwarding server into their networks (it routes the way in)
    back = {**udp(MAC_A0, M1, BEYOND, "10.0.0.1"), "tunnel_id": 5001, "tun_ipv4_src": FORWARDER}
    assert [o.port for o in trace(found, TUNNEL, back)] == [A1]
    assert trace(flows(view=HERE), TUNNEL, back) == []


def test_flows_per_router_owned_by_the_external_network() -> None:
    def ours(view: View) -> frozenset:
        without = DEFAULT.unload("external").compile_owner(view, ("network", "ext"))
        return DEFAULT.compile_owner(view, ("network", "ext")) - without

    # per router: the ARP answer, the way in, one transit entrance per server routing for it
    assert len(ours(HERE)) == 2 * 2 + 2 + 2  # ra: VTEP2, VTEP4; rb: VTEP3, VTEP4
    assert len(ours(ELSEWHERE)) == 2  # one per route out per router
    assert ours(dataclasses.replace(HERE, forwarders={})) == frozenset()


def test_unloading_removes_exactly_its_flows_and_the_others_do_not_go_out_themselves() -> None:
    assert flows(view=ELSEWHERE) - flows(DEFAULT.unload("external"), ELSEWHERE) != frozenset()
    without = flows(DEFAULT.unload("external"), ELSEWHERE)
    assert delivered(trace(without, A1, udp(M1, MAC_A0, "10.0.0.1", BEYOND))) == []
