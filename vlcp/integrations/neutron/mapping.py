"""Neutron's resources as REST v1 bodies: pure functions, no Neutron and no I/O.

Neutron's dicts (what ML2 hands a mechanism driver as `context.current`) go in, vlcp's
bodies come out, with Neutron's ids as vlcp's ids so that either side's id finds the other's
object and a repair (`sync`) needs no table of its own. What vlcp cannot represent raises
`Unsupported`, whose message the driver shows the Neutron user as it is.

Bodies for a create leave out what Neutron did not set; `*_changes` bodies carry every
field, None included, because in a PATCH None clears what Neutron cleared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from typing import Any

Body = dict[str, Any]

NEUTRON_OWNED = "neutron"
"""The extra attribute (value True) that marks a logical network, port or router as
Neutron's, so that `sync` repairs and deletes in vlcp only what Neutron made."""

ROUTER_OWNERS = frozenset(
    {"network:router_interface", "network:router_gateway", "network:router_interface_distributed"}
)
"""Ports that stand for a router's leg: vlcp's router interface is the subnet's gateway on
its distributed router, not a logical port, so these are not mapped to ports."""

ROUTER_INTERFACE_OWNERS = frozenset(
    {"network:router_interface", "network:router_interface_distributed"}
)
"""The router ports that are a router's interfaces on its subnets (its `device_id` is the
router's id); a gateway port is on an external network, which vlcp does not map yet."""


class Unsupported(ValueError):
    """A Neutron resource vlcp cannot represent; the message says what and why."""


@dataclass(frozen=True)
class Settings:
    """Which vlcp physical network carries each kind of Neutron segment.

    The physical networks (and their physical ports on each server) are the operator's,
    made once through vlcp's API like the bridge mappings of an OVS agent: the driver
    only names them.
    """

    physical_networks: Mapping[str, str] = field(default_factory=dict)
    """Neutron `provider:physical_network` -> vlcp physical network id (default: the same)."""
    vxlan_physical_network: str = "vxlan"
    """The vlcp vxlan physical network whose VNI range covers Neutron's `vni_ranges`."""


def physical_network(segment: Mapping[str, Any], settings: Settings) -> str:
    """The vlcp physical network of a Neutron segment (flat, vlan or vxlan)."""
    kind = segment.get("network_type")
    if kind in ("flat", "vlan"):
        name = str(segment.get("physical_network"))
        return settings.physical_networks.get(name, name)
    if kind == "vxlan":
        return settings.vxlan_physical_network
    raise Unsupported(f"vlcp carries flat, vlan and vxlan networks, not {kind!r} ones")


def logical_network(
    network: Mapping[str, Any], segments: list[Mapping[str, Any]], settings: Settings
) -> Body:
    """A create body for the logical network of a Neutron network of one segment: the
    segment's VLAN id or VNI as vlcp's tag, Neutron's MTU for DHCP option 26."""
    if len(segments) != 1:
        raise Unsupported(f"vlcp maps a network of one segment, not {len(segments)}")
    segment = segments[0]
    body: Body = {
        "id": network["id"],
        "physicalnetwork": physical_network(segment, settings),
        NEUTRON_OWNED: True,
    }
    tag = segment.get("segmentation_id")
    if segment["network_type"] == "vlan":
        body["vlanid"] = tag
    elif segment["network_type"] == "vxlan":
        body["vni"] = tag
    if network.get("mtu"):
        body["mtu"] = network["mtu"]
    return body


def logical_network_changes(network: Mapping[str, Any]) -> Body:
    """What an update of a Neutron network may change in vlcp: its MTU."""
    return {"mtu": network.get("mtu") or None}


def is_ipv4(address: str) -> bool:
    return ip_address(address.split("/")[0]).version == 4


def subnet_changes(subnet: Mapping[str, Any]) -> Body:
    """Every DHCP and addressing field of a Neutron subnet as vlcp's subnet has them.

    Neutron's pools (a list) become vlcp's one pool, from the lowest start to the highest
    end: vlcp allocates from it only for ports without an address, and every Neutron port
    comes with its own, chosen by Neutron's IPAM from Neutron's pools."""
    pools = subnet.get("allocation_pools") or []
    routes = [[r["destination"], r["nexthop"]] for r in subnet.get("host_routes") or []]
    dns = [server for server in subnet.get("dns_nameservers") or [] if is_ipv4(server)]
    return {
        "gateway": subnet.get("gateway_ip") or None,
        "allocated_start": min((p["start"] for p in pools), key=ip_address, default=None),
        "allocated_end": max((p["end"] for p in pools), key=ip_address, default=None),
        "host_routes": routes or None,
        "dns_nameservers": dns or None,
    }


