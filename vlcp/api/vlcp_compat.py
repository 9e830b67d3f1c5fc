"""The original VLCP API, `/<module>/<method>`, served on the same model as REST v1.

Scripts written for the original controller keep working: the same names, parameters from
the query string, a form or a JSON body, backquoted literals, `{"result": ...}` on success
and `{"error": "..."}` with a 4xx on failure. Every call is one model call, and a plural
form is one model batch, so it is atomic like the original.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from vlcp.model.errors import NotFound
from vlcp.model.kinds import ROUTER_INTERFACES
from vlcp.model.physport import PHYSPORTS
from vlcp.model.service import Model, Op

from .bodies import refuse_reported
from .errors import HANDLED, UNAVAILABLE, describe
from .vlcp_names import CALLS, PORT_KEY_DEFAULTS, Call, from_model, to_model
from .vlcp_params import ParamError, read_params, typed

PAGE = 1000
OK = {"status": "OK"}


class CompatError(Exception):
    """A request the API refuses before the model sees it (400 unless said otherwise)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def build_router(model: Model) -> APIRouter:
    """One route per original method, for GET and POST, documented in the OpenAPI document."""
    router = APIRouter(tags=["vlcp"])
    for call in CALLS.values():
        add_call(router, call.module, call.method, Handler(model, call).run, call.params)
    return router


Run = Callable[[dict[str, Any]], Awaitable[Any]]
"""What a call does with its parameters; its value is the answer's `result`."""


def add_call(router: APIRouter, module: str, method: str, run: Run, params: Sequence[str]) -> None:
    """`/<module>/<method>` for GET and POST, in the original API's answers and errors."""
    for verb in ("GET", "POST"):
        router.add_api_route(
            f"/{module}/{method}",
            _endpoint(module, method, run),
            methods=[verb],
            summary=f"VLCP {module}.{method}",
            response_model=None,
            responses=_RESPONSES,
            openapi_extra=_document(params, with_body=verb == "POST"),
            operation_id=f"vlcp_{module}_{method}_{verb.lower()}",
        )


def checked(calls: object, method: str, allowed: tuple[str, ...]) -> Run:
    """`calls.<method>`, refusing parameters the method does not take (a typo does nothing
    else): the call of a module served by one object with a method per call."""

    async def run(params: dict[str, Any]) -> Any:
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise CompatError(f"{method} takes only {', '.join(allowed)}; got {unknown}")
        return await getattr(calls, method)(params)

    return run


def _endpoint(module: str, method: str, run: Run) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        try:
            result = await run(await read_params(request))
        except (ParamError, CompatError) as exc:
            status = getattr(exc, "status", 400)
            return JSONResponse({"error": str(exc)}, status_code=status)
        except HANDLED as exc:
            status, message, field = describe(exc)
            if field and field not in message and not field.startswith("ops["):
                message = f"{field}: {message}"
            return JSONResponse({"error": message}, status_code=status)
        return JSONResponse({"result": result})

    endpoint.__name__ = f"vlcp_{module}_{method}"
    return endpoint


