"""Flow-mod messages assembled from pieces the codec encodes once each.

os-ken builds a message object per flow-mod and serializes it field by field: about
80 µs a flow, most of a controller's CPU when a thousand ports come up at once. Yet the
pieces repeat: a port's `output` action, a network's register load, the fixed part of
every ADD. So the codec encodes each match field (OXM TLV) and each action once, with
os-ken, caches the bytes (`Codec.oxm`, `Codec.action_bytes`), and this module lays them
out in the order os-ken would (OXM fields by type number, as OpenFlow prerequisites
need; but the Nicira fields whose prerequisites are basic fields after those, which
os-ken gets wrong: `AFTER_BASIC_FIELDS`); the unit tests check the result is otherwise
byte for byte os-ken's. Flows this layout does
not cover (an experimenter OXM field) fall back to os-ken (`None` here). The match fields
a controller uses most (`NATIVE_FIELDS`: ports, registers, Ethernet and ARP addresses,
VLAN, tunnel id) are even encoded here directly: os-ken's address parsing costs more
than the rest of a flow-mod.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import TYPE_CHECKING, Any, Literal

from .flow import Action, Flow

if TYPE_CHECKING:
    from .codec import Codec

MAX_MESSAGE = 0xFFFF
"""OpenFlow's length field is 16 bits: no message may be longer."""
FIXED_SIZE = 48
"""OpenFlow header plus `ofp_flow_mod` up to its match (the same in 1.3 and 1.4)."""
OFPMT_OXM = 1
OFPIT_GOTO_TABLE = 1
OFPIT_APPLY_ACTIONS = 4
EXPERIMENTER_CLASS = 0xFFFF

_LENGTH = struct.Struct("!H")
_COOKIE = struct.Struct("!Q")
_TIMEOUTS_PRIORITY = struct.Struct("!HHH")
_TABLE = struct.Struct("!B")
_MATCH_HEAD = struct.Struct("!HH")
_APPLY_HEAD = struct.Struct("!HH4x")
_GOTO = struct.Struct("!HHB3x")


OPENFLOW_BASIC, NXM_1 = 0x8000, 0x0001
NATIVE_FIELDS: dict[str, tuple[int, int, int, str]] = {
    "in_port": (OPENFLOW_BASIC, 0, 4, "int"),
    "eth_dst": (OPENFLOW_BASIC, 3, 6, "mac"),
    "eth_src": (OPENFLOW_BASIC, 4, 6, "mac"),
    "eth_type": (OPENFLOW_BASIC, 5, 2, "int"),
    "vlan_vid": (OPENFLOW_BASIC, 6, 2, "int"),
    "ip_proto": (OPENFLOW_BASIC, 10, 1, "int"),
    "ipv4_src": (OPENFLOW_BASIC, 11, 4, "ipv4"),
    "ipv4_dst": (OPENFLOW_BASIC, 12, 4, "ipv4"),
    "arp_op": (OPENFLOW_BASIC, 21, 2, "int"),
    "arp_spa": (OPENFLOW_BASIC, 22, 4, "ipv4"),
    "arp_tpa": (OPENFLOW_BASIC, 23, 4, "ipv4"),
    "arp_sha": (OPENFLOW_BASIC, 24, 6, "mac"),
    "arp_tha": (OPENFLOW_BASIC, 25, 6, "mac"),
    "tunnel_id": (OPENFLOW_BASIC, 38, 8, "int"),
    **{f"reg{n}": (NXM_1, n, 4, "int") for n in range(8)},
}
"""Match fields encoded here: name -> (OXM class, field, value bytes, value kind)."""


def native_oxm(name: str, value: Any) -> bytes | None:
    """The OXM TLV of a `NATIVE_FIELDS` field (None for others, or for a value this does
    not take exactly as os-ken would: those go to os-ken, which also explains bad ones)."""
    spec = NATIVE_FIELDS.get(name)
    if spec is None:
        return None
    oxm_class, field, size, kind = spec
    masked = isinstance(value, tuple)
    parts = value if masked else (value,)
    if masked and len(parts) != 2:
        return None
    try:
        encoded = [_value_bytes(kind, part, size) for part in parts]
    except (ValueError, TypeError, OverflowError):
        return None
    if masked:  # as os-ken does: the value is sent with the mask applied
        value_bytes, mask = encoded
        encoded = [bytes(v & m for v, m in zip(value_bytes, mask, strict=True)), mask]
    data = b"".join(encoded)
    header = oxm_class << 16 | field << 9 | masked << 8 | len(data)
    return header.to_bytes(4, "big") + data


