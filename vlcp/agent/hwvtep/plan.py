"""The difference between a switch's `hardware_vtep` rows and `Wanted`, as OVSDB operations.

Pure, and never a flush: rows that are already right are not touched, rows vlcp does not own
(logical switches without vlcp's mark, VLAN bindings to them) are never changed, so a
controller that reconnects or takes over writes only what changed while nobody was writing.
An empty plan means the switch is equal to the store.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from typing import Any

from vlcp.southbound.ovsdb import NamedUuid, ops

from .wanted import ENCAPSULATION, MARK, UNKNOWN_DST, Tables, Wanted, owned_switches

Op = ops.Op
REPLICATION = "source_node"
"""The switch copies a flood to every endpoint of `Mcast_Macs_Remote` itself: vlcp runs no
replication service node (the schema's default, under which a switch sends floods to one
endpoint only)."""
Ref = uuid.UUID | NamedUuid


class _Plan:
    """Operations collected for one transaction, with the rows they insert named."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.ops: list[Op] = []
        self._names = itertools.count()
        self._locators: dict[str, Ref] = {
            str(row["dst_ip"]): row_uuid
            for row_uuid, row in tables.get("Physical_Locator", {}).items()
            if row.get("encapsulation_type") == ENCAPSULATION and not row.get("tunnel_key")
        }

    def insert(self, table: str, row: Mapping[str, Any]) -> NamedUuid:
        name = f"row{next(self._names)}"
        self.ops.append(ops.insert(table, row, name))
        return NamedUuid(name)

    def locator(self, ip: str) -> Ref:
        """The locator of a tunnel endpoint: the existing row (their index is unique), or
        a new one in this transaction."""
        if ip not in self._locators:
            self._locators[ip] = self.insert(
                "Physical_Locator", {"encapsulation_type": ENCAPSULATION, "dst_ip": ip}
            )
        return self._locators[ip]

    def dst_ips(self, locator_set: Any) -> frozenset[str]:
        locators = self.tables.get("Physical_Locator", {})
        members = self.tables.get("Physical_Locator_Set", {}).get(locator_set, {})
        return frozenset(
            str(locators[u]["dst_ip"]) for u in members.get("locators") or () if u in locators
        )


def plan(tables: Tables, switch: str, want: Wanted) -> list[Op]:
    """The operations that make `switch`'s rows equal to `want` ([] when they are)."""
    p = _Plan(tables)
    refs = _logical_switches(p, want)
    owned = owned_switches(tables)
    _vlan_bindings(p, switch, want, refs, set(owned))
    _ucast(p, want, refs, owned)
    _flood(p, want, refs, owned)
    for row_uuid, name in owned.items():
        if name not in refs:  # its last binding went: the switch forgets the network
            for table in ("Ucast_Macs_Local", "Mcast_Macs_Local"):
                p.ops.append(ops.delete(table, [ops.eq("logical_switch", row_uuid)]))
            p.ops.append(ops.delete("Logical_Switch", [ops.by_uuid(row_uuid)]))
    return p.ops


def _logical_switches(p: _Plan, want: Wanted) -> dict[str, Ref]:
    """Create or retag vlcp's logical switches; name -> row, for the ones `want` keeps. A
    name an operator's logical switch already has is left to the operator (and skipped)."""
    rows = {str(row["name"]): (u, row) for u, row in p.tables.get("Logical_Switch", {}).items()}
    refs: dict[str, Ref] = {}
    for name, vni in sorted(want.switches.items()):
        found = rows.get(name)
        settings = {"tunnel_key": vni, "replication_mode": REPLICATION}
        if found is None:
            refs[name] = p.insert("Logical_Switch", {"name": name, "description": MARK, **settings})
        elif found[1].get("description") == MARK:
            refs[name] = found[0]
            if any(found[1].get(column) != value for column, value in settings.items()):
                where = [ops.by_uuid(found[0])]
                p.ops.append(ops.update("Logical_Switch", where, settings))
    return refs


