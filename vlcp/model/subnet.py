"""Subnets: an IP range of a logical network, its address pool and DHCP settings.

Every address in use has a key `subnet-ip/<subnet>/<ip>` naming its holder (a port id, or
'router:<id>' for a router interface). `subnet-state/<id>` counts the ports' addresses,
lists the routers attached and keeps the allocation hint. Subnets of one logical network
never overlap, so an address is unique in the network once it is unique in its subnet.
The gateway is reserved: ports never get it, a router interface takes it by default.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from vlcp.layout import SUBNET, lognet_state, subnet_ip, subnet_ips, subnet_state
from vlcp.store import Transaction

from . import allocation, checks
from .blockers import holders, listed, named
from .common import (
    blank,
    counted,
    fixed,
    in_the_way,
    load_state,
    not_null,
    require,
    require_absent,
    resolve_id,
)
from .errors import Conflict, Invalid
from .keys import ROUTER_OWNER
from .kind import Kind, VlcpNames
from .lognet import LOGNETS
from .objects import Subnet, SubnetCreate, SubnetUpdate, given, parse

POOL = ("allocated_start", "allocated_end")


def network(subnet: dict[str, Any]) -> checks.IPNetwork:
    return ipaddress.ip_network(subnet["cidr"])


def pool(subnet: dict[str, Any]) -> list[list[int]]:
    return [[int(ipaddress.ip_address(subnet[f])) for f in POOL]]


def _check(subnet: dict[str, Any]) -> None:
    """Check every field and write the canonical forms back (defaults for the pool)."""
    net = checks.cidr(subnet["cidr"])
    subnet["cidr"] = str(net)
    owner = f"subnet {subnet['id']}"

    def address(field: str, value: str) -> checks.IPAddress:
        return checks.host_in(checks.ip(value, field, net.version), net, field, owner)

    if subnet.get("gateway") is not None:
        subnet["gateway"] = str(address("gateway", subnet["gateway"]))
    first, last = checks.usable_range(net)
    defaults = {"allocated_start": first, "allocated_end": last}
    for field in POOL:
        if subnet.get(field) is None:
            subnet[field] = str(ipaddress.ip_address(defaults[field]))
        else:
            subnet[field] = str(address(field, subnet[field]))
    start, end = (ipaddress.ip_address(subnet[f]) for f in POOL)
    if start > end:
        raise Invalid(
            f"allocated_end: {end} is before allocated_start {start}", field="allocated_end"
        )
    if subnet.get("host_routes") is not None:
        subnet["host_routes"] = checks.host_routes(subnet["host_routes"], net)
    if subnet.get("isexternal") is None:
        subnet["isexternal"] = False
    checks.dhcp_fields(subnet)
    if subnet.get("pre_host_config") is not None:
        subnet["pre_host_config"] = [
            _host_config(item, f"pre_host_config[{i}]")
            for i, item in enumerate(subnet["pre_host_config"])
        ]


def _host_config(item: dict[str, Any], where: str) -> dict[str, Any]:
    item = dict(item)
    item["systemid"] = checks.selector(item["systemid"], f"{where}.systemid", wildcard=True)
    item["bridge"] = checks.selector(item["bridge"], f"{where}.bridge", wildcard=True)
    item["vhost"] = checks.selector(item["vhost"], f"{where}.vhost", wildcard=False, empty=True)
    if item.get("cidr") is not None:
        item["cidr"] = str(checks.cidr(item["cidr"], f"{where}.cidr"))
    for field in ("local_address", "gateway"):
        if item.get(field) is not None:
            item[field] = str(checks.ip(item[field], f"{where}.{field}"))
    return item


def _check_overlap(subnet: dict[str, Any], cidrs: dict[str, str]) -> None:
    mine = network(subnet)
    for other, text in sorted(cidrs.items()):
        theirs = ipaddress.ip_network(text)
        if other != subnet["id"] and mine.version == theirs.version and mine.overlaps(theirs):
            raise Conflict(
                f"cidr: {mine} overlaps subnet {other} ({theirs}) of logical network "
                f"{subnet['logicalnetwork']}",
                field="cidr",
            )


async def create_subnet(txn: Transaction, body: object) -> dict:
    request = parse(SubnetCreate, body)
    subnet = blank(SubnetCreate, resolve_id(request.id))
    subnet.update(given(request))
    _check(subnet)
    await require_absent(txn, SUBNETS, subnet["id"])
    await require(txn, LOGNETS, subnet["logicalnetwork"], "logicalnetwork")
    parent = await load_state(txn, lognet_state(subnet["logicalnetwork"]))
    _check_overlap(subnet, parent["cidrs"])
    parent["subnets"] += 1
    parent["cidrs"] = {**parent["cidrs"], subnet["id"]: subnet["cidr"]}
    txn.put(lognet_state(subnet["logicalnetwork"]), parent)
    txn.put(SUBNETS.key(subnet["id"]), subnet)
    txn.put(subnet_state(subnet["id"]), {"allocated": 0, "routers": [], "next": None})
    return subnet


async def update_subnet(txn: Transaction, id: str, body: object) -> dict:
    current = await require(txn, SUBNETS, id)
    request = parse(SubnetUpdate, fixed(body, current, "logicalnetwork"))
    changes = given(request)
    not_null(changes, "cidr", "isexternal")
    subnet = {**current, **changes}
    moved = "cidr" in changes and checks.cidr(changes["cidr"]) != network(current)
    if moved:
        for field in POOL:
            if field not in changes:
                subnet[field] = None  # the old pool belongs to the old cidr: default again
    _check(subnet)
    state = await load_state(txn, subnet_state(id))
    if moved:
        _refuse_in_use(id, state, "cidr")
        parent = await load_state(txn, lognet_state(subnet["logicalnetwork"]))
        _check_overlap(subnet, parent["cidrs"])
        parent["cidrs"] = {**parent["cidrs"], id: subnet["cidr"]}
        txn.put(lognet_state(subnet["logicalnetwork"]), parent)
    if subnet["isexternal"] != current["isexternal"] and state["routers"]:
        raise Conflict(
            f"isexternal: cannot be changed while subnet {id} is attached to router "
            f"{', '.join(state['routers'])}",
            field="isexternal",
        )
    if subnet["gateway"] != current["gateway"] and not moved:
        await _check_gateway_move(txn, id, current["gateway"], subnet["gateway"])
    txn.put(SUBNETS.key(id), subnet)
    return subnet


def _refuse_in_use(id: str, state: dict[str, Any], field: str) -> None:
    parts = []
    if state["allocated"]:
        parts.append(counted(state["allocated"], "allocated address", "allocated addresses"))
    if state["routers"]:
        parts.append(f"router {', '.join(state['routers'])}")
    if parts:
        raise Conflict(
            f"{field}: cannot change the {field} of subnet {id} while it has "
            + " and ".join(parts),
            field=field,
        )


async def _check_gateway_move(txn: Transaction, id: str, old: str | None, new: str | None) -> None:
    """A router interface may hold the old gateway; a port or router may hold the new one."""
    keys = [subnet_ip(id, a) for a in (old, new) if a is not None]
    held = await txn.get_many(keys)
    if old is not None and held[subnet_ip(id, old)] is not None:
        raise Conflict(
            f"gateway: {old} is the address of {holder_name(held[subnet_ip(id, old)])} on "
            f"subnet {id}; remove that interface first",
            field="gateway",
        )
    if new is not None and held[subnet_ip(id, new)] is not None:
        raise Conflict(
            f"gateway: {new} is already used by {holder_name(held[subnet_ip(id, new)])}",
            field="gateway",
        )


async def _subnet_in_the_way(txn: Transaction, id: str, state: dict[str, Any]) -> Conflict:
    """The guard's 409, naming the ports holding addresses (from the address keys, minus
    the routers' own) and the routers attached (listed in the state document)."""
    parts = []
    if state["allocated"]:
        ports = await holders(txn, subnet_ips(id), _port_holder)
        parts.append(
            named(
                state["allocated"],
                "allocated address",
                ports,
                plural="allocated addresses",
                label="held by logical port" + ("s" if ports and len(ports) > 1 else ""),
            )
        )
    if state["routers"]:
        routers = state["routers"]
        parts.append(f"{'router' if len(routers) == 1 else 'routers'} {listed(sorted(routers))}")
    return in_the_way(f"subnet {id}", parts)


