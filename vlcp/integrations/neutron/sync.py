"""What `vlcp-neutron sync` would change in vlcp so it holds what Neutron holds: pure.

Neutron's database is the truth. A postcommit write that could not reach vlcp (vlcp
down, after the writer's retries) leaves Neutron ahead; a delete that could not reach it
leaves vlcp with an object Neutron forgot. `plan` compares the two sides' objects, read
through their REST APIs, and answers the writes that repair vlcp: creates of what is
missing, updates of what differs in a field the driver maps, deletes of what only vlcp
has -- only among vlcp's objects that Neutron made (`mapping.NEUTRON_OWNED`, the subnets
of those networks and the interfaces of those routers), so an operator's own vlcp
networks and routers are never touched. Routers are compared with their extra routes and
their interfaces (one per IPv4 subnet of a Neutron router interface port, at its address).
Creates go parents first, then interfaces are detached (stale, or at another address) and
attached, then deletes go children first, so each write is valid when sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from . import mapping
from .mapping import Body

Objects = list[dict[str, Any]]
Kind = Literal["logical-networks", "subnets", "logical-ports", "routers", "router-interfaces"]
Interfaces = dict[tuple[str, str], str]
"""(router id, subnet id) -> the interface's address."""


@dataclass(frozen=True)
class State:
    """One side's networks, subnets, ports and routers (Neutron's dicts, or vlcp's objects;
    Neutron's ports include its router interface ports, vlcp's routers their interfaces)."""

    networks: Objects
    subnets: Objects
    ports: Objects
    routers: Objects | None = field(default_factory=list)
    """None: this side's routers are unknown (Neutron without its L3 service plugin), and
    vlcp's routers are left as they are rather than deleted as forgotten."""


@dataclass(frozen=True)
class Change:
    """One REST v1 write: `body` is the create body, or the fields an update changes. A
    router interface's `id` is its subnet's, and `router` names its router."""

    action: Literal["create", "update", "delete"]
    kind: Kind
    id: str
    body: Body | None = None
    router: str | None = None

    def __str__(self) -> str:
        fields = (
            f" ({', '.join(sorted(self.body))})" if self.action == "update" and self.body else ""
        )
        name = self.id if self.router is None else f"{self.router}/{self.id}"
        return f"{self.action} {self.kind} {name}{fields}"


