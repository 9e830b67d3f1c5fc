"""Builders for OVSDB transaction operations (RFC 7047 section 5.2) from Python values.

Operations stay plain JSON-able dicts (what ``transact`` sends), so callers may also write
them by hand; these functions only spare them the ``["set", ...]``/``["map", ...]``
encoding and make the conditions readable: ``update("Bridge", [eq("name", "br0")], ...)``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .values import NamedUuid, encode_row, encode_value

Condition = list[Any]
Op = dict[str, Any]


def cond(column: str, function: str, value: Any) -> Condition:
    """A ``[column, function, value]`` condition; ``function`` is ==, !=, includes, <, ..."""
    return [column, function, encode_value(value)]


def eq(column: str, value: Any) -> Condition:
    """``column == value``."""
    return cond(column, "==", value)


def by_uuid(row_uuid: uuid.UUID | NamedUuid) -> Condition:
    """The condition selecting one row by its UUID."""
    return cond("_uuid", "==", row_uuid)


def includes(column: str, value: Any) -> Condition:
    """``column`` (a set or map) includes ``value`` (a set, map or atom)."""
    return cond(column, "includes", value)


def insert(table: str, row: Mapping[str, Any], uuid_name: str | None = None) -> Op:
    """Insert a row; ``uuid_name`` lets later ops refer to it as ``NamedUuid(uuid_name)``."""
    op: Op = {"op": "insert", "table": table, "row": encode_row(row)}
    if uuid_name is not None:
        op["uuid-name"] = uuid_name
    return op


def select(table: str, where: Sequence[Condition], columns: Iterable[str] | None = None) -> Op:
    """Select rows (all columns unless ``columns`` is given)."""
    op: Op = {"op": "select", "table": table, "where": list(where)}
    if columns is not None:
        op["columns"] = list(columns)
    return op


def update(table: str, where: Sequence[Condition], row: Mapping[str, Any]) -> Op:
    """Set columns of every matching row; the result's ``count`` says how many matched."""
    return {"op": "update", "table": table, "where": list(where), "row": encode_row(row)}


def mutate(table: str, where: Sequence[Condition], mutations: Sequence[tuple[str, str, Any]]) -> Op:
    """Mutate columns in place: ``("ports", "insert", {port})``, ``("x", "+=", 1)``.

    For a map, ``delete`` takes a set of keys or a map of entries.
    """
    return {
        "op": "mutate",
        "table": table,
        "where": list(where),
        "mutations": [[col, mutator, encode_value(value)] for col, mutator, value in mutations],
    }


def delete(table: str, where: Sequence[Condition]) -> Op:
    """Delete every matching row."""
    return {"op": "delete", "table": table, "where": list(where)}


def wait(
    table: str,
    where: Sequence[Condition],
    columns: Iterable[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    until: str = "==",
    timeout_ms: int = 0,
) -> Op:
    """Abort unless the matching rows' ``columns`` equal (or, ``until="!="``, differ from)
    ``rows``: the optimistic-concurrency guard for a decision made on cached data."""
    return {
        "op": "wait",
        "table": table,
        "where": list(where),
        "columns": list(columns),
        "until": until,
        "rows": [encode_row(row) for row in rows],
        "timeout": timeout_ms,
    }


def comment(text: str) -> Op:
    """A comment that ovsdb-server writes to its log with the transaction."""
    return {"op": "comment", "comment": text}


def assert_lock(lock: str) -> Op:
    """Abort unless this session holds ``lock`` (fencing a leader's writes)."""
    return {"op": "assert", "lock": lock}
