"""The DHCPv4 responder: a client's frame and the view in, the reply frame out.

Sans-I/O and stateless: no socket, no clock, no lease table. The port is the one the
frame came in on, its address is the one the model gave it (`offer.offer`), so every
answer follows from the request and the view alone.

- DISCOVER -> OFFER; REQUEST -> ACK, or NAK when the address asked for (option 50, or
  `ciaddr` when renewing) is not the port's, or when the client selected another server
  (option 54): vlcp is the only server a port can reach (the module drops other servers'
  replies), so a client holding another server's lease must start over, and a NAK makes
  it do so at once rather than after its lease runs out;
- INFORM -> ACK without lease fields, to a client that has the port's address;
- RELEASE and DECLINE: no reply (the address stays the port's; a DECLINE says someone
  else uses it, worth an operator's look: the reason is counted);
- anything else, malformed, truncated or oversized: no reply, and a reason.

Addressing (RFC 2131, 4.1): the reply goes out of the client's port only, to the port's
MAC; its IP destination is `ciaddr` when the client has an address (renewing, INFORM),
else the broadcast address, which every client receives before it is configured, with or
without the broadcast flag (the frame reaches no other port). A NAK is always broadcast.
A relayed request (`giaddr` set) is refused: a port is its own client, never a relay's.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import struct
from dataclasses import dataclass

from vlcp.dhcp_options import frame

from ..module import Received
from ..view import LocalPort, View
from .offer import (
    MAX_MESSAGE_SIZE,
    MESSAGE,
    MESSAGE_TYPE,
    ON_REQUEST_ONLY,
    PARAMETER_LIST,
    REQUESTED_ADDRESS,
    SERVER_ID,
    Offer,
    offer,
)
from .settings import Settings
from .wire import (
    BOOTP_FIXED,
    IP_UDP_HEADERS,
    Malformed,
    Refused,
    Reply,
    Request,
    build,
    packed,
    parse,
)

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
UNSPECIFIED, BROADCAST_IP = "0.0.0.0", "255.255.255.255"
MIN_MESSAGE, MAX_MESSAGE = 576, 1500
"""Every client takes a 576-byte IP datagram (RFC 2131, 2); a larger one only when it
says so with option 57, up to a full Ethernet payload."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the responder did: the reply frame (or None) and why, to count and log."""

    reply: bytes | None
    reason: str
    malformed: bool = False
    """Not a well-formed DHCP request (wire.Malformed), rather than one not answered."""


def respond(view: View, settings: Settings, received: Received) -> Answer:
    """Answer one frame a local port sent to UDP port 67. Never raises on its input."""
    try:
        return _respond(view, settings, received)
    except Refused as refused:
        return Answer(None, refused.reason, isinstance(refused, Malformed))


def _respond(view: View, settings: Settings, received: Received) -> Answer:
    request = parse(received.data)
    port = view.port_at(received.in_port)
    if port is None:
        raise Refused("not from a local port")
    network = view.networks.get(port.network)
    if network is None or received.network not in (None, network.number):
        raise Refused("not from the port's network")
    if request.chaddr != port.mac:
        raise Refused("client hardware address is not the port's MAC")
    if request.giaddr != UNSPECIFIED:
        raise Refused("relayed")
    lease = offer(view, port, settings)
    if lease is None:
        raise Refused("port without an IPv4 address in a subnet")
    kind = request.message_type
    if kind == DISCOVER:
        return Answer(_reply(request, port, lease, settings, OFFER), "offer")
    if kind == REQUEST:
        return _request(request, port, lease, settings)
    if kind == INFORM:
        if request.ciaddr != lease.address:
            raise Refused("INFORM from another address than the port's")
        return Answer(_reply(request, port, lease, settings, ACK), "inform")
    if kind == RELEASE:
        return Answer(None, "release")
    if kind == DECLINE:
        return Answer(None, "decline: the client says its address is in use")
    raise Refused("no DHCP message type" if kind is None else f"unexpected message type {kind}")


