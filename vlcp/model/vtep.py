"""Hardware VTEP bindings: a (physical switch, port, VLAN) carries one vxlan logical network.

The API half only writes bindings (`vtep-binding/<switch>/<port>/<vlan>`) and reads what the
switches' VTEP controllers report (`vtep-switch/<switch>`); it never speaks to a switch, so
binding works while a switch or its controller is down and takes effect when it is back
(docs/hardware-vtep.md). One key per binding: binding a port never rewrites another's.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vlcp.layout import (
    VTEP_BINDING,
    VTEP_SWITCH,
    lognet_state,
    split_vtep_binding,
    vtep_binding,
    vtep_port_bindings,
    vtep_switch,
)
from vlcp.store import Transaction

from .common import bump, prefix_reader, require
from .errors import Conflict, Invalid, NotFound
from .keys import check_id
from .lognet import LOGNETS, VTEP_BOUND
from .physnet import PHYSNETS

MAX_VLAN = 4095


class VtepBinding(BaseModel):
    """What binds a switch port's VLAN (0: untagged frames) to a logical network."""

    model_config = ConfigDict(extra="forbid")

    physicalswitch: str = Field(description="the switch's Physical_Switch name")
    physicalport: str = Field(description="its Physical_Port name")
    vlan: int = Field(0, ge=0, le=MAX_VLAN, description="the VLAN on that port (0: untagged)")
    logicalnetwork: str = Field(description="a vxlan logical network")


def parse_binding(body: Any) -> VtepBinding:
    """`body` as a binding, its names checked as ids (they become key segments)."""
    try:
        binding = VtepBinding.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise Invalid(f"{field}: {first['msg']}" if field else first["msg"], field=field) from None
    check_id(binding.physicalswitch, "physicalswitch")
    check_id(binding.physicalport, "physicalport")
    return binding


def _shown(key: str, value: dict[str, Any]) -> dict[str, Any]:
    switch, port, vlan = split_vtep_binding(key)
    return {
        "physicalswitch": switch,
        "physicalport": port,
        "vlan": vlan,
        "logicalnetwork": value.get("logicalnetwork"),
    }


async def bind(txn: Transaction, body: Any) -> dict[str, Any]:
    """Bind; binding again to the same network is a no-op, to another one a 409 (unbind
    first: moving a VLAN between tenants must be deliberate)."""
    binding = parse_binding(body)
    network = binding.logicalnetwork
    lognet = await require(txn, LOGNETS, network, "logicalnetwork")
    physnet = await txn.get(PHYSNETS.key(lognet["physicalnetwork"]))
    if not physnet or physnet.get("type") != "vxlan":
        kind = physnet.get("type") if physnet else "unknown"
        raise Invalid(
            f"logicalnetwork: {network} is a {kind} network; a hardware VTEP carries only "
            "vxlan networks",
            field="logicalnetwork",
        )
    key = vtep_binding(binding.physicalswitch, binding.physicalport, binding.vlan)
    current = await txn.get(key)
    if current is not None and current.get("logicalnetwork") != network:
        raise Conflict(
            f"VLAN {binding.vlan} of port {binding.physicalport} on switch "
            f"{binding.physicalswitch} is bound to logical network "
            f"{current.get('logicalnetwork')}: unbind it first",
            field="vlan",
        )
    value = binding.model_dump()
    if current is None:
        txn.put(key, value)
        await bump(txn, lognet_state(network), VTEP_BOUND, 1)  # guards the network's deletion
    return _shown(key, value)


async def unbind(
    txn: Transaction, switch: str, port: str, vlan: int, network: str | None = None
) -> None:
    """Remove one binding; with `network`, only if it is to that network (else 409)."""
    check_id(switch, "physicalswitch")
    check_id(port, "physicalport")
    if not 0 <= vlan <= MAX_VLAN:
        raise Invalid(f"vlan: {vlan} not in 0..{MAX_VLAN}", field="vlan")
    key = vtep_binding(switch, port, vlan)
    current = await txn.get(key)
    if current is None:
        raise NotFound(f"VLAN {vlan} of port {port} on switch {switch} is not bound")
    if network is not None and current.get("logicalnetwork") != network:
        raise Conflict(
            f"VLAN {vlan} of port {port} on switch {switch} is bound to "
            f"{current.get('logicalnetwork')}, not {network}",
            field="logicalnetwork",
        )
    txn.delete(key)
    await _released(txn, current)


async def _released(txn: Transaction, binding: dict[str, Any]) -> None:
    """One binding fewer holding its network (gone already: nothing to count)."""
    state_key = lognet_state(binding["logicalnetwork"])
    if await txn.get(state_key) is not None:
        await bump(txn, state_key, VTEP_BOUND, -1)


async def unbind_port(txn: Transaction, switch: str, port: str) -> list[dict[str, Any]]:
    """Remove every binding of a port; the bindings removed (none: 404)."""
    check_id(switch, "physicalswitch")
    check_id(port, "physicalport")
    reader = prefix_reader.get()
    if reader is None:
        raise Conflict("the bindings cannot be listed inside this transaction")
    listed = await reader(vtep_port_bindings(switch, port))
    current = await txn.get_many(listed.values)  # read in the transaction: re-run if changed
    removed = [_shown(k, v) for k, v in sorted(current.items()) if v is not None]
    if not removed:
        raise NotFound(f"port {port} on switch {switch} has no binding")
    for key, value in current.items():
        if value is not None:
            txn.delete(key)
            await _released(txn, value)
    return removed


def bindings_of(values: dict[str, Any], switch: str | None = None) -> list[dict[str, Any]]:
    """The bindings among `values` (a `vtep-binding/` prefix read), of `switch` or all."""
    shown = [_shown(k, v) for k, v in sorted(values.items()) if k.startswith(VTEP_BINDING)]
    return [b for b in shown if switch is None or b["physicalswitch"] == switch]


def switches_of(values: dict[str, Any], bindings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The switches their controllers reported (`vtep-switch/` values), each with the
    bindings written for it; a switch with bindings that never reported is listed too,
    as `reported: false` (its controller is not running, or cannot reach it)."""
    names = {k.removeprefix(VTEP_SWITCH) for k in values if k.startswith(VTEP_SWITCH)}
    names |= {b["physicalswitch"] for b in bindings}
    listed = []
    for name in sorted(names):
        report = values.get(vtep_switch(name))
        mine = [b for b in bindings if b["physicalswitch"] == name]
        entry = {"name": name, "reported": report is not None, "bindings": mine}
        listed.append(entry | (report or {}))
    return listed
