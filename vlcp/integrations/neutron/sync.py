"""What `vlcp-neutron sync` would change in vlcp so it holds what Neutron holds: pure.

Neutron's database is the truth. A postcommit write that could not reach vlcp (vlcp
down, after the writer's retries) leaves Neutron ahead; a delete that could not reach it
leaves vlcp with an object Neutron forgot. `plan` compares the two sides' objects, read
through their REST APIs, and answers the writes that repair vlcp: creates of what is
missing, updates of what differs in a field the driver maps, deletes of what only vlcp
has -- only among vlcp's objects that Neutron made (`mapping.NEUTRON_OWNED`, and the
subnets of those networks), so an operator's own vlcp networks are never touched.
Creates go parents first, deletes children first, so each write is valid when sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from . import mapping
from .mapping import Body

Objects = list[dict[str, Any]]
Kind = Literal["logical-networks", "subnets", "logical-ports"]


@dataclass(frozen=True)
class State:
    """One side's networks, subnets and ports (Neutron's dicts, or vlcp's objects)."""

    networks: Objects
    subnets: Objects
    ports: Objects


@dataclass(frozen=True)
class Change:
    """One REST v1 write: `body` is the create body, or the fields an update changes."""

    action: Literal["create", "update", "delete"]
    kind: Kind
    id: str
    body: Body | None = None

    def __str__(self) -> str:
        fields = (
            f" ({', '.join(sorted(self.body))})" if self.action == "update" and self.body else ""
        )
        return f"{self.action} {self.kind} {self.id}{fields}"


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
    fields_of = {
        "logical-networks": (_by_id(neutron.networks), mapping.logical_network_changes),
        "subnets": (_by_id(neutron.subnets), mapping.subnet_changes),
        "logical-ports": (_by_id(neutron.ports), mapping.port_changes),
    }
    have: dict[Kind, dict[str, dict[str, Any]]] = {
        "logical-networks": {n["id"]: n for n in vlcp.networks if n["id"] in owned},
        "subnets": {s["id"]: s for s in vlcp.subnets if s["logicalnetwork"] in owned},
        "logical-ports": {p["id"]: p for p in vlcp.ports if p.get(mapping.NEUTRON_OWNED)},
    }
    order: list[tuple[Kind, dict[str, Body]]] = [
        ("logical-networks", networks),
        ("subnets", subnets),
        ("logical-ports", ports),
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
    for kind, wanted in reversed(order):
        changes += [Change("delete", kind, id) for id in sorted(have[kind].keys() - wanted)]
    return changes, skipped


def _wanted(objects: Iterable[dict[str, Any]], body_of: Any, mapped: Any) -> dict[str, Body]:
    """Each object's create body, for those `mapped` keeps and `body_of` maps (not None)."""
    bodies = ((o["id"], body_of(o)) for o in objects if mapped(o))
    return {id: body for id, body in bodies if body is not None}


def _by_id(objects: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in objects}
