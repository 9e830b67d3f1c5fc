"""Value checks with precise messages: which field, which value, and why it is refused.

Pydantic (`objects.py`) checks types; these check meaning (ranges, addresses, names), and
return the canonical form that is stored, so equal values are always written alike (a MAC
in lower case with ':', an IPv6 address compressed).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from typing import Any

from vlcp import dhcp_options as dhcp

from .errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

VLAN_BOUNDS = (1, 4094)
VNI_BOUNDS = (1, (1 << 24) - 1)
MTU_BOUNDS = (68, 65535)
LEASE_BOUNDS = (1, (1 << 32) - 1)
DHCP_OPTION_BOUNDS = (1, 254)
MAX_ADDRESS_PAIRS = 10
"""Allowed address pairs per logical port: each costs two flows on the port's server (four
when it names a MAC of its own), and the uses (a VRRP/keepalived address, a container or
VPN range behind a VM) need a few."""

EXTRA_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
EXTRA_NAME_PATTERN = f"^{EXTRA_NAME.pattern}$"
_MAC = re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_SELECTOR = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._:@+=-]{0,63}")


def in_bounds(value: int, bounds: tuple[int, int], field: str) -> int:
    low, high = bounds
    if not low <= value <= high:
        raise Invalid(f"{field}: {value} is not in {low}..{high}", field=field)
    return value


def ranges(value: list[list[int]], bounds: tuple[int, int], field: str) -> list[list[int]]:
    """Inclusive [start, end] ranges inside `bounds`, not overlapping; sorted by start."""
    if not value:
        raise Invalid(f"{field}: needs at least one [start, end] range", field=field)
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if len(item) != 2:
            raise Invalid(f"{where}: a range is [start, end], not {item}", field=where)
        start, end = item
        in_bounds(start, bounds, where)
        in_bounds(end, bounds, where)
        if start > end:
            raise Invalid(f"{where}: start {start} is after end {end}", field=where)
    order = sorted(range(len(value)), key=lambda i: value[i][0])
    for before, after in itertools.pairwise(order):
        if value[after][0] <= value[before][1]:
            raise Invalid(
                f"{field}[{after}]: {value[after]} overlaps {field}[{before}]: {value[before]}",
                field=f"{field}[{after}]",
            )
    return [list(value[i]) for i in order]


def range_size(spans: list[list[int]]) -> int:
    return sum(end - start + 1 for start, end in spans)


def in_ranges(value: int, spans: list[list[int]]) -> bool:
    return any(start <= value <= end for start, end in spans)


def mac(value: str, field: str = "mac_address") -> str:
    """A unicast MAC address, returned lower case with ':'."""
    text = value.strip().lower()
    if not _MAC.fullmatch(text):
        raise Invalid(
            f"{field}: {value!r} is not a MAC address (six hex pairs like 02:00:00:00:00:01)",
            field=field,
        )
    text = text.replace("-", ":")
    if int(text[:2], 16) & 1:
        raise Invalid(f"{field}: {text} is a multicast address", field=field)
    if text == "00:00:00:00:00:00":
        raise Invalid(f"{field}: 00:00:00:00:00:00 is not a usable address", field=field)
    return text


def ip(value: str, field: str, version: int | None = None) -> IPAddress:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise Invalid(f"{field}: {value!r} is not an IP address", field=field) from None
    if getattr(address, "scope_id", None):
        raise Invalid(f"{field}: {value!r} has a scope; give the address alone", field=field)
    if version is not None and address.version != version:
        raise Invalid(f"{field}: {value} is not an IPv{version} address", field=field)
    return address


def cidr(value: str, field: str = "cidr") -> IPNetwork:
    """A network in CIDR notation without host bits (10.0.0.0/24, not 10.0.0.5/24)."""
    if "/" not in value:
        raise Invalid(f"{field}: {value!r} is not in CIDR notation (like 10.0.0.0/24)", field=field)
    try:
        return ipaddress.ip_network(value)
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise Invalid(
                f"{field}: {value!r} is not a network in CIDR notation", field=field
            ) from None
        raise Invalid(
            f"{field}: {value} has host bits set; the network is {loose}", field=field
        ) from None


def usable_range(network: IPNetwork) -> tuple[int, int]:
    """First and last host address as integers (no network/broadcast address when they exist)."""
    first, last = int(network.network_address), int(network.broadcast_address)
    if network.version == 4 and network.prefixlen <= 30:
        return first + 1, last - 1
    if network.version == 6 and network.prefixlen <= 126:
        return first + 1, last
    return first, last


def host_in(address: IPAddress, network: IPNetwork, field: str, owner: str) -> IPAddress:
    """`address` is a usable host address of `network` (`owner` names it in messages)."""
    if address.version != network.version or address not in network:
        raise Invalid(f"{field}: {address} is not in {owner} ({network})", field=field)
    first, last = usable_range(network)
    if not first <= int(address) <= last:
        raise Invalid(
            f"{field}: {address} is the network or broadcast address of {owner} ({network})",
            field=field,
        )
    return address


def source_network(value: str, field: str) -> IPNetwork:
    """An address or network (CIDR, no host bits) a port may send from: unicast only."""
    network = cidr(value, field) if "/" in value else ipaddress.ip_network(ip(value, field))
    single = network.num_addresses == 1
    address = network.network_address
    if network.is_multicast or network.is_loopback:
        kind = "multicast" if network.is_multicast else "loopback"
        raise Invalid(
            f"{field}: {value} is {kind}; a port sends from unicast addresses", field=field
        )
    if single and (address.is_unspecified or address == ipaddress.IPv4Address("255.255.255.255")):
        raise Invalid(
            f"{field}: {value} is not a source address (DHCP clients may use 0.0.0.0 anyway)",
            field=field,
        )
    return network


def address_pairs(value: list[Any], field: str = "allowed_address_pairs") -> list[dict[str, str]]:
    """[{"ip_address": address or CIDR, "mac_address": MAC (optional)}], canonical, distinct.

    A single address is stored without a prefix length ("10.0.0.9", not "10.0.0.9/32"), a
    MAC in lower case with ':'; a pair without a MAC means the port's own MAC (it follows
    the port if its MAC changes).
    """
    if len(value) > MAX_ADDRESS_PAIRS:
        raise Invalid(
            f"{field}: {len(value)} pairs, at most {MAX_ADDRESS_PAIRS} are allowed", field=field
        )
    result: list[dict[str, str]] = []
    seen: dict[tuple[str, str | None], int] = {}
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("ip_address"), str)
            or not isinstance(item.get("mac_address"), str | None)
            or not set(item) <= {"ip_address", "mac_address"}
        ):
            raise Invalid(
                f'{where}: a pair is {{"ip_address": ..., "mac_address": ...}}', field=where
            )
        network = source_network(item["ip_address"], f"{where}.ip_address")
        pair = {
            "ip_address": str(network.network_address if network.num_addresses == 1 else network)
        }
        if item.get("mac_address") is not None:
            pair["mac_address"] = mac(item["mac_address"], f"{where}.mac_address")
        key = (pair["ip_address"], pair.get("mac_address"))
        if key in seen:
            raise Invalid(f"{where}: repeats {field}[{seen[key]}]", field=where)
        seen[key] = index
        result.append(pair)
    return result


def hostname(value: str, field: str = "hostname") -> str:
    """A DNS host name: dot-separated labels of letters, digits and inner '-'."""
    if len(value) > 253 or not value or not all(_LABEL.fullmatch(p) for p in value.split(".")):
        raise Invalid(
            f"{field}: {value!r} is not a host name (labels of letters, digits and inner '-', "
            "at most 63 characters each, separated by '.')",
            field=field,
        )
    return value


def addresses(values: list[str], field: str) -> list[str]:
    return [str(ip(v, f"{field}[{i}]")) for i, v in enumerate(values)]


def dhcp_options(value: dict[str, Any], field: str = "extra_dhcp_options") -> dict[str, Any]:
    """{"<code>": value}: option codes 1..254 written in decimal, values of the option's type.

    Each value is encoded now with the codec the DHCP responder sends it with, so a bad
    one is refused here, naming it, and never breaks a reply; what is stored is the
    canonical form the codec reads back (addresses compressed, hex in lower case).
    """
    result = {}
    for code, item in value.items():
        where = f"{field}.{code}"
        if not code.isdigit() or not code.isascii() or str(int(code)) != code:
            raise Invalid(f"{where}: option codes are decimal numbers, not {code!r}", field=where)
        number = in_bounds(int(code), DHCP_OPTION_BOUNDS, where)
        try:
            result[code] = dhcp.decode(number, dhcp.check_extra(number, item))
        except dhcp.OptionError as exc:
            raise Invalid(f"{where}: {exc}", field=where) from None
    return result


def routes(value: list[list[str]], field: str) -> list[list[str]]:
    """[[destination cidr, next hop], ...] with the next hop of the destination's IP version."""
    result = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if len(item) != 2:
            raise Invalid(f"{where}: a route is [destination, nexthop], not {item}", field=where)
        network = cidr(item[0], f"{where}[0]")
        nexthop = ip(item[1], f"{where}[1]", network.version)
        result.append([str(network), str(nexthop)])
    return result