def segments(network: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A network's segments as Neutron's REST API shows them to an admin: the
    `segments` list of a multi-segment network, else its `provider:` attributes."""
    if network.get("segments"):
        return list(network["segments"])
    return [
        {
            "network_type": network.get("provider:network_type"),
            "physical_network": network.get("provider:physical_network"),
            "segmentation_id": network.get("provider:segmentation_id"),
        }
    ]


def plan(neutron: State, vlcp: State, settings: mapping.Settings) -> tuple[list[Change], list[str]]:
    """The writes that make vlcp hold Neutron's objects, and what cannot be mapped (why)."""
    owned = {n["id"] for n in vlcp.networks if n.get(mapping.NEUTRON_OWNED)}
    foreign = {n["id"] for n in vlcp.networks} - owned
    skipped: list[str] = []
    networks: dict[str, Body] = {}
    for network in neutron.networks:
        try:
            body = mapping.logical_network(network, segments(network), settings)
        except mapping.Unsupported as error:
            skipped.append(f"network {network['id']}: {error}")
            continue
        if network["id"] in foreign:
            skipped.append(f"network {network['id']}: vlcp has a network of that id not Neutron's")
        else:
            networks[network["id"]] = body
    subnets = _wanted(neutron.subnets, mapping.subnet, lambda s: s["network_id"] in networks)
    ports = _wanted(neutron.ports, mapping.logical_port, lambda p: p["network_id"] in networks)
    neutron_routers = neutron.routers or []
    routers = _routers(neutron_routers, vlcp.routers or [], skipped)
    fields_of = {
        "logical-networks": (_by_id(neutron.networks), mapping.logical_network_changes),
        "subnets": (_by_id(neutron.subnets), mapping.subnet_changes),
        "logical-ports": (_by_id(neutron.ports), mapping.port_changes),
        "routers": (_by_id(neutron_routers), mapping.router_changes),
    }
    owned_routers = [r for r in vlcp.routers or [] if r.get(mapping.NEUTRON_OWNED)]
    if neutron.routers is None:  # unknown: neither compared nor deleted
        owned_routers = []
    have: dict[Kind, dict[str, dict[str, Any]]] = {
        "logical-networks": {n["id"]: n for n in vlcp.networks if n["id"] in owned},
        "subnets": {s["id"]: s for s in vlcp.subnets if s["logicalnetwork"] in owned},
        "logical-ports": {p["id"]: p for p in vlcp.ports if p.get(mapping.NEUTRON_OWNED)},
        "routers": {r["id"]: r for r in owned_routers},
    }
    order: list[tuple[Kind, dict[str, Body]]] = [
        ("logical-networks", networks),
        ("subnets", subnets),
        ("logical-ports", ports),
        ("routers", routers),
    ]
    changes: list[Change] = []
    for kind, wanted in order:
        for id, body in wanted.items():
            stored = have[kind].get(id)
            if stored is None:
                changes.append(Change("create", kind, id, body))
                continue
            source, fields = fields_of[kind]
            differs = {k: v for k, v in fields(source[id]).items() if stored.get(k) != v}
            if differs:
                changes.append(Change("update", kind, id, differs))
    wanted_interfaces = _interfaces(neutron.ports, routers, subnets)
    changes += _interface_changes(wanted_interfaces, _attached(owned_routers))
    for kind, wanted in reversed(order):
        changes += [Change("delete", kind, id) for id in sorted(have[kind].keys() - wanted)]
    return changes, skipped


def _routers(neutron: Objects, vlcp: Objects, skipped: list[str]) -> dict[str, Body]:
    """The create bodies of Neutron's routers, less those whose id an operator's vlcp
    router has (said in `skipped`)."""
    foreign = {r["id"] for r in vlcp if not r.get(mapping.NEUTRON_OWNED)}
    wanted: dict[str, Body] = {}
    for router in neutron:
        if router["id"] in foreign:
            skipped.append(f"router {router['id']}: vlcp has a router of that id not Neutron's")
        else:
            wanted[router["id"]] = mapping.router(router)
    return wanted


def _interfaces(
    ports: Objects, routers: Mapping[str, Body], subnets: Mapping[str, Body]
) -> Interfaces:
    """The interfaces Neutron's router interface ports ask for, on routers and subnets that
    vlcp is to hold."""
    wanted: Interfaces = {}
    for port in ports:
        if mapping.is_router_interface(port) and port.get("device_id") in routers:
            for body in mapping.router_interfaces(port):
                if body["subnet"] in subnets:
                    wanted[port["device_id"], body["subnet"]] = body["ip_address"]
    return wanted


def _attached(routers: Objects) -> Interfaces:
    return {(r["id"], i["subnet"]): i["ip_address"] for r in routers for i in r["interfaces"]}


def _interface_changes(wanted: Interfaces, have: Interfaces) -> list[Change]:
    """Detach what is stale or at another address, then attach what is missing (a subnet
    moving to another router, or to another address, is detached first)."""
    detach = sorted(key for key, address in have.items() if wanted.get(key) != address)
    attach = sorted(key for key, address in wanted.items() if have.get(key) != address)
    return [
        Change("delete", "router-interfaces", subnet, router=router) for router, subnet in detach
    ] + [
        Change(
            "create",
            "router-interfaces",
            subnet,
            {"subnet": subnet, "ip_address": wanted[router, subnet]},
            router=router,
        )
        for router, subnet in attach
    ]


def _wanted(objects: Iterable[dict[str, Any]], body_of: Any, mapped: Any) -> dict[str, Body]:
    """Each object's create body, for those `mapped` keeps and `body_of` maps (not None)."""
    bodies = ((o["id"], body_of(o)) for o in objects if mapped(o))
    return {id: body for id, body in bodies if body is not None}


def _by_id(objects: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in objects}
