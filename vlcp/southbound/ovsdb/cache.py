"""The row cache behind a monitor: pure data, fed decoded-or-raw updates, no I/O.

It understands the three shapes ovsdb-server sends — ``<table-updates>`` (``monitor``),
``<table-updates2>`` (``monitor_cond``) and a fresh initial state after a reconnect — and
turns each into a list of :class:`RowChange`. Every update is first computed against the
current cache and only then applied, so a message that turns out to be malformed half-way
leaves the cache untouched (the connection is then dropped and the monitor resyncs).

:func:`diff_tables` is the resync: the difference between what we had before a disconnect
and what the server has now is exactly what happened while we were away.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ProtocolError
from .schema import DatabaseSchema, TableSchema
from .values import Row, Value, apply_diff, decode_value

Tables = dict[str, dict[uuid.UUID, Row]]
"""``{table: {row uuid: row}}``."""


class ChangeKind(enum.Enum):
    INSERT = "insert"
    MODIFY = "modify"
    DELETE = "delete"


@dataclass(frozen=True)
class RowChange:
    """One row appeared, changed or disappeared; ``old``/``new`` are whole rows."""

    table: str
    uuid: uuid.UUID
    kind: ChangeKind
    old: Row | None
    new: Row | None

    @property
    def changed_columns(self) -> frozenset[str]:
        """Columns whose value differs between old and new (all of them on insert/delete)."""
        old, new = self.old or {}, self.new or {}
        return frozenset(c for c in old.keys() | new.keys() if old.get(c) != new.get(c))

    @property
    def row(self) -> Row:
        """The row as it is now, or as it was just before it was deleted."""
        row = self.new if self.new is not None else self.old
        assert row is not None
        return row


@dataclass(frozen=True)
class ChangeSet:
    """The changes of one server message, applied to the cache atomically.

    ``resync`` is True for the first state after a (re)connection: the changes are then the
    difference between the cache and the server, not one transaction.
    """

    changes: tuple[RowChange, ...]
    resync: bool = False

    def __bool__(self) -> bool:
        return bool(self.changes)


def diff_tables(old: Mapping[str, Mapping[uuid.UUID, Row]], new: Tables) -> list[RowChange]:
    """The inserts, modifies and deletes that turn ``old`` into ``new``.

    Deletes come first and inserts last (tables in name order, rows in uuid order), so a
    consumer that handles changes one by one never sees two live rows claiming one name.
    """
    deletes: list[RowChange] = []
    modifies: list[RowChange] = []
    inserts: list[RowChange] = []
    for table in sorted(old.keys() | new.keys()):
        before, after = old.get(table, {}), new.get(table, {})
        for row_uuid in sorted(before.keys() | after.keys()):
            was, now = before.get(row_uuid), after.get(row_uuid)
            if now is None:
                deletes.append(RowChange(table, row_uuid, ChangeKind.DELETE, was, None))
            elif was is None:
                inserts.append(RowChange(table, row_uuid, ChangeKind.INSERT, None, now))
            elif was != now:
                modifies.append(RowChange(table, row_uuid, ChangeKind.MODIFY, was, now))
    return deletes + modifies + inserts


class RowCache:
    """``{table: {uuid: row}}`` for the monitored columns of one database."""

    def __init__(self, schema: DatabaseSchema, columns: Mapping[str, Sequence[str]]) -> None:
        self.schema = schema
        self.columns = {table: tuple(cols) for table, cols in columns.items()}
        self.tables: Tables = {table: {} for table in self.columns}

    def set_schema(self, schema: DatabaseSchema) -> None:
        """Use a newer schema (a reconnect may find an upgraded server)."""
        self.schema = schema

    # ------------------------------------------------------------ decoding rows

    def _table(self, table: str) -> TableSchema:
        if table not in self.columns:
            raise ProtocolError(f"update for unmonitored table {table!r}")
        try:
            return self.schema.table(table)
        except KeyError as exc:
            raise ProtocolError(str(exc)) from exc

    def decode_row(self, table: str, data: Any, *, fill_defaults: bool) -> Row:
        """A ``<row>`` of monitored columns, with defaults for the ones left out.

        ``update2`` initial/insert rows omit columns that hold their default, so a whole
        row needs the schema to fill them in.
        """
        schema = self._table(table)
        if not isinstance(data, Mapping):
            raise ProtocolError(f"row of {table} is not an object: {data!r}")
        row: Row = {}
        for column in self.columns[table]:  # their names as keys: one string for all rows
            if column in data:
                row[column] = decode_value(data[column], _column_type(schema, column))
            elif fill_defaults:
                row[column] = _column_type(schema, column).default()
        return row

    def decode_initial2(self, updates: Any) -> Tables:
        """The fresh state from a ``monitor_cond`` reply (``<table-updates2>``, all initial)."""
        fresh: Tables = {table: {} for table in self.columns}
        for table, rows in _table_rows(updates):
            for row_uuid, update in rows:
                kind, data = _single_member(update)
                if kind not in ("initial", "insert"):
                    raise ProtocolError(f"{kind!r} in an initial monitor reply")
                fresh[table][row_uuid] = self.decode_row(table, data, fill_defaults=True)
        return fresh

    def decode_initial1(self, updates: Any) -> Tables:
        """The fresh state from a plain ``monitor`` reply (``<table-updates>``, all "new")."""
        fresh: Tables = {table: {} for table in self.columns}
        for table, rows in _table_rows(updates):
            for row_uuid, update in rows:
                if not isinstance(update, Mapping) or "new" not in update:
                    raise ProtocolError(f"initial row without 'new': {update!r}")
                fresh[table][row_uuid] = self.decode_row(table, update["new"], fill_defaults=True)
        return fresh

    # ------------------------------------------------------------ applying

    def resync(self, fresh: Tables) -> ChangeSet:
        """Replace the cache by a fresh server state; return what differs."""
        changes = diff_tables(self.tables, fresh)
        self.tables = fresh
        return ChangeSet(tuple(changes), resync=True)

    def apply_update2(self, updates: Any) -> ChangeSet:
        """Apply an ``update2`` notification's ``<table-updates2>``."""
        changes: list[RowChange] = []
        for table, rows in _table_rows(updates):
            schema = self._table(table)
            current = self.tables[table]
            for row_uuid, update in rows:
                kind, data = _single_member(update)
                old = current.get(row_uuid)
                if kind in ("insert", "initial"):
                    if old is not None:
                        raise ProtocolError(f"insert of existing row {table} {row_uuid}")
                    new = self.decode_row(table, data, fill_defaults=True)
                    changes.append(RowChange(table, row_uuid, ChangeKind.INSERT, None, new))
                elif kind == "delete":
                    if old is None:
                        raise ProtocolError(f"delete of unknown row {table} {row_uuid}")
                    changes.append(RowChange(table, row_uuid, ChangeKind.DELETE, old, None))
                elif kind == "modify":
                    if old is None:
                        raise ProtocolError(f"modify of unknown row {table} {row_uuid}")
                    new = self._modified(table, schema, old, data)
                    changes.append(RowChange(table, row_uuid, ChangeKind.MODIFY, old, new))
                else:
                    raise ProtocolError(f"unknown row update {kind!r}")
        return self._commit(changes)

    def apply_update1(self, updates: Any) -> ChangeSet:
        """Apply an ``update`` notification's ``<table-updates>`` (old/new row pairs)."""
        changes: list[RowChange] = []
        for table, rows in _table_rows(updates):
            self._table(table)
            current = self.tables[table]
            for row_uuid, update in rows:
                if not isinstance(update, Mapping):
                    raise ProtocolError(f"bad row update {update!r}")
                old = current.get(row_uuid)
                if "new" not in update:
                    if old is None:
                        raise ProtocolError(f"delete of unknown row {table} {row_uuid}")
                    changes.append(RowChange(table, row_uuid, ChangeKind.DELETE, old, None))
                elif old is None:
                    new = self.decode_row(table, update["new"], fill_defaults=True)
                    changes.append(RowChange(table, row_uuid, ChangeKind.INSERT, None, new))
                else:
                    new = {**old, **self.decode_row(table, update["new"], fill_defaults=False)}
                    changes.append(RowChange(table, row_uuid, ChangeKind.MODIFY, old, new))
        return self._commit(changes)

    def _modified(self, table: str, schema: TableSchema, old: Row, diff: Any) -> Row:
        if not isinstance(diff, Mapping):
            raise ProtocolError(f"modify of {table} is not an object: {diff!r}")
        new = dict(old)
        for column, raw in diff.items():
            if column not in self.columns[table]:
                continue
            new[column] = apply_diff(old[column], raw, _column_type(schema, column))
        return new

    def _commit(self, changes: Iterable[RowChange]) -> ChangeSet:
        """Apply computed changes (only after all of them decoded without error)."""
        applied = tuple(changes)
        for change in applied:
            rows = self.tables[change.table]
            if change.new is None:
                del rows[change.uuid]
            else:
                rows[change.uuid] = change.new
        return ChangeSet(applied)


