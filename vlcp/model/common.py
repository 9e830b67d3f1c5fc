"""Helpers every kind's module shares: loading objects, existence checks, counters, extras."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel

from vlcp.store import Snapshot, Transaction

from . import checks
from .errors import Conflict, Invalid, NotFound
from .keys import check_id
from .kind import Kind
from .objects import extras

PrefixReader = Callable[[str], Awaitable[Snapshot]]
prefix_reader: ContextVar[PrefixReader | None] = ContextVar("prefix_reader", default=None)
"""Set by `Model` around a transaction: a consistent prefix read outside it, for the rare
check that must list what is allocated (the transaction then confirms the list)."""


def new_id() -> str:
    """Generated ids are random UUIDs: unique without coordination between API processes."""
    return str(uuid.uuid4())


def blank(model: type[BaseModel], id: str) -> dict[str, Any]:
    """A new object: its id first, then every declared field unset (None)."""
    return {"id": id} | {name: None for name in model.model_fields if name != "id"}


def resolve_id(value: str | None) -> str:
    return new_id() if value is None else check_id(value)


async def require(txn: Transaction, kind: Kind, id: str, field: str | None = None) -> dict:
    """The stored object; NotFound when it is the one addressed, Invalid when referenced."""
    check_id(id, field or "id")
    value = await txn.get(kind.key(id))
    if value is None:
        if field is None:
            raise NotFound(f"{kind.noun} {id} does not exist")
        raise Invalid(f"{field}: {kind.noun} {id} does not exist", field=field)
    return value


async def require_absent(txn: Transaction, kind: Kind, id: str) -> None:
    if await txn.get(kind.key(id)) is not None:
        raise Conflict(f"{kind.noun} {id} already exists", field="id")


async def load_state(txn: Transaction, key: str) -> dict:
    """A parent's state document; written with the parent, so absent only if tampered with."""
    state = await txn.get(key)
    if state is None:
        raise Conflict(f"{key} is missing: the store was changed outside the model")
    return dict(state)


async def bump(txn: Transaction, key: str, field: str, delta: int) -> dict:
    """Add `delta` to a counter of a state document (the write that serialises children)."""
    state = await load_state(txn, key)
    state[field] = state.get(field, 0) + delta
    txn.put(key, state)
    return state


def counted(count: int, noun: str, plural: str | None = None) -> str:
    return f"{count} {noun if count == 1 else (plural or noun + 's')}"


def in_the_way(what: str, parts: list[str]) -> Conflict:
    """The deletion-guard error: "logical network n1 still has 3 ports (a, b, c) and 1 subnet
    (s1)" (`parts` from `blockers.named`)."""
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return Conflict(f"{what} still has {listed}")


def new_extras(request: BaseModel, declared: frozenset[str]) -> dict[str, Any]:
    """The extra attributes of a create request (null means "not set")."""
    attributes = checks.extra_attributes(extras(request), declared)
    return {name: value for name, value in attributes.items() if value is not None}


def merge_extras(current: dict[str, Any], request: BaseModel, declared: frozenset[str]) -> dict:
    """Apply the extra attributes of an update request: a value sets, null removes."""
    result = dict(current)
    for name, value in checks.extra_attributes(extras(request), declared).items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def fixed(body: object, current: dict[str, Any], *fields: str) -> object:
    """Drop fields an update may repeat but not change (id, parent); refuse a change."""
    if not isinstance(body, dict):
        return body
    for name in ("id", *fields):
        if name in body and body[name] != current.get(name):
            raise Invalid(
                f"{name}: cannot be changed (from {current.get(name)!r} to {body[name]!r})"
                + ("" if name == "id" else "; delete and re-create the object instead"),
                field=name,
            )
    return {k: v for k, v in body.items() if k not in ("id", *fields)}


def not_null(changes: dict[str, Any], *fields: str) -> None:
    """Fields an update may change but not clear."""
    for name in fields:
        if name in changes and changes[name] is None:
            raise Invalid(f"{name}: cannot be removed (null)", field=name)
