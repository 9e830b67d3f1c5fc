"""The original VLCP `vtepcontroller` API, `/vtepcontroller/<method>`, on the bindings.

The original spoke to each switch's OVSDB from the API process. Here, as through `/v1/vtep`,
a call reads or writes the store (one model call) and each switch's VTEP controller
(`vlcp vtep run`) follows; the lists answer what the controllers last reported. The
answers keep the original's shapes: `{switch: [port names]}`, `{switch: {management_ips,
tunnel_ips, description, switch_fault_status}}` and null for the changes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from vlcp.model.service import Model

from .vlcp_compat import CompatError, add_call, checked, required
from .vlcp_names import VTEPCONTROLLER

SWITCH_FIELDS = ("management_ips", "tunnel_ips", "description", "switch_fault_status")


def build_router(model: Model) -> APIRouter:
    """listphysicalswitches, listphysicalports, updatelogicalswitch, unbindlogicalswitch,
    unbindphysicalport."""
    router = APIRouter(tags=["vlcp"])
    calls = Calls(model)
    port = ("physicalswitch", "physicalport")
    for method, params in (
        ("listphysicalswitches", ("physicalswitch",)),
        ("listphysicalports", ("physicalswitch",)),
        ("updatelogicalswitch", (*port, "vlanid", "logicalnetwork", "vni", "logicalports")),
        ("unbindlogicalswitch", (*port, "vlanid", "logicalnetwork")),
        ("unbindphysicalport", port),
    ):
        add_call(router, VTEPCONTROLLER, method, checked(calls, method, params), params)
    return router


class Calls:
    """One method per call of the original vtepcontroller module."""

    def __init__(self, model: Model) -> None:
        self.model = model

    async def listphysicalswitches(self, params: dict[str, Any]) -> dict[str, Any]:
        reported = await self._reported(params)
        return {s["name"]: {f: s.get(f, _EMPTY[f]) for f in SWITCH_FIELDS} for s in reported}

    async def listphysicalports(self, params: dict[str, Any]) -> dict[str, list[str]]:
        return {s["name"]: sorted(s.get("ports", {})) for s in await self._reported(params)}

    async def updatelogicalswitch(self, params: dict[str, Any]) -> None:
        """Bind; `vni`, when given, must be the network's (vlcp allocates VNIs), and
        `logicalports` is accepted and not needed: every server announces its ports."""
        network = required(params, "logicalnetwork")
        vni = params.get("vni")
        if vni is not None:
            stored = (await self.model.get("logical-networks", network)).get("vni")
            if _integer(vni, "vni") != stored:
                raise CompatError(
                    f"vni {vni} is not logical network {network}'s VNI ({stored}): vlcp "
                    "allocates VNIs; leave vni out",
                    422,
                )
        body = {
            "physicalswitch": required(params, "physicalswitch"),
            "physicalport": required(params, "physicalport"),
            "vlan": _integer(params.get("vlanid"), "vlanid"),
            "logicalnetwork": network,
        }
        await self.model.bind_vtep(body)

    async def unbindlogicalswitch(self, params: dict[str, Any]) -> None:
        await self.model.unbind_vtep(
            required(params, "physicalswitch"),
            required(params, "physicalport"),
            _integer(params.get("vlanid"), "vlanid"),
            required(params, "logicalnetwork"),
        )

    async def unbindphysicalport(self, params: dict[str, Any]) -> None:
        switch, port = required(params, "physicalswitch"), required(params, "physicalport")
        await self.model.unbind_vtep_port(switch, port)

    async def _reported(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The switches their controllers reported (the original listed connected ones)."""
        switch = params.get("physicalswitch")
        if switch is not None:
            switch = required(params, "physicalswitch")
        return [s for s in await self.model.vtep_switches(switch) if s["reported"]]


_EMPTY: dict[str, Any] = {
    "management_ips": [],
    "tunnel_ips": [],
    "description": "",
    "switch_fault_status": [],
}


def _integer(value: Any, name: str) -> int:
    """An integer parameter, given as a number or as its digits (a query string's)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise CompatError(f"parameter {name!r} must be an integer, not {value!r}")
