"""Anti-spoofing traced through the flows: a VIF sends only from its port's addresses.

Tenant A of the scenario: a1 (M1, 10.0.0.1, ofport 1) and a2 (M2, 10.0.0.2, ofport 2)
on this server, remote ports behind VTEP2 and VTEP4. A frame that gets through is
delivered to a2 (unicast) or flooded; a dropped one leaves no copy at all.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from vlcp.pipeline import AddressPair, LocalPort, PutPort, apply_all
from vlcp.pipeline.port_security import ND_NEIGHBOR_ADVERT

from .scenario import BROADCAST, M1, M2, M3, PORT, TUNNEL, VIEW, all_flows, arp_request, frame, ipv4
from .sim import trace

VRRP = "00:00:5e:00:01:01"
A1 = PORT["a1"]


def send(packet: dict[str, Any], *ports: LocalPort, sender: LocalPort = A1) -> list[int]:
    """The out ports of `packet` sent by `sender`, after putting `ports` into the view."""
    view, _ = apply_all(VIEW, [PutPort(p) for p in ports])
    return sorted(o.port for o in trace(all_flows(view), sender.ofport, packet))


def with_pairs(port: LocalPort, *pairs: tuple[str, str]) -> LocalPort:
    return dataclasses.replace(port, allowed=tuple(AddressPair(ip, mac) for ip, mac in pairs))


def ipv6(src: str, ip_src: str, dst: str = M2, **fields: Any) -> dict[str, Any]:
    return frame(src, dst, eth_type=0x86DD, ip_proto=17, ipv6_src=ip_src, **fields)


def advert(src: str, ip_src: str, target: str) -> dict[str, Any]:
    na = {"ip_proto": 58, "icmpv6_type": ND_NEIGHBOR_ADVERT, "ipv6_nd_target": target}
    return {**ipv6(src, ip_src, BROADCAST), **na}


FLOODED = [2, TUNNEL, TUNNEL]
"""a1's broadcast: to a2, and once to each peer VTEP."""


def test_ipv4_only_from_the_ports_own_address() -> None:
    assert send(ipv4(M1, M2, "10.0.0.1")) == [2]
    assert send(ipv4(M1, M2, "10.0.0.2")) == []  # a2's address
    assert send(ipv4(M1, M2, "10.0.0.77")) == []  # nobody's
    assert send(ipv4(M1, BROADCAST, "10.0.0.77")) == []
    assert send(ipv4(M2, M2, "10.0.0.2")) == []  # a2's address and MAC, from a1's VIF


@pytest.mark.parametrize(("sha", "spa"), [(M2, "10.0.0.2"), (M1, "10.0.0.2"), (M2, "10.0.0.1")])
def test_arp_only_with_the_ports_own_sender(sha: str, spa: str) -> None:
    """A gratuitous ARP or a reply claiming another address (or MAC) never leaves."""
    garp = arp_request(M1, spa, spa, arp_sha=sha)
    assert send(garp) == []
    reply = {**garp, "arp_op": 2, "eth_dst": M2}
    assert send(reply) == []
    honest = arp_request(M1, "10.0.0.1", "10.0.0.1")
    assert send(honest) == FLOODED


def test_arp_probes_and_dhcp_may_come_from_nowhere() -> None:
    assert send(arp_request(M1, "0.0.0.0", "10.0.0.77")) == FLOODED  # RFC 5227 probe
    assert send(arp_request(M1, "0.0.0.0", "10.0.0.77", arp_sha=M3)) == []
    dhcp = ipv4(M1, BROADCAST, "0.0.0.0", "255.255.255.255", udp_src=68, udp_dst=67)
    assert send(dhcp) == FLOODED
    assert send({**dhcp, "udp_dst": 53}) == []
    assert send({**dhcp, "ipv4_dst": "10.0.0.2", "eth_dst": M2}) == []
    assert send({**dhcp, "ip_proto": 6}) == []