def host_routes(
    value: list[list[str]], network: IPNetwork, field: str = "host_routes"
) -> list[list[str]]:
    """A subnet's `routes`, given to its DHCP clients: of the subnet's IP version and, for
    IPv4, fitting one classless static routes option (121) with the default route."""
    result = routes(value, field)
    for index, (destination, _) in enumerate(result):
        if ipaddress.ip_network(destination).version != network.version:
            where = f"{field}[{index}][0]"
            raise Invalid(
                f"{where}: {destination} is not an IPv{network.version} network like the "
                f"subnet ({network})",
                field=where,
            )
    if network.version == 4 and result:
        try:
            dhcp.encode(121, [*result, ["0.0.0.0/0", "0.0.0.0"]])
        except dhcp.OptionError as exc:
            raise Invalid(f"{field}: with the default route, {exc}", field=field) from None
    return result


def selector(value: str, field: str, *, wildcard: bool, empty: bool = False) -> str:
    """A physical port name or selector: key-safe characters, or '%' (any) where allowed."""
    if (wildcard and value == "%") or (empty and value == ""):
        return value
    if not _SELECTOR.fullmatch(value):
        allowed = " or '%' for any" if wildcard else ""
        raise Invalid(
            f"{field}: {value!r} must be 1 to 64 letters, digits or ._:@+=-{allowed}",
            field=field,
        )
    return value