def _request(request: Request, port: LocalPort, lease: Offer, settings: Settings) -> Answer:
    server = request.options.get(SERVER_ID)
    if server is not None and server != packed(lease.server_id):
        return _nak(request, port, lease, settings, "selected another server")
    wanted = request.options.get(REQUESTED_ADDRESS)
    if wanted is not None:
        if len(wanted) != 4:
            raise Refused("bad requested address")
        asked = str(ipaddress.IPv4Address(wanted))
    else:
        asked = request.ciaddr
    if asked == UNSPECIFIED:
        return _nak(request, port, lease, settings, "no address requested")
    if asked != lease.address:
        return _nak(request, port, lease, settings, "requested address is not the port's")
    return Answer(_reply(request, port, lease, settings, ACK), "ack")


def _nak(request: Request, port: LocalPort, lease: Offer, settings: Settings, why: str) -> Answer:
    options = (
        frame(MESSAGE_TYPE, bytes((NAK,))),
        frame(SERVER_ID, packed(lease.server_id)),
        frame(MESSAGE, why.encode()),
    )
    reply = _addressed(request, port, lease, settings, BROADCAST_IP, options)
    return Answer(build(reply), f"nak: {why}")


def _reply(request: Request, port: LocalPort, lease: Offer, settings: Settings, kind: int) -> bytes:
    """An OFFER or ACK (an ACK to INFORM carries no lease)."""
    inform = request.message_type == INFORM
    has_address = request.ciaddr != UNSPECIFIED
    destination = request.ciaddr if has_address else BROADCAST_IP
    options = _options(request, lease, kind, inform)
    reply = _addressed(request, port, lease, settings, destination, options)
    return build(
        dataclasses.replace(
            reply,
            ciaddr=request.ciaddr if kind == ACK else UNSPECIFIED,
            yiaddr=UNSPECIFIED if inform else lease.address,
        )
    )


def _addressed(
    request: Request,
    port: LocalPort,
    lease: Offer,
    settings: Settings,
    destination: str,
    options: tuple[bytes, ...],
) -> Reply:
    """A reply to `request` from the server to the port's MAC and `destination`
    (`ciaddr` and `yiaddr` unset)."""
    return Reply(
        eth_src=settings.server_mac,
        eth_dst=port.mac,
        ip_src=lease.server_id,
        ip_dst=destination,
        xid=request.xid,
        flags=request.flags,
        ciaddr=UNSPECIFIED,
        yiaddr=UNSPECIFIED,
        chaddr=port.mac,
        options=options,
    )


def _options(request: Request, lease: Offer, kind: int, inform: bool) -> tuple[bytes, ...]:
    """The options in the order the client asked for them (RFC 2132, 9.8), after the
    ones every reply needs; unrequested ones last, and only while they fit the largest
    message the client takes."""
    first = {MESSAGE_TYPE: bytes((kind,)), SERVER_ID: packed(lease.server_id)}
    if not inform:
        first.update(lease.lease)
    asked = list(dict.fromkeys(request.options.get(PARAMETER_LIST, b"")))
    rest = [c for c in asked if c in lease.options]
    rest += [c for c in sorted(lease.options) if c not in asked and c not in ON_REQUEST_ONLY]
    room = _largest_message(request) - IP_UDP_HEADERS - BOOTP_FIXED - 1
    framed = [frame(code, payload) for code, payload in first.items()]
    room -= sum(len(f) for f in framed)
    for code in rest:
        option = frame(code, lease.options[code])
        if len(option) <= room:
            framed.append(option)
            room -= len(option)
    return tuple(framed)


def _largest_message(request: Request) -> int:
    """The largest IP datagram the client takes (option 57, within bounds)."""
    value = request.options.get(MAX_MESSAGE_SIZE)
    size = struct.unpack("!H", value)[0] if value is not None and len(value) == 2 else 0
    return min(max(size, MIN_MESSAGE), MAX_MESSAGE)