OFPAT_OUTPUT, OFPAT_SET_FIELD = 0, 25
_OUTPUT = struct.Struct("!HHIH6x")


def native_action(action: Action) -> bytes | None:
    """An `output` to a numbered port or a `set_field` of a `NATIVE_FIELDS` field, encoded
    here (None for any other action: os-ken encodes it)."""
    args = dict(action.args)
    if action.kind == "output" and args.keys() == {"port"}:
        port = args["port"]
        if type(port) is int and 0 < port < 0xFFFFFF00:
            return _OUTPUT.pack(OFPAT_OUTPUT, _OUTPUT.size, port, 0)
    value = args.get("value")
    if action.kind == "set_field" and args.keys() == {"field", "value"}:
        tlv = None if isinstance(value, tuple) else native_oxm(args["field"], value)
        if tlv is not None:
            return _padded(_MATCH_HEAD.pack(OFPAT_SET_FIELD, 0) + tlv, length_at=2)
    return None


def _value_bytes(kind: str, value: Any, size: int) -> bytes:
    if kind == "int":
        if type(value) is not int or value < 0:
            raise ValueError(value)
        return value.to_bytes(size, "big")
    if type(value) is not str:
        raise ValueError(value)
    if kind == "mac":
        octets = value.split(":")
        if len(octets) != 6 or any(len(o) != 2 for o in octets):
            raise ValueError(value)
        return bytes.fromhex("".join(octets))
    return ipaddress.IPv4Address(value).packed


AFTER_BASIC_FIELDS = frozenset({(NXM_1, 26), (NXM_1, 28), (NXM_1, 29)})
"""Nicira fields whose prerequisites are OpenFlow basic fields (ip_frag, nw_ecn, nw_ttl
need an IP eth_type). OVS checks each field's prerequisites against the fields before
it (OFPBMC_BAD_PREREQ otherwise), and os-ken's order, by type number, puts every Nicira
field (class 1) first: these go after the basic fields instead."""


def _oxm_order(tlv: bytes) -> tuple[bool, int]:
    """os-ken's order, the OXM type number (class << 7 | field), but `AFTER_BASIC_FIELDS`
    last."""
    number = int.from_bytes(tlv[:4], "big") >> 9
    return (number >> 7, number & 0x7F) in AFTER_BASIC_FIELDS, number


def _padded(data: bytes, *, length_at: int | None = None) -> bytes:
    """`data` padded to 8 bytes; with `length_at`, the padded length written there."""
    padded = bytearray(data + bytes(-len(data) % 8))
    if length_at is not None:
        _LENGTH.pack_into(padded, length_at, len(padded))
    return bytes(padded)


def assemble(codec: Codec, flow: Flow, op: Literal["add", "delete"]) -> bytes | None:
    """The flow-mod os-ken would encode for `flow` (ADD, or strict DELETE by cookie)."""
    tlvs = [codec.oxm(name, value) for name, value in flow.match]
    if any(tlv[:2] == b"\xff\xff" for tlv in tlvs):
        return None  # experimenter fields sort by experimenter id: leave them to os-ken
    tlvs.sort(key=_oxm_order)
    fields = b"".join(tlvs)
    match = _padded(_MATCH_HEAD.pack(OFPMT_OXM, 4 + len(fields)) + fields)
    message = bytearray(codec.flow_mod_prefix(op))
    _COOKIE.pack_into(message, 8, flow.cookie)
    _TABLE.pack_into(message, 24, flow.table)
    if op == "add":
        _TIMEOUTS_PRIORITY.pack_into(
            message, 26, flow.idle_timeout, flow.hard_timeout, flow.priority
        )
    else:
        _LENGTH.pack_into(message, 30, flow.priority)
    message += match
    if op == "add":
        actions = b"".join(codec.action_bytes(action) for action in flow.actions)
        if len(message) + 16 + len(actions) > MAX_MESSAGE:  # 16: both instruction heads
            raise ValueError(
                f"flow-mod of {len(message) + 16 + len(actions)} bytes "
                f"({len(flow.actions)} actions) is over OpenFlow's {MAX_MESSAGE}-byte "
                "message limit"
            )
        if actions:
            message += _APPLY_HEAD.pack(OFPIT_APPLY_ACTIONS, 8 + len(actions)) + actions
        if flow.goto is not None:
            message += _GOTO.pack(OFPIT_GOTO_TABLE, 8, flow.goto)
    _LENGTH.pack_into(message, 2, len(message))
    return bytes(message)