def _column_type(schema: TableSchema, column: str) -> Any:
    try:
        return schema.column(column).type
    except KeyError as exc:
        raise ProtocolError(str(exc)) from exc


def _table_rows(updates: Any) -> Iterable[tuple[str, list[tuple[uuid.UUID, Any]]]]:
    """Validate ``{table: {uuid: update}}`` and yield it with parsed uuids."""
    if not isinstance(updates, Mapping):
        raise ProtocolError(f"table updates are not an object: {str(updates)[:200]}")
    for table, rows in updates.items():
        if not isinstance(rows, Mapping):
            raise ProtocolError(f"updates of {table} are not an object")
        parsed = []
        for key, update in rows.items():
            try:
                parsed.append((uuid.UUID(key), update))
            except (ValueError, TypeError) as exc:
                raise ProtocolError(f"bad row uuid {key!r} in {table}") from exc
        yield table, parsed


def _single_member(update: Any) -> tuple[str, Any]:
    """The one ``{"initial"|"insert"|"delete"|"modify": row}`` member of a row-update2."""
    if not isinstance(update, Mapping) or len(update) != 1:
        raise ProtocolError(f"bad row update {update!r}")
    ((kind, data),) = update.items()
    return kind, data


def snapshot(tables: Mapping[str, Mapping[uuid.UUID, Row]]) -> Tables:
    """A copy of the cache's mapping structure (rows are shared: they are never mutated)."""
    return {table: dict(rows) for table, rows in tables.items()}


__all__ = [
    "ChangeKind",
    "ChangeSet",
    "RowCache",
    "RowChange",
    "Tables",
    "Value",
    "diff_tables",
    "snapshot",
]
