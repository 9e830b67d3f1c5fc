"""OVSDB values <-> Python values (RFC 7047 section 5.1), guided by column types.

Decoded shapes, chosen so that rows compare with ``==`` and diffs are plain set algebra:

* atoms: ``str``, ``int``, ``float``, ``bool``, :class:`uuid.UUID` (from ``["uuid", ...]``);
* a map column: ``dict``; a set column: ``frozenset``;
* a column of exactly one atom: the atom; of zero or one atom: the atom or ``None``.

Encoding goes the other way for operations we send, and adds :class:`NamedUuid` (a row
inserted earlier in the same transaction). Anything the server sends that does not fit the
column type raises :class:`ProtocolError`: a value we cannot trust must not reach the cache.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ProtocolError
from .schema import BaseType, ColumnType

Atom = str | int | float | bool | uuid.UUID
Value = Atom | None | frozenset[Any] | dict[Any, Any]
Row = dict[str, Value]
"""A row as the cache holds it: column name -> decoded value. Treat it as read-only."""


@dataclass(frozen=True)
class NamedUuid:
    """``["named-uuid", name]``: refers to a row inserted with ``uuid-name`` in this txn."""

    name: str


# ---------------------------------------------------------------- decoding


def decode_atom(data: Any, base: BaseType | None = None) -> Atom:
    """One atom; with a base type, refuse anything of another type."""
    if isinstance(data, list):
        if len(data) == 2 and data[0] == "uuid" and isinstance(data[1], str):
            try:
                value: Atom = uuid.UUID(data[1])
            except ValueError as exc:
                raise ProtocolError(f"bad uuid {data[1]!r}") from exc
        else:
            raise ProtocolError(f"not an atom: {data!r}")
    elif isinstance(data, bool | int | float | str):
        value = data
    else:
        raise ProtocolError(f"not an atom: {data!r}")
    if base is not None:
        value = _check_atom(value, base)
    return value


def _check_atom(value: Atom, base: BaseType) -> Atom:
    kind = base.kind
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "real" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if (
        (kind == "boolean" and isinstance(value, bool))
        or (kind == "string" and isinstance(value, str))
        or (kind == "uuid" and isinstance(value, uuid.UUID))
    ):
        return value
    raise ProtocolError(f"{value!r} is not of type {kind}")


def _elements(data: Any, ctype: ColumnType | None) -> list[Atom]:
    """The atoms of a set value: ``["set", [...]]`` or a bare atom (a one-element set)."""
    key = ctype.key if ctype else None
    if isinstance(data, list) and len(data) == 2 and data[0] == "set":
        if not isinstance(data[1], list):
            raise ProtocolError(f"bad set {data!r}")
        return [decode_atom(item, key) for item in data[1]]
    return [decode_atom(data, key)]


def _pairs(data: Any, ctype: ColumnType | None) -> dict[Any, Any]:
    """The entries of ``["map", [[k, v], ...]]``."""
    if not (isinstance(data, list) and len(data) == 2 and data[0] == "map"):
        raise ProtocolError(f"not a map: {data!r}")
    if not isinstance(data[1], list):
        raise ProtocolError(f"bad map {data!r}")
    key_type = ctype.key if ctype else None
    value_type = ctype.value if ctype else None
    out: dict[Any, Any] = {}
    for pair in data[1]:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise ProtocolError(f"bad map entry {pair!r}")
        out[decode_atom(pair[0], key_type)] = decode_atom(pair[1], value_type)
    return out


def decode_value(data: Any, ctype: ColumnType | None = None) -> Value:
    """A column value. Without a type: maps -> dict, sets -> frozenset, atoms as such."""
    if ctype is None:
        if isinstance(data, list) and data[:1] == ["map"]:
            return _pairs(data, None)
        if isinstance(data, list) and data[:1] == ["set"]:
            return frozenset(_elements(data, None))
        return decode_atom(data)
    if ctype.is_map:
        return _pairs(data, ctype)
    elements = _elements(data, ctype)
    if ctype.is_scalar or ctype.is_optional:
        return _shrink(elements, ctype)
    if ctype.max is not None and len(elements) > ctype.max:
        raise ProtocolError(f"{len(elements)} elements for a set of at most {ctype.max}")
    return frozenset(elements)


def _shrink(elements: Iterable[Atom], ctype: ColumnType) -> Atom | None:
    """A set of at most one element as that element (or None when optional and empty)."""
    items = list(elements)
    if len(items) == 1:
        return items[0]
    if not items and ctype.is_optional:
        return None
    raise ProtocolError(f"{len(items)} elements for a column of exactly one value")


def apply_diff(old: Value, diff: Any, ctype: ColumnType) -> Value:
    """Apply an ``update2`` "modify" column diff to the previous value.

    The rules (ovsdb-server(7), section 4.1.14): a single-valued column carries its new
    value; a set carries the elements that were added or removed (the symmetric
    difference); a map carries new keys, removed keys with their old value, and changed
    keys with their new value. "Single-valued" includes optional columns (sets of at most
    one): ovsdb-server 3.1 sends ``fail_mode`` going from secure to standalone as
    ``"standalone"`` and clearing it as ``["set", []]``, not as a symmetric difference.
    """
    if ctype.is_map:
        if not isinstance(old, dict):
            raise ProtocolError(f"map diff applied to non-map {old!r}")
        result = dict(old)
        for key, value in _pairs(diff, ctype).items():
            if key in result and result[key] == value:
                del result[key]
            else:
                result[key] = value
        return result
    if ctype.is_scalar or ctype.is_optional:
        return _shrink(_elements(diff, ctype), ctype)
    if not isinstance(old, frozenset):
        raise ProtocolError(f"set diff applied to non-set {old!r}")
    return old.symmetric_difference(_elements(diff, ctype))


# ---------------------------------------------------------------- encoding


def encode_atom(value: Any) -> Any:
    """A Python atom as OVSDB JSON."""
    if isinstance(value, uuid.UUID):
        return ["uuid", str(value)]
    if isinstance(value, NamedUuid):
        return ["named-uuid", value.name]
    if isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot encode {value!r} as an OVSDB atom")


def encode_value(value: Any) -> Any:
    """A Python value as OVSDB JSON: mappings -> map, sets/lists/tuples -> set, None -> []."""
    if value is None:
        return ["set", []]
    if isinstance(value, Mapping):
        return ["map", [[encode_atom(k), encode_atom(v)] for k, v in value.items()]]
    if isinstance(value, set | frozenset | list | tuple):
        return ["set", [encode_atom(item) for item in value]]
    return encode_atom(value)


def encode_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``{column: python value}`` mapping as an OVSDB ``<row>``."""
    return {column: encode_value(value) for column, value in row.items()}
