"""Physical networks: how logical networks are carried (VLAN, VXLAN, native, local).

A vlan network hands out VLAN ids from its `vlanrange`, a vxlan network VNIs from its
`vnirange`; each id in use has a key `physnet-tag/<net>/<id>` naming its logical network.
`physnet-state/<id>` counts logical networks and physical ports (the deletion guard) and
keeps the allocation hint.

VLAN ids are per network (two vlan networks are two wires), but a VNI is global on the
shared underlay: the vnirange of a vxlan network may not overlap another vxlan network's,
so a VNI always names one logical network. Every vxlan network's range is kept in one key,
`physnet-vni-ranges` (bounded by the number of vxlan networks, tens), which each vxlan
creation, range change and deletion reads and writes: two concurrent overlapping
creations, from any processes, make one of the two transactions conflict and re-check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vlcp.layout import (
    LOGNET,
    PHYSNET,
    VNI_RANGES,
    physnet_ports,
    physnet_state,
    physnet_tag,
    physnet_tags,
)
from vlcp.store import Transaction

from . import checks
from .blockers import holders, listed, named
from .common import (
    fixed,
    in_the_way,
    load_state,
    merge_extras,
    new_extras,
    prefix_reader,
    require,
    require_absent,
    resolve_id,
)
from .errors import Busy, Conflict, Invalid
from .kind import Kind, VlcpNames
from .objects import (
    PhysicalNetwork,
    PhysicalNetworkCreate,
    PhysicalNetworkUpdate,
    field_names,
    given,
    parse,
)

DECLARED = field_names(PhysicalNetworkCreate) | {"status"}
DIRECT_CHECK = 500
"""Up to this many removed ids, a range change reads their keys; beyond, it lists what is used."""


@dataclass(frozen=True)
class Tagging:
    """How a network type numbers its logical networks."""

    range_field: str  # on the physical network
    tag_field: str  # on the logical network
    noun: str
    bounds: tuple[int, int]


TAGGING = {
    "vlan": Tagging("vlanrange", "vlanid", "VLAN id", checks.VLAN_BOUNDS),
    "vxlan": Tagging("vnirange", "vni", "VNI", checks.VNI_BOUNDS),
}


def _check_ranges(network: dict[str, Any]) -> None:
    """The range field of the type is present and valid; the other one is absent."""
    kind = network["type"]
    for tagging in TAGGING.values():
        field = tagging.range_field
        value = network.get(field)
        if TAGGING.get(kind) is tagging:
            if value is None:
                raise Invalid(f"{field}: is required for {kind} networks", field=field)
            network[field] = checks.ranges(value, tagging.bounds, field)
        elif value is not None:
            owner = next(t for t, g in TAGGING.items() if g is tagging)
            raise Invalid(
                f"{field}: only {owner} networks have a {field}; this is a {kind} network",
                field=field,
            )


async def create_physnet(txn: Transaction, body: object) -> dict:
    request = parse(PhysicalNetworkCreate, body)
    id = resolve_id(request.id)
    network = {"id": id, "type": request.type, "vlanrange": None, "vnirange": None}
    network.update(given(request))
    _check_ranges(network)
    network.update(new_extras(request, DECLARED))
    await require_absent(txn, PHYSNETS, id)
    if network["type"] == "vxlan":
        await _claim_vnis(txn, id, network["vnirange"])
    txn.put(PHYSNETS.key(id), network)
    txn.put(physnet_state(id), {"lognets": 0, "physports": 0, "next_tag": None})
    return network


async def update_physnet(txn: Transaction, id: str, body: object) -> dict:
    current = await require(txn, PHYSNETS, id)
    request = parse(PhysicalNetworkUpdate, fixed(body, current))
    changes = given(request)
    if changes.get("type", current["type"]) != current["type"]:
        raise Invalid(
            f"type: cannot be changed (from {current['type']} to {changes['type']})", field="type"
        )
    changes.pop("type", None)
    network = {**current, **changes}
    _check_ranges(network)
    tagging = TAGGING.get(network["type"])
    if tagging and network[tagging.range_field] != current[tagging.range_field]:
        await _check_in_use(txn, id, current, network, tagging)
        if network["type"] == "vxlan":
            await _claim_vnis(txn, id, network["vnirange"])
    network = merge_extras(network, request, DECLARED)
    txn.put(PHYSNETS.key(id), network)
    return network


async def _check_in_use(
    txn: Transaction, id: str, current: dict, network: dict, tagging: Tagging
) -> None:
    """A narrower range must still hold every id in use."""
    field = tagging.range_field
    removed = checks.subtract(current[field], network[field])
    count = (await load_state(txn, physnet_state(id)))["lognets"]
    if not removed or count == 0:
        return
    if checks.range_size(removed) <= DIRECT_CHECK:
        keys = {physnet_tag(id, v): v for first, last in removed for v in range(first, last + 1)}
        values = await txn.get_many(keys)
        used = {keys[k]: lognet for k, lognet in values.items() if lognet is not None}
    else:
        used = {
            v: n
            for v, n in (await tags_in_use(txn, id, count)).items()
            if checks.in_ranges(v, removed)
        }
    if used:
        tag, lognet = min(used.items())
        raise Conflict(
            f"{field}: {tagging.noun} {tag} is used by logical network {lognet}; "
            "the new range must include it",
            field=field,
        )


async def vni_ranges(txn: Transaction) -> dict[str, list[list[int]]]:
    """{vxlan physical network id: its vnirange}, as the transaction sees it.

    The index is absent while there is no vxlan network (and in a store written before it
    existed): it is then rebuilt from a listing of the physical networks outside the
    transaction, each listed vxlan network read again in it. A vxlan network created since
    the listing wrote the index, which this transaction read as absent, so the commit
    conflicts and the request runs again.
    """
    ranges = await txn.get(VNI_RANGES)
    if ranges is not None:
        return dict(ranges)
    reader = prefix_reader.get()
    if reader is None:
        raise Conflict("the VNI ranges of the vxlan physical networks cannot be checked here")
    physnets = (await reader(PHYSNETS.prefix)).values
    keys = [k for k, v in physnets.items() if isinstance(v, dict) and v.get("type") == "vxlan"]
    return {
        v["id"]: v["vnirange"]
        for v in (await txn.get_many(keys)).values()
        if v is not None and v.get("type") == "vxlan"
    }


def _overlap(ours: list[list[int]], theirs: list[list[int]]) -> tuple[int, int, list, list] | None:
    """The first VNIs two ranges share: (first, last, our span, their span), or None."""
    found = [
        (max(a[0], b[0]), min(a[1], b[1]), a, b)
        for a in ours
        for b in theirs
        if max(a[0], b[0]) <= min(a[1], b[1])
    ]
    return min(found, key=lambda o: o[0]) if found else None


async def _claim_vnis(txn: Transaction, id: str, spans: list[list[int]]) -> None:
    """Record the vnirange of vxlan network `id`; a Conflict when another network's overlaps."""
    ranges = await vni_ranges(txn)
    clashes = sorted(
        (overlap, other)
        for other, theirs in ranges.items()
        if other != id and (overlap := _overlap(spans, theirs)) is not None
    )
    if clashes:
        (first, last, ours, theirs), other = clashes[0]
        vnis = f"VNI {first}" if first == last else f"VNIs {first}-{last}"
        more = [o for _, o in clashes[1:]]
        also = f"; it also overlaps physical network{'s' * (len(more) > 1)} {listed(more)}"
        raise Conflict(
            f"vnirange: {ours} overlaps {theirs} of vxlan physical network {other} ({vnis})"
            f"{also if more else ''}; a VNI names one logical network on the whole underlay, "
            "so the vnirange of two vxlan physical networks may not overlap",
            field="vnirange",
        )
    ranges[id] = spans
    txn.put(VNI_RANGES, ranges)


