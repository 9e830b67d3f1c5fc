"""OVSDB database schemas (RFC 7047 section 3.2), reduced to what decoding needs.

The wire format does not say whether ``"secure"`` is a string column or a one-element set,
nor which columns an ``update2`` row left out because they hold their default. Only the
column types in the schema answer that, so every decoded value goes through one of these
types. The schema is fetched from the server on every connection (``get_schema``): after an
upgrade the server may carry a newer schema than the one we saw last time.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ProtocolError

ATOMIC_TYPES = frozenset({"integer", "real", "boolean", "string", "uuid"})

_ZERO_UUID = uuid.UUID(int=0)


@dataclass(frozen=True)
class BaseType:
    """The type of one atom: a key or a value of a column."""

    kind: str
    ref_table: str | None = None
    ref_type: str = "strong"
    enum: frozenset[Any] | None = None

    @classmethod
    def from_json(cls, data: Any) -> BaseType:
        """Parse ``"string"`` or ``{"type": "uuid", "refTable": "Port", ...}``."""
        if isinstance(data, str):
            data = {"type": data}
        if not isinstance(data, Mapping) or data.get("type") not in ATOMIC_TYPES:
            raise ProtocolError(f"bad base type {data!r}")
        enum = None
        if "enum" in data:
            raw = data["enum"]
            members = raw[1] if isinstance(raw, list) and raw[:1] == ["set"] else [raw]
            enum = frozenset(m for m in members if not isinstance(m, list))
        return cls(
            kind=data["type"],
            ref_table=data.get("refTable"),
            ref_type=data.get("refType", "strong"),
            enum=enum,
        )

    def default(self) -> Any:
        """The value a required column of this type holds when nobody set it."""
        return {"integer": 0, "real": 0.0, "boolean": False, "string": "", "uuid": _ZERO_UUID}[
            self.kind
        ]


@dataclass(frozen=True)
class ColumnType:
    """A column type: a key type, an optional value type (maps) and a size range.

    The Python shape of a value follows from it: a map is a ``dict``; exactly one atom is
    the atom; zero or one atom is the atom or ``None``; anything else is a ``frozenset``.
    """

    key: BaseType
    value: BaseType | None = None
    min: int = 1
    max: int | None = 1  # None: "unlimited"

    @classmethod
    def from_json(cls, data: Any) -> ColumnType:
        """Parse ``"integer"`` or ``{"key": ..., "value": ..., "min": 0, "max": "unlimited"}``."""
        if isinstance(data, str):
            return cls(BaseType.from_json(data))
        if not isinstance(data, Mapping) or "key" not in data:
            raise ProtocolError(f"bad column type {data!r}")
        max_ = data.get("max", 1)
        return cls(
            key=BaseType.from_json(data["key"]),
            value=BaseType.from_json(data["value"]) if "value" in data else None,
            min=int(data.get("min", 1)),
            max=None if max_ == "unlimited" else int(max_),
        )

    @property
    def is_map(self) -> bool:
        return self.value is not None

    @property
    def is_scalar(self) -> bool:
        """Exactly one atom (e.g. ``Bridge.name``)."""
        return self.value is None and self.min == 1 and self.max == 1

    @property
    def is_optional(self) -> bool:
        """Zero or one atom (e.g. ``Bridge.fail_mode``, ``Interface.ofport``)."""
        return self.value is None and self.min == 0 and self.max == 1

    @property
    def is_set(self) -> bool:
        """Any other set (e.g. ``Bridge.ports``, ``Bridge.protocols``)."""
        return not (self.is_map or self.is_scalar or self.is_optional)

    def default(self) -> Any:
        """The value of a column nobody has set (what ``update2`` rows leave out)."""
        if self.is_map:
            return {}
        if self.is_scalar:
            return self.key.default()
        if self.is_optional:
            return None
        return frozenset()


@dataclass(frozen=True)
class ColumnSchema:
    """One column of a table."""

    name: str
    type: ColumnType
    ephemeral: bool = False
    mutable: bool = True


@dataclass(frozen=True)
class TableSchema:
    """One table: its columns and whether rows live without references (``isRoot``)."""

    name: str
    columns: Mapping[str, ColumnSchema]
    is_root: bool = False
    indexes: tuple[tuple[str, ...], ...] = ()

    def column(self, name: str) -> ColumnSchema:
        """A column by name; a clear error instead of a KeyError deep in decoding."""
        try:
            return self.columns[name]
        except KeyError:
            raise KeyError(f"table {self.name} has no column {name!r}") from None


@dataclass(frozen=True)
class DatabaseSchema:
    """A whole database schema as ``get_schema`` returns it."""

    name: str
    version: str
    tables: Mapping[str, TableSchema]
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> DatabaseSchema:
        """Parse a ``<database-schema>`` object (from the server or a .ovsschema file)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("tables"), Mapping):
            raise ProtocolError("schema without tables")
        tables = {}
        for tname, tdata in data["tables"].items():
            columns = {
                cname: ColumnSchema(
                    name=cname,
                    type=ColumnType.from_json(cdata.get("type")),
                    ephemeral=bool(cdata.get("ephemeral", False)),
                    mutable=bool(cdata.get("mutable", True)),
                )
                for cname, cdata in tdata.get("columns", {}).items()
            }
            tables[tname] = TableSchema(
                name=tname,
                columns=columns,
                is_root=bool(tdata.get("isRoot", False)),
                indexes=tuple(tuple(index) for index in tdata.get("indexes", [])),
            )
        return cls(
            name=str(data.get("name", "")),
            version=str(data.get("version", "")),
            tables=tables,
            raw=data,
        )

    def table(self, name: str) -> TableSchema:
        """A table by name, with the database named in the error."""
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"database {self.name} has no table {name!r}") from None
