"""Just enough LLDP (IEEE 802.1AB) to say who sent a frame: its chassis and port ids.

A packet-in handler gets the raw frame; parsing it is the handler's job, and a frame a
VIF crafted may be anything, so every length is checked and a bad frame raises
`ValueError` (the agent counts it as the handler's error and drops it).
"""

from __future__ import annotations

from dataclasses import dataclass

ETH_TYPE_LLDP = 0x88CC
ETH_TYPE_VLAN = frozenset({0x8100, 0x88A8})
END, CHASSIS_ID, PORT_ID = 0, 1, 2
CHASSIS_MAC, PORT_MAC = 4, 3
"""The subtypes whose id is a MAC address (the others are text or opaque bytes)."""


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent an LLDP frame, as its first two TLVs say."""

    chassis: str
    port: str


def parse_sender(frame: bytes) -> Sender:
    """The chassis and port ids of an Ethernet frame carrying LLDP (VLAN tags skipped)."""
    offset = 12
    while _u16(frame, offset) in ETH_TYPE_VLAN:
        offset += 4
    if _u16(frame, offset) != ETH_TYPE_LLDP:
        raise ValueError("not an LLDP frame")
    tlvs = _tlvs(frame, offset + 2)
    if len(tlvs) < 2 or tlvs[0][0] != CHASSIS_ID or tlvs[1][0] != PORT_ID:
        raise ValueError("an LLDPDU starts with its chassis id and port id")
    return Sender(_id(tlvs[0][1], CHASSIS_MAC), _id(tlvs[1][1], PORT_MAC))


def _u16(data: bytes, offset: int) -> int:
    if len(data) < offset + 2:
        raise ValueError(f"frame ends at byte {len(data)}")
    return int.from_bytes(data[offset : offset + 2], "big")


def _tlvs(data: bytes, offset: int) -> list[tuple[int, bytes]]:
    """(type, value) of each TLV up to the end TLV (or the end of the frame: padding)."""
    tlvs = []
    while offset + 2 <= len(data):
        header = _u16(data, offset)
        kind, length = header >> 9, header & 0x1FF
        if kind == END:
            break
        value = data[offset + 2 : offset + 2 + length]
        if len(value) < length:
            raise ValueError(f"TLV type {kind} is cut short")
        tlvs.append((kind, value))
        offset += 2 + length
    return tlvs


def _id(value: bytes, mac_subtype: int) -> str:
    """A chassis or port id: subtype byte, then the id."""
    if not value:
        raise ValueError("an id TLV without its subtype")
    subtype, body = value[0], value[1:]
    if subtype == mac_subtype and len(body) == 6:
        return ":".join(f"{b:02x}" for b in body)
    text = body.decode("utf-8", errors="replace")
    return text if text.isprintable() else body.hex()