def _port_holder(holder: Any) -> str | None:
    if not isinstance(holder, str) or holder.startswith(ROUTER_OWNER):
        return None
    return holder


async def delete_subnet(txn: Transaction, id: str) -> None:
    subnet = await require(txn, SUBNETS, id)
    state = await load_state(txn, subnet_state(id))
    if state["allocated"] or state["routers"]:
        raise await _subnet_in_the_way(txn, id, state)
    parent = await load_state(txn, lognet_state(subnet["logicalnetwork"]))
    parent["subnets"] -= 1
    parent["cidrs"] = {k: v for k, v in parent["cidrs"].items() if k != id}
    txn.put(lognet_state(subnet["logicalnetwork"]), parent)
    txn.delete(SUBNETS.key(id))
    txn.delete(subnet_state(id))


# -- addresses, for ports and router interfaces -----------------------------------------


def holder_name(holder: str) -> str:
    if holder.startswith(ROUTER_OWNER):
        return f"router {holder[len(ROUTER_OWNER) :]}"
    return f"logical port {holder}"


async def take_address(
    txn: Transaction,
    subnet: dict[str, Any],
    owner: str,
    address: str | None,
    *,
    field: str = "ip_address",
    port: bool = True,
) -> str:
    """Claim `address` (or the first free one of the pool) in `subnet` for `owner`.

    Ports are counted in the subnet's state (the deletion guard); router interfaces are
    listed there by the router module. A port never gets the gateway.
    """
    id = subnet["id"]
    state = await load_state(txn, subnet_state(id))
    gateway = subnet.get("gateway")
    if address is None:
        spans = pool(subnet)
        hint = None if state.get("next") is None else int(ipaddress.ip_address(state["next"]))
        skip = frozenset() if gateway is None else frozenset({int(ipaddress.ip_address(gateway))})
        value = await allocation.first_free(
            txn,
            lambda v: subnet_ip(id, str(ipaddress.ip_address(v))),
            spans,
            hint,
            what=(
                f"address in the pool {subnet['allocated_start']}-{subnet['allocated_end']} "
                f"of subnet {id}"
            ),
            skip=skip,
        )
        text = str(ipaddress.ip_address(value))
        state["next"] = str(ipaddress.ip_address(allocation.after(value, spans)))
    else:
        net = network(subnet)
        text = str(checks.host_in(checks.ip(address, field), net, field, f"subnet {id}"))
        if port and text == gateway:
            raise Conflict(f"{field}: {text} is the gateway of subnet {id}", field=field)
        holder = await txn.get(subnet_ip(id, text))
        if holder is not None:
            raise Conflict(
                f"{field}: {text} of subnet {id} is already used by {holder_name(holder)}",
                field=field,
            )
    txn.put(subnet_ip(id, text), owner)
    if port:
        state["allocated"] += 1
    txn.put(subnet_state(id), state)
    return text


