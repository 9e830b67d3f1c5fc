"""This server's ARP resolution of next hops outside vlcp (module `nexthops`), sans I/O.

A static route through an address no vlcp port holds needs the MAC of that next hop; the
store does not have it, so each server that routes for the router and has the next hop's
network on a physical port asks for it itself:

- `step(view, now)` says what to send and what the view should hold: an ARP request per
  next hop that is unresolved (at most one per `Settings.retry` seconds each, whatever
  the traffic: nothing waits on a packet) or whose answer is older than half its
  `Settings.lifetime` (refreshed before it expires, so a next hop that moved is
  re-resolved within half a lifetime); answers older than a lifetime are forgotten, and
  the route's traffic is dropped again until the next answer;
- `learn(fact, now)` keeps an answer the `nexthops` packet-in handler accepted (a reply
  from the next hop to the router interface's address): a new MAC replaces the old one
  at once.

Requests go from the interface's address with a MAC of this server's own
(`request_mac`: locally administered, derived from the interface's MAC and the server),
so the physical segment's switches deliver each server's answers to that server only,
however many servers ask. The agent sends the requests out of the physical port and
applies the changes to its view (`PutNeighbour` / `DropNeighbour`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from vlcp.pipeline.changes import Change, DropNeighbour, PutNeighbour
from vlcp.pipeline.module import Learned, PacketOut
from vlcp.pipeline.nexthops import OutsideHop, Settings, all_outside_hops
from vlcp.pipeline.view import View

from .forwarding import arp_frame

Key = tuple[str, str]


def request_mac(interface_mac: str, server: str) -> str:
    """This server's source MAC for ARP requests from one router interface."""
    digest = bytearray(
        hashlib.blake2b(f"{interface_mac}/{server}".encode(), digest_size=6).digest()
    )
    digest[0] = (digest[0] & 0xFC) | 0x02  # unicast, locally administered
    return ":".join(f"{b:02x}" for b in digest)


def arp_request(hop: OutsideHop, source_mac: str) -> bytes:
    """Who has the next hop? Tell the interface's address (tagged for a vlan network)."""
    return arp_frame(hop.network, source_mac, hop.interface.ip, hop.ip)


@dataclass(slots=True)
class _Answer:
    mac: str
    at: float


class Resolver:
    """What this server knows of its outside next hops, and when it asked."""

    def __init__(self, server: str, settings: Settings | None = None) -> None:
        self.server = server
        self.settings = settings or Settings()
        self._answers: dict[Key, _Answer] = {}
        self._asked: dict[Key, float] = {}

    def learn(self, fact: Learned, now: float) -> None:
        self._answers[(fact.network, fact.ip)] = _Answer(fact.mac, now)

    def step(self, view: View, now: float) -> tuple[list[Change], list[PacketOut]]:
        """The view's changes (learned, moved or expired MACs) and the requests due."""
        hops = {hop.key: hop for hop in all_outside_hops(view)}
        lifetime, retry = self.settings.lifetime, self.settings.retry
        for known in (self._answers, self._asked):
            for key in known.keys() - hops.keys():
                del known[key]
        requests = []
        for key, hop in hops.items():
            answer = self._answers.get(key)
            if answer is not None and now - answer.at >= lifetime:
                del self._answers[key]
                answer = None
            fresh = answer is not None and now - answer.at < lifetime / 2
            if not fresh and now - self._asked.get(key, -math.inf) >= retry:
                self._asked[key] = now
                port = view.physical_port(hop.network)
                assert port is not None  # `all_outside_hops` only yields those
                source = request_mac(hop.interface.mac, self.server)
                requests.append(PacketOut(port, arp_request(hop, source)))
        wanted = {key: answer.mac for key, answer in self._answers.items()}
        changes: list[Change] = [
            PutNeighbour(network, ip, mac)
            for (network, ip), mac in sorted(wanted.items())
            if view.neighbours.get((network, ip)) != mac
        ]
        changes += [DropNeighbour(*key) for key in sorted(view.neighbours.keys() - wanted.keys())]
        return changes, requests

    def wanted(self, view: View) -> bool:
        """Whether anything is to be resolved (the agent steps periodically only then)."""
        return bool(all_outside_hops(view))