def _vlan_bindings(
    p: _Plan, switch: str, want: Wanted, refs: Mapping[str, Ref], owned: set[uuid.UUID]
) -> None:
    """Each port of the switch: its bindings to vlcp's logical switches as wanted, the
    others as they are."""
    ports = p.tables.get("Physical_Port", {})
    for ps in p.tables.get("Physical_Switch", {}).values():
        if ps.get("name") != switch:
            continue
        for port_uuid in sorted(ps.get("ports") or (), key=str):
            port = ports.get(port_uuid)
            if port is None:
                continue
            current = dict(port.get("vlan_bindings") or {})
            new: dict[int, Ref] = {v: u for v, u in current.items() if u not in owned}
            for (name, vlan), network in want.bindings.items():
                if name == port["name"] and network in refs:
                    new[vlan] = refs[network]
            if new != current:
                row = {"vlan_bindings": dict(sorted(new.items()))}
                p.ops.append(ops.update("Physical_Port", [ops.by_uuid(port_uuid)], row))


def _ucast(p: _Plan, want: Wanted, refs: Mapping[str, Ref], owned: Mapping[uuid.UUID, str]) -> None:
    """`Ucast_Macs_Remote`: one row per remote MAC of each network, at its endpoint."""
    locators = p.tables.get("Physical_Locator", {})
    seen = set()
    for row_uuid, row in p.tables.get("Ucast_Macs_Remote", {}).items():
        network = owned.get(row["logical_switch"])  # type: ignore[arg-type]
        if network is None:
            continue
        key = (network, str(row["MAC"]).lower())
        endpoint = want.ucast.get(key) if network in refs else None
        if endpoint is None or key in seen:
            p.ops.append(ops.delete("Ucast_Macs_Remote", [ops.by_uuid(row_uuid)]))
            continue
        seen.add(key)
        at = locators.get(row["locator"], {}).get("dst_ip")  # type: ignore[arg-type]
        if at != endpoint.vtep or (row.get("ipaddr") or None) != endpoint.ip:
            changes = {"locator": p.locator(endpoint.vtep), "ipaddr": endpoint.ip or ""}
            p.ops.append(ops.update("Ucast_Macs_Remote", [ops.by_uuid(row_uuid)], changes))
    for (network, mac), endpoint in sorted(want.ucast.items()):
        if (network, mac) in seen or network not in refs:
            continue
        row = {
            "MAC": mac,
            "logical_switch": refs[network],
            "locator": p.locator(endpoint.vtep),
            "ipaddr": endpoint.ip or "",
        }
        p.insert("Ucast_Macs_Remote", row)


def _flood(p: _Plan, want: Wanted, refs: Mapping[str, Ref], owned: Mapping[uuid.UUID, str]) -> None:
    """`Mcast_Macs_Remote` unknown-dst: each network's floods go to its endpoints."""
    seen = set()
    for row_uuid, row in p.tables.get("Mcast_Macs_Remote", {}).items():
        network = owned.get(row["logical_switch"])  # type: ignore[arg-type]
        if network is None or row.get("MAC") != UNKNOWN_DST:
            continue
        vteps = want.flood.get(network) if network in refs else None
        if not vteps or network in seen:
            p.ops.append(ops.delete("Mcast_Macs_Remote", [ops.by_uuid(row_uuid)]))
            continue
        seen.add(network)
        if p.dst_ips(row["locator_set"]) != vteps:
            changes = {"locator_set": _locator_set(p, vteps)}
            p.ops.append(ops.update("Mcast_Macs_Remote", [ops.by_uuid(row_uuid)], changes))
    for network, vteps in sorted(want.flood.items()):
        if network in seen or network not in refs:
            continue
        row = {"MAC": UNKNOWN_DST, "logical_switch": refs[network]}
        p.insert("Mcast_Macs_Remote", {**row, "locator_set": _locator_set(p, vteps)})


def _locator_set(p: _Plan, vteps: frozenset[str]) -> NamedUuid:
    """A new locator set (sets are immutable rows; the old one is garbage collected)."""
    locators = [p.locator(ip) for ip in sorted(vteps)]
    return p.insert("Physical_Locator_Set", {"locators": locators})
