"""The DHCP module's settings (`vlcp module configure dhcp --settings JSON`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from vlcp.typed import Typed, setting, unicast_mac


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 address") from exc


@dataclass(frozen=True)
class Settings(Typed):
    """What an operator may choose; the defaults serve a plain 1500-byte underlay.
    Frozen (hence hashable): offers are remembered per settings value."""

    underlay_mtu: int = setting(1500, ge=118, le=65535)
    """The MTU of the servers' underlay. A network's default MTU is what it can carry:
    for VXLAN this minus the 50 bytes of encapsulation (outer Ethernet, IPv4, UDP, VXLAN),
    for the others this. An explicit `mtu` on the subnet or network wins."""
    lease_time: int = setting(86400, ge=1, le=0xFFFFFFFF)
    """Seconds, when neither the subnet nor the network gives one. Leases are stateless
    (the address is the port's), so the lease time is only how soon a client sees a
    changed option."""
    server_mac: str = setting("02:76:6c:63:70:01", check=unicast_mac)
    """The source MAC of replies: locally administered, "vlcp" in its middle bytes."""
    server_address: str = setting("169.254.0.67", check=_ipv4)
    """The server identifier (option 54) on a subnet without a gateway (with one, the
    gateway is the server identifier). Link-local, so it is never a workload's address;
    a client unicasts its renewal there, fails without a route, and rebinds by broadcast,
    which is answered like the first request."""
