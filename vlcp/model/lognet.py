"""Logical networks: tenant networks, each carried by one physical network.

On a vlan or vxlan physical network each logical network holds a VLAN id or VNI
(`physnet-tag/<physnet>/<tag>` -> its id), given or allocated; on a native network the one
logical network holds tag 0, so a second one is refused. `lognet-state/<id>` counts its
ports and subnets (the deletion guard, and the key every child's creation writes) and
lists its subnets' CIDRs, so a new subnet can be checked for overlap in the transaction.
"""

from __future__ import annotations

from typing import Any

from vlcp.layout import (
    LOGNET,
    VTEP_BINDING,
    lognet_macs,
    lognet_state,
    physnet_state,
    physnet_tag,
)
from vlcp.store import Transaction

from . import allocation, checks
from .blockers import holders, named
from .common import (
    blank,
    bump,
    fixed,
    in_the_way,
    load_state,
    merge_extras,
    new_extras,
    not_null,
    require,
    require_absent,
    resolve_id,
)
from .errors import Conflict, Invalid
from .keys import NATIVE_TAG
from .kind import Kind, VlcpNames
from .objects import (
    LogicalNetwork,
    LogicalNetworkCreate,
    LogicalNetworkUpdate,
    field_names,
    given,
    parse,
)
from .physnet import PHYSNETS, TAGGING

DECLARED = field_names(LogicalNetworkCreate, LogicalNetworkUpdate) | {"status"}
TAG_FIELDS = ("vlanid", "vni")


async def _claim_tag(txn: Transaction, lognet: dict[str, Any], physnet: dict[str, Any]) -> None:
    """Take the network's VLAN id / VNI (given or first free), and count it in its physnet."""
    pn = physnet["id"]
    tagging = TAGGING.get(physnet["type"])
    for field in TAG_FIELDS:
        if lognet.get(field) is not None and (tagging is None or tagging.tag_field != field):
            use = f"; set {tagging.tag_field} instead" if tagging else ""
            raise Invalid(
                f"{field}: physical network {pn} is a {physnet['type']} network{use}", field=field
            )
    state = await load_state(txn, physnet_state(pn))
    state["lognets"] += 1
    if physnet["type"] == "native":
        holder = await txn.get(physnet_tag(pn, NATIVE_TAG))
        if holder is not None:
            raise Conflict(
                f"physicalnetwork: native physical network {pn} already carries logical "
                f"network {holder}; a native network carries at most one",
                field="physicalnetwork",
            )
        txn.put(physnet_tag(pn, NATIVE_TAG), lognet["id"])
    elif tagging is not None:
        field, spans = tagging.tag_field, physnet[tagging.range_field]
        tag = lognet.get(field)
        if tag is None:
            where = f"{tagging.range_field} {spans} of physical network {pn}"
            tag = await allocation.first_free(
                txn,
                lambda v: physnet_tag(pn, v),
                spans,
                state.get("next_tag"),
                what=f"{tagging.noun} in the {where}",
            )
            state["next_tag"] = allocation.after(tag, spans)
            lognet[field] = tag
        else:
            if not checks.in_ranges(tag, spans):
                raise Invalid(
                    f"{field}: {tag} is not in the {tagging.range_field} {spans} "
                    f"of physical network {pn}",
                    field=field,
                )
            holder = await txn.get(physnet_tag(pn, tag))
            if holder is not None:
                raise Conflict(
                    f"{field}: {tagging.noun} {tag} of physical network {pn} is already used "
                    f"by logical network {holder}",
                    field=field,
                )
        txn.put(physnet_tag(pn, tag), lognet["id"])
    txn.put(physnet_state(pn), state)


async def _release_tag(txn: Transaction, lognet: dict[str, Any], physnet: dict[str, Any]) -> None:
    tagging = TAGGING.get(physnet["type"])
    if physnet["type"] == "native":
        txn.delete(physnet_tag(physnet["id"], NATIVE_TAG))
    elif tagging is not None:
        txn.delete(physnet_tag(physnet["id"], lognet[tagging.tag_field]))
    await bump(txn, physnet_state(physnet["id"]), "lognets", -1)


