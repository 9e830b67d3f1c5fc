"""Shapes of REST v1 requests and responses, as pydantic models for the OpenAPI document.

Object fields are validated by the model (it owns the rules and names the field in its
errors), so the API passes object bodies through as JSON objects. What the API itself
decides — batch envelopes, pages, errors — is declared strictly here, so schemathesis and
clients see the same contract the code enforces.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vlcp.model.kinds import NAMES, ROUTER_INTERFACES
from vlcp.model.modules import MAX_NAMES
from vlcp.model.objects import PortStatus

from .errors import UNAVAILABLE

MAX_BATCH = 500
"""Most operations in one batch; a store transaction writes at most 1000 keys anyway."""

Kind = Literal[(*NAMES, ROUTER_INTERFACES)]  # type: ignore[valid-type]
"""What a batch operation may name: every kind (REST path names), and router interfaces."""


class ErrorDetail(BaseModel):
    status: int = Field(description="the HTTP status, repeated for clients that lose it")
    message: str = Field(description="what is wrong, naming the field or object and why")
    field: str | None = Field(description="the offending field, like `operations[2].kind`")


class ErrorBody(BaseModel):
    """Every REST v1 error."""

    error: ErrorDetail


class Object(BaseModel):
    """A stored object: its id and every field (the fields depend on the kind)."""

    model_config = ConfigDict(extra="allow")
    id: str


class LogicalPortObject(Object):
    """A logical port: its stored fields and its status, which the API reads beside it."""

    status: PortStatus | None = Field(
        description="read only: what the server binding the port last reported (`up` or "
        "`down` there, since when); null until a server has reported the port"
    )


class Page(BaseModel):
    """One page of a list, sorted by id; pass `next` as `after` for the next page."""

    items: list[Object]
    next: str | None = Field(description="cursor for the next page; null on the last page")


class LogicalPortPage(Page):
    """One page of logical ports, each with its status."""

    items: list[LogicalPortObject]  # type: ignore[assignment]


class Interfaces(BaseModel):
    """The interfaces of one router."""

    items: list[dict[str, Any]]


class Operation(BaseModel):
    """One operation of a batch."""

    model_config = ConfigDict(extra="forbid", strict=True)
    action: Literal["create", "update", "delete"]
    kind: Kind
    id: str | None = Field(
        None, description="the object to update or delete (the router, for router-interfaces)"
    )
    body: dict[str, Any] | None = Field(
        None, description="fields to create or update ({'subnet': ...} for router-interfaces)"
    )


class BatchRequest(BaseModel):
    """Many operations, applied in one store transaction: all of them or none."""

    model_config = ConfigDict(extra="forbid", strict=True)
    operations: list[Operation] = Field(min_length=1, max_length=MAX_BATCH)


class BatchResult(BaseModel):
    """The result of each operation, in order (null for deletes)."""

    results: list[dict[str, Any] | None]


class Health(BaseModel):
    status: Literal["ok"]
    store: str = Field(description="the store backend's name")


class ModuleChange(BaseModel):
    """Modules to load or reload on one server, or on every server."""

    model_config = ConfigDict(extra="forbid", strict=True)
    modules: list[str] = Field(
        min_length=1, max_length=MAX_NAMES, description="module names, as `GET /v1/modules` lists"
    )
    server: str | None = Field(
        None,
        description="a server's system-id; null: every server (`modules-all`, and the same "
        "change to each server's own set, in one transaction)",
    )


class ModuleUnload(ModuleChange):
    """Modules to unload on one server, or on every server."""

    dependents: bool = Field(
        False, description="unload the modules that need these too (else 409 naming them)"
    )


class ModuleSettings(BaseModel):
    """One module's settings on one server, or on every server."""

    model_config = ConfigDict(extra="forbid", strict=True)
    module: str = Field(min_length=1, description="a module name, as `GET /v1/modules` lists")
    settings: dict[str, Any] | None = Field(
        description="its settings, as its settings schema (`known.<module>.settings` in "
        "`GET /v1/modules`) describes them; null: back to its defaults"
    )
    server: str | None = Field(
        None, description="a server's system-id; null: every server, as for load"
    )


class WantedModules(BaseModel):
    """A wanted module set as stored: names, the reload generation asked of each, and
    the settings given to each."""

    modules: list[str]
    reload: dict[str, int]
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict)


class WantedSets(BaseModel):
    """The wanted sets a change wrote: the shared one, and servers' own ones."""

    all: WantedModules | None = Field(description="`modules-all`; null if never set")
    servers: dict[str, WantedModules] = Field(description="system-id -> its own set")


class PendingModules(BaseModel):
    load: list[str]
    unload: list[str]
    reload: list[str]


class ServerModules(BaseModel):
    """One server: what its controller reports, and the set it should run."""

    server: str = Field(description="its system-id")
    running: bool = Field(description="its controller is running (`chassis/<system-id>`)")
    reported: bool = Field(description="its controller has reported its modules")
    known: dict[str, Any] = Field(
        description="name -> {doc, depends, tables, source, settings (its JSON schema, or "
        "null if it takes none)}"
    )
    default: list[Any] = Field(description="what it runs when no set is stored")
    loaded: list[Any]
    errors: dict[str, Any] = Field(description="name -> why it failed to load or reload")
    generations: dict[str, Any] = Field(description="name -> the reload generation applied")
    settings: dict[str, Any] = Field(description="loaded module -> the settings it runs with")
    since: float | None
    wanted: list[str] = Field(description="the set it should run")
    wanted_from: Literal["server", "all", "default"] = Field(
        description="where `wanted` comes from: its own set, `modules-all`, or its default"
    )
    reload: dict[str, int] = Field(description="name -> the reload generation asked")
    wanted_settings: dict[str, Any] = Field(description="module -> the settings given it")
    pending: PendingModules | None = Field(
        description="what its controller has yet to do for `wanted`; null before it reports"
    )


class ModulesView(BaseModel):
    """Every server's modules (or one server's), and the shared wanted set."""

    all: WantedModules | None = Field(description="`modules-all`; null if never set")
    servers: list[ServerModules]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "malformed request (JSON syntax, query string)"),
        (401, "missing or wrong bearer token"),
        (404, "no such object"),
        (409, "conflicts with what is stored (in use, duplicate, exhausted)"),
        (413, "request body or transaction too large"),
        (422, "a field has a wrong value; `field` names it"),
        (503, UNAVAILABLE),
    )
}
