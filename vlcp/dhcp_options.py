"""DHCPv4 option values: JSON in, option payload bytes out, and back.

The API checks `extra_dhcp_options` with `encode` when they are written, and the DHCP
responder encodes every option of a reply with the same function, so a value the model
accepted is a value the responder can send: a bad option is a 4xx naming it, never a
broken reply later. `decode` reads payloads back (the responder's tests, the end-to-end
tests), and gives the canonical JSON form the model stores: `decode(c, encode(c, v))`.

Known codes (`OPTIONS`, from RFC 2132 and later RFCs) take the JSON form of their type
(`Kind`). Any other code from 1 to 254 takes its payload as a hex string ("0a0b"), the one
unambiguous form for bytes the controller knows nothing about. Codes the controller sets
itself, or that only clients and relays send (`RESERVED`), are refused by
`check_extra` with why. `frame` lays an option out as code, length and payload, split
into several instances when longer than 255 bytes (RFC 3396); `parse_options` joins them
again.

Pure: imports nothing from vlcp and does no I/O (the `layers` and `pure-pipeline`
contracts), so the API half and the pipeline share it.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_PAYLOAD = 1024
"""Most bytes one option may carry. Longer than 255 is sent as several instances (RFC
3396); beyond this the option could not fit a reply in a 1500-byte frame beside the
options every reply needs (what fits a given client's maximum message size is the
responder's to decide)."""

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TEXT = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")


class OptionError(ValueError):
    """A value or payload that is not a valid option; the message says which and why."""


class Kind(enum.StrEnum):
    """The value types of options, named as docs/api.md lists them."""

    IP = "ip"
    IP_LIST = "ip list"
    UINT8 = "uint8"
    UINT8_LIST = "uint8 list"
    UINT16 = "uint16"
    UINT32 = "uint32"
    INT32 = "int32"
    STRING = "string"
    BOOL = "bool"
    ROUTES = "routes"
    DOMAINS = "domain list"
    HEX = "hex"


@dataclass(frozen=True)
class Option:
    """A known option: its name (as ISC dhcpd and RFC 2132 call it), type and bounds."""

    name: str
    kind: Kind
    low: int | None = None
    high: int | None = None

    @property
    def bounds(self) -> tuple[int, int]:
        """The range of an integer option: its type's, narrowed by `low` and `high`."""
        low, high = _INT_BOUNDS[self.kind]
        return (low if self.low is None else self.low, high if self.high is None else self.high)


_INT_BOUNDS = {
    Kind.UINT8: (0, 0xFF),
    Kind.UINT16: (0, 0xFFFF),
    Kind.UINT32: (0, 0xFFFFFFFF),
    Kind.INT32: (-(1 << 31), (1 << 31) - 1),
}
_INT_SIZES = {Kind.UINT8: 1, Kind.UINT16: 2, Kind.UINT32: 4, Kind.INT32: 4}

OPTIONS: Mapping[int, Option] = {
    1: Option("subnet-mask", Kind.IP),
    2: Option("time-offset", Kind.INT32),
    3: Option("routers", Kind.IP_LIST),
    4: Option("time-servers", Kind.IP_LIST),
    5: Option("ien116-name-servers", Kind.IP_LIST),
    6: Option("domain-name-servers", Kind.IP_LIST),
    7: Option("log-servers", Kind.IP_LIST),
    9: Option("lpr-servers", Kind.IP_LIST),
    12: Option("host-name", Kind.STRING),
    13: Option("boot-size", Kind.UINT16),
    15: Option("domain-name", Kind.STRING),
    16: Option("swap-server", Kind.IP),
    17: Option("root-path", Kind.STRING),
    19: Option("ip-forwarding", Kind.BOOL),
    20: Option("non-local-source-routing", Kind.BOOL),
    22: Option("max-dgram-reassembly", Kind.UINT16, 576, 0xFFFF),
    23: Option("default-ip-ttl", Kind.UINT8, 1, 0xFF),
    24: Option("path-mtu-aging-timeout", Kind.UINT32),
    26: Option("interface-mtu", Kind.UINT16, 68, 0xFFFF),
    27: Option("all-subnets-local", Kind.BOOL),
    28: Option("broadcast-address", Kind.IP),
    31: Option("router-discovery", Kind.BOOL),
    32: Option("router-solicitation-address", Kind.IP),
    35: Option("arp-cache-timeout", Kind.UINT32),
    37: Option("default-tcp-ttl", Kind.UINT8, 1, 0xFF),
    38: Option("tcp-keepalive-interval", Kind.UINT32),
    40: Option("nis-domain", Kind.STRING),
    41: Option("nis-servers", Kind.IP_LIST),
    42: Option("ntp-servers", Kind.IP_LIST),
    43: Option("vendor-encapsulated-options", Kind.HEX),
    44: Option("netbios-name-servers", Kind.IP_LIST),
    45: Option("netbios-dd-server", Kind.IP_LIST),
    46: Option("netbios-node-type", Kind.UINT8, 1, 8),
    47: Option("netbios-scope", Kind.STRING),
    50: Option("dhcp-requested-address", Kind.IP),
    51: Option("dhcp-lease-time", Kind.UINT32, 1),
    52: Option("dhcp-option-overload", Kind.UINT8, 1, 3),
    53: Option("dhcp-message-type", Kind.UINT8, 1),
    54: Option("dhcp-server-identifier", Kind.IP),
    55: Option("dhcp-parameter-request-list", Kind.UINT8_LIST),
    56: Option("dhcp-message", Kind.STRING),
    57: Option("dhcp-max-message-size", Kind.UINT16, 576),
    58: Option("dhcp-renewal-time", Kind.UINT32, 1),
    59: Option("dhcp-rebinding-time", Kind.UINT32, 1),
    60: Option("vendor-class-identifier", Kind.STRING),
    61: Option("dhcp-client-identifier", Kind.HEX),
    66: Option("tftp-server-name", Kind.STRING),
    67: Option("bootfile-name", Kind.STRING),
    69: Option("smtp-server", Kind.IP_LIST),
    70: Option("pop-server", Kind.IP_LIST),
    72: Option("www-server", Kind.IP_LIST),
    80: Option("rapid-commit", Kind.HEX),
    81: Option("fqdn", Kind.HEX),
    82: Option("relay-agent-information", Kind.HEX),
    100: Option("pcode", Kind.STRING),
    101: Option("tcode", Kind.STRING),
    114: Option("captive-portal", Kind.STRING),
    119: Option("domain-search", Kind.DOMAINS),
    121: Option("classless-static-routes", Kind.ROUTES),
    150: Option("tftp-server-address", Kind.IP_LIST),
    249: Option("ms-classless-static-routes", Kind.ROUTES),
    252: Option("wpad", Kind.STRING),
}
"""Known options, those the responder sets or reads too. 0 and 255 are framing (pad,
end), not options."""

RESERVED: Mapping[int, str] = {
    50: "requested address is sent by clients; a port's address is its ip_address",
    52: "option overload is how the responder lays out a reply",
    53: "the message type is set by the responder for each reply",
    54: "the server identifier is the address the controller answers from",
    55: "the parameter request list is sent by clients",
    57: "the maximum message size is sent by clients",
    61: "the client identifier is sent by clients",
    80: "rapid commit is negotiated with each client",
    81: "the client FQDN is negotiated with each client",
    82: "relay agent information is added by relays; the controller answers its own ports",
}
"""Codes an operator may not set through extra options, with why (0 and 255, pad and end,
are no options at all)."""


def label(code: int) -> str:
    """How messages name an option: `option 26 (interface-mtu)`, `option 200`."""
    known = OPTIONS.get(code)
    return f"option {code} ({known.name})" if known else f"option {code}"


def _ip(value: Any) -> bytes:
    if isinstance(value, str):
        try:
            return ipaddress.IPv4Address(value).packed
        except ValueError:
            pass
    raise OptionError(f"{value!r} is not an IPv4 address")


def _ip_list(value: Any) -> bytes:
    if not isinstance(value, list) or not value:
        raise OptionError(f"{value!r} is not a non-empty list of IPv4 addresses")
    return b"".join(_item(i, _ip, v) for i, v in enumerate(value))


def _item(index: int, encode_one: Callable[[Any], bytes], value: Any) -> bytes:
    try:
        return encode_one(value)
    except OptionError as exc:
        raise OptionError(f"[{index}]: {exc}") from None


def _is_int(value: Any, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def _integer(option: Option, value: Any) -> bytes:
    low, high = option.bounds
    if not _is_int(value, low, high):
        raise OptionError(f"{value!r} is not an integer {low}..{high}")
    return value.to_bytes(_INT_SIZES[option.kind], "big", signed=option.kind is Kind.INT32)


def _uint8_list(value: Any) -> bytes:
    if not isinstance(value, list) or not value or not all(_is_int(v, 0, 255) for v in value):
        raise OptionError(f"{value!r} is not a non-empty list of integers 0..255")
    return bytes(value)


def _string(value: Any) -> bytes:
    if not isinstance(value, str) or not value or not set(value) <= _TEXT:
        raise OptionError(f"{value!r} is not a non-empty string of printable ASCII")
    return value.encode("ascii")


def _bool(value: Any) -> bytes:
    if not isinstance(value, bool):
        raise OptionError(f"{value!r} is not true or false")
    return bytes([value])


def _hex(value: Any) -> bytes:
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise OptionError(
            f'{value!r} is not a hex string of whole bytes (like "0a0b"; "" for none)'
        )
    return bytes.fromhex(value)


def _route(value: Any) -> bytes:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, str) for v in value)
    ):
        raise OptionError(f'{value!r} is not a route ["destination/prefix", "nexthop"]')
    destination, nexthop = value
    try:
        network = ipaddress.IPv4Network(destination)
    except ValueError as exc:
        raise OptionError(f"{destination!r} is not an IPv4 network ({exc})") from None
    significant = network.network_address.packed[: (network.prefixlen + 7) // 8]
    return bytes([network.prefixlen]) + significant + _ip(nexthop)


def classless_routes(routes: Iterable[Sequence[str]]) -> bytes:
    """RFC 3442 payload (options 121, 249) of [destination CIDR, IPv4 next hop] pairs.

    Each route is the prefix length, the destination's significant octets, the next hop;
    "0.0.0.0/0" is the default route, a next hop of 0.0.0.0 a route on the link.
    """
    return b"".join(_item(i, _route, route) for i, route in enumerate(routes))


def _domains(value: Any) -> bytes:
    if not isinstance(value, list) or not value:
        raise OptionError(f"{value!r} is not a non-empty list of domain names")
    return b"".join(_item(i, _domain, name) for i, name in enumerate(value))


def _domain(value: Any) -> bytes:
    """RFC 1035 wire form, uncompressed (RFC 3397 allows, never requires, compression)."""
    labels = value.removesuffix(".").split(".") if isinstance(value, str) else []
    if not labels or not all(_LABEL.fullmatch(part) for part in labels):
        raise OptionError(
            f"{value!r} is not a domain name (labels of letters, digits and inner '-', "
            "at most 63 characters each, separated by '.')"
        )
    wire = b"".join(bytes([len(part)]) + part.encode("ascii") for part in labels) + b"\0"
    if len(wire) > 255:
        raise OptionError(f"{value!r} is longer than a domain name may be (255 bytes)")
    return wire


def _routes(value: Any) -> bytes:
    if not isinstance(value, list) or not value:
        raise OptionError(f'{value!r} is not a non-empty list of ["destination", "nexthop"]')
    return classless_routes(value)


_ENCODERS: Mapping[Kind, Callable[[Any], bytes]] = {
    Kind.IP: _ip,
    Kind.IP_LIST: _ip_list,
    Kind.STRING: _string,
    Kind.BOOL: _bool,
    Kind.UINT8_LIST: _uint8_list,
    Kind.ROUTES: _routes,
    Kind.DOMAINS: _domains,
    Kind.HEX: _hex,
}


def _option(code: int) -> Option:
    if isinstance(code, bool) or not isinstance(code, int) or not 1 <= code <= 254:
        raise OptionError(f"option codes are 1..254, not {code!r}")
    return OPTIONS.get(code, Option("", Kind.HEX))


def encode(code: int, value: Any) -> bytes:
    """The payload (no code, no length) of option `code` with the JSON `value`.

    Raises `OptionError` naming the option, the value and what it should be, like
    "option 26 (interface-mtu): 70000 is not an integer 68..65535".
    """
    option = _option(code)
    try:
        if option.kind in _INT_BOUNDS:
            payload = _integer(option, value)
        else:
            payload = _ENCODERS[option.kind](value)
    except OptionError as exc:
        raise OptionError(f"{label(code)}: {exc}") from None
    if len(payload) > MAX_PAYLOAD:
        raise OptionError(
            f"{label(code)}: {len(payload)} bytes, more than the {MAX_PAYLOAD} an option may carry"
        )
    return payload


def check_extra(code: int, value: Any) -> bytes:
    """`encode` for an option an operator sets (`extra_dhcp_options`): not a `RESERVED` one."""
    if code in RESERVED:
        raise OptionError(f"{label(code)}: cannot be set: {RESERVED[code]}")
    return encode(code, value)


# -- reading back -----------------------------------------------------------------------


def _read_ips(payload: bytes) -> list[str]:
    if not payload or len(payload) % 4:
        raise OptionError(f"{len(payload)} bytes is not a list of IPv4 addresses")
    return [str(ipaddress.IPv4Address(payload[i : i + 4])) for i in range(0, len(payload), 4)]


def _read_ip(payload: bytes) -> str:
    if len(payload) != 4:
        raise OptionError(f"{len(payload)} bytes is not an IPv4 address")
    return _read_ips(payload)[0]


def _read_string(payload: bytes) -> str:
    text = payload.decode("latin-1")
    if not text or not set(text) <= _TEXT:
        raise OptionError(f"{payload!r} is not a non-empty string of printable ASCII")
    return text


def _read_uint8_list(payload: bytes) -> list[int]:
    if not payload:
        raise OptionError("no values")
    return list(payload)


def _read_bool(payload: bytes) -> bool:
    if payload not in (b"\0", b"\1"):
        raise OptionError(f"{payload.hex()!r} is not a boolean (one byte, 0 or 1)")
    return payload == b"\1"


def _read_routes(payload: bytes) -> list[list[str]]:
    routes, at = [], 0
    while at < len(payload):
        width = payload[at]
        size = (width + 7) // 8
        if width > 32 or at + 1 + size + 4 > len(payload):
            raise OptionError(f"route at byte {at} is truncated or has a prefix length > 32")
        address = payload[at + 1 : at + 1 + size].ljust(4, b"\0")
        try:
            network = ipaddress.IPv4Network((address, width))
        except ValueError as exc:
            raise OptionError(f"route at byte {at}: {exc}") from None
        routes.append([str(network), _read_ip(payload[at + 1 + size : at + 5 + size])])
        at += 5 + size
    if not routes:
        raise OptionError("no routes")
    return routes


def _read_domains(payload: bytes) -> list[str]:
    """RFC 1035 names, one after another, compression pointers allowed (RFC 3397)."""
    names, at = [], 0
    while at < len(payload):
        name, at = _read_name(payload, at)
        names.append(name)
    if not names:
        raise OptionError("no domain names")
    return names


def _read_name(payload: bytes, at: int) -> tuple[str, int]:
    """The name at `at`, and where the next name starts; pointers only go backwards."""
    labels: list[str] = []
    end = None
    start = at
    while True:
        if at >= len(payload):
            raise OptionError(f"domain name at byte {start} is truncated")
        size = payload[at]
        if size & 0xC0 == 0xC0:
            if at + 1 >= len(payload):
                raise OptionError(f"domain name at byte {start} is truncated")
            target = (size & 0x3F) << 8 | payload[at + 1]
            if target >= start:
                raise OptionError(f"domain name at byte {start} points forwards")
            end = at + 2 if end is None else end
            at = start = target
            continue
        if size & 0xC0:
            raise OptionError(f"domain name at byte {start}: bad label length {size}")
        if size == 0:
            break
        labels.append(payload[at + 1 : at + 1 + size].decode("latin-1"))
        at += 1 + size
    if not labels:
        raise OptionError(f"domain name at byte {start} is empty")
    return ".".join(labels), at + 1 if end is None else end


def _read_integer(kind: Kind) -> Callable[[bytes], int]:
    def read(payload: bytes) -> int:
        if len(payload) != _INT_SIZES[kind]:
            raise OptionError(f"{len(payload)} bytes is not a {kind}")
        return int.from_bytes(payload, "big", signed=kind is Kind.INT32)

    return read


_DECODERS: Mapping[Kind, Callable[[bytes], Any]] = {
    Kind.IP: _read_ip,
    Kind.IP_LIST: _read_ips,
    Kind.STRING: _read_string,
    Kind.BOOL: _read_bool,
    Kind.UINT8_LIST: _read_uint8_list,
    Kind.ROUTES: _read_routes,
    Kind.DOMAINS: _read_domains,
    Kind.HEX: bytes.hex,
    **{kind: _read_integer(kind) for kind in _INT_SIZES},
}


def decode(code: int, payload: bytes) -> Any:
    """The JSON value of option `code` from its payload; `OptionError` if malformed.

    The inverse of `encode` on what it accepts: `decode(c, encode(c, v))` is the
    canonical form of `v` (addresses and networks as `ipaddress` prints them, hex in lower
    case, domain names without a final dot).
    """
    option = _option(code)
    try:
        value = _DECODERS[option.kind](payload)
        if option.kind in _INT_BOUNDS:
            _integer(option, value)
    except OptionError as exc:
        raise OptionError(f"{label(code)}: {exc}") from None
    return value


# -- framing ----------------------------------------------------------------------------


def frame(code: int, payload: bytes) -> bytes:
    """Code, length and payload; a payload over 255 bytes as several instances (RFC 3396)."""
    _option(code)
    chunks = [payload[i : i + 255] for i in range(0, len(payload), 255)] or [b""]
    return b"".join(bytes([code, len(chunk)]) + chunk for chunk in chunks)


def parse_options(data: bytes) -> dict[int, bytes]:
    """The options field of a DHCP message: {code: payload}, split instances joined.

    Pads are skipped and reading stops at end (255); an option running past the data is
    an `OptionError`, since a truncated message must not be half understood.
    """
    options: dict[int, bytes] = {}
    at = 0
    while at < len(data) and data[at] != 255:
        code = data[at]
        if code == 0:
            at += 1
            continue
        if at + 2 > len(data) or at + 2 + data[at + 1] > len(data):
            raise OptionError(f"option {code} at byte {at} runs past the end of the options")
        options[code] = options.get(code, b"") + data[at + 2 : at + 2 + data[at + 1]]
        at += 2 + data[at + 1]
    return options