async def create_lognet(txn: Transaction, body: object) -> dict:
    request = parse(LogicalNetworkCreate, body)
    lognet = blank(LogicalNetworkCreate, resolve_id(request.id))
    lognet.update(given(request))
    checks.dhcp_fields(lognet)
    lognet.update(new_extras(request, DECLARED))
    await require_absent(txn, LOGNETS, lognet["id"])
    physnet = await require(txn, PHYSNETS, lognet["physicalnetwork"], "physicalnetwork")
    await _claim_tag(txn, lognet, physnet)
    txn.put(LOGNETS.key(lognet["id"]), lognet)
    txn.put(lognet_state(lognet["id"]), {"ports": 0, "subnets": 0, "cidrs": {}})
    return lognet


async def update_lognet(txn: Transaction, id: str, body: object) -> dict:
    current = await require(txn, LOGNETS, id)
    request = parse(LogicalNetworkUpdate, fixed(body, current, "physicalnetwork"))
    changes = given(request)
    physnet = await require(txn, PHYSNETS, current["physicalnetwork"], "physicalnetwork")
    tagging = TAGGING.get(physnet["type"])
    if tagging is not None:
        not_null(changes, tagging.tag_field)
    lognet = {**current, **changes}
    checks.dhcp_fields(lognet)
    if any(lognet[f] != current[f] for f in TAG_FIELDS):
        await _release_tag(txn, current, physnet)
        await _claim_tag(txn, lognet, physnet)
    lognet = merge_extras(lognet, request, DECLARED)
    txn.put(LOGNETS.key(id), lognet)
    return lognet


async def _lognet_in_the_way(txn: Transaction, id: str, state: dict[str, Any]) -> Conflict:
    """The guard's 409, naming the ports (each holds a MAC key) and the subnets (listed in
    the state document with their CIDRs)."""
    parts = []
    if state["ports"]:
        ports = await holders(txn, lognet_macs(id))
        parts.append(named(state["ports"], "port", ports))
    if state["subnets"]:
        parts.append(named(state["subnets"], "subnet", sorted(state["cidrs"])))
    return in_the_way(f"logical network {id}", parts)


VTEP_BOUND = "vtep_bindings"
"""The state document's count of the hardware switch bindings that carry the network
(`vtep.py`): it cannot be deleted while a switch port is bound to it."""


def _binding_of(binding: Any, network: str) -> str | None:
    """'<switch>/<port>/<vlan>' of a binding to `network` (`vtep.py` stores them whole)."""
    if not isinstance(binding, dict) or binding.get("logicalnetwork") != network:
        return None
    return f"{binding.get('physicalswitch')}/{binding.get('physicalport')}/{binding.get('vlan')}"


async def delete_lognet(txn: Transaction, id: str) -> None:
    lognet = await require(txn, LOGNETS, id)
    state = await load_state(txn, lognet_state(id))
    if state["ports"] or state["subnets"]:
        raise await _lognet_in_the_way(txn, id, state)
    if state.get(VTEP_BOUND):
        bound = await holders(txn, VTEP_BINDING, lambda b: _binding_of(b, id))
        raise Conflict(
            f"logical network {id} is carried by "
            f"{named(state[VTEP_BOUND], 'hardware switch binding', bound)}: unbind first",
            field="id",
        )
    physnet = await require(txn, PHYSNETS, lognet["physicalnetwork"], "physicalnetwork")
    await _release_tag(txn, lognet, physnet)
    txn.delete(LOGNETS.key(id))
    txn.delete(lognet_state(id))


LOGNETS = Kind(
    name="logical-networks",
    noun="logical network",
    prefix=LOGNET,
    create_body=LogicalNetworkCreate,
    update_body=LogicalNetworkUpdate,
    stored=LogicalNetwork,
    create=create_lognet,
    update=update_lognet,
    delete=delete_lognet,
    cli="logical-network",
    vlcp=VlcpNames(
        "viperflow",
        "logicalnetwork",
        "networks",
        (
            "physicalnetwork",
            "id",
            "vni",
            "vlanid",
            "mtu",
            "dns_nameservers",
            "domain_name",
            "ntp_servers",
            "lease_time",
            "extra_dhcp_options",
        ),
    ),
    parent="physicalnetwork",
    contended=(("physicalnetwork", physnet_state),),
)
