"""ICMP errors on the wire: the offending frame parsed, the error (or echo reply) built.

The offending frame is what a local port sent to its gateway MAC for routing (Ethernet,
IPv4). It is read with `struct`, every length checked against the bytes there are (the
`pure-pipeline` contract keeps os-ken's packet library out, as for DHCP): what does not
add up is `Malformed`, a `BadPacket` the agent counts and logs.

The error (RFC 792; RFC 1812, 4.3.2.3) quotes the offending datagram from its IP header
on, as much of it as keeps the ICMP message within 576 bytes of IP (at least the header
and the first 8 bytes of data RFC 792 asks for, which is what `traceroute` matches
its probes by), and goes back to the sender's MAC from the router interface's MAC and
address.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .. import inet
from ..inet import ETHERNET, IPV4, checksum
from ..module import BadPacket

IPPROTO_ICMP, IPPROTO_UDP = 1, 17
TIME_EXCEEDED, IN_TRANSIT = 11, 0
UNREACHABLE, NET_UNREACHABLE, PORT_UNREACHABLE = 3, 0, 3
ECHO_REPLY, ECHO_REQUEST = 0, 8
ERROR_TYPES = frozenset({3, 4, 5, 11, 12})
"""ICMP error messages (unreachable, source quench, redirect, time exceeded, parameter
problem): never answered with another error (RFC 1122, 3.2.2)."""
MAX_ERROR_DATAGRAM = 576
"""RFC 1812, 4.3.2.3: an ICMP error's IP datagram stays within 576 bytes."""
INTERNETWORK_CONTROL = 0xC0
"""IP precedence of ICMP errors a router originates (RFC 1812, 4.3.2.5; 5.3.3.2)."""
_ICMP = struct.Struct("!BBHI")
QUOTED = MAX_ERROR_DATAGRAM - IPV4.size - _ICMP.size
"""The most of the offending datagram an error quotes."""


class Malformed(BadPacket):
    """Not a well-formed IPv4 frame."""


@dataclass(frozen=True, slots=True)
class Offending:
    """What an error is about: the fields the answer reads, and the datagram to quote."""

    eth_src: str
    eth_dst: str
    ip_src: str
    ip_dst: str
    ttl: int
    protocol: int
    first_fragment: bool
    """Whether the datagram starts its packet (fragment offset 0): only the first
    fragment of a packet is answered, with the others the sender would get one each."""
    whole: bool
    """Whether it is a whole packet (not a fragment at all)."""
    icmp_type: int | None
    """The ICMP type of an ICMP datagram (first fragment), else None."""
    datagram: bytes
    """The IP datagram, header to its total length (Ethernet padding left out)."""
    header_length: int

    @property
    def payload(self) -> bytes:
        """What the IP header carries (a fragment of it, unless `whole`)."""
        return self.datagram[self.header_length :]


def parse(frame: bytes) -> Offending:
    """A routed frame as a local port sent it."""
    if len(frame) < ETHERNET.size + IPV4.size:
        raise Malformed(f"{len(frame)} bytes: truncated IPv4 frame")
    eth_dst, eth_src, eth_type = ETHERNET.unpack_from(frame)
    if eth_type != inet.ETH_TYPE_IPV4:
        raise Malformed(f"EtherType {eth_type:#06x}, not IPv4")
    ip = frame[ETHERNET.size :]
    ver_ihl, _tos, total, _id, frag, ttl, proto, _sum, src, dst = IPV4.unpack_from(ip)
    ihl = (ver_ihl & 0x0F) * 4
    if ver_ihl >> 4 != 4 or ihl < IPV4.size or total < ihl:
        raise Malformed("bad IPv4 header")
    if total > len(ip):
        raise Malformed(f"truncated: {len(ip)} of {total} bytes of IPv4")
    if checksum(ip[:ihl]):
        raise Malformed("bad IPv4 header checksum")
    first = frag & 0x1FFF == 0
    icmp = proto == IPPROTO_ICMP and first and total > ihl
    return Offending(
        eth_src=inet.mac_text(eth_src),
        eth_dst=inet.mac_text(eth_dst),
        ip_src=inet.address(src),
        ip_dst=inet.address(dst),
        ttl=ttl,
        protocol=proto,
        first_fragment=first,
        whole=frag & 0x3FFF == 0,
        icmp_type=ip[ihl] if icmp else None,
        datagram=ip[:total],
        header_length=ihl,
    )


def error_frame(offending: Offending, icmp_type: int, code: int, *, mac: str, source: str) -> bytes:
    """The ICMP error about `offending`, from `mac` and `source` back to its sender."""
    message = _ICMP.pack(icmp_type, code, 0, 0) + offending.datagram[:QUOTED]
    return _icmp_frame(offending, message, mac, source, INTERNETWORK_CONTROL)


def echo_reply(offending: Offending, *, mac: str, source: str) -> bytes:
    """The reply to the whole echo request `offending` (identifier, sequence and data
    kept), from `mac` and `source`."""
    message = bytes((ECHO_REPLY, 0, 0, 0)) + offending.payload[4:]
    return _icmp_frame(offending, message, mac, source, 0)


def _icmp_frame(offending: Offending, message: bytes, mac: str, source: str, tos: int) -> bytes:
    """An ICMP `message` (its checksum filled in here) back to the sender of `offending`."""
    message = message[:2] + struct.pack("!H", checksum(message)) + message[4:]
    header = inet.ipv4_header(
        inet.packed(source),
        inet.packed(offending.ip_src),
        IPPROTO_ICMP,
        len(message),
        tos=tos,
        flags=0,
    )
    return inet.ethernet(offending.eth_src, mac) + header + message
