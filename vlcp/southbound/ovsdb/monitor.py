"""A monitored, always-consistent row cache of some tables of one OVSDB database.

On every (re)connection the monitor fetches the schema, asks for the tables with
``monitor_cond`` (``update2`` diffs; plain ``monitor`` if the server predates it) and
*resyncs*: the server's fresh initial state is diffed against the cache, and listeners get
exactly the inserts, modifies and deletes that happened while we were disconnected (or
none). From the listeners' point of view a server restart looks like one more
transaction, so code above never needs a "start over" path.

``monitor_cond_since`` is not used: a standalone ovsdb-server (every hypervisor's
Open_vSwitch database) keeps no transaction history and always answers it with the full
state (found=false, zero txn id), so the resync diff is needed regardless.

Notifications are applied synchronously in arrival order. Because ovsdb-server sends the
updates caused by a transaction before the transaction's reply, the cache already shows a
client's own ``transact`` when that call returns.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self, TypeVar

from .cache import ChangeSet, RowCache, Tables
from .client import OvsdbClient
from .connection import Session
from .errors import ClientClosed, ConnectionLost, OvsdbError, ProtocolError, RpcError
from .ops import Condition
from .schema import DatabaseSchema
from .values import Row

log = logging.getLogger(__name__)

T = TypeVar("T")
Listener = Callable[[ChangeSet], None]

_monitor_ids = itertools.count(1)

TableSpec = Mapping[str, Iterable[str] | None] | Iterable[str]
"""Tables to monitor: ``["Bridge", "Port"]`` (all columns) or ``{"Interface": ["name"]}``."""


class Monitor:
    """Keeps ``{table: {uuid: row}}`` in step with the server through reconnects.

    ``where`` optionally limits a table to rows matching any of its conditions
    (``monitor_cond`` only). Listeners are called with one :class:`ChangeSet` per server
    update, synchronously; they must not block (schedule a task for slow work).
    """

    def __init__(
        self,
        client: OvsdbClient,
        db: str,
        tables: TableSpec,
        *,
        where: Mapping[str, Sequence[Condition]] | None = None,
    ) -> None:
        self.client = client
        self.db = db
        spec = tables.items() if isinstance(tables, Mapping) else ((t, None) for t in tables)
        self._requested: dict[str, tuple[str, ...] | None] = {
            table: None if columns is None else tuple(columns) for table, columns in spec
        }
        self._where = {table: list(conds) for table, conds in (where or {}).items()}
        self._id = f"vlcp-monitor-{next(_monitor_ids)}"
        self._cache: RowCache | None = None
        self._method = "monitor_cond"
        self._session: Session | None = None
        self._ready = False
        self._queue: list[tuple[str, list[Any]]] = []
        self._listeners: list[Listener] = []
        self._error: BaseException | None = None
        self._changed = asyncio.Event()
        self._removers: list[Callable[[], None]] = []
        self.resyncs = 0
        """How many times the cache was (re)synchronised with a fresh server state."""

    def __repr__(self) -> str:
        return f"Monitor({self.db}, {sorted(self._requested)}, {self._id})"

    # ------------------------------------------------------------ lifecycle

    async def start(self, *, wait: bool = True, timeout: float | None = None) -> Self:
        """Begin monitoring (now if connected, else on connection); maybe wait for the sync."""
        if not self._removers:
            for method in ("update2", "update", "monitor_canceled"):
                self._removers.append(
                    self.client.on_notification(
                        method, functools.partial(self._on_notification, method)
                    )
                )
            self._removers.append(self.client.add_session_hook(self._on_session))
        if wait:
            await self.wait_synced(timeout)
        return self

    async def stop(self) -> None:
        """Stop monitoring; the cache keeps its last state."""
        for remove in self._removers:
            remove()
        self._removers.clear()
        session, self._session = self._session, None
        self._ready = False
        if session is not None and not session.closed:
            try:
                await self.client.call("monitor_cancel", [self._id], session=session)
            except (OvsdbError, OSError) as exc:
                log.debug("monitor_cancel of %s failed: %s", self._id, exc)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ reading the cache

    @property
    def tables(self) -> Mapping[str, Mapping[uuid.UUID, Row]]:
        """The live cache; read-only for callers (copy with ``cache.snapshot``)."""
        return self._cache.tables if self._cache is not None else {}

    def rows(self, table: str) -> Mapping[uuid.UUID, Row]:
        """All cached rows of one monitored table."""
        if table not in self._requested:
            raise KeyError(f"{table} is not monitored by {self!r}")
        return self.tables.get(table, {})

    def find(self, table: str, **columns: Any) -> list[tuple[uuid.UUID, Row]]:
        """Rows whose columns equal the given values: ``find("Bridge", name="br0")``."""
        return [
            (row_uuid, row)
            for row_uuid, row in self.rows(table).items()
            if all(row.get(column) == value for column, value in columns.items())
        ]

    @property
    def schema(self) -> DatabaseSchema | None:
        """The schema of the current (or last) connection."""
        return self._cache.schema if self._cache is not None else None

    @property
    def method(self) -> str:
        """Which monitor request the server accepted: "monitor_cond" or "monitor"."""
        return self._method

    @property
    def synced(self) -> bool:
        """Whether the cache reflects the server right now (False while disconnected)."""
        return self._ready and self._session is not None and not self._session.closed

    # ------------------------------------------------------------ waiting and listening

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(changes)`` after each applied update; returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Wait until the cache matches the server; raises if the monitor request failed."""
        await self.wait_for(lambda: self.synced, timeout)

    async def wait_for(self, predicate: Callable[[], T], timeout: float | None = None) -> T:
        """Wait until ``predicate()`` (re-evaluated after each update) is truthy; return it.

        A bounded wait on the cache's state, for tests and for code that must see its own
        effect ("until the port has an ofport") without polling.
        """
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                if self._error is not None:
                    raise self._error
                result = predicate()
                if result:
                    return result
                await changed.wait()

    def _wake(self) -> None:
        """Wake every wait_for(): the cache or the sync state changed."""
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------ per-connection setup

    async def _on_session(self, session: Session) -> None:
        """Session hook: monitor on this connection and resync the cache."""
        self._session, self._ready, self._queue = session, False, []
        self._wake()
        try:
            schema = await self.client.get_schema(self.db, session=session)
            cache = self._prepare(schema)
            fresh = await self._request_initial(session, cache)
        except (ConnectionLost, ClientClosed):
            raise
        except (OvsdbError, KeyError) as exc:
            log.error("cannot monitor %s on %s: %s", self.db, self.client.target, exc)
            self._error = exc
            self._wake()
            return
        if self._session is not session:  # stop() was called meanwhile
            return
        changes = cache.resync(fresh)
        self._ready, self._error = True, None
        self.resyncs += 1
        log.info("%r synced (%d changes since last sync)", self, len(changes.changes))
        self._emit(changes)
        del changes  # this frame lives as long as the session: not the first sync's changes
        queued, self._queue = self._queue, []
        try:
            for method, params in queued:
                self._apply(method, params)
        except ProtocolError as exc:
            log.error("malformed %s from %s: %s; reconnecting", self.db, self.client.target, exc)
            session.close(exc)
        try:
            await session.ended.wait()
        finally:  # also when the client cancels this hook at the end of the session
            if self._session is session:
                self._ready = False
            self._wake()

    def _prepare(self, schema: DatabaseSchema) -> RowCache:
        """Resolve "all columns" against the schema; create or update the cache."""
        columns = {}
        for table, requested in self._requested.items():
            table_schema = schema.table(table)
            if requested is None:
                requested = tuple(c for c in table_schema.columns if not c.startswith("_"))
            for column in requested:
                table_schema.column(column)
            columns[table] = requested
        if self._cache is None or self._cache.columns != columns:
            old = self._cache
            self._cache = RowCache(schema, columns)
            if old is not None:  # columns changed with the schema: resync from the old rows
                self._cache.tables = old.tables
        else:
            self._cache.set_schema(schema)
        return self._cache

    async def _request_initial(self, session: Session, cache: RowCache) -> Tables:
        """Send monitor_cond (or monitor) and decode the initial rows it returns."""
        if self._method == "monitor_cond":
            requests = {
                table: [
                    {
                        "columns": list(cols),
                        **({"where": self._where[table]} if table in self._where else {}),
                    }
                ]
                for table, cols in cache.columns.items()
            }
            try:
                reply = await self.client.call(
                    "monitor_cond", [self.db, self._id, requests], session=session
                )
                return cache.decode_initial2(reply)
            except RpcError as exc:
                if "unknown method" not in exc.kind:
                    raise
                log.info("%s has no monitor_cond; using monitor", self.client.target)
                self._method = "monitor"
        if self._where:
            raise OvsdbError("the server does not support monitor_cond, needed for 'where'")
        requests = {table: [{"columns": list(cols)}] for table, cols in cache.columns.items()}
        reply = await self.client.call("monitor", [self.db, self._id, requests], session=session)
        return cache.decode_initial1(reply)

    # ------------------------------------------------------------ notifications

    def _on_notification(self, method: str, session: Session, params: list[Any]) -> None:
        """Apply (or queue, while the initial reply is pending) one of our updates."""
        if session is not self._session or not params or params[0] != self._id:
            return
        if method == "monitor_canceled":
            log.warning("%r canceled by the server; reconnecting to resync", self)
            session.close(ConnectionLost("monitor canceled by the server"))
            return
        if not self._ready:
            self._queue.append((method, params))
            return
        self._apply(method, params)

    def _apply(self, method: str, params: list[Any]) -> None:
        if self._cache is None or len(params) != 2:
            raise ProtocolError(f"bad {method} notification")
        if method == "update2":
            changes = self._cache.apply_update2(params[1])
        else:
            changes = self._cache.apply_update1(params[1])
        self._emit(changes)

    def _emit(self, changes: ChangeSet) -> None:
        """Tell listeners (their errors are logged, never propagated) and wake waiters."""
        if changes:
            for listener in list(self._listeners):
                try:
                    listener(changes)
                except Exception:
                    log.exception("monitor listener %r failed", listener)
        self._wake()
