"""Which OpenFlow port carries what, read from the local OVSDB (pure functions of a monitor).

An interface whose `external_ids:iface-id` names a logical port is that port's endpoint on
this server, whatever order the interface and the logical port appear in; other ports of
the integration bridge are found by name (physical ports, the tunnel port).

A binding is dated once, by the agent, in the interface's `external_ids:vlcp-bound-at`
("<iface-id> <unix time>"): when the same logical port is plugged on two servers, the
newest binding wins (see `view_builder`), and the date survives controller restarts
because it lives with the interface. The agent dates a new binding in memory at once
(`BridgePorts.date`) and writes the date to OVSDB once the port's flows are installed,
so that the write, which makes vswitchd reconfigure, never delays a port coming up.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vlcp.southbound.ovsdb import ops
from vlcp.southbound.ovsdb.cache import ChangeSet
from vlcp.southbound.ovsdb.client import OvsdbClient
from vlcp.southbound.ovsdb.monitor import Monitor
from vlcp.southbound.ovsdb.vswitch import DB, IFACE_ID, external_id_ops

log = logging.getLogger(__name__)

BOUND_AT = "vlcp-bound-at"


@dataclass(frozen=True, slots=True)
class OvsPort:
    """An interface of the integration bridge that OpenFlow can address."""

    name: str
    ofport: int
    iface_id: str | None
    mac: str | None
    bound_at: float | None = None
    """When this server's agent first saw `iface_id` on it (None: not dated yet)."""


def bridge_ports(monitor: Monitor, bridge: str) -> dict[str, OvsPort]:
    """Every interface of `bridge` that has an OpenFlow port number, by interface name.

    Interfaces that OVS could not open (ofport -1) or has not numbered yet are left out:
    flows cannot point at them yet, and the monitor reports them again once numbered.
    """
    bridges = [row for row in monitor.rows("Bridge").values() if row.get("name") == bridge]
    if not bridges:
        return {}
    ports = monitor.rows("Port")
    interfaces = monitor.rows("Interface")
    found: dict[str, OvsPort] = {}
    for port_id in _set(bridges[0], "ports"):
        for iface_id in _set(ports.get(port_id, {}), "interfaces"):
            port = _ovs_port(interfaces.get(iface_id))
            if port is not None:
                found[port.name] = port
    return found


class BridgePorts:
    """`bridge_ports` of one bridge, kept up to date from the monitor's change sets.

    Recomputing the whole bridge on every OVSDB update costs the number of ports each
    time (a thousand ports: a few milliseconds, several times per new port); this costs
    the rows that changed. Tests check it against `bridge_ports`.
    """

    def __init__(self, monitor: Monitor, bridge: str) -> None:
        self.monitor = monitor
        self.bridge = bridge
        self.ports: dict[str, OvsPort] = bridge_ports(monitor, bridge)
        """Interface name -> port, like `bridge_ports(monitor, bridge)`."""
        self._names: dict[uuid.UUID, str] = {}
        """Interface row -> the name it is listed under in `ports`."""
        self._port_of: dict[uuid.UUID, uuid.UUID] = {}
        """Interface row -> the Port row listing it (any bridge)."""
        self._dates: dict[str, tuple[str, float]] = {}
        """Interface name -> (iface-id, date) given by `date` and not yet seen in OVSDB."""
        for port_id, row in monitor.rows("Port").items():
            for iface_id in _set(row, "interfaces"):
                self._port_of[iface_id] = port_id
        interfaces = monitor.rows("Interface")
        for iface_id, row in interfaces.items():
            if str(row.get("name")) in self.ports:
                self._names[iface_id] = str(row["name"])

    def date(self, names: Iterable[str], now: float) -> list[OvsPort]:
        """Date the undated bindings among `names` `now` (write them with `date_bindings`)."""
        dated = []
        for name in names:
            port = self.ports.get(name)
            if port is not None and port.iface_id is not None and port.bound_at is None:
                self._dates[name] = (port.iface_id, now)
                self.ports[name] = dated_port = dataclasses.replace(port, bound_at=now)
                dated.append(dated_port)
        return dated

    def update(self, changes: ChangeSet) -> set[str]:
        """Apply the monitor's latest change set; the names of the ports that changed."""
        affected: set[uuid.UUID] = set()
        for change in changes.changes:
            if change.table == "Interface":
                affected.add(change.uuid)
            elif change.table == "Port":
                for row, present in ((change.old, False), (change.new, True)):
                    for iface_id in _set(row or {}, "interfaces"):
                        affected.add(iface_id)
                        if present:
                            self._port_of[iface_id] = change.uuid
                        elif self._port_of.get(iface_id) == change.uuid:
                            del self._port_of[iface_id]
            elif change.table == "Bridge" and self.bridge in (
                (change.old or {}).get("name"),
                (change.new or {}).get("name"),
            ):
                old, new = _set(change.old or {}, "ports"), _set(change.new or {}, "ports")
                port_rows = self.monitor.rows("Port")
                for port_id in old ^ new:  # a deleted Port's interfaces: its change above
                    affected.update(_set(port_rows.get(port_id, {}), "interfaces"))
        return self._refresh(affected)

    def _refresh(self, interface_ids: set[uuid.UUID]) -> set[str]:
        bridges = self.monitor.find("Bridge", name=self.bridge)
        in_bridge = _set(bridges[0][1], "ports") if bridges else frozenset()
        interfaces = self.monitor.rows("Interface")
        before: dict[str, OvsPort] = {}
        for iface_id in interface_ids:  # all out first: a name may pass to another row
            name = self._names.pop(iface_id, None)
            if name is not None:
                before[name] = self.ports.pop(name)
        names = set(before)
        for iface_id in interface_ids:
            port = None
            if self._port_of.get(iface_id) in in_bridge:
                port = self._dated(_ovs_port(interfaces.get(iface_id)))
            if port is not None:
                self.ports[port.name] = port
                self._names[iface_id] = port.name
                names.add(port.name)
        for name in before.keys() - self.ports.keys():  # unplugged: a replug is a new binding
            self._dates.pop(name, None)
        return {n for n in names if before.get(n) != self.ports.get(n)}

    def _dated(self, port: OvsPort | None) -> OvsPort | None:
        """The port with the date given in memory, until OVSDB has one of its own."""
        if port is None:
            return None
        given = self._dates.get(port.name)
        if port.bound_at is not None or given is None or given[0] != port.iface_id:
            self._dates.pop(port.name, None)
            return port
        return dataclasses.replace(port, bound_at=given[1])


