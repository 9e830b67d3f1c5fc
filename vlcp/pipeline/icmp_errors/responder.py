"""Which ICMP error a routed packet gets, if any: the packet and the view in, the error
frame out.

Sans-I/O and stateless, like the DHCP responder: the switch sent the packet here because
the router could not forward it (its TTL ran out, or no flow of `l3` routes its
destination), and the view says which router and interface it came to:

- the router is the one whose interface on the sender's network has the frame's
  destination MAC (the lowest router id, as `l3`'s entrance picks it), and the error
  comes from that interface's address and MAC: the gateway the sender knows, which is
  what `traceroute` prints for the hop;
- TTL 0 or 1: time exceeded in transit (type 11, code 0);
- otherwise, a destination in none of the router's subnets: net unreachable (type 3,
  code 0). A destination inside one of its subnets that no port holds gets nothing: no
  answer rather than a wrong one;
- a destination that is an address of the router itself (an interface's; the sender's
  own gateway answers echo on the switch already, `gateway`) is delivered, whatever its
  TTL: an echo request is answered, UDP gets port unreachable (type 3, code 3: what
  `traceroute` to that address ends on), anything else nothing. The answer comes from
  that address, through the sender's gateway MAC.

Never answered (RFC 1122, 3.2.2; RFC 1812, 4.3.2.7): ICMP errors, fragments after the
first, and packets from or to anything but one unicast host. Those are counted as such, with the
other reasons (`Answer.reason`); a frame that is not well-formed IPv4 raises `Malformed`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..module import Received
from ..view import Router, RouterInterface, View
from .wire import (
    ECHO_REQUEST,
    ERROR_TYPES,
    IN_TRANSIT,
    IPPROTO_UDP,
    NET_UNREACHABLE,
    PORT_UNREACHABLE,
    TIME_EXCEEDED,
    UNREACHABLE,
    Offending,
    echo_reply,
    error_frame,
    parse,
)

ECHO_HEADER = 8
"""Type, code, checksum, identifier, sequence: the least an echo request has."""


@dataclass(frozen=True, slots=True)
class Answer:
    """The error frame to send back (None: none), and why, to count and log."""

    reply: bytes | None
    reason: str


def respond(view: View, received: Received) -> Answer:
    """The answer to one packet the switch could not route; raises `Malformed` for a
    frame that is not IPv4."""
    offending = parse(received.data)
    port = view.port_at(received.in_port)
    network = view.networks.get(port.network) if port is not None else None
    if port is None or network is None or received.network not in (None, network.number):
        return Answer(None, "not from a local port of its network")
    entered = entrance(view, port.network, offending.eth_dst)
    if entered is None:
        return Answer(None, "not to a router interface of its network")
    router, interface = entered
    why_not = _unanswerable(offending)
    if why_not is not None:
        return Answer(None, why_not)
    addressed = next((i for i in router.interfaces if i.ip == offending.ip_dst), None)
    if addressed is not None:
        return _to_the_router(offending, interface.mac, addressed.ip)
    if offending.ttl <= 1:
        kind, reason = (TIME_EXCEEDED, IN_TRANSIT), "time exceeded"
    elif not any(i.holds(offending.ip_dst) for i in router.interfaces):
        kind, reason = (UNREACHABLE, NET_UNREACHABLE), "net unreachable"
    else:
        return Answer(None, "no port holds the destination")
    reply = error_frame(offending, *kind, mac=interface.mac, source=interface.ip)
    return Answer(reply, reason)


def _to_the_router(offending: Offending, mac: str, address: str) -> Answer:
    """A packet for one of the router's own addresses, delivered there."""
    if offending.icmp_type == ECHO_REQUEST:
        if not offending.whole or len(offending.payload) < ECHO_HEADER:
            return Answer(None, "a fragmented or truncated echo request to the router")
        return Answer(echo_reply(offending, mac=mac, source=address), "echo reply")
    if offending.protocol == IPPROTO_UDP:
        reply = error_frame(offending, UNREACHABLE, PORT_UNREACHABLE, mac=mac, source=address)
        return Answer(reply, "port unreachable")
    return Answer(None, "to the router, neither echo nor UDP")


def entrance(view: View, network: str, mac: str) -> tuple[Router, RouterInterface] | None:
    """The router a frame to `mac` from `network` enters, and the interface it enters by:
    the first router, by id, with an interface on the network at that MAC."""
    for router_id in sorted(view.router_ids.get(network, ())):
        router = view.routers[router_id]
        for interface in router.interfaces:
            if interface.network == network and interface.mac == mac:
                return router, interface
    return None


def _unanswerable(offending: Offending) -> str | None:
    """Why no error may be sent about this datagram at all, or None."""
    if offending.icmp_type in ERROR_TYPES:
        return "an ICMP error itself"
    if not offending.first_fragment:
        return "a fragment after the first"
    source = ipaddress.IPv4Address(offending.ip_src)
    if source.is_unspecified or source.is_multicast or source.is_loopback or source.is_reserved:
        return "not from one unicast host"  # (reserved: 240/4, the limited broadcast too)
    destination = ipaddress.IPv4Address(offending.ip_dst)
    if destination.is_multicast or destination.is_reserved:
        return "not to one unicast host"
    return None
