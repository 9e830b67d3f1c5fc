"""Which OpenFlow port carries what, read from the local OVSDB (pure functions of a monitor).

An interface whose `external_ids:iface-id` names a logical port is that port's endpoint on
this server, whatever order the interface and the logical port appear in; other ports of
the integration bridge are found by name (physical ports, the tunnel port).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vlcp.southbound.ovsdb.monitor import Monitor
from vlcp.southbound.ovsdb.vswitch import IFACE_ID

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OvsPort:
    """An interface of the integration bridge that OpenFlow can address."""

    name: str
    ofport: int
    iface_id: str | None
    mac: str | None


def bridge_ports(monitor: Monitor, bridge: str) -> dict[str, OvsPort]:
    """Every interface of `bridge` that has an OpenFlow port number, by interface name.

    Interfaces that OVS could not open (ofport -1) or has not numbered yet are left out:
    flows cannot point at them yet, and the monitor reports them again once numbered.
    """
    bridges = [row for row in monitor.rows("Bridge").values() if row.get("name") == bridge]
    if not bridges:
        return {}
    port_ids = _set(bridges[0], "ports")
    ports = monitor.rows("Port")
    interfaces = monitor.rows("Interface")
    found: dict[str, OvsPort] = {}
    for port_id in port_ids:
        for iface_id in _set(ports.get(port_id, {}), "interfaces"):
            row = interfaces.get(iface_id)
            if row is None:
                continue
            ofport = row.get("ofport")
            if not isinstance(ofport, int) or ofport <= 0:
                continue
            external = row.get("external_ids") or {}
            found[str(row["name"])] = OvsPort(
                name=str(row["name"]),
                ofport=ofport,
                iface_id=str(external[IFACE_ID]) if external.get(IFACE_ID) else None,
                mac=_mac(row),
            )
    return found


def bound_ports(ports: Mapping[str, OvsPort]) -> dict[str, OvsPort]:
    """Interfaces by the logical port they carry.

    Two interfaces claiming one logical port (a botched replug) bind the one with the
    lowest OpenFlow port number, deterministically, and the conflict is logged.
    """
    bound: dict[str, OvsPort] = {}
    for port in sorted(ports.values(), key=lambda p: p.ofport):
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


def _set(row: Mapping[str, Any], column: str) -> frozenset[uuid.UUID]:
    value = row.get(column)
    if isinstance(value, frozenset):
        return value
    return frozenset() if value is None else frozenset([value])


def _mac(row: Mapping[str, Any]) -> str | None:
    value = row.get("mac_in_use")
    return str(value) if value else None