def test_an_allowed_pair_adds_a_source_in_frames_from_its_mac() -> None:
    a1 = with_pairs(A1, ("10.0.0.77", M1), ("10.0.8.0/24", VRRP))
    assert send(ipv4(M1, M2, "10.0.0.77"), a1) == [2]
    assert send(ipv4(VRRP, M2, "10.0.8.9"), a1) == [2]
    assert send(arp_request(VRRP, "10.0.8.9", "10.0.8.9"), a1) == FLOODED
    assert send(arp_request(VRRP, "0.0.0.0", "10.0.8.9"), a1) == FLOODED
    assert send(ipv4(M1, M2, "10.0.0.1"), a1) == [2]  # its own address still
    assert send(ipv4(M1, M2, "10.0.8.9"), a1) == []  # the pair's address, another MAC
    assert send(ipv4(VRRP, M2, "10.0.0.1"), a1) == []  # the pair's MAC, another address
    assert send(ipv4(VRRP, M2, "10.0.9.1"), a1) == []
    assert send(frame(VRRP, BROADCAST), a1) == FLOODED  # the pair's MAC passes ingress
    assert send(ipv4(M1, M2, "10.0.0.77")) == []  # without the pair: dropped


def test_a_pair_on_one_port_allows_nothing_on_another() -> None:
    a1 = with_pairs(A1, ("10.0.8.0/24", VRRP))
    assert send(ipv4(VRRP, M1, "10.0.8.9"), a1, sender=PORT["a2"]) == []
    assert send(ipv4(M2, M1, "10.0.8.9"), a1, sender=PORT["a2"]) == []


def test_a_port_without_an_address_may_send_from_any() -> None:
    bare = dataclasses.replace(A1, ip=None)
    assert send(ipv4(M1, M2, "10.0.0.2"), bare) == [2]
    garp = {**arp_request(M1, "10.0.0.2", "10.0.0.2", arp_sha=M3), "arp_op": 2}
    assert send(garp, bare) == FLOODED
    assert send(ipv6(M1, "fd00::2"), bare) == [2]
    assert send(ipv4(M3, M2, "10.0.0.2"), bare) == []  # but only from its own MAC


def test_ipv6_from_the_ports_address_and_link_local_ones() -> None:
    v6 = with_pairs(dataclasses.replace(A1, ip="fd00::1"), ("fd00:9::/64", M1))
    assert send(ipv6(M1, "fd00::1"), v6) == [2]
    assert send(ipv6(M1, "fd00:9::5"), v6) == [2]
    assert send(ipv6(M1, "fe80::1234"), v6) == [2]
    assert send(ipv6(M1, "fd00::2"), v6) == []
    assert send(ipv4(M1, M2, "10.0.0.1"), v6) == []  # no IPv4 address any more
    dad = {**ipv6(M1, "::", BROADCAST), "ip_proto": 58, "icmpv6_type": 135}
    assert send(dad, v6) == FLOODED
    assert send({**dad, "ip_proto": 17}, v6) == []


@pytest.mark.parametrize(
    ("source", "target", "passes"),
    [
        ("fd00::1", "fd00::1", True),
        ("fe80::1", "fd00::1", True),
        ("fe80::1", "fd00:9::7", True),
        ("fe80::1", "fe80::99", True),
        ("fd00::1", "fd00::2", False),  # another port's address, from its own source
        ("fe80::1", "fd00::2", False),
        ("::", "fd00::2", False),
        ("fd00::2", "fd00::1", False),  # the right target, a forged source
    ],
)
def test_neighbour_advertisements_only_for_the_ports_addresses(
    source: str, target: str, passes: bool
) -> None:
    v6 = with_pairs(dataclasses.replace(A1, ip="fd00::1"), ("fd00:9::/64", M1))
    assert send(advert(M1, source, target), v6) == (FLOODED if passes else [])


def test_a_port_with_an_ipv4_address_sends_ipv6_from_link_local_only() -> None:
    assert send(ipv6(M1, "fe80::1")) == [2]
    assert send(ipv6(M1, "fd00::1")) == []
    assert send(advert(M1, "fe80::1", "fe80::1")) == FLOODED
    assert send(advert(M1, "fe80::1", "fd00::1")) == []


def test_frames_from_the_underlay_are_not_checked_here() -> None:
    """Their sender's server checked them; this one cannot know a remote port's pairs."""
    packet = {**ipv4(M3, M1, "10.0.0.77"), "tunnel_id": 5001, "tun_ipv4_src": "192.0.2.2"}
    assert [o.port for o in trace(all_flows(), TUNNEL, packet)] == [1]
