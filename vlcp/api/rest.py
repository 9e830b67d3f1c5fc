"""REST v1: create, read, update, delete and list for every kind, router interfaces, batch,
and the modules of each server (`module_routes`).

Handlers are thin on purpose: each turns one request into exactly one model call (one
store transaction), so the model alone decides what is valid and what conflicts.

No `from __future__ import annotations` here: FastAPI reads the route signatures at run
time, and some of them close over local values (the wait bound).
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from vlcp.api_error import ApiError
from vlcp.model.errors import ModelError
from vlcp.model.kinds import NAMES
from vlcp.model.lport import LPORTS
from vlcp.model.service import Model, Op

from .bodies import body_schema, filter_parameters, filter_value, refuse_reported
from .module_routes import add_module_routes
from .schemas import (
    ERROR_RESPONSES,
    BatchRequest,
    BatchResult,
    Health,
    Interfaces,
    LogicalPortObject,
    LogicalPortPage,
    Object,
    Page,
)
from .vtep_routes import add_vtep_routes

MAX_PAGE = 1000
DEFAULT_PAGE = 100
DEFAULT_WAIT = 10.0
RESERVED_QUERY = frozenset({"limit", "after"})

Id = Annotated[str, Path(description="the object's id")]
JsonObject = Annotated[dict[str, Any], Body()]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERROR_RESPONSES[code] for code in (400, 401, 422, 503, *codes)}


def build_router(model: Model, *, max_wait: float) -> APIRouter:
    """The /v1 routes over `model`; `max_wait` bounds `?wait=up&timeout=`."""
    router = APIRouter(prefix="/v1")

    @router.get("/health", response_model=Health, tags=["health"])
    async def health() -> dict[str, Any]:
        """Answer once the store answers: for load balancers and the CLI's start-up wait."""
        await model.list(NAMES[0], limit=1)
        store = getattr(model, "store", None)
        return {"status": "ok", "store": getattr(store, "name", "unknown")}

    for kind in NAMES:
        _add_kind(router, model, kind, max_wait)
    _add_interfaces(router, model)
    add_module_routes(router, model)
    add_vtep_routes(router, model)

    @router.post(
        "/batch", response_model=BatchResult, tags=["batch"], responses=_errors(404, 409, 413)
    )
    async def batch(request: BatchRequest) -> dict[str, Any]:
        """Apply every operation in one store transaction: all succeed, or nothing changes."""
        ops = [Op(action=o.action, kind=o.kind, id=o.id, body=o.body) for o in request.operations]
        for index, op in enumerate(ops):
            if op.action != "create" and op.id is None:
                raise ApiError(422, f"{op.action} needs the id", f"operations[{index}].id")
            if op.action != "delete" and op.body is None:
                raise ApiError(422, f"{op.action} needs a body", f"operations[{index}].body")
            refuse_reported(op.kind, op.body, f"operations[{index}].")
        try:
            return {"results": await model.batch(ops)}
        except ModelError as exc:
            # The model names an operation `ops[i]`; this API calls the list `operations`.
            if exc.field and exc.field.startswith("ops["):
                exc.field = "operations" + exc.field.removeprefix("ops")
            raise

    return router


