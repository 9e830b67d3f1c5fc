"""Logical ports: endpoints of a logical network, named by the OVS iface-id.

The MAC is unique in the network (`lognet-mac/<lognet>/<mac>`), generated when not given;
the IP address is held in its subnet (`subnet-ip/...`), first free in the pool when not
given. Creating a port writes `lognet-state/<lognet>` (its port count), so it conflicts
with a concurrent deletion of the network instead of leaving an orphan.

Allowed address pairs (more sources the port may send from) are checked and stored in
canonical form, and reserve nothing: a VRRP address and its MAC are meant to be listed
on several ports.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

from pydantic import BaseModel

from vlcp.layout import LPORT, lognet_mac, lognet_state, netports_key, port_status, subnet_state
from vlcp.store import InvalidKey, Transaction

from . import allocation, checks
from .common import (
    blank,
    bump,
    fixed,
    merge_extras,
    new_extras,
    not_null,
    require,
    require_absent,
    resolve_id,
)
from .errors import Conflict, Invalid
from .kind import Kind, VlcpNames
from .lognet import LOGNETS
from .objects import LogicalPort, LogicalPortCreate, LogicalPortUpdate, field_names, given, parse
from .subnet import SUBNETS, release_address, subnet_for_address, take_address

DECLARED = field_names(LogicalPortCreate, LogicalPortUpdate) | {"status"}
_rng = random.SystemRandom()


def _check(port: dict[str, Any]) -> None:
    if port.get("hostname") is not None:
        checks.hostname(port["hostname"])
    if port.get("extra_dhcp_options") is not None:
        port["extra_dhcp_options"] = checks.dhcp_options(port["extra_dhcp_options"])
    if port.get("mac_address") is not None:
        port["mac_address"] = checks.mac(port["mac_address"])
    if port.get("allowed_address_pairs") is not None:
        pairs = [_plain(p) for p in port["allowed_address_pairs"]]
        port["allowed_address_pairs"] = checks.address_pairs(pairs)


def _plain(item: Any) -> Any:
    """A pair as given (a dict from the store, a parsed `AddressPair` from a request)."""
    return item.model_dump(exclude_none=True) if isinstance(item, BaseModel) else item


async def _claim_mac(txn: Transaction, port: dict[str, Any]) -> None:
    lognet = port["logicalnetwork"]
    if port.get("mac_address") is None:
        port["mac_address"] = await allocation.new_mac(
            txn, lambda mac: lognet_mac(lognet, mac), _rng
        )
    else:
        holder = await txn.get(lognet_mac(lognet, port["mac_address"]))
        if holder is not None:
            raise Conflict(
                f"mac_address: {port['mac_address']} is already used by logical port {holder} "
                f"in logical network {lognet}",
                field="mac_address",
            )
    txn.put(lognet_mac(lognet, port["mac_address"]), port["id"])


async def _claim_address(txn: Transaction, port: dict[str, Any]) -> None:
    """Hold the port's address: in its subnet, or in the subnet its given address is in."""
    if port.get("subnet") is None and port.get("ip_address") is not None:
        port["subnet"] = await subnet_for_address(txn, port["logicalnetwork"], port["ip_address"])
    if port.get("subnet") is None:
        return
    subnet = await require(txn, SUBNETS, port["subnet"], "subnet")
    if subnet["logicalnetwork"] != port["logicalnetwork"]:
        raise Invalid(
            f"subnet: subnet {subnet['id']} belongs to logical network "
            f"{subnet['logicalnetwork']}, not {port['logicalnetwork']}",
            field="subnet",
        )
    port["ip_address"] = await take_address(txn, subnet, port["id"], port.get("ip_address"))


