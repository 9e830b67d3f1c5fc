"""Virtual routers: static routes, and interfaces that attach them to subnets.

Interfaces live inside the router object (a router has few). An interface holds its
address in the subnet like a port does (`subnet-ip/<subnet>/<ip>` -> 'router:<id>'), by
default the subnet's gateway; the subnet's state lists the routers attached (an internal
subnet joins at most one; an external one may join several, each with its own address,
by default the first free one of the pool).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from vlcp.layout import ROUTER, subnet_state
from vlcp.store import Transaction

from . import checks
from .blockers import listed
from .common import (
    fixed,
    load_state,
    merge_extras,
    new_extras,
    require,
    require_absent,
    resolve_id,
)
from .errors import Conflict, Invalid, NotFound
from .keys import ROUTER_OWNER
from .kind import Kind, VlcpNames
from .objects import (
    Router,
    RouterCreate,
    RouterInterfaceCreate,
    RouterUpdate,
    field_names,
    given,
    parse,
)
from .subnet import SUBNETS, release_address, take_address

DECLARED = field_names(RouterCreate, RouterUpdate) | {"interfaces"}
"""A router's own fields; any other a client sends is an extra attribute (Neutron's driver
marks the routers it makes with one, as it marks its networks and ports)."""


def _routes(value: list[list[str]] | None) -> list[list[str]]:
    return [] if value is None else checks.routes(value, "routes")


async def create_router(txn: Transaction, body: object) -> dict:
    request = parse(RouterCreate, body)
    router = {"id": resolve_id(request.id), "routes": _routes(request.routes), "interfaces": []}
    router.update(new_extras(request, DECLARED))
    await require_absent(txn, ROUTERS, router["id"])
    txn.put(ROUTERS.key(router["id"]), router)
    return router


async def update_router(txn: Transaction, id: str, body: object) -> dict:
    router = dict(await require(txn, ROUTERS, id))
    request = parse(RouterUpdate, fixed(body, router))
    if "routes" in given(request):
        router["routes"] = _routes(request.routes)
    router = merge_extras(router, request, DECLARED)
    txn.put(ROUTERS.key(id), router)
    return router


async def delete_router(txn: Transaction, id: str) -> None:
    router = await require(txn, ROUTERS, id)
    if router["interfaces"]:
        subnets = listed(sorted(i["subnet"] for i in router["interfaces"]))
        count = len(router["interfaces"])
        raise Conflict(
            f"router {id} still has {count} interface{'s' if count > 1 else ''} "
            f"(on subnet{'s' if count > 1 else ''} {subnets})"
        )
    txn.delete(ROUTERS.key(id))


async def _check_overlap(txn: Transaction, router: dict[str, Any], subnet: dict[str, Any]) -> None:
    """A router cannot route between overlapping subnets."""
    mine = ipaddress.ip_network(subnet["cidr"])
    attached = [SUBNETS.key(i["subnet"]) for i in router["interfaces"]]
    for other in (await txn.get_many(attached)).values():
        if other is None:
            continue
        theirs = ipaddress.ip_network(other["cidr"])
        if mine.version == theirs.version and mine.overlaps(theirs):
            raise Conflict(
                f"subnet: {subnet['id']} ({mine}) overlaps subnet {other['id']} ({theirs}), "
                f"already attached to router {router['id']}",
                field="subnet",
            )


async def add_router_interface(txn: Transaction, router_id: str, body: object) -> dict:
    request = parse(RouterInterfaceCreate, body)
    router = dict(await require(txn, ROUTERS, router_id))
    subnet = await require(txn, SUBNETS, request.subnet, "subnet")
    interface_id = resolve_id(request.id)
    for existing in router["interfaces"]:
        if existing["subnet"] == subnet["id"]:
            raise Conflict(
                f"subnet: router {router_id} already has interface {existing['id']} "
                f"on subnet {subnet['id']}",
                field="subnet",
            )
        if existing["id"] == interface_id:
            raise Conflict(
                f"id: router {router_id} already has an interface {interface_id}", field="id"
            )
    state = await load_state(txn, subnet_state(subnet["id"]))
    if state["routers"] and not subnet["isexternal"]:
        raise Conflict(
            f"subnet: subnet {subnet['id']} is already attached to router "
            f"{state['routers'][0]}; an internal subnet joins at most one router",
            field="subnet",
        )
    await _check_overlap(txn, router, subnet)
    address = request.ip_address
    if address is None and not subnet["isexternal"]:
        if subnet["gateway"] is None:
            raise Invalid(
                f"ip_address: subnet {subnet['id']} has no gateway; give the interface's address",
                field="ip_address",
            )
        address = subnet["gateway"]
    address = await take_address(txn, subnet, ROUTER_OWNER + router_id, address, port=False)
    state = await load_state(txn, subnet_state(subnet["id"]))
    state["routers"] = sorted([*state["routers"], router_id])
    txn.put(subnet_state(subnet["id"]), state)
    interface = {
        "id": interface_id,
        "router": router_id,
        "subnet": subnet["id"],
        "ip_address": address,
    }
    router["interfaces"] = [*router["interfaces"], interface]
    txn.put(ROUTERS.key(router_id), router)
    return interface


async def remove_router_interface(txn: Transaction, router_id: str, subnet: str) -> None:
    router = dict(await require(txn, ROUTERS, router_id))
    for interface in router["interfaces"]:
        if interface["subnet"] == subnet:
            break
    else:
        raise NotFound(f"router {router_id} has no interface on subnet {subnet}")
    await release_address(txn, subnet, interface["ip_address"], port=False)
    state = await load_state(txn, subnet_state(subnet))
    state["routers"] = [r for r in state["routers"] if r != router_id]
    txn.put(subnet_state(subnet), state)
    router["interfaces"] = [i for i in router["interfaces"] if i["subnet"] != subnet]
    txn.put(ROUTERS.key(router_id), router)


async def list_router_interfaces(txn: Transaction, router_id: str) -> list[dict]:
    router = await require(txn, ROUTERS, router_id)
    return list(router["interfaces"])


ROUTERS = Kind(
    name="routers",
    noun="router",
    prefix=ROUTER,
    create_body=RouterCreate,
    update_body=RouterUpdate,
    stored=Router,
    create=create_router,
    update=update_router,
    delete=delete_router,
    cli="router",
    vlcp=VlcpNames("vrouterapi", "virtualrouter", "routers", ("id", "routes")),
)