def _add_kind(router: APIRouter, model: Model, kind: str, max_wait: float) -> None:
    """The five routes of one kind.

    Logical ports are read with their status (`Model.get_port`, `Model.port_statuses`)
    and can be waited for. Those routes answer a `JSONResponse`, so a port's fields keep
    their stored order with `status` last; `response_model` only documents them.
    """
    tags = [kind]
    is_port = kind == LPORTS.name
    create_schema = body_schema(kind, "create")
    update_schema = body_schema(kind, "update")

    async def create(body: JsonObject) -> JSONResponse:
        refuse_reported(kind, body)
        return JSONResponse(await model.create(kind, body), status_code=201)

    async def read(id: Id) -> dict[str, Any]:
        return await model.get(kind, id)

    async def read_port(
        id: Id,
        wait: Annotated[
            Literal["up"] | None, Query(description="`up`: answer once the port is up")
        ] = None,
        timeout: Annotated[
            float, Query(gt=0, le=max_wait, description="seconds to wait (with wait=up)")
        ] = min(DEFAULT_WAIT, max_wait),
    ) -> JSONResponse:
        if wait is None:
            return JSONResponse(await model.get_port(id))
        return JSONResponse(await model.wait_port_up(id, timeout))

    async def listing(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        after: Annotated[str | None, Query(description="the `next` of the previous page")] = None,
    ) -> Any:
        filters = _filters(kind, request)
        items = await model.list(kind, filters or None, limit=limit + 1, after=after)
        more = len(items) > limit
        items = items[:limit]
        page = {"items": items, "next": items[-1]["id"] if more else None}
        if not is_port:
            return page
        # One more read for the whole page (a page holds at most MAX_PAGE ports), just
        # after the ports': a port deleted in between shows a null status.
        statuses = await model.port_statuses([item["id"] for item in items])
        page["items"] = [{**item, "status": statuses[item["id"]]} for item in items]
        return JSONResponse(page)

    async def update(id: Id, body: JsonObject) -> dict[str, Any]:
        refuse_reported(kind, body)
        return await model.update(kind, id, body)

    async def delete(id: Id) -> Response:
        await model.delete(kind, id)
        return Response(status_code=204)

    base, one = f"/{kind}", f"/{kind}/{{id}}"
    router.add_api_route(
        base,
        create,
        methods=["POST"],
        status_code=201,
        response_model=Object,
        responses=_errors(404, 409, 413),
        tags=tags,
        summary=f"Create one of {kind}",
        openapi_extra=create_schema,
    )
    router.add_api_route(
        one,
        read_port if is_port else read,
        methods=["GET"],
        response_model=LogicalPortObject if is_port else Object,
        responses={
            **_errors(404),
            **(
                {408: {**ERROR_RESPONSES[422], "description": "not up within the timeout"}}
                if is_port
                else {}
            ),
        },
        tags=tags,
        summary=f"Read one of {kind}",
    )
    router.add_api_route(
        base,
        listing,
        methods=["GET"],
        response_model=LogicalPortPage if is_port else Page,
        responses=_errors(),
        tags=tags,
        summary=f"List {kind}, filtered by any field=value, by pages",
        openapi_extra={"parameters": filter_parameters(kind)} if filter_parameters(kind) else None,
    )
    router.add_api_route(
        one,
        update,
        methods=["PATCH"],
        response_model=Object,
        responses=_errors(404, 409, 413),
        tags=tags,
        summary=f"Update fields of one of {kind}",
        openapi_extra=update_schema,
    )
    router.add_api_route(
        one,
        delete,
        methods=["DELETE"],
        status_code=204,
        response_class=Response,
        responses=_errors(404, 409),
        tags=tags,
        summary=f"Delete one of {kind}",
    )


def _add_interfaces(router: APIRouter, model: Model) -> None:
    """Router interfaces: sub-objects of a router, keyed by subnet."""
    tags = ["routers"]

    @router.post(
        "/routers/{id}/interfaces",
        status_code=201,
        response_model=dict[str, Any],
        responses=_errors(404, 409),
        tags=tags,
    )
    async def add_interface(id: Id, body: JsonObject) -> JSONResponse:
        """Attach the router to a subnet (default address: the subnet's gateway)."""
        return JSONResponse(await model.add_router_interface(id, body), status_code=201)

    @router.get(
        "/routers/{id}/interfaces",
        response_model=Interfaces,
        responses=_errors(404),
        tags=tags,
    )
    async def list_interfaces(id: Id) -> dict[str, Any]:
        """Every interface of the router."""
        return {"items": await model.list_router_interfaces(id)}

    @router.delete(
        "/routers/{id}/interfaces/{subnet}",
        status_code=204,
        response_class=Response,
        responses=_errors(404, 409),
        tags=tags,
    )
    async def remove_interface(
        id: Id, subnet: Annotated[str, Path(description="the subnet the interface is on")]
    ) -> Response:
        """Detach the router from a subnet."""
        await model.remove_router_interface(id, subnet)
        return Response(status_code=204)


def _filters(kind: str, request: Request) -> dict[str, object]:
    """`?field=value` pairs other than paging, typed by the kind's schema; 400 if malformed."""
    filters: dict[str, object] = {}
    for name, value in request.query_params.multi_items():
        if name in RESERVED_QUERY:
            continue
        if name in filters:
            raise ApiError(400, f"filter {name!r} is given more than once", name)
        filters[name] = filter_value(kind, name, value)
    return filters