async def _release_vnis(txn: Transaction, id: str) -> None:
    ranges = await vni_ranges(txn)
    ranges.pop(id, None)
    if ranges:
        txn.put(VNI_RANGES, ranges)
    else:
        txn.delete(VNI_RANGES)


async def tags_in_use(txn: Transaction, id: str, count: int) -> dict[int, str]:
    """Every tag of the physical network, listed outside the transaction and confirmed in it.

    The count in the state document changes with every allocation, so when the listed keys
    are all present and as many as the count, they are all of them; the commit then checks
    that nothing changed since.
    """
    reader = prefix_reader.get()
    if reader is None:
        raise Conflict(f"physical network {id}: too many ids in use to check this change here")
    prefix = physnet_tags(id)
    for _attempt in range(3):
        listed = (await reader(prefix)).values
        if len(listed) != count:
            continue
        values = await txn.get_many(listed)
        if all(v is not None for v in values.values()):
            return {int(k[len(prefix) :]): v for k, v in values.items()}
    raise Busy(f"physical network {id}: its allocations kept changing while being checked")


async def _physnet_in_the_way(txn: Transaction, physnet: dict[str, Any], state: dict) -> Conflict:
    """The guard's 409, naming the logical networks (each holds a tag key, except on a local
    network, which has no tags: its logical networks are found among all of them) and the
    physical ports (each holds a selector key)."""
    id = physnet["id"]
    parts = []
    if state["lognets"]:
        if physnet["type"] in TAGGING or physnet["type"] == "native":
            lognets = await holders(txn, physnet_tags(id))
        else:
            # By the layout's prefix: lognet.py imports this module, not the reverse.
            lognets = await holders(txn, LOGNET, lambda n: _on(n, id))
        parts.append(named(state["lognets"], "logical network", lognets))
    if state["physports"]:
        ports = await holders(txn, physnet_ports(id))
        parts.append(named(state["physports"], "physical port", ports))
    return in_the_way(f"physical network {id}", parts)


def _on(lognet: Any, physnet: str) -> str | None:
    return lognet["id"] if lognet.get("physicalnetwork") == physnet else None


async def delete_physnet(txn: Transaction, id: str) -> None:
    physnet = await require(txn, PHYSNETS, id)
    state = await load_state(txn, physnet_state(id))
    if state["lognets"] or state["physports"]:
        raise await _physnet_in_the_way(txn, physnet, state)
    if physnet["type"] == "vxlan":
        await _release_vnis(txn, id)
    txn.delete(PHYSNETS.key(id))
    txn.delete(physnet_state(id))


PHYSNETS = Kind(
    name="physical-networks",
    noun="physical network",
    prefix=PHYSNET,
    create_body=PhysicalNetworkCreate,
    update_body=PhysicalNetworkUpdate,
    stored=PhysicalNetwork,
    create=create_physnet,
    update=update_physnet,
    delete=delete_physnet,
    cli="physical-network",
    vlcp=VlcpNames(
        "viperflow", "physicalnetwork", "networks", ("id", "type", "vlanrange", "vnirange")
    ),
)
