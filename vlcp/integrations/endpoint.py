"""A workload's logical port and what its interface must carry, read from the API.

The runtime integrations create one logical port per interface and configure the
interface from it: vlcp's IPAM (the subnet's pool) chose the address, the port has the MAC
the switch will accept, and the subnet and network give the gateway, routes, DNS and MTU,
the same values vlcp's DHCP would hand out, so a container and a DHCP-configured VM on one
network look alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, ip_interface
from typing import Any

from vlcp.api_error import ApiError
from vlcp.client import Client

UNDERLAY_MTU = 1500
"""The DHCP module's default underlay MTU: an interface gets what a DHCP lease would."""
VXLAN_OVERHEAD = 50


class EndpointError(Exception):
    """The network config names something the API does not have, or the API refused a
    request: `message` is meant for the user of the runtime (shown by `podman run`)."""


class NotBound(Exception):
    """No controller reported the port up in time: the workload would have no network."""


@dataclass(frozen=True)
class Endpoint:
    """One interface as vlcp described it: the logical port and its addressing."""

    port: str
    mac: str
    address: IPv4Interface | None
    gateway: str | None
    mtu: int
    routes: list[tuple[str, str]] = field(default_factory=list)
    """The subnet's host routes as (destination CIDR, next hop)."""
    nameservers: list[str] = field(default_factory=list)
    domain: str | None = None


def lookup(client: Client, kind: str, id: str, what: str) -> dict[str, Any]:
    """Object `id` of `kind`; a missing one is the user's mistake, named as `what`."""
    try:
        return client.get(kind, id)
    except ApiError as exc:
        if exc.status == 404:
            raise EndpointError(f"{what} {id} does not exist in vlcp ({client.url})") from None
        raise


def choose_subnet(client: Client, network: str, subnet: str | None) -> dict[str, Any] | None:
    """The subnet a new port takes its address from: `subnet` if named (it must belong
    to `network`), else the network's only IPv4 subnet, else none (a port without an
    address: the workload configures itself, e.g. over a routed protocol)."""
    if subnet is not None:
        found = lookup(client, "subnets", subnet, "subnet")
        if found["logicalnetwork"] != network:
            raise EndpointError(
                f"subnet {subnet} belongs to logical network {found['logicalnetwork']},"
                f" not {network}"
            )
        return found
    candidates = [
        s
        for s in client.list("subnets", {"logicalnetwork": network})
        if ip_interface(s["cidr"]).version == 4
    ]
    if len(candidates) > 1:
        names = ", ".join(s["id"] for s in candidates)
        raise EndpointError(f"logical network {network} has several subnets ({names}): name one")
    return candidates[0] if candidates else None


def network_mtu(client: Client, network: Mapping[str, Any], subnet: Mapping | None) -> int:
    """The subnet's MTU, else the network's, else the underlay's less VXLAN's overhead
    on a VXLAN network: what vlcp's DHCP advertises (option 26)."""
    for source in (subnet or {}, network):
        if source.get("mtu"):
            return int(source["mtu"])
    physnet = lookup(client, "physical-networks", network["physicalnetwork"], "physical network")
    return UNDERLAY_MTU - (VXLAN_OVERHEAD if physnet["type"] == "vxlan" else 0)


def ensure_port(
    client: Client,
    port: str | None,
    network: str,
    subnet: str | None,
    attributes: Mapping[str, str],
    *,
    ip_address: str | None = None,
) -> dict[str, Any]:
    """Create logical port `port` (None: an id generated) with its address from the
    subnet's pool unless `ip_address`, or return it if an earlier attempt created it with
    the same `attributes`: a runtime retries an interrupted add with the same ids, and must
    get the same port back."""
    body: dict[str, Any] = {"logicalnetwork": network, **attributes}
    if port is not None:
        body["id"] = port
    if subnet is not None:
        body["subnet"] = subnet
    if ip_address is not None:
        body["ip_address"] = ip_address
    try:
        return client.create("logical-ports", body)
    except ApiError as exc:
        if exc.status != 409 or port is None:
            raise EndpointError(f"vlcp refused the port: {exc.message}") from None
        refused = exc
    try:
        existing = client.get("logical-ports", port)
    except ApiError:
        raise EndpointError(f"vlcp refused the port: {refused.message}") from None
    if any(existing.get(k) != v for k, v in attributes.items()):
        raise EndpointError(f"logical port {port} exists and belongs to another workload")
    return existing


def remove_port(client: Client, port: str) -> None:
    """Delete logical port `port`; one already gone is fine (deletes are retried)."""
    try:
        client.delete("logical-ports", port)
    except ApiError as exc:
        if exc.status != 404:
            raise


def describe(client: Client, port: Mapping[str, Any]) -> Endpoint:
    """The interface `port` calls for: its MAC, address with the subnet's prefix length,
    the subnet's gateway and host routes, DNS (subnet over network) and MTU."""
    network = client.get("logical-networks", port["logicalnetwork"])
    subnet = client.get("subnets", port["subnet"]) if port.get("subnet") else None
    address = None
    if subnet is not None and port.get("ip_address"):
        prefix = ip_interface(subnet["cidr"]).network.prefixlen
        address = IPv4Interface(f"{port['ip_address']}/{prefix}")
    dns_from = subnet if subnet and subnet.get("dns_nameservers") else network
    return Endpoint(
        port=port["id"],
        mac=port["mac_address"],
        address=address,
        gateway=(subnet or {}).get("gateway"),
        mtu=network_mtu(client, network, subnet),
        routes=[(str(dst), str(hop)) for dst, hop in (subnet or {}).get("host_routes") or []],
        nameservers=list(dns_from.get("dns_nameservers") or []),
        domain=(subnet or {}).get("domain_name") or network.get("domain_name"),
    )


def wait_bound(client: Client, port: str, timeout: float) -> None:
    """Return once a controller reports `port` up (0: at once), so a runtime starts the
    workload with its network working; `NotBound` after `timeout` seconds."""
    if not timeout:
        return
    try:
        client.get("logical-ports", port, wait="up", timeout=timeout)
    except ApiError as exc:
        if exc.status != 408:
            raise
        raise NotBound(
            f"logical port {port} was not bound within {timeout:g} s:"
            " is `vlcp run` controlling this server's bridge?"
        ) from None
