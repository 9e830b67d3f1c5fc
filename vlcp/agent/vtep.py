"""Where this server's tunnel endpoint comes from: an address, or an interface's address.

`[agent] vtep = "iface:eth1"` spares one configuration file per server when every server
carries its underlay on the same interface name (the way OVN reads `ovn-encap-ip` or
flannel `--iface`). It is read once, when vlcp starts.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

SIOCGIFADDR = 0x8915
"""Linux ioctl: an interface's (first) IPv4 address."""
IFACE_PREFIX = "iface:"


def resolve_vtep(spec: str | None) -> str | None:
    """The IPv4 address `spec` names: itself, or for "iface:NAME" NAME's address."""
    if spec is None or not spec.startswith(IFACE_PREFIX):
        return None if spec is None else str(ipaddress.IPv4Address(spec))
    return interface_ipv4(spec.removeprefix(IFACE_PREFIX))


def interface_ipv4(name: str) -> str:
    """The IPv4 address of interface `name`; ValueError naming it if there is none."""
    request = struct.pack("256s", name.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            reply = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
        except OSError as exc:
            raise ValueError(f"interface {name!r} has no IPv4 address ({exc.strerror})") from None
    return socket.inet_ntoa(reply[20:24])
