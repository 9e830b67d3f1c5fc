"""REST v1 `/v1/vtep`: hardware VTEP switches and the bindings of their ports' VLANs.

A binding is named by what it binds (switch, port, VLAN), not by a generated id: that is
how an operator thinks of it, and it makes binding twice idempotent.

No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from vlcp.model.service import Model
from vlcp.model.vtep import MAX_VLAN, VtepBinding

from .schemas import ERROR_RESPONSES

_ERRORS = {code: ERROR_RESPONSES[code] for code in (400, 401, 404, 409, 422, 503)}
Switch = Annotated[str, Path(description="the switch's Physical_Switch name")]
Port = Annotated[str, Path(description="its Physical_Port name")]
Vlan = Annotated[int, Path(ge=0, le=MAX_VLAN, description="the VLAN (0: untagged)")]


def add_vtep_routes(router: APIRouter, model: Model) -> None:
    """The /vtep routes, on the /v1 router."""
    tags = ["hardware VTEP"]

    @router.get("/vtep/switches", responses=_ERRORS, tags=tags)
    async def switches(
        switch: Annotated[str | None, Query(description="only this switch")] = None,
    ) -> list[dict[str, Any]]:
        """The switches as their VTEP controllers last reported them (tunnel IPs, ports
        and their VLAN bindings, the controller instance writing), with the bindings
        written for each; `reported: false` for a switch no controller reported yet."""
        return await model.vtep_switches(switch)

    @router.get("/vtep/bindings", responses=_ERRORS, tags=tags)
    async def bindings(
        physicalswitch: Annotated[str | None, Query(description="only this switch")] = None,
    ) -> list[dict[str, Any]]:
        """Every binding of a switch port's VLAN to a logical network."""
        return await model.vtep_bindings(physicalswitch)

    @router.post("/vtep/bindings", status_code=201, responses=_ERRORS, tags=tags)
    async def bind(binding: VtepBinding) -> dict[str, Any]:
        """Bind a switch port's VLAN to a vxlan logical network: its bare-metal servers
        join the network. 409 if that VLAN is bound to another network."""
        return await model.bind_vtep(binding.model_dump())

    @router.delete(
        "/vtep/bindings/{physicalswitch}/{physicalport}/{vlan}",
        status_code=204,
        responses=_ERRORS,
        tags=tags,
    )
    async def unbind(physicalswitch: Switch, physicalport: Port, vlan: Vlan) -> Response:
        """Unbind one VLAN of a port: the switch forgets the network when it was the last."""
        await model.unbind_vtep(physicalswitch, physicalport, vlan)
        return Response(status_code=204)

    @router.delete("/vtep/bindings/{physicalswitch}/{physicalport}", responses=_ERRORS, tags=tags)
    async def unbind_port(physicalswitch: Switch, physicalport: Port) -> list[dict[str, Any]]:
        """Unbind every VLAN of a port; answers the bindings removed."""
        return await model.unbind_vtep_port(physicalswitch, physicalport)