async def release_address(
    txn: Transaction, subnet: str, address: str, *, port: bool = True
) -> None:
    txn.delete(subnet_ip(subnet, address))
    if port:
        state = await load_state(txn, subnet_state(subnet))
        state["allocated"] -= 1
        txn.put(subnet_state(subnet), state)


async def subnet_for_address(
    txn: Transaction, lognet: str, address: str, field: str = "ip_address"
) -> str:
    """The subnet of `lognet` whose CIDR holds `address` (for a port given only an address)."""
    value = checks.ip(address, field)
    cidrs = (await load_state(txn, lognet_state(lognet)))["cidrs"]
    for id, text in sorted(cidrs.items()):
        if value in ipaddress.ip_network(text):
            return id
    raise Invalid(f"{field}: {value} is in no subnet of logical network {lognet}", field=field)


SUBNETS = Kind(
    name="subnets",
    noun="subnet",
    prefix=SUBNET,
    create_body=SubnetCreate,
    update_body=SubnetUpdate,
    stored=Subnet,
    create=create_subnet,
    update=update_subnet,
    delete=delete_subnet,
    cli="subnet",
    vlcp=VlcpNames(
        "viperflow",
        "subnet",
        "subnets",
        (
            "logicalnetwork",
            "cidr",
            "id",
            "gateway",
            "allocated_start",
            "allocated_end",
            "host_routes",
            "isexternal",
            "pre_host_config",
            "mtu",
            "dns_nameservers",
            "domain_name",
            "ntp_servers",
            "lease_time",
            "extra_dhcp_options",
        ),
    ),
    parent="logicalnetwork",
    contended=(("logicalnetwork", lognet_state),),
)
