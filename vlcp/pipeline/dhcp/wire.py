"""DHCPv4 on the wire: a client's frame parsed, a server's frame built (RFC 2131, 951).

Why not os-ken's `lib.packet`: the pipeline is pure (the `pure-pipeline` import contract
forbids `os_ken`, whose `lib.packet` also imports oslo.config, sockets and threads at
import time), and the handler runs inside it. The formats are fixed-size headers plus
type-length-value options, so this module reads and writes them with `struct`, checking
every length against the bytes there are: anything that does not add up is `Refused`
with a reason, never an exception of another kind. The tests compare both directions
with os-ken's and scapy's codecs.

Option payloads are opaque here (`offer.py` and the codec, `vlcp.dhcp_options`, say what
they mean); the codec splits long ones and joins repeated ones as RFC 3396 says.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vlcp.dhcp_options import OptionError, parse_options

from ..inet import (
    ETH_TYPE_IPV4,
    ETHERNET,
    IPV4,
    address,
    checksum,
    ethernet,
    ipv4_header,
    mac_bytes,
    mac_text,
    packed,
)

IPPROTO_UDP = 17
CLIENT_PORT, SERVER_PORT = 68, 67
BOOTREQUEST, BOOTREPLY = 1, 2
HTYPE_ETHERNET = 1
MAGIC_COOKIE = b"\x63\x82\x53\x63"
END = 255
OPTION_OVERLOAD = 52
MAX_FRAME = 1518
"""Longest client frame looked at: a full-size Ethernet frame (1500 bytes of IP)."""
MIN_BOOTP = 300
"""Old BOOTP relays and clients want at least this many bytes of BOOTP (RFC 1542)."""

_UDP = struct.Struct("!HHHH")
_BOOTP = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
IP_UDP_HEADERS = IPV4.size + _UDP.size
"""IPv4 without options and UDP: what a reply's IP datagram carries before BOOTP."""
HEADERS = ETHERNET.size + IP_UDP_HEADERS
BOOTP_FIXED = _BOOTP.size + len(MAGIC_COOKIE)


class Refused(ValueError):
    """A frame the responder does not answer; `reason` says why (to count, to log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Malformed(Refused):
    """A frame that is not a well-formed DHCP request at all (what a broken or hostile
    client sends, worth a log line), rather than a request vlcp does not answer."""


@dataclass(frozen=True, slots=True)
class Request:
    """What a client sent: the fields the responder reads."""

    xid: int
    flags: int
    ciaddr: str
    giaddr: str
    chaddr: str
    options: dict[int, bytes]
    """Each option's payload, repeated instances joined (RFC 3396)."""

    @property
    def message_type(self) -> int | None:
        value = self.options.get(53)
        return value[0] if value is not None and len(value) == 1 else None


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server sends back (the responder fills it, `build` lays it out)."""

    eth_src: str
    eth_dst: str
    ip_src: str
    ip_dst: str
    xid: int
    flags: int
    ciaddr: str
    yiaddr: str
    chaddr: str
    options: tuple[bytes, ...]
    """Each option already framed (code, length, payload), in the order to send."""


def parse(frame: bytes) -> Request:
    """A client's DHCP frame (Ethernet, IPv4, UDP 68 -> 67, BOOTP, options)."""
    if len(frame) > MAX_FRAME:
        raise Malformed("oversized")
    if len(frame) < HEADERS:
        raise Malformed("truncated")
    _dst, _src, eth_type = ETHERNET.unpack_from(frame)
    if eth_type != ETH_TYPE_IPV4:
        raise Malformed("not IPv4")
    ip = frame[ETHERNET.size :]
    ver_ihl, _tos, total, _id, frag, _ttl, proto, _sum, _src, _dst = IPV4.unpack_from(ip)
    ihl = (ver_ihl & 0x0F) * 4
    if ver_ihl >> 4 != 4 or ihl < 20 or total < ihl + _UDP.size:
        raise Malformed("bad IPv4 header")
    if total > len(ip):
        raise Malformed("truncated")
    if frag & 0x3FFF:
        raise Malformed("IPv4 fragment")
    if proto != IPPROTO_UDP:
        raise Malformed("not UDP")
    sport, dport, length, _csum = _UDP.unpack_from(ip, ihl)
    if (sport, dport) != (CLIENT_PORT, SERVER_PORT):
        raise Malformed("not from a DHCP client to a server")
    if not _UDP.size <= length <= total - ihl:
        raise Malformed("bad UDP length")
    bootp = ip[ihl + _UDP.size : ihl + length]
    if len(bootp) < BOOTP_FIXED:
        raise Malformed("truncated")
    op, htype, hlen, _hops, xid, _secs, flags, ciaddr, _yi, _si, giaddr, chaddr, sname, file = (
        _BOOTP.unpack_from(bootp)
    )
    if op != BOOTREQUEST:
        raise Malformed("not a BOOTREQUEST")
    if (htype, hlen) != (HTYPE_ETHERNET, 6):
        raise Malformed("not an Ethernet client")
    if bootp[_BOOTP.size : BOOTP_FIXED] != MAGIC_COOKIE:
        raise Malformed("BOOTP, not DHCP (no magic cookie)")
    options = _options(bootp[BOOTP_FIXED:], sname, file)
    return Request(
        xid=xid,
        flags=flags,
        ciaddr=address(ciaddr),
        giaddr=address(giaddr),
        chaddr=mac_text(chaddr[:6]),
        options=options,
    )


def _options(area: bytes, sname: bytes, file: bytes) -> dict[int, bytes]:
    """The options field, then `file` and `sname` if option 52 says they carry options
    (RFC 3396: their instances of one option are joined in that order)."""
    try:
        options = parse_options(area)
        overload = options.get(OPTION_OVERLOAD)
        if overload is None:
            return options
        if len(overload) != 1 or overload[0] not in (1, 2, 3):
            raise Malformed("bad option overload")
        for flag, field in ((1, file), (2, sname)):
            if overload[0] & flag:
                for code, payload in parse_options(field).items():
                    options[code] = options.get(code, b"") + payload
    except OptionError:
        raise Malformed("truncated option") from None
    return options


def build(reply: Reply) -> bytes:
    """The whole frame of a server reply, checksums included."""
    options = b"".join(reply.options) + bytes((END,))
    options += bytes(max(0, MIN_BOOTP - BOOTP_FIXED - len(options)))
    bootp = (
        _BOOTP.pack(
            BOOTREPLY,
            HTYPE_ETHERNET,
            6,
            0,
            reply.xid,
            0,
            reply.flags,
            packed(reply.ciaddr),
            packed(reply.yiaddr),
            bytes(4),
            bytes(4),
            mac_bytes(reply.chaddr),
            b"",
            b"",
        )
        + MAGIC_COOKIE
        + options
    )
    src, dst = packed(reply.ip_src), packed(reply.ip_dst)
    udp_length = _UDP.size + len(bootp)
    pseudo = src + dst + struct.pack("!BBH", 0, IPPROTO_UDP, udp_length)
    udp = _UDP.pack(SERVER_PORT, CLIENT_PORT, udp_length, 0) + bootp
    udp = udp[:6] + struct.pack("!H", checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    header = ipv4_header(src, dst, IPPROTO_UDP, len(udp))
    return ethernet(reply.eth_dst, reply.eth_src) + header + udp
