"""Ethernet and IPv4 headers on the wire, for the handlers that answer packets.

The DHCP responder and the ICMP errors both build whole frames with `struct` (the
`pure-pipeline` contract keeps os-ken's packet library out, see `dhcp.wire`); what they
share lives here once: the header layouts, building an IPv4 header with its checksum,
and the Internet checksum itself.
"""

from __future__ import annotations

import functools
import ipaddress
import struct

ETH_TYPE_IPV4 = 0x0800
ETHERNET = struct.Struct("!6s6sH")
"""Destination MAC, source MAC, EtherType (no VLAN tag: frames of local ports)."""
IPV4 = struct.Struct("!BBHHHBBH4s4s")
"""version/IHL, TOS, total length, id, flags/fragment offset, TTL, protocol, checksum,
source, destination: an IPv4 header without options."""
DONT_FRAGMENT = 0x4000
DEFAULT_TTL = 64


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@functools.lru_cache(maxsize=4096)
def packed(address: str) -> bytes:
    """An IPv4 address's 4 bytes; remembered, as the same few addresses (a port's, a
    server identifier, a router interface's) are packed in every answer."""
    return ipaddress.IPv4Address(address).packed


def address(raw: bytes) -> str:
    """Four bytes as an IPv4 address."""
    return str(ipaddress.IPv4Address(raw))


def mac_text(raw: bytes) -> str:
    """Six bytes as a MAC address, lower case."""
    return ":".join(f"{b:02x}" for b in raw)


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def ethernet(dst: str, src: str) -> bytes:
    """The Ethernet header of an IPv4 frame."""
    return ETHERNET.pack(mac_bytes(dst), mac_bytes(src), ETH_TYPE_IPV4)


def ipv4_header(
    src: bytes,
    dst: bytes,
    protocol: int,
    payload: int,
    *,
    tos: int = 0,
    flags: int = DONT_FRAGMENT,
) -> bytes:
    """An IPv4 header without options for `payload` bytes, checksum included (id 0,
    TTL `DEFAULT_TTL`)."""
    header = IPV4.pack(0x45, tos, IPV4.size + payload, 0, flags, DEFAULT_TTL, protocol, 0, src, dst)
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:]
