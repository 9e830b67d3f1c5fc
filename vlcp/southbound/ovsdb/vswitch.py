"""Helpers for the Open_vSwitch database that the controller needs on every server.

Reads go through a :class:`Monitor` (the binding watches interfaces anyway), writes are
single transactions that either apply whole or raise a :class:`TransactError` naming the
operation that failed. Each write guards its target with a ``wait`` operation, so a
missing bridge aborts the transaction instead of silently matching nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from types import EllipsisType
from typing import Any

from . import ops
from .client import OvsdbClient
from .monitor import Monitor
from .values import NamedUuid, Row

DB = "Open_vSwitch"

BINDING_TABLES: dict[str, list[str]] = {
    "Open_vSwitch": ["external_ids", "bridges"],
    "Bridge": [
        "name",
        "ports",
        "datapath_type",
        "datapath_id",
        "fail_mode",
        "protocols",
        "controller",
    ],
    "Port": ["name", "interfaces", "tag", "trunks"],
    "Interface": ["name", "type", "ofport", "external_ids", "options", "mac_in_use"],
}
"""The columns an agent needs to bind logical ports to OpenFlow ports; monitoring only
these keeps vswitchd's statistics updates (every 5 s per interface) out of the stream."""

IFACE_ID = "iface-id"
SYSTEM_ID = "system-id"

Unchanged = EllipsisType
"""Type of ``...``: "leave this column as it is" in :func:`configure_bridge`."""


# ---------------------------------------------------------------- reads (from a monitor)


def system_id(monitor: Monitor) -> str | None:
    """``Open_vSwitch:external_ids:system-id``: the chassis identity of this server."""
    for row in monitor.rows("Open_vSwitch").values():
        value = _map(row, "external_ids").get(SYSTEM_ID)
        if value:
            return str(value)
    return None


def interfaces_by_iface_id(monitor: Monitor) -> dict[str, list[tuple[uuid.UUID, Row]]]:
    """Interfaces grouped by ``external_ids:iface-id`` (the logical port they carry).

    A list per id, because during a live migration or a botched replug two interfaces can
    claim the same logical port, and the binding must see that rather than a random one.
    """
    out: dict[str, list[tuple[uuid.UUID, Row]]] = {}
    for row_uuid, row in monitor.rows("Interface").items():
        iface_id = _map(row, "external_ids").get(IFACE_ID)
        if iface_id:
            out.setdefault(str(iface_id), []).append((row_uuid, row))
    return out


def find_interfaces(monitor: Monitor, iface_id: str) -> list[tuple[uuid.UUID, Row]]:
    """The interfaces carrying logical port ``iface_id`` (usually zero or one)."""
    return interfaces_by_iface_id(monitor).get(iface_id, [])


def bridge_of_interface(monitor: Monitor, interface: uuid.UUID) -> str | None:
    """The name of the bridge an interface is on, following Bridge -> Port -> Interface."""
    ports = [u for u, row in monitor.rows("Port").items() if interface in _set(row, "interfaces")]
    for row in monitor.rows("Bridge").values():
        if any(port in _set(row, "ports") for port in ports):
            return str(row["name"])
    return None


def _map(row: Row, column: str) -> Mapping[Any, Any]:
    value = row.get(column)
    return value if isinstance(value, Mapping) else {}


def _set(row: Row, column: str) -> frozenset[Any]:
    value = row.get(column)
    return value if isinstance(value, frozenset) else frozenset()


# ---------------------------------------------------------------- one-shot reads


async def read_system_id(client: OvsdbClient) -> str | None:
    """``system-id`` without a monitor (one select)."""
    (result,) = await client.transact(DB, [ops.select("Open_vSwitch", [], ["external_ids"])])
    for row in result["rows"]:
        pairs = dict(row["external_ids"][1])
        if pairs.get(SYSTEM_ID):
            return str(pairs[SYSTEM_ID])
    return None


# ---------------------------------------------------------------- writes


def _exists(table: str, name: str) -> ops.Op:
    """A ``wait`` that aborts the transaction unless the named row exists."""
    return ops.wait(table, [ops.eq("name", name)], ["name"], [{"name": name}], until="==")