def check_subnet(subnet: Mapping[str, Any]) -> None:
    """Refuse an IPv4 subnet without DHCP: vlcp's controllers answer DHCP for every port
    with an address in a subnet they hold, and would hand out leases Neutron says no one
    gives (a subnet whose hosts have static addresses, or another DHCP server)."""
    if subnet.get("ip_version", 4) == 4 and subnet.get("enable_dhcp") is False:
        raise Unsupported(
            f"subnet {subnet.get('cidr')}: vlcp serves DHCP on every IPv4 subnet it holds; "
            "enable_dhcp=false is not supported"
        )


def subnet(subnet: Mapping[str, Any]) -> Body | None:
    """A create body for a Neutron IPv4 subnet; None for IPv6 (vlcp serves DHCPv4 only)."""
    if subnet.get("ip_version", 4) != 4:
        return None
    body: Body = {
        "id": subnet["id"],
        "logicalnetwork": subnet["network_id"],
        "cidr": str(ip_network(subnet["cidr"])),
    }
    return body | _present(subnet_changes(subnet))


def is_router_port(port: Mapping[str, Any]) -> bool:
    return port.get("device_owner") in ROUTER_OWNERS


def port_changes(port: Mapping[str, Any]) -> Body:
    """A Neutron port's MAC, first IPv4 fixed address (vlcp's port has one) and allowed
    address pairs, as vlcp's port has them."""
    fixed = next((f for f in port.get("fixed_ips") or [] if is_ipv4(f["ip_address"])), None)
    pairs = [_address_pair(pair) for pair in port.get("allowed_address_pairs") or []]
    return {
        "mac_address": port["mac_address"],
        "subnet": fixed["subnet_id"] if fixed else None,
        "ip_address": fixed["ip_address"] if fixed else None,
        "allowed_address_pairs": [p for p in pairs if is_ipv4(p["ip_address"])] or None,
    }


def check_port(port: Mapping[str, Any]) -> None:
    """Refuse a port vlcp would not carry as Neutron means it: without port security
    (vlcp's anti-spoofing drops what the port sends from another address; allowed address
    pairs are how to let it through), or with more than one IPv4 address (a vlcp port has
    one: DHCP, ARP and routing would know only the first). A router's ports are not ports
    in vlcp and pass."""
    if is_router_port(port):
        return
    if port.get("port_security_enabled") is False:
        raise Unsupported(
            "vlcp always checks a port's source addresses; port_security_enabled=false is "
            "not supported (allow other addresses with allowed_address_pairs)"
        )
    ipv4 = [f["ip_address"] for f in port.get("fixed_ips") or [] if is_ipv4(f["ip_address"])]
    if len(ipv4) > 1:
        raise Unsupported(
            f"a vlcp port has one IPv4 address, not {len(ipv4)} ({', '.join(ipv4)}); "
            "give the others as allowed_address_pairs"
        )


def logical_port(port: Mapping[str, Any]) -> Body | None:
    """A create body for a Neutron port; None for a router's port (see `ROUTER_OWNERS`)."""
    if is_router_port(port):
        return None
    body: Body = {"id": port["id"], "logicalnetwork": port["network_id"], NEUTRON_OWNED: True}
    return body | _present(port_changes(port))


def _address_pair(pair: Mapping[str, Any]) -> Body:
    body: Body = {"ip_address": pair["ip_address"]}
    if pair.get("mac_address"):
        body["mac_address"] = pair["mac_address"]
    return body


def _present(fields: Body) -> Body:
    return {name: value for name, value in fields.items() if value is not None}


def router_routes(router: Mapping[str, Any]) -> list[list[str]]:
    """A Neutron router's extra routes (IPv4) as vlcp's `[[cidr, nexthop]]`."""
    routes = router.get("routes") or []
    return [[r["destination"], r["nexthop"]] for r in routes if is_ipv4(r["nexthop"])]


def router_changes(router: Mapping[str, Any]) -> Body:
    """What an update of a Neutron router may change in vlcp: its extra routes."""
    return {"routes": router_routes(router)}


def router(router: Mapping[str, Any]) -> Body:
    """A create body for a Neutron router: vlcp's distributed router of the same id."""
    return {"id": router["id"], NEUTRON_OWNED: True} | router_changes(router)


def is_router_interface(port: Mapping[str, Any]) -> bool:
    return port.get("device_owner") in ROUTER_INTERFACE_OWNERS


def router_interfaces(port: Mapping[str, Any]) -> list[Body]:
    """vlcp router interfaces for a Neutron router port: one per IPv4 subnet, at the
    port's address there (by default Neutron gives it the subnet's gateway)."""
    return [
        {"subnet": fixed["subnet_id"], "ip_address": fixed["ip_address"]}
        for fixed in port.get("fixed_ips") or []
        if is_ipv4(fixed["ip_address"])
    ]
