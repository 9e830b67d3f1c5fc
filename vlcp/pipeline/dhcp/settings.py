"""The DHCP module's settings (`vlcp module configure dhcp --settings JSON`)."""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class Settings(BaseModel):
    """What an operator may choose; the defaults serve a plain 1500-byte underlay.
    Frozen (hence hashable): offers are remembered per settings value."""

    model_config = ConfigDict(frozen=True)

    underlay_mtu: int = Field(1500, ge=118, le=65535)
    """The MTU of the servers' underlay. A network's default MTU is what it can carry:
    for VXLAN this minus the 50 bytes of encapsulation (outer Ethernet, IPv4, UDP, VXLAN),
    for the others this. An explicit `mtu` on the subnet or network wins."""
    lease_time: int = Field(86400, ge=1, le=0xFFFFFFFF)
    """Seconds, when neither the subnet nor the network gives one. Leases are stateless
    (the address is the port's), so the lease time is only how soon a client sees a
    changed option."""
    server_mac: str = "02:76:6c:63:70:01"
    """The source MAC of replies: locally administered, "vlcp" in its middle bytes."""
    server_address: str = "169.254.0.67"
    """The server identifier (option 54) on a subnet without a gateway (with one, the
    gateway is the server identifier). Link-local, so it is never a workload's address;
    a client unicasts its renewal there, fails without a route, and rebinds by broadcast,
    which is answered like the first request."""

    @field_validator("server_mac")
    @classmethod
    def _mac(cls, value: str) -> str:
        mac = value.lower()
        if not _MAC.match(mac) or int(mac[:2], 16) & 1:
            raise ValueError(f"{value!r} is not a unicast MAC address")
        return mac

    @field_validator("server_address")
    @classmethod
    def _address(cls, value: str) -> str:
        return str(ipaddress.IPv4Address(value))