async def configure_bridge(
    client: OvsdbClient,
    bridge: str,
    *,
    fail_mode: str | Unchanged | None = ...,
    protocols: Iterable[str] | Unchanged = ...,
    controllers: Iterable[str] | Unchanged = ...,
    controller_options: Mapping[str, Any] | None = None,
) -> None:
    """Set a bridge's fail_mode, OpenFlow versions and controller targets in one transaction.

    ``...`` leaves a column alone; ``fail_mode=None`` clears it. New controllers replace
    the old ones (Controller rows are not root, so the old rows are garbage-collected);
    ``controller_options`` (e.g. ``{"max_backoff": 1000}``) apply to each new one.
    """
    txn: list[ops.Op] = [_exists("Bridge", bridge)]
    row: dict[str, Any] = {}
    if fail_mode is not ...:
        row["fail_mode"] = fail_mode
    if protocols is not ...:
        row["protocols"] = frozenset(protocols)
    if controllers is not ...:
        names = []
        for index, target in enumerate(controllers):
            name = f"ctl{index}"
            txn.append(
                ops.insert("Controller", {"target": target, **(controller_options or {})}, name)
            )
            names.append(NamedUuid(name))
        row["controller"] = frozenset(names)
    txn.append(ops.update("Bridge", [ops.eq("name", bridge)], row))
    await client.transact(DB, txn)


async def add_port(
    client: OvsdbClient,
    bridge: str,
    name: str,
    *,
    type: str = "",
    options: Mapping[str, str] | None = None,
    external_ids: Mapping[str, str] | None = None,
    ofport_request: int | None = None,
) -> uuid.UUID:
    """Add a port with one interface (e.g. a VXLAN tunnel) to ``bridge``; its interface uuid.

    A port name that exists already fails the commit (Port and Interface names are unique
    indexes); a missing bridge fails the ``wait`` op.
    """
    interface: dict[str, Any] = {"name": name, "type": type}
    if options:
        interface["options"] = dict(options)
    if external_ids:
        interface["external_ids"] = dict(external_ids)
    if ofport_request is not None:
        interface["ofport_request"] = ofport_request
    results = await client.transact(
        DB,
        [
            _exists("Bridge", bridge),
            ops.insert("Interface", interface, "iface"),
            ops.insert("Port", {"name": name, "interfaces": {NamedUuid("iface")}}, "port"),
            ops.mutate(
                "Bridge", [ops.eq("name", bridge)], [("ports", "insert", {NamedUuid("port")})]
            ),
        ],
    )
    return uuid.UUID(results[1]["uuid"][1])


async def del_port(client: OvsdbClient, name: str) -> bool:
    """Remove port ``name`` from whichever bridge holds it; False if there was none.

    Unreferenced Port and Interface rows are garbage-collected by the server.
    """
    (found,) = await client.transact(DB, [ops.select("Port", [ops.eq("name", name)], ["_uuid"])])
    if not found["rows"]:
        return False
    port = uuid.UUID(found["rows"][0]["_uuid"][1])
    (result,) = await client.transact(
        DB, [ops.mutate("Bridge", [ops.includes("ports", port)], [("ports", "delete", {port})])]
    )
    return bool(result.get("count"))


async def set_external_id(
    client: OvsdbClient, table: str, record: str | None, key: str, value: str | None
) -> None:
    """Set (or, with ``None``, remove) ``external_ids:key`` on a named row.

    ``record=None`` targets every row, which is what the one-row Open_vSwitch table needs.
    """
    txn: list[ops.Op] = [] if record is None else [_exists(table, record)]
    txn += external_id_ops(table, record, key, value)
    await client.transact(DB, txn)


def external_id_ops(table: str, record: str | None, key: str, value: str | None) -> list[ops.Op]:
    """The operations setting (or removing) ``external_ids:key`` on a named row (every row
    for ``None``); a row that is gone is simply not matched, so several can share a
    transaction whatever happened to each."""
    where = [] if record is None else [ops.eq("name", record)]
    mutations = [ops.mutate(table, where, [("external_ids", "delete", {key})])]
    if value is not None:
        mutations.append(ops.mutate(table, where, [("external_ids", "insert", {key: value})]))
    return mutations
