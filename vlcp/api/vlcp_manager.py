"""The original VLCP `manager` API, `/manager/<method>`, on the wanted module sets.

The original loaded and unloaded modules inside its one process. Here, as through
`/v1/modules`, a call changes the wanted sets in the store (one model call, one
transaction) and each controller follows; without `server`, the change is for every
server. Modules are named by the original's paths (`vlcp.service.sdn.arpresponder.
ARPResponder`) or service names (`arpresponder`) where vlcp has a module doing that
function (`vlcp_names.ORIGINAL_MODULES`), or by their vlcp names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter

from vlcp.model.modules import Action, Change
from vlcp.model.service import Model

from .vlcp_compat import CompatError, add_call, checked, required
from .vlcp_names import MANAGER, ORIGINAL_MODULES

_BY_SERVICE = {path.rpartition(".")[2].lower(): name for path, name in ORIGINAL_MODULES.items()}
_PATH_OF = {name: path for path, name in reversed(list(ORIGINAL_MODULES.items()))}
"""vlcp name -> the first original path doing its function (what `activemodules` shows)."""


def module_name(text: str) -> str:
    """The vlcp module an original path or service name stands for; a vlcp name as is."""
    name = ORIGINAL_MODULES.get(text) or _BY_SERVICE.get(text.lower())
    if name is not None:
        return name
    if "." in text:
        known = "; ".join(f"{path} -> {name}" for path, name in ORIGINAL_MODULES.items())
        raise CompatError(
            f"module {text!r} of the original VLCP has no vlcp equivalent (those with one: "
            f"{known}); vlcp module names are listed by activemodules and GET /v1/modules",
            422,
        )
    return text


def build_router(model: Model) -> APIRouter:
    """activemodules, loadmodule, unloadmodule, reloadmodules, enableautoreload."""
    router = APIRouter(tags=["vlcp"])
    calls = Calls(model)
    for method, params in (
        ("activemodules", ("server",)),
        ("loadmodule", ("path", "name", "server")),
        ("unloadmodule", ("path", "name", "server", "dependents")),
        ("reloadmodules", ("pathlist", "server")),
        ("enableautoreload", ("enabled",)),
    ):
        add_call(router, MANAGER, method, checked(calls, method, params), params)
    return router


class Calls:
    """One method per call of the original manager module."""

    def __init__(self, model: Model) -> None:
        self.model = model

    async def activemodules(self, params: dict[str, Any]) -> dict[str, Any]:
        """{name: original path (or vlcp name)} of the modules `server` has loaded; without
        `server`, that for every server, by system-id."""
        server = _server(params)
        view = await self.model.modules(server)
        loaded = {e["server"]: _paths(e["loaded"]) for e in view["servers"]}
        return loaded[server] if server is not None else loaded

    async def loadmodule(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._change("load", [_one_module(params)], params)

    async def unloadmodule(self, params: dict[str, Any]) -> dict[str, Any]:
        dependents = _flag(params, "dependents", default=False)
        return await self._change("unload", [_one_module(params)], params, dependents)

    async def reloadmodules(self, params: dict[str, Any]) -> dict[str, Any]:
        value = params.get("pathlist")
        paths = [value] if isinstance(value, str) else value
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            raise CompatError(
                "parameter 'pathlist' is required: a module path or name, or a list of them "
                'like `["vlcp.service.sdn.arpresponder.ARPResponder"]`'
            )
        return await self._change("reload", paths, params)

    async def enableautoreload(self, params: dict[str, Any]) -> None:
        """Auto reload is off, and stays off: disabling it is answered, enabling refused."""
        if _flag(params, "enabled", default=True):
            raise CompatError(
                "vlcp has no auto reload: it reloads a module when asked (reloadmodules, "
                "POST /v1/modules/reload, vlcp module reload), after its code was changed",
                422,
            )

    async def _change(
        self,
        action: Action,
        texts: Iterable[str],
        params: dict[str, Any],
        dependents: bool = False,
    ) -> dict[str, Any]:
        names = tuple(module_name(text) for text in texts)
        change = Change(action, names, dependents)
        return await self.model.change_modules(change, _server(params))


def _paths(names: Iterable[str]) -> dict[str, str]:
    return {name: _PATH_OF.get(name, name) for name in names}


def _server(params: dict[str, Any]) -> str | None:
    """The server a call is for; None (every server) only when the parameter is left out,
    so that an empty value in a script never changes every server."""
    server = params.get("server")
    if server is not None and (not isinstance(server, str) or not server):
        raise CompatError(
            f"parameter 'server' must be a system-id, not {server!r} (leave it out for "
            "every server)"
        )
    return server


def _one_module(params: dict[str, Any]) -> str:
    given = [name for name in ("path", "name") if params.get(name) is not None]
    if len(given) != 1:
        raise CompatError("give the module as 'path' (the original's) or 'name' (vlcp's)")
    return required(params, given[0])


def _flag(params: dict[str, Any], name: str, *, default: bool) -> bool:
    value = params.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise CompatError(f"parameter {name!r} must be true or false, not {value!r}")