def _ofport_then_name(port: OvsPort) -> tuple[int, str]:
    """OVS never gives two interfaces one ofport, but a view rebuilt while one is being
    replaced may see both: the name decides then, not the order they were seen in."""
    return port.ofport, port.name


def bound_ports(ports: Mapping[str, OvsPort]) -> dict[str, OvsPort]:
    """Interfaces by the logical port they carry.

    Two interfaces claiming one logical port (a botched replug) bind the one with the
    lowest OpenFlow port number, deterministically, and the conflict is logged.
    """
    bound: dict[str, OvsPort] = {}
    for port in sorted(ports.values(), key=_ofport_then_name):
        if port.iface_id is None:
            continue
        if port.iface_id in bound:
            log.warning(
                "logical port %s is claimed by %s and %s; using %s",
                port.iface_id,
                bound[port.iface_id].name,
                port.name,
                bound[port.iface_id].name,
            )
            continue
        bound[port.iface_id] = port
    return bound


def _ovs_port(row: Mapping[str, Any] | None) -> OvsPort | None:
    """The port of an Interface row, if OpenFlow can address it (ofport > 0)."""
    if row is None:
        return None
    ofport = row.get("ofport")
    if not isinstance(ofport, int) or ofport <= 0:
        return None
    external = row.get("external_ids") or {}
    iface_id = str(external[IFACE_ID]) if external.get(IFACE_ID) else None
    return OvsPort(
        name=str(row["name"]),
        ofport=ofport,
        iface_id=iface_id,
        mac=_mac(row),
        bound_at=_bound_at(external.get(BOUND_AT), iface_id),
    )


def _bound_at(mark: Any, iface_id: str | None) -> float | None:
    """The date in a `vlcp-bound-at` mark, if it dates this very iface-id."""
    marked_id, _, when = str(mark or "").rpartition(" ")
    try:
        return float(when) if iface_id is not None and marked_id == iface_id else None
    except ValueError:
        return None


async def date_bindings(client: OvsdbClient, ports: Iterable[OvsPort]) -> None:
    """Write these ports' binding dates to OVSDB, in one transaction."""
    txn: list[ops.Op] = []
    for port in ports:
        mark = f"{port.iface_id} {port.bound_at!r}"
        txn += external_id_ops("Interface", port.name, BOUND_AT, mark)
    if txn:
        await client.transact(DB, txn)


def _set(row: Mapping[str, Any], column: str) -> frozenset[uuid.UUID]:
    value = row.get(column)
    if isinstance(value, frozenset):
        return value
    return frozenset() if value is None else frozenset([value])


def _mac(row: Mapping[str, Any]) -> str | None:
    value = row.get("mac_in_use")
    return str(value) if value else None
