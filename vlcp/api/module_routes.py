"""REST v1 `/v1/modules`: list each server's modules; load, unload, reload them.

A change is a verb (`POST /v1/modules/load`) rather than a PUT of a whole set: what an
operator means is "this module too" or "not this one", and the model works out the rest
(dependencies, the set a server follows) inside one transaction, so two operators never
overwrite each other with sets read before the other's change.

No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from vlcp.model.modules import Change
from vlcp.model.service import Model

from .schemas import (
    ERROR_RESPONSES,
    ModuleChange,
    ModuleSettings,
    ModulesView,
    ModuleUnload,
    WantedSets,
)

_ERRORS = {code: ERROR_RESPONSES[code] for code in (400, 401, 404, 409, 413, 422, 503)}
Server = Annotated[str | None, Query(description="a server's system-id (default: every server)")]


def add_module_routes(router: APIRouter, model: Model) -> None:
    """The /modules routes, on the /v1 router."""
    tags = ["modules"]

    @router.get("/modules", response_model=ModulesView, responses=_ERRORS, tags=tags)
    async def list_modules(server: Server = None) -> dict[str, Any]:
        """Each server's modules: known (doc, depends, tables, source), loaded, failed, the
        set it should run and where that comes from, what its controller has yet to do,
        and whether it is running; and `modules-all`."""
        return await model.modules(server)

    @router.post("/modules/load", response_model=WantedSets, responses=_ERRORS, tags=tags)
    async def load(request: ModuleChange) -> dict[str, Any]:
        """Add modules, with what they need, to the wanted set of `server` (or every
        server's); answers the sets written."""
        return await model.change_modules(Change("load", tuple(request.modules)), request.server)

    @router.post("/modules/unload", response_model=WantedSets, responses=_ERRORS, tags=tags)
    async def unload(request: ModuleUnload) -> dict[str, Any]:
        """Remove modules from the wanted set(s); 409 naming the modules that need them,
        unless `dependents`, which removes those too."""
        change = Change("unload", tuple(request.modules), request.dependents)
        return await model.change_modules(change, request.server)

    @router.post("/modules/reload", response_model=WantedSets, responses=_ERRORS, tags=tags)
    async def reload(request: ModuleChange) -> dict[str, Any]:
        """Ask the controllers to re-import these modules' code and replace their flows
        (a reload generation above the one each has applied)."""
        change = Change("reload", tuple(request.modules))
        return await model.change_modules(change, request.server)

    @router.post("/modules/configure", response_model=WantedSets, responses=_ERRORS, tags=tags)
    async def configure(request: ModuleSettings) -> dict[str, Any]:
        """Give a module its settings (null: its defaults) in the wanted set(s). Each
        controller checks them against the module's settings model: one it refuses keeps
        the module out, with why in its `errors`."""
        change = Change("configure", (request.module,), settings=request.settings)
        return await model.change_modules(change, request.server)
