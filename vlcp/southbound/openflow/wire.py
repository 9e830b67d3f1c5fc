"""OpenFlow framing that needs no parser: headers, xids, HELLO, ECHO and ERROR bytes.

These few messages are the same in every version, and the channel must handle them
before any version is negotiated (or after a peer proved unparseable), so they are plain
struct code, independent of os-ken.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

OFP13 = 0x04
OFP14 = 0x05
SUPPORTED_VERSIONS = (OFP13, OFP14)
"""Versions we offer, lowest first; both are spoken by OVS and fully covered by os-ken."""

HEADER = struct.Struct("!BBHI")
HEADER_SIZE = HEADER.size
MAX_MESSAGE = 0xFFFF

# Message types whose numbers are the same in OpenFlow 1.3 and 1.4.
OFPT_HELLO, OFPT_ERROR, OFPT_ECHO_REQUEST, OFPT_ECHO_REPLY = 0, 1, 2, 3
OFPT_EXPERIMENTER, OFPT_FEATURES_REQUEST, OFPT_FEATURES_REPLY = 4, 5, 6
OFPT_PACKET_IN, OFPT_FLOW_REMOVED, OFPT_PORT_STATUS, OFPT_PACKET_OUT = 10, 11, 12, 13
OFPT_MULTIPART_REQUEST, OFPT_MULTIPART_REPLY = 18, 19
OFPT_BARRIER_REQUEST, OFPT_BARRIER_REPLY = 20, 21
OFPT_BUNDLE_ADD_MESSAGE = 34  # OpenFlow 1.4
OFPMPF_REPLY_MORE = 1
OFPET_HELLO_FAILED, OFPHFC_INCOMPATIBLE = 0, 0
OFPET_BAD_REQUEST = 1
OFPET_EXPERIMENTER = 0xFFFF
OFPP_CONTROLLER = 0xFFFFFFFD
OFPP_ANY = 0xFFFFFFFF
OFP_NO_BUFFER = 0xFFFFFFFF
OFPG_ALL = 0xFFFFFFFC
ALL_ONES_64 = 0xFFFFFFFFFFFFFFFF

ONF_EXPERIMENTER = 0x4F4E4600
ONF_ET_BUNDLE_ADD = 2301
_HELLO_ELEM_VERSIONBITMAP = 1


class MalformedMessage(ValueError):
    """Bytes that are not a valid OpenFlow message: the peer is broken or hostile."""


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    type: int
    length: int
    xid: int


def parse_header(data: bytes | bytearray) -> Header:
    """The fixed 8-byte header; a length below 8 can never frame a message."""
    if len(data) < HEADER_SIZE:
        raise MalformedMessage(f"truncated header ({len(data)} bytes)")
    header = Header(*HEADER.unpack_from(data))
    if header.length < HEADER_SIZE:
        raise MalformedMessage(f"header length {header.length} < {HEADER_SIZE}")
    return header


def split_messages(buffer: bytearray) -> list[bytes]:
    """Remove every complete message from the front of ``buffer`` and return them.

    What remains is less than one message; since a message is at most 64 KiB, a caller
    that feeds us in bounded chunks keeps a bounded buffer.
    """
    out: list[bytes] = []
    offset = 0
    while len(buffer) - offset >= HEADER_SIZE:
        length = HEADER.unpack_from(buffer, offset)[2]
        if length < HEADER_SIZE:
            raise MalformedMessage(f"header length {length} < {HEADER_SIZE}")
        if len(buffer) - offset < length:
            break
        out.append(bytes(buffer[offset : offset + length]))
        offset += length
    del buffer[:offset]
    return out


def set_xid(data: bytes, xid: int) -> bytes:
    """``data`` with its xid replaced; a bundled message's inner xid follows the outer one
    (both OpenFlow 1.4 and the ONF extension require them to match)."""
    buf = bytearray(data)
    struct.pack_into("!I", buf, 4, xid)
    version, mtype = buf[0], buf[1]
    if version >= OFP14 and mtype == OFPT_BUNDLE_ADD_MESSAGE:
        struct.pack_into("!I", buf, 16 + 4, xid)
    elif mtype == OFPT_EXPERIMENTER and len(buf) >= 32:
        experimenter, exp_type = struct.unpack_from("!II", buf, 8)
        if experimenter == ONF_EXPERIMENTER and exp_type == ONF_ET_BUNDLE_ADD:
            struct.pack_into("!I", buf, 24 + 4, xid)
    return bytes(buf)


_REPLY_ONE = frozenset({2, 5, 7, 20, 22, 24, 26, 33})
"""Request types answered by exactly one message: echo, features, get-config, barrier,
queue-config, role, get-async and (OpenFlow 1.4) bundle control."""
ONF_ET_BUNDLE_CONTROL = 2300


def reply_kind(data: bytes) -> Literal["one", "multipart", "none"]:
    """How the switch answers a request: once, in multipart pieces, or only on error."""
    mtype = data[1]
    if mtype == OFPT_MULTIPART_REQUEST:
        return "multipart"
    if mtype in _REPLY_ONE and not (mtype == 33 and data[0] < OFP14):
        return "one"
    if mtype == OFPT_EXPERIMENTER and len(data) >= 16:
        experimenter, exp_type = struct.unpack_from("!II", data, 8)
        if experimenter == ONF_EXPERIMENTER and exp_type == ONF_ET_BUNDLE_CONTROL:
            return "one"
    return "none"


def encode_hello(versions: Iterable[int] = SUPPORTED_VERSIONS) -> bytes:
    """HELLO carrying the highest version in its header and a version bitmap."""
    versions = sorted(set(versions))
    bitmap = 0
    for v in versions:
        bitmap |= 1 << v
    words = [(bitmap >> (32 * i)) & 0xFFFFFFFF for i in range(versions[-1] // 32 + 1)]
    elem = struct.pack(f"!HH{len(words)}I", _HELLO_ELEM_VERSIONBITMAP, 4 + 4 * len(words), *words)
    elem += b"\0" * (-len(elem) % 8)
    return HEADER.pack(versions[-1], OFPT_HELLO, HEADER_SIZE + len(elem), 0) + elem


def decode_hello(data: bytes) -> frozenset[int] | None:
    """The versions a peer's HELLO offers: its bitmap, or None when it sent none."""
    header = parse_header(data)
    offset, offered = HEADER_SIZE, None
    while offset + 4 <= header.length:
        etype, elen = struct.unpack_from("!HH", data, offset)
        if elen < 4 or offset + elen > header.length:
            raise MalformedMessage(f"bad hello element length {elen}")
        if etype == _HELLO_ELEM_VERSIONBITMAP:
            words = struct.unpack_from(f"!{(elen - 4) // 4}I", data, offset + 4)
            offered = frozenset(
                32 * i + bit for i, word in enumerate(words) for bit in range(32) if word >> bit & 1
            )
        offset += (elen + 7) // 8 * 8
    return offered


def encode_error(version: int, err_type: int, code: int, data: bytes = b"", xid: int = 0) -> bytes:
    """An OFPT_ERROR (used for HELLO_FAILED, before any version-specific codec exists)."""
    body = struct.pack("!HH", err_type, code) + data
    return HEADER.pack(version, OFPT_ERROR, HEADER_SIZE + len(body), xid) + body


def encode_echo(version: int, reply: bool, data: bytes = b"", xid: int = 0) -> bytes:
    """ECHO_REQUEST / ECHO_REPLY: header plus opaque data, identical in every version."""
    mtype = OFPT_ECHO_REPLY if reply else OFPT_ECHO_REQUEST
    return HEADER.pack(version, mtype, HEADER_SIZE + len(data), xid) + data
