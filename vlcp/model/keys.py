"""Where each object and each derived fact lives in the store (see docs/model.md).

One key per object (`lport/<id>`), a small state document per parent that serialises the
creation of children and guards deletion (`lognet-state/<id>`), and one key per allocated
value (`lognet-mac/<lognet>/<mac>`) so no document grows with the number of objects.

The one exception is `VNI_RANGES`, the vnirange of every vxlan physical network: it grows
with the number of vxlan physical networks (tens), never with the objects under them. A
VNI is global on the shared underlay, so a range must be checked against every other one,
and a transaction cannot read a prefix: one key that every range change reads and writes
is what makes two concurrent overlapping creations collide.
"""

from __future__ import annotations

import ipaddress
import re

from .errors import Invalid

ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._:@+=~-]{0,63}$"
"""Ids become one store key segment, so they use only the characters keys allow."""
_ID_RE = re.compile(ID_PATTERN[1:-1])

# REST kind names, their store prefixes and how messages call them.
PHYSNETS = "physical-networks"
PHYSPORTS = "physical-ports"
LOGNETS = "logical-networks"
LPORTS = "logical-ports"
SUBNETS = "subnets"
ROUTERS = "routers"
ROUTER_INTERFACES = "router-interfaces"
KINDS = (PHYSNETS, PHYSPORTS, LOGNETS, LPORTS, SUBNETS, ROUTERS)

PREFIX = {
    PHYSNETS: "physnet",
    PHYSPORTS: "physport",
    LOGNETS: "lognet",
    LPORTS: "lport",
    SUBNETS: "subnet",
    ROUTERS: "router",
}
NOUN = {
    PHYSNETS: "physical network",
    PHYSPORTS: "physical port",
    LOGNETS: "logical network",
    LPORTS: "logical port",
    SUBNETS: "subnet",
    ROUTERS: "router",
}

WILDCARD = "%"
"""Physical port selectors: '%' matches any system-id or bridge."""
_KEY_WILDCARD = "_~"
"""'%' (and the empty vhost) in a key segment: '%' is not a key character and a segment may
not start with '~', so '_~'; selectors never contain '~', so it cannot clash with a name."""


def check_id(value: object, field: str = "id") -> str:
    """`value` if it is a valid id, else `Invalid` saying what an id may contain."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise Invalid(
            f"{field}: {value!r} is not a valid id (1 to 64 letters, digits or ._:@+=~-, "
            "the first one a letter, digit or _)",
            field=field,
        )
    return value


def object_key(kind: str, id: str) -> str:
    return f"{PREFIX[kind]}/{id}"


def kind_prefix(kind: str) -> str:
    """The store prefix holding every object of `kind` (and nothing else)."""
    return f"{PREFIX[kind]}/"


def physnet_state(id: str) -> str:
    return f"physnet-state/{id}"


def lognet_state(id: str) -> str:
    return f"lognet-state/{id}"


def subnet_state(id: str) -> str:
    return f"subnet-state/{id}"


def physnet_tags(physnet: str) -> str:
    """The prefix of `physnet_tag` keys: listing it names the network's logical networks."""
    return f"physnet-tag/{physnet}/"


def physnet_tag(physnet: str, tag: int) -> str:
    """VLAN id or VNI `tag` of a physical network -> the logical network using it."""
    return f"{physnet_tags(physnet)}{tag}"


VNI_RANGES = "physnet-vni-ranges"
"""{vxlan physical network id: its vnirange}; absent while there is no vxlan network."""


NATIVE_TAG = 0
"""The tag key a native network's one logical network holds (at most one per network)."""


def lognet_macs(lognet: str) -> str:
    """The prefix of `lognet_mac` keys: listing it names the network's ports."""
    return f"lognet-mac/{lognet}/"


def lognet_mac(lognet: str, mac: str) -> str:
    return f"{lognet_macs(lognet)}{mac}"


def subnet_ips(subnet: str) -> str:
    """The prefix of `subnet_ip` keys: listing it names the ports and routers holding one."""
    return f"subnet-ip/{subnet}/"


def subnet_ip(subnet: str, ip: str) -> str:
    """An address of a subnet -> the port id, or 'router:<id>' for a router interface.

    IPv6 addresses are written exploded: a compressed one may start with ':', which a key
    segment may not.
    """
    address = ipaddress.ip_address(ip)
    text = address.exploded if address.version == 6 else str(address)
    return f"{subnet_ips(subnet)}{text}"


PORT_STATUSES = "lport-status/"


def port_status(id: str) -> str:
    """Written by the controller that binds the port: {"state", "host", "since"}.
    Durable, like `netports_key`."""
    return f"{PORT_STATUSES}{id}"


NETPORTS = "netports/"
"""Where each bound port is: `netports/<network>/<port>`, written by the controller that
binds it ({"host", "vtep", "mac", "ip", "bound_at"}). Durable: a controller restart or a
store outage never removes it; the binding server's own decisions do, and so does
deleting the port or the operator forgetting the server (`vlcp server forget`)."""


def netports_key(network: str, port: str) -> str:
    return f"{NETPORTS}{network}/{port}"


def chassis_key(system_id: str) -> str:
    """A running controller's presence ({"vtep", "bridge", "node"}): a session key."""
    return f"chassis/{system_id}"


def _segment(value: str) -> str:
    if value in ("", WILDCARD):
        return _KEY_WILDCARD
    return value


def physport_key(vhost: str, systemid: str, bridge: str, name: str) -> str:
    """Uniqueness of (vhost, systemid, bridge, name) among all physical ports."""
    return f"physport-key/{_segment(vhost)}/{_segment(systemid)}/{_segment(bridge)}/{name}"


def physnet_ports(physnet: str) -> str:
    """The prefix of `physnet_port` keys: listing it names the network's physical ports."""
    return f"physnet-port/{physnet}/"


def physnet_port(physnet: str, vhost: str, systemid: str, bridge: str) -> str:
    """The physical port carrying `physnet` for one (vhost, systemid, bridge) selector."""
    selector = f"{_segment(vhost)}/{_segment(systemid)}/{_segment(bridge)}"
    return f"{physnet_ports(physnet)}{selector}"


ROUTER_OWNER = "router:"
"""Prefix of a subnet-ip value held by a router interface rather than a port."""