class Handler:
    """Carries out one call: parameters -> model operations -> VLCP-shaped result."""

    def __init__(self, model: Model, call: Call) -> None:
        self.model = model
        self.call = call
        self.kind = call.kind

    async def run(self, params: dict[str, Any]) -> Any:
        call = self.call
        if call.verb == "list":
            return await self._list(params)
        if call.verb == "interfaces":
            router = required(params, "id")
            return [
                from_model(self.kind, i) for i in await self.model.list_router_interfaces(router)
            ]
        if call.plural is None:
            items = [params]
        else:
            unknown = sorted(set(params) - {call.plural})
            if unknown:
                raise CompatError(f"{call.method} takes only {call.plural!r}; got {unknown}")
            items = _objects(params.get(call.plural), call.plural)
        ops = [await self._op(item) for item in items]
        # A singular call is one model call, so its errors read without batch positions.
        results = await self.model.batch(ops) if call.plural else [await self._one(ops[0])]
        if call.verb in ("delete", "remove"):
            return OK
        return [from_model(self.kind, r) for r in results if r is not None]

    async def _one(self, op: Op) -> dict[str, Any] | None:
        model = self.model
        if op.kind == ROUTER_INTERFACES:
            if op.action == "delete":
                await model.remove_router_interface(str(op.id), (op.body or {})["subnet"])
                return None
            return await model.add_router_interface(str(op.id), op.body or {})
        if op.action == "create":
            return await model.create(op.kind, op.body or {})
        if op.action == "update":
            return await model.update(op.kind, str(op.id), op.body or {})
        await model.delete(op.kind, str(op.id))
        return None

    async def _op(self, item: dict[str, Any]) -> Op:
        verb = self.call.verb
        if self.kind == ROUTER_INTERFACES:
            router = required(item, "router")
            body = to_model(self.kind, {k: v for k, v in item.items() if k != "router"})
            if verb == "remove":
                return Op("delete", self.kind, router, {"subnet": required(item, "subnet")})
            required(item, "subnet")
            return Op("create", self.kind, router, typed(self.kind, body))
        fields = typed(self.kind, to_model(self.kind, item))
        if verb != "delete":
            refuse_reported(self.kind, fields)
        if verb == "create":
            return Op("create", self.kind, None, fields)
        if self.kind == PHYSPORTS.name:
            port_id = await self._port_id(item)
            fields = {k: v for k, v in fields.items() if k not in to_model(self.kind, _KEY_ONLY)}
        else:
            port_id = required(item, "id")
            fields.pop("id", None)
        if verb == "delete":
            return Op("delete", self.kind, port_id, None)
        return Op("update", self.kind, port_id, fields)

    async def _port_id(self, item: dict[str, Any]) -> str:
        """Physical ports are named by name, vhost, systemid and bridge in the original API."""
        key = {**PORT_KEY_DEFAULTS, **{k: item[k] for k in _KEY_ONLY if k in item}}
        key["name"] = required(item, "name")
        matches = await self.model.list(self.kind, to_model(self.kind, key), limit=2)
        if not matches:
            shown = ", ".join(f"{k}={v!r}" for k, v in key.items())
            raise CompatError(f"physical port {shown} does not exist", 404)
        return str(matches[0]["id"])

    async def _list(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        filters = typed(self.kind, to_model(self.kind, params))
        wanted_id = filters.pop("id", None)
        if wanted_id is not None:
            try:
                found = [await self.model.get(self.kind, str(wanted_id))]
            except NotFound:
                return []
            found = [o for o in found if all(o.get(k) == v for k, v in filters.items())]
            return [from_model(self.kind, o) for o in found]
        results: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = await self.model.list(self.kind, filters or None, limit=PAGE, after=after)
            results += [from_model(self.kind, o) for o in page]
            if len(page) < PAGE:
                return results
            after = page[-1]["id"]


_KEY_ONLY = dict.fromkeys(PHYSPORTS.vlcp.key)
"""The parameters naming a physical port (not changed by an update)."""


def required(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise CompatError(f"parameter {name!r} is required")
    if not isinstance(value, str):
        raise CompatError(f"parameter {name!r} must be text, not {type(value).__name__}")
    return value


def _objects(value: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise CompatError(
            f'parameter {name!r} must be a non-empty list of objects, like `[{{"id": "a"}}]`'
        )
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise CompatError(f"{name}[{index}] must be an object")
    return value


_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the call's result",
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": ["result"], "properties": {"result": {}}}
            }
        },
    },
    **{
        code: {"description": text, "content": {"application/json": {"schema": _ERROR}}}
        for code, text in (
            (400, "malformed parameters"),
            (401, "missing or wrong bearer token"),
            (404, "no such object"),
            (409, "conflicts with what is stored"),
            (413, "too large"),
            (422, "a parameter has a wrong value"),
            (503, UNAVAILABLE),
        )
    },
}


def _document(params: Sequence[str], *, with_body: bool) -> dict[str, Any]:
    """Query parameters as text (backquoted literals allowed); the same as a body (POST)."""
    described = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": "text, or a literal in backquotes like `[1, 2]`",
            "schema": {"type": "string"},
        }
        for name in params
    ]
    if not with_body:
        return {"parameters": described}
    body = {"type": "object", "properties": {name: {} for name in params}}
    return {
        "parameters": described,
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {"schema": body},
                "application/x-www-form-urlencoded": {
                    "schema": {**body, "properties": {n: {"type": "string"} for n in params}}
                },
            },
        },
    }
