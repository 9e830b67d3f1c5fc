"""The next hop resolver, driven by hand with a clock: what it asks, when, and what it
puts into the view (on the scenario of tests/unit/pipeline/test_nexthops_module.py)."""

from __future__ import annotations

from scapy.layers.l2 import ARP, Dot1Q, Ether

from tests.unit.pipeline.scenario import PHYS_VLAN
from tests.unit.pipeline.test_l3_module import GW1, MAC_A1
from tests.unit.pipeline.test_nexthops_module import HOP, OUTSIDE_MAC, UNRESOLVED, routed_view
from vlcp.agent.neighbours import Resolver, request_mac
from vlcp.pipeline import DropNeighbour, Learned, PutNeighbour, apply_all
from vlcp.pipeline.nexthops import Settings

KEY = ("tenant-a2", HOP)
MOVED = "02:00:00:00:0b:50"


def step(resolver: Resolver, view, now: float):
    changes, requests = resolver.step(view, now)
    return apply_all(view, changes)[0], changes, requests


def test_an_unresolved_next_hop_is_asked_once_a_retry_tagged_from_the_interface() -> None:
    resolver = Resolver("hv0", Settings(retry=1.0))
    _, changes, (request,) = step(resolver, UNRESOLVED, 0.0)
    assert changes == [] and request.port == PHYS_VLAN
    frame = Ether(request.data)
    source = request_mac(MAC_A1, "hv0")
    assert (frame.dst, frame.src, frame[Dot1Q].vlan) == ("ff:ff:ff:ff:ff:ff", source, 102)
    assert (frame[ARP].op, frame[ARP].psrc, frame[ARP].pdst) == (1, GW1, HOP)
    assert frame[ARP].hwsrc == source
    assert step(resolver, UNRESOLVED, 0.5)[2] == []
    assert len(step(resolver, UNRESOLVED, 1.0)[2]) == 1


def test_an_answer_is_routed_refreshed_re_resolved_when_it_moves_and_forgotten() -> None:
    resolver = Resolver("hv0", Settings(lifetime=60.0, retry=1.0))
    view, _, _ = step(resolver, UNRESOLVED, 0.0)
    resolver.learn(Learned("tenant-a2", HOP, OUTSIDE_MAC), 0.2)
    view, changes, requests = step(resolver, view, 0.3)
    assert (changes, requests) == ([PutNeighbour("tenant-a2", HOP, OUTSIDE_MAC)], [])
    assert view.neighbours == {KEY: OUTSIDE_MAC}
    view, changes, requests = step(resolver, view, 30.2)  # half a lifetime: ask again
    assert changes == [] and len(requests) == 1
    resolver.learn(Learned("tenant-a2", HOP, MOVED), 30.3)
    view, changes, _ = step(resolver, view, 30.4)
    assert changes == [PutNeighbour("tenant-a2", HOP, MOVED)]
    view, changes, requests = step(resolver, view, 90.3)  # no answer for a lifetime
    assert changes == [DropNeighbour("tenant-a2", HOP)] and len(requests) == 1
    assert view.neighbours == {}


def test_a_removed_route_forgets_its_next_hop_and_asks_no_more() -> None:
    resolver = Resolver("hv0")
    resolver.learn(Learned("tenant-a2", HOP, OUTSIDE_MAC), 0.0)
    view, _, _ = step(resolver, UNRESOLVED, 0.0)
    assert view.neighbours == {KEY: OUTSIDE_MAC}
    unrouted = routed_view(dict(view.neighbours), routes=())
    unrouted, changes, requests = step(resolver, unrouted, 0.1)
    assert (changes, requests) == ([DropNeighbour("tenant-a2", HOP)], [])
    assert step(resolver, unrouted, 5.0)[1:] == ([], [])


def test_each_server_asks_with_its_own_unicast_local_mac() -> None:
    macs = {request_mac(MAC_A1, server) for server in ("hv0", "hv1", "hv2")}
    assert len(macs) == 3
    for mac in macs:
        first = int(mac[:2], 16)
        assert first & 1 == 0 and first & 2 == 2
