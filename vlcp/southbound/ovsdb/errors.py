"""Errors raised by the OVSDB client.

Callers catch these, never ``json`` or ``asyncio`` exceptions: a malformed peer or a dropped
connection must surface as one of a few well-defined failures the controller can react to
(retry, resync, report), not as a crash from deep inside the codec.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


class OvsdbError(Exception):
    """Base class of every error the OVSDB client raises."""


class ProtocolError(OvsdbError):
    """The peer sent something that is not valid JSON-RPC/OVSDB; the connection is dropped."""


class ConnectionLost(OvsdbError):
    """The connection ended before the reply arrived (the request may or may not have run)."""


class ClientClosed(OvsdbError):
    """The client was closed; no further requests are accepted."""


class RpcError(OvsdbError):
    """The server answered a request with a JSON-RPC error (e.g. "unknown method")."""

    def __init__(self, method: str, error: Any) -> None:
        self.method = method
        self.error = error
        super().__init__(f"{method} failed: {_describe(error)}")

    @property
    def kind(self) -> str:
        """The short error string ("unknown method", "unknown database", ...)."""
        if isinstance(self.error, Mapping):
            return str(self.error.get("error", ""))
        return str(self.error)


class TransactError(OvsdbError):
    """One operation of a transaction failed, so nothing in the transaction was committed.

    ``index`` is the position of the failing operation in the list given to ``transact``, or
    ``None`` when every operation succeeded but the commit itself failed (referential
    integrity, constraint checks done at commit). The message names the operation, because
    "constraint violation" alone does not tell which of twenty operations to fix.
    """

    def __init__(
        self,
        db: str,
        index: int | None,
        op: Mapping[str, Any] | None,
        error: str,
        details: str | None,
        results: Sequence[Any],
    ) -> None:
        self.db = db
        self.index = index
        self.op = op
        self.error = error
        self.details = details
        self.results = list(results)
        where = "commit" if index is None else f"op {index} ({describe_op(op)})"
        detail = f": {details}" if details else ""
        super().__init__(f"transaction on {db} failed at {where}: {error}{detail}")


def describe_op(op: Mapping[str, Any] | None) -> str:
    """A short human label for an operation: "insert into Bridge", "wait on Port", ..."""
    if not op:
        return "?"
    name = str(op.get("op", "?"))
    table = op.get("table")
    preposition = {"insert": "into", "select": "from", "delete": "from", "wait": "on"}
    if table is None:
        return name
    text = f"{name} {preposition.get(name, 'on')} {table}"
    where = op.get("where")
    if where:
        text += " where " + " and ".join(_describe_condition(c) for c in where)
    return text


def _describe_condition(condition: Any) -> str:
    """``["name", "==", "br0"]`` -> ``name == "br0"`` (JSON for the value, kept short)."""
    if isinstance(condition, list) and len(condition) == 3:
        value = json.dumps(condition[2])
        if len(value) > 60:
            value = value[:57] + "..."
        return f"{condition[0]} {condition[1]} {value}"
    return json.dumps(condition)


def _describe(error: Any) -> str:
    """Render a JSON-RPC error object ({"error": ..., "details": ...} or a string)."""
    if isinstance(error, Mapping):
        text = str(error.get("error", error))
        if error.get("details"):
            text += f": {error['details']}"
        return text
    return str(error)
