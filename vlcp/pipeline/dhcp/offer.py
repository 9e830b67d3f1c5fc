"""What a port is offered: its address and its options, taken port > subnet > network.

The lease is stateless: the port's address is fixed by the model, so the offer is a
function of the view (and the module's settings) alone, computed for each request. A
change of any option reaches a client at its next renewal, with no flow changed.

Choices (docs/pipeline.md, "DHCP"):

- the server identifier (54) is the subnet's gateway, or `Settings.server_address` on a
  subnet without one;
- the host name (12) is the port's `hostname`, or `host-<address with dashes>`
  (`host-10-0-0-5`): always a valid name, unlike a port id, and unique in the subnet;
- the classless routes (121, and 249 when the client asks for it) carry the subnet's IPv4
  `host_routes` and the default route via the gateway: a client that gets option 121
  ignores option 3 (RFC 3442), so the default route must be in it;
- the MTU (26) is the subnet's or network's `mtu`, else what the underlay carries
  (`Settings.underlay_mtu`, minus 50 on VXLAN);
- extra options (network < subnet < port) override vlcp's own for the same code, except
  the codes that run the protocol itself (the codec's `RESERVED`, refused when written);
  an extra lease time (51) leaves T1/T2 as `lease_time` gives them.

Every payload is encoded by the codec the model checks `extra_dhcp_options` with
(`vlcp.dhcp_options`), so what the model accepted is what is sent.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from vlcp.dhcp_options import OptionError, check_extra, classless_routes, encode

from ..view import INFINITE_LEASE, DhcpFields, DhcpOption, LocalPort, Network, Subnet, View, ipv4
from .settings import Settings

log = logging.getLogger(__name__)

SUBNET_MASK, ROUTER, DNS, HOST_NAME, DOMAIN_NAME = 1, 3, 6, 12, 15
INTERFACE_MTU, BROADCAST, NTP = 26, 28, 42
REQUESTED_ADDRESS, LEASE_TIME, MESSAGE_TYPE, SERVER_ID = 50, 51, 53, 54
PARAMETER_LIST, MESSAGE, MAX_MESSAGE_SIZE, RENEWAL_TIME, REBINDING_TIME = 55, 56, 57, 58, 59
CLASSLESS_ROUTES, MS_CLASSLESS_ROUTES = 121, 249
LEASE_CODES = frozenset({LEASE_TIME, RENEWAL_TIME, REBINDING_TIME})
ON_REQUEST_ONLY = frozenset({MS_CLASSLESS_ROUTES})
"""Sent only to a client that asks for them (249 repeats 121 for older Windows)."""
VXLAN_OVERHEAD = 50
DEFAULT_ROUTE = "0.0.0.0/0"


@dataclass(frozen=True, slots=True)
class Offer:
    """A port's lease: its address, the server identifier and the option payloads."""

    address: str
    server_id: str
    lease: Mapping[int, bytes]
    """Lease time and T1/T2 (not sent in an answer to INFORM)."""
    options: Mapping[int, bytes]
    """Every other option, by code. Both are shared between answers (`_offer` remembers
    offers): read them, never change them."""


def offer(view: View, port: LocalPort, settings: Settings) -> Offer | None:
    """The port's lease, or None: a port is answered only with an IPv4 address in a
    subnet of its network."""
    address = ipv4(port.ip)
    subnet = view.subnet_of(port)
    network = view.networks.get(port.network)
    if address is None or subnet is None or network is None:
        return None
    return _offer(address, port, subnet, network, settings)