def json_value(value: Any, field: str) -> Any:
    """A value that JSON can carry: finite numbers, string keys, valid Unicode, sane depth."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise Invalid(f"{field}: contains text that is not valid Unicode", field=field) from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise Invalid(f"{field}: not a JSON value ({exc})", field=field) from None
    return value


def extra_attributes(extra: dict[str, Any], reserved: frozenset[str]) -> dict[str, Any]:
    """Unknown fields kept as attributes: names like `rack_id`, JSON values, no shadowing."""
    for name, value in extra.items():
        if name in reserved:
            raise Invalid(f"{name}: is a field of the model and cannot be set here", field=name)
        if not EXTRA_NAME.fullmatch(name):
            raise Invalid(
                f"{name}: unknown field (extra attributes are named like {EXTRA_NAME_PATTERN})",
                field=name,
            )
        json_value(value, name)
    return extra


def subtract(spans: list[list[int]], minus: list[list[int]]) -> list[list[int]]:
    """The values of `spans` not in `minus`, as sorted inclusive ranges."""
    result = []
    for first, last in spans:
        pieces = [[first, last]]
        for low, high in minus:
            pieces = [
                part
                for a, b in pieces
                for part in ([a, min(b, low - 1)], [max(a, high + 1), b])
                if part[0] <= part[1]
            ]
        result.extend(pieces)
    return sorted(result)


def dhcp_fields(values: dict[str, Any]) -> None:
    """Check (and canonicalise in place) the DHCP settings networks and subnets share."""
    if values.get("mtu") is not None:
        in_bounds(values["mtu"], MTU_BOUNDS, "mtu")
    if values.get("lease_time") is not None:
        in_bounds(values["lease_time"], LEASE_BOUNDS, "lease_time")
    for field in ("dns_nameservers", "ntp_servers"):
        if values.get(field) is not None:
            values[field] = addresses(values[field], field)
    if values.get("domain_name") is not None:
        hostname(values["domain_name"], "domain_name")
    if values.get("extra_dhcp_options") is not None:
        values["extra_dhcp_options"] = dhcp_options(values["extra_dhcp_options"])
