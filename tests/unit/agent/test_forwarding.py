"""The election of forwarding servers, and what a newly elected one announces."""

from __future__ import annotations

import dataclasses

from scapy.layers.l2 import ARP, Dot1Q, Ether

from vlcp.agent.forwarding import elect, forwards_on, gratuitous_arps
from vlcp.pipeline.view import Forwarder, Network, Router, RouterInterface, View

LIVE = {
    "hv2": {"vtep": "192.0.2.2", "forwards": ["vl"]},
    "hv1": {"vtep": "192.0.2.1", "forwards": ["vl", "other"]},
    "hv0": {"vtep": "192.0.2.9", "forwards": []},  # no link, or not eligible
    "a-no-tunnel": {"vtep": None, "forwards": ["vl"]},  # nobody could reach it
    "a-bad": {"vtep": "192.0.2.8", "forwards": "vl"},
}


def test_the_lowest_id_of_the_live_servers_that_may_forward_on_the_physnet_wins() -> None:
    assert elect(LIVE, "vl") == ("hv1", "192.0.2.1")
    assert elect(LIVE, "other") == ("hv1", "192.0.2.1")
    assert elect({k: v for k, v in LIVE.items() if k != "hv1"}, "vl") == ("hv2", "192.0.2.2")
    assert elect(LIVE, "nowhere") is None
    assert elect({}, "vl") is None


def test_every_order_of_the_same_servers_elects_the_same_one() -> None:
    assert elect(dict(reversed(LIVE.items())), "vl") == elect(LIVE, "vl")


def test_a_presence_without_a_tunnel_endpoint_or_a_list_forwards_nothing() -> None:
    assert forwards_on(LIVE["a-no-tunnel"]) == forwards_on(LIVE["a-bad"]) == frozenset()
    assert forwards_on(None) == forwards_on("junk") == frozenset()
    assert forwards_on({"vtep": "192.0.2.1", "forwards": ["vl", 3]}) == {"vl"}


EXT = Network("ext", "vlan", 1, 150, "pv")
TENANT = Network("t", "vxlan", 2, 5001)


def _router(router_id: str, number: int, ip: str, mac: str) -> Router:
    inside = RouterInterface(f"s-{router_id}", "t", "10.0.0.0/24", "10.0.0.254", mac)
    outside = RouterInterface("sx", "ext", "10.200.0.0/24", ip, mac, external=True)
    return Router(router_id, number, (inside, outside))


VIEW = View(
    networks={"ext": EXT, "t": TENANT},
    physical_ports={"pv": 20},
    routers={
        "ra": _router("ra", 1, "10.200.0.11", "02:00:00:00:aa:01"),
        "rb": _router("rb", 2, "10.200.0.12", "02:00:00:00:bb:01"),
    },
    forwarders={"ext": Forwarder("192.0.2.1", here=True)},
)


def test_a_new_forwarding_server_announces_every_router_address_out_of_the_physical_port() -> None:
    packets = gratuitous_arps(VIEW, {"ext"})
    assert {p.port for p in packets} == {20}
    frames = [Ether(p.data) for p in packets]
    assert [(f[Ether].dst, f[Dot1Q].vlan, f[ARP].op) for f in frames] == [
        ("ff:ff:ff:ff:ff:ff", 150, 1)
    ] * 2
    announced = {(f[ARP].hwsrc, f[ARP].psrc, f[ARP].pdst, f[Ether].src) for f in frames}
    assert announced == {
        ("02:00:00:00:aa:01", "10.200.0.11", "10.200.0.11", "02:00:00:00:aa:01"),
        ("02:00:00:00:bb:01", "10.200.0.12", "10.200.0.12", "02:00:00:00:bb:01"),
    }
    assert all(len(p.data) >= 60 for p in packets)
    without_link = dataclasses.replace(VIEW, physical_ports={})
    assert gratuitous_arps(without_link, {"ext"}) == []
    assert gratuitous_arps(VIEW, {"t"}) == []  # a tenant network has no external interface
