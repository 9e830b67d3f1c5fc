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
- extra options override vlcp's own for the same code, except the codes that run the
  protocol itself (`PROTOCOL_CODES`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from ..view import INFINITE_LEASE, DhcpFields, LocalPort, Network, Subnet, View, ipv4
from .settings import Settings

SUBNET_MASK, ROUTER, DNS, HOST_NAME, DOMAIN_NAME = 1, 3, 6, 12, 15
INTERFACE_MTU, BROADCAST, NTP = 26, 28, 42
REQUESTED_ADDRESS, LEASE_TIME, MESSAGE_TYPE, SERVER_ID = 50, 51, 53, 54
PARAMETER_LIST, MESSAGE, MAX_MESSAGE_SIZE, RENEWAL_TIME, REBINDING_TIME = 55, 56, 57, 58, 59
CLASSLESS_ROUTES, MS_CLASSLESS_ROUTES = 121, 249
PROTOCOL_CODES = frozenset({0, 50, 52, 53, 54, 55, 57, 61, 82, 255})
"""Codes an extra option may not set: they carry the exchange, not configuration."""
ON_REQUEST_ONLY = frozenset({MS_CLASSLESS_ROUTES})
"""Sent only to a client that asks for them (249 repeats 121 for older Windows)."""
VXLAN_OVERHEAD = 50


@dataclass(frozen=True, slots=True)
class Offer:
    """A port's lease: its address, the server identifier and the options."""

    address: str
    server_id: str
    lease: dict[int, bytes]
    """Lease time and T1/T2 (not sent in an answer to INFORM)."""
    options: dict[int, bytes]
    """Every other option, by code."""


def offer(view: View, port: LocalPort, settings: Settings) -> Offer | None:
    """The port's lease, or None: a port is answered only with an IPv4 address in a
    subnet of its network."""
    address = ipv4(port.ip)
    subnet = view.subnet_of(port)
    network = view.networks.get(port.network)
    if address is None or subnet is None or network is None:
        return None
    fields = merged(subnet.dhcp, network.dhcp)
    net = ipaddress.IPv4Network(subnet.cidr)
    options: dict[int, bytes] = {
        SUBNET_MASK: net.netmask.packed,
        BROADCAST: net.broadcast_address.packed,
        INTERFACE_MTU: struct.pack("!H", mtu(fields, network, settings)),
        HOST_NAME: (port.hostname or f"host-{address.replace('.', '-')}").encode(),
    }
    if subnet.gateway is not None:
        options[ROUTER] = ipaddress.IPv4Address(subnet.gateway).packed
    routes = classless_routes(subnet)
    if routes:
        options[CLASSLESS_ROUTES] = options[MS_CLASSLESS_ROUTES] = routes
    for code, servers in ((DNS, fields.dns_nameservers), (NTP, fields.ntp_servers)):
        packed = _addresses(servers or ())
        if packed:
            options[code] = packed
    if fields.domain_name:
        options[DOMAIN_NAME] = fields.domain_name.encode()
    seconds = fields.lease_time or settings.lease_time
    return Offer(
        address=address,
        server_id=subnet.gateway or settings.server_address,
        lease=lease_options(seconds),
        options=options,
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


def lease_options(seconds: int) -> dict[int, bytes]:
    """Lease time, and T1 (half) and T2 (seven eighths) as RFC 2131 suggests; an
    infinite lease has neither (there is nothing to renew)."""
    options = {LEASE_TIME: struct.pack("!I", seconds)}
    if seconds != INFINITE_LEASE:
        options[RENEWAL_TIME] = struct.pack("!I", seconds // 2)
        options[REBINDING_TIME] = struct.pack("!I", seconds * 7 // 8)
    return options


def classless_routes(subnet: Subnet) -> bytes:
    """Option 121's payload (RFC 3442): the subnet's IPv4 host routes, then the default
    route via the gateway unless a host route already is one."""
    routes = [
        (ipaddress.IPv4Network(dst), ipaddress.IPv4Address(hop))
        for dst, hop in subnet.host_routes
        if ipaddress.ip_network(dst).version == 4 and ipaddress.ip_address(hop).version == 4
    ]
    default = ipaddress.IPv4Network("0.0.0.0/0")
    if subnet.gateway is not None and all(dst != default for dst, _ in routes):
        routes.append((default, ipaddress.IPv4Address(subnet.gateway)))
    return b"".join(
        bytes((dst.prefixlen,))
        + dst.network_address.packed[: (dst.prefixlen + 7) // 8]
        + hop.packed
        for dst, hop in routes
    )


def _addresses(addresses: Iterable[str]) -> bytes:
    """IPv4 addresses packed (an IPv6 DNS server is for DHCPv6, not here)."""
    return b"".join(ipaddress.IPv4Address(a).packed for a in addresses if ipv4(a) is not None)