@functools.lru_cache(maxsize=4096)
def _offer(
    address: str, port: LocalPort, subnet: Subnet, network: Network, settings: Settings
) -> Offer:
    """`offer` from the values it depends on, all immutable: remembered, because a lease
    takes two requests (and a renewal one more) with the same answer, and encoding the
    options was half the cost of answering. A changed port, subnet, network or setting is
    another value, hence a new entry; the oldest go first (bounded memory)."""
    fields = merged(subnet.dhcp, network.dhcp)
    net = ipaddress.IPv4Network(subnet.cidr)
    values: dict[int, Any] = {
        SUBNET_MASK: str(net.netmask),
        BROADCAST: str(net.broadcast_address),
        INTERFACE_MTU: mtu(fields, network, settings),
        HOST_NAME: port.hostname or f"host-{address.replace('.', '-')}",
        DNS: _ipv4(fields.dns_nameservers),
        NTP: _ipv4(fields.ntp_servers),
        DOMAIN_NAME: fields.domain_name,
        ROUTER: [subnet.gateway] if subnet.gateway is not None else None,
        **lease_values(fields.lease_time or settings.lease_time),
    }
    options = {code: encode(code, value) for code, value in values.items() if value}
    routes = classless_routes(routes_of(subnet))
    if routes:
        options[CLASSLESS_ROUTES] = options[MS_CLASSLESS_ROUTES] = routes
    options.update(extra_options((*fields.extra, *port.dhcp_extra)))
    lease = {c: options.pop(c) for c in sorted(LEASE_CODES & options.keys())}
    return Offer(
        address=address,
        server_id=subnet.gateway or settings.server_address,
        lease=MappingProxyType(lease),
        options=MappingProxyType(options),
    )


def merged(subnet: DhcpFields, network: DhcpFields) -> DhcpFields:
    """The subnet's settings, each one it leaves unset taken from the network's; extra
    options merged by code, the subnet's winning."""
    values = {
        f.name: getattr(network, f.name)
        if getattr(subnet, f.name) is None
        else getattr(subnet, f.name)
        for f in dataclasses.fields(DhcpFields)
        if f.name != "extra"
    }
    extra = {o.code: o for o in (*network.extra, *subnet.extra)}
    return DhcpFields(**values, extra=tuple(extra.values()))


def mtu(fields: DhcpFields, network: Network, settings: Settings) -> int:
    """The explicit MTU, else what the network's underlay carries."""
    if fields.mtu is not None:
        return fields.mtu
    overhead = VXLAN_OVERHEAD if network.type == "vxlan" else 0
    return settings.underlay_mtu - overhead


def lease_values(seconds: int) -> dict[int, int]:
    """Lease time, and T1 (half) and T2 (seven eighths) as RFC 2131 suggests; an
    infinite lease has neither (there is nothing to renew)."""
    if seconds == INFINITE_LEASE:
        return {LEASE_TIME: seconds}
    return {LEASE_TIME: seconds, RENEWAL_TIME: seconds // 2, REBINDING_TIME: seconds * 7 // 8}


def routes_of(subnet: Subnet) -> list[tuple[str, str]]:
    """Option 121's routes (RFC 3442): the subnet's IPv4 host routes, then the default
    route via the gateway unless a host route already is one."""
    routes = [
        (dst, hop)
        for dst, hop in subnet.host_routes
        if ipaddress.ip_network(dst).version == 4 and ipaddress.ip_address(hop).version == 4
    ]
    if subnet.gateway is not None and all(dst != DEFAULT_ROUTE for dst, _ in routes):
        routes.append((DEFAULT_ROUTE, subnet.gateway))
    return routes


def extra_options(extra: Iterable[DhcpOption]) -> dict[int, bytes]:
    """`extra_dhcp_options` payloads, later ones winning for a code. The model checked each
    with the same codec when it was written; one it refuses now (stored before the check
    existed) is left out, not the reply."""
    payloads: dict[int, bytes] = {}
    for option in extra:
        try:
            payloads[option.code] = check_extra(option.code, option.value)
        except OptionError as exc:
            log.debug("extra DHCP option left out: %s", exc)
    return payloads


def _ipv4(addresses: Iterable[str] | None) -> list[str]:
    """The IPv4 addresses (an IPv6 DNS server is for DHCPv6, not here)."""
    return [a for a in addresses or () if ipv4(a) is not None]
