"""Physical ports: the OVS port that carries a physical network on a server.

A port is named by (vhost, systemid, bridge, name), unique among all ports
(`physport-key/...`). Its selectors say where it applies: `systemid` (a server's OVS
system-id) and `bridge` may be '%' (any). For one physical network at most one port per
selector (`physnet-port/<net>/<vhost>/<systemid>/<bridge>`), and the controller picks the
most specific one that matches its server (`find_physical_port`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlcp.layout import PHYSPORT, WILDCARD, physnet_port, physnet_state, physport_key
from vlcp.store import Snapshot, Store, Transaction

from . import checks
from .common import bump, fixed, not_null, require, require_absent, resolve_id
from .errors import Conflict, NotFound
from .kind import Kind, VlcpNames
from .objects import PhysicalPort, PhysicalPortCreate, PhysicalPortUpdate, given, parse
from .physnet import PHYSNETS

KEY_FIELDS = ("name", "vhost", "systemid", "bridge")
Source = Transaction | Store | Snapshot | Mapping[str, Any]


def _check(port: dict[str, Any]) -> dict[str, Any]:
    port["name"] = checks.selector(port["name"], "name", wildcard=False)
    port["vhost"] = checks.selector(port["vhost"], "vhost", wildcard=False, empty=True)
    port["systemid"] = checks.selector(port["systemid"], "systemid", wildcard=True)
    port["bridge"] = checks.selector(port["bridge"], "bridge", wildcard=True)
    return port


def describe(port: Mapping[str, Any]) -> str:
    return (
        f"{port['name']} (vhost {port['vhost']!r}, systemid {port['systemid']}, "
        f"bridge {port['bridge']})"
    )


async def _attach(txn: Transaction, port: dict[str, Any]) -> None:
    """Claim the port's name and selector, and count it in its physical network."""
    physnet = await require(txn, PHYSNETS, port["physicalnetwork"], "physicalnetwork")
    if physnet["type"] == "local":
        raise Conflict(
            f"physicalnetwork: physical network {physnet['id']} is a local network, "
            "which has no physical ports",
            field="physicalnetwork",
        )
    name_key = physport_key(*(port[f] for f in ("vhost", "systemid", "bridge", "name")))
    selector_key = physnet_port(
        port["physicalnetwork"], port["vhost"], port["systemid"], port["bridge"]
    )
    held = await txn.get_many([name_key, selector_key])
    if held[name_key] is not None:
        raise Conflict(f"physical port {describe(port)} already exists as {held[name_key]}")
    if held[selector_key] is not None:
        raise Conflict(
            f"physical network {port['physicalnetwork']} already has physical port "
            f"{held[selector_key]} for vhost {port['vhost']!r}, systemid {port['systemid']}, "
            f"bridge {port['bridge']}"
        )
    txn.put(name_key, port["id"])
    txn.put(selector_key, port["id"])
    await bump(txn, physnet_state(port["physicalnetwork"]), "physports", 1)


async def _detach(txn: Transaction, port: dict[str, Any]) -> None:
    txn.delete(physport_key(*(port[f] for f in ("vhost", "systemid", "bridge", "name"))))
    txn.delete(
        physnet_port(port["physicalnetwork"], port["vhost"], port["systemid"], port["bridge"])
    )
    await bump(txn, physnet_state(port["physicalnetwork"]), "physports", -1)


async def create_physport(txn: Transaction, body: object) -> dict:
    request = parse(PhysicalPortCreate, body)
    port = _check({"id": resolve_id(request.id), **request.model_dump(exclude={"id"})})
    await require_absent(txn, PHYSPORTS, port["id"])
    await _attach(txn, port)
    txn.put(PHYSPORTS.key(port["id"]), port)
    return port


async def update_physport(txn: Transaction, id: str, body: object) -> dict:
    """Move the port to another network or rename it: release, then claim again."""
    current = await require(txn, PHYSPORTS, id)
    request = parse(PhysicalPortUpdate, fixed(body, current))
    changes = given(request)
    not_null(changes, "physicalnetwork", *KEY_FIELDS)
    port = _check({**current, **changes})
    if port != current:
        await _detach(txn, current)
        await _attach(txn, port)
        txn.put(PHYSPORTS.key(id), port)
    return port


async def delete_physport(txn: Transaction, id: str) -> None:
    port = await require(txn, PHYSPORTS, id)
    await _detach(txn, port)
    txn.delete(PHYSPORTS.key(id))


async def physport_id(
    txn: Transaction, name: str, vhost: str = "", systemid: str = WILDCARD, bridge: str = WILDCARD
) -> str:
    """The id of the port named by (name, vhost, systemid, bridge), as the VLCP API names it."""
    port = _check({"name": name, "vhost": vhost, "systemid": systemid, "bridge": bridge})
    id = await txn.get(physport_key(vhost, systemid, bridge, port["name"]))
    if id is None:
        raise NotFound(f"physical port {describe(port)} does not exist")
    return id


async def _read(source: Source, keys: list[str]) -> Mapping[str, Any]:
    if isinstance(source, Transaction):
        return await source.get_many(keys)
    if isinstance(source, Store):
        return (await source.read(keys)).values
    if isinstance(source, Snapshot):
        return source.values
    return source


async def find_physical_port(
    source: Source, physnet: str, systemid: str, bridge: str, vhost: str = ""
) -> dict | None:
    """The port carrying `physnet` on bridge `bridge` of server `systemid`, most specific first.

    Exact system-id and bridge, then the system-id with any bridge, then any system-id with
    the bridge, then the catch-all. `source` is a transaction, a store, a snapshot or a
    mapping of key -> value (a controller's local view).
    """
    order = dict.fromkeys(
        [(systemid, bridge), (systemid, WILDCARD), (WILDCARD, bridge), (WILDCARD, WILDCARD)]
    )
    keys = [physnet_port(physnet, vhost, s, b) for s, b in order]
    found = await _read(source, keys)
    for key in keys:
        if found.get(key) is not None:
            port_key = PHYSPORTS.key(found[key])
            return (await _read(source, [port_key])).get(port_key)
    return None


PHYSPORTS = Kind(
    name="physical-ports",
    noun="physical port",
    prefix=PHYSPORT,
    create_body=PhysicalPortCreate,
    update_body=PhysicalPortUpdate,
    stored=PhysicalPort,
    create=create_physport,
    update=update_physport,
    delete=delete_physport,
    cli="physical-port",
    vlcp=VlcpNames(
        "viperflow",
        "physicalport",
        "ports",
        ("physicalnetwork", "name", "vhost", "systemid", "bridge"),
        key=KEY_FIELDS,
    ),
    parent="physicalnetwork",
    contended=(("physicalnetwork", physnet_state),),
)