async def _prefetch(txn: Transaction, port: dict[str, Any]) -> None:
    """Read in one round trip what creating the port will read key by key."""
    network = port["logicalnetwork"]
    keys = [LPORTS.key(port["id"]), LOGNETS.key(network), lognet_state(network)]
    if port.get("mac_address") is not None:
        keys.append(lognet_mac(network, port["mac_address"]))
    if port.get("subnet") is not None:
        keys += [SUBNETS.key(port["subnet"]), subnet_state(port["subnet"])]
    with contextlib.suppress(InvalidKey):  # a bad id is reported by the checks that follow
        await txn.get_many(keys)


async def create_lport(txn: Transaction, body: object) -> dict:
    request = parse(LogicalPortCreate, body)
    port = blank(LogicalPortCreate, resolve_id(request.id))
    port.update(given(request))
    _check(port)
    port.update(new_extras(request, DECLARED))
    await _prefetch(txn, port)
    await require_absent(txn, LPORTS, port["id"])
    await require(txn, LOGNETS, port["logicalnetwork"], "logicalnetwork")
    await bump(txn, lognet_state(port["logicalnetwork"]), "ports", 1)
    await _claim_mac(txn, port)
    await _claim_address(txn, port)
    txn.put(LPORTS.key(port["id"]), port)
    return port


async def update_lport(txn: Transaction, id: str, body: object) -> dict:
    """Change fields; an old MAC or address is released and the new one claimed, atomically.

    `subnet` alone moves the port to an automatic address there; `ip_address` alone (or
    with the same subnet) takes that address; `ip_address: null` takes a new automatic
    one; `subnet: null` leaves the port without an address.
    """
    current = await require(txn, LPORTS, id)
    request = parse(LogicalPortUpdate, fixed(body, current, "logicalnetwork"))
    changes = given(request)
    not_null(changes, "mac_address")
    port = {**current, **changes}
    _check(port)
    if port["mac_address"] != current["mac_address"]:
        txn.delete(lognet_mac(current["logicalnetwork"], current["mac_address"]))
        await _claim_mac(txn, port)
    if "subnet" in changes or "ip_address" in changes:
        if "ip_address" not in changes and port["subnet"] != current["subnet"]:
            port["ip_address"] = None
        if port["subnet"] is None and "subnet" in changes and port["ip_address"] is not None:
            raise Invalid("ip_address: a port without a subnet has no address", field="ip_address")
        if (port["subnet"], port["ip_address"]) != (current["subnet"], current["ip_address"]):
            if current["ip_address"] is not None:
                await release_address(txn, current["subnet"], current["ip_address"])
            await _claim_address(txn, port)
    port = merge_extras(port, request, DECLARED)
    txn.put(LPORTS.key(id), port)
    return port


async def delete_lport(txn: Transaction, id: str) -> None:
    port = await require(txn, LPORTS, id)
    txn.delete(lognet_mac(port["logicalnetwork"], port["mac_address"]))
    if port["ip_address"] is not None:
        await release_address(txn, port["subnet"], port["ip_address"])
    await bump(txn, lognet_state(port["logicalnetwork"]), "ports", -1)
    txn.delete(LPORTS.key(id))
    txn.delete(port_status(id))
    txn.delete(netports_key(port["logicalnetwork"], id))  # even if its server is down


LPORTS = Kind(
    name="logical-ports",
    noun="logical port",
    prefix=LPORT,
    create_body=LogicalPortCreate,
    update_body=LogicalPortUpdate,
    stored=LogicalPort,
    create=create_lport,
    update=update_lport,
    delete=delete_lport,
    cli="logical-port",
    vlcp=VlcpNames(
        "viperflow",
        "logicalport",
        "ports",
        (
            "logicalnetwork",
            "id",
            "subnet",
            "mac_address",
            "ip_address",
            "hostname",
            "extra_dhcp_options",
            "allowed_address_pairs",
        ),
    ),
    parent="logicalnetwork",
    reported=frozenset({"status"}),
    contended=(("logicalnetwork", lognet_state), ("subnet", subnet_state)),
)
