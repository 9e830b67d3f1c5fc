"""The embedded store: one sqlite database file, shared safely by the processes of one machine.

- Transactions: `BEGIN IMMEDIATE` serialises writers across processes; each key keeps the
  revision that last wrote it, which the commit compares with what the transaction read.
- Watches: every commit appends to a `log` table; watchers read it in revision order.
  Commits in this process wake watchers at once; commits by other processes are noticed
  by polling `PRAGMA data_version` (a shared-memory read in WAL mode) every few ms.
- Liveness: sessions keep a wall-clock deadline in the `live` table (one machine, one clock).

All sqlite calls for writes and reads run on one worker thread per store object, so the
event loop never blocks on the database lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .backend import (
    MISSING_VERSION,
    Backend,
    Compacted,
    LogEntry,
    Versioned,
    decode_changes,
    encode_changes,
)
from .errors import Conflict, StoreUnavailable

T = TypeVar("T")

LOG_RETAIN = 20000
"""Commits kept for watchers that reconnect; older ones force a resync."""
_TRIM_EVERY = 512
_POLL_INTERVAL = 0.003
_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL,
                               version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (rev INTEGER PRIMARY KEY, changes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS live (sid TEXT PRIMARY KEY, deadline REAL NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('revision', 0), ('compacted', 0);
"""


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class SqliteBackend(Backend):
    """A store in one database file (WAL mode)."""

    name = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vlcp-sqlite")
        self._db = self._connect(busy_timeout)
        with self._db:
            self._db.executescript(_SCHEMA)
        self._poll_db = self._connect(busy_timeout)
        self._local_commit = asyncio.Event()

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    async def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except (sqlite3.OperationalError, sqlite3.ProgrammingError) as exc:
            raise StoreUnavailable(f"sqlite store {self.path}: {exc}") from None

    # -- data --------------------------------------------------------------------------

    async def fetch(self, keys: Iterable[str]) -> dict[str, Versioned]:
        return await self._call(self._fetch_sync, list(keys))

    def _fetch_sync(self, keys: list[str]) -> dict[str, Versioned]:
        found = dict.fromkeys(keys, Versioned(None, MISSING_VERSION))
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            for key, value, version in self._db.execute(
                f"SELECT key, value, version FROM kv WHERE key IN ({marks})", chunk
            ):
                found[key] = Versioned(value, version)
        return found

    async def commit(self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]) -> int:
        revision = await self._call(self._commit_sync, dict(reads), dict(writes))
        if writes:
            self._local_commit.set()
        return revision

    def _commit_sync(self, reads: dict[str, int], writes: dict[str, bytes | None]) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
        try:
            current = self._fetch_sync(list(reads))
            changed = [k for k, v in reads.items() if current[k].version != v]
            if changed:
                raise Conflict(f"changed since read: {', '.join(changed[:5])}")
            revision = db.execute("SELECT value FROM meta WHERE name='revision'").fetchone()[0]
            if writes:
                revision += 1
                self._apply(revision, writes)
            db.execute("COMMIT")
            return revision
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _apply(self, revision: int, writes: dict[str, bytes | None]) -> None:
        db = self._db
        deleted = [k for k, v in writes.items() if v is None]
        for chunk in _chunks(deleted):
            db.execute(f"DELETE FROM kv WHERE key IN ({','.join('?' * len(chunk))})", chunk)
        db.executemany(
            "INSERT OR REPLACE INTO kv (key, value, version) VALUES (?, ?, ?)",
            [(k, v, revision) for k, v in writes.items() if v is not None],
        )
        db.execute(
            "INSERT INTO log (rev, changes) VALUES (?, ?)", (revision, encode_changes(writes))
        )
        db.execute("UPDATE meta SET value=? WHERE name='revision'", (revision,))
        if revision % _TRIM_EVERY == 0 and revision > LOG_RETAIN:
            db.execute("DELETE FROM log WHERE rev <= ?", (revision - LOG_RETAIN,))
            db.execute("UPDATE meta SET value=? WHERE name='compacted'", (revision - LOG_RETAIN,))

    async def snapshot(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        return await self._call(self._snapshot_sync, prefix)

    def _snapshot_sync(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        return self._snapshot_of_sync((prefix,), ())

    async def snapshot_of(
        self, prefixes: Sequence[str], keys: Sequence[str]
    ) -> tuple[int, dict[str, bytes]]:
        return await self._call(self._snapshot_of_sync, tuple(prefixes), tuple(keys))

    def _snapshot_of_sync(
        self, prefixes: Sequence[str], keys: Sequence[str]
    ) -> tuple[int, dict[str, bytes]]:
        db = self._db
        db.execute("BEGIN")
        try:
            revision = db.execute("SELECT value FROM meta WHERE name='revision'").fetchone()[0]
            values: dict[str, bytes] = {}
            for prefix in prefixes:
                if prefix:
                    upper = prefix[:-1] + chr(ord("/") + 1)
                    rows = db.execute(
                        "SELECT key, value FROM kv WHERE key >= ? AND key < ?", (prefix, upper)
                    )
                else:
                    rows = db.execute("SELECT key, value FROM kv")
                values.update(rows.fetchall())
            for key in keys:
                row = db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
                if row is not None:
                    values[key] = row[0]
            return revision, values
        finally:
            db.execute("COMMIT")

    # -- change log ----------------------------------------------------------------------

    async def changes(self, since: int) -> AsyncIterator[LogEntry]:
        data_version = self._data_version()
        while True:
            entries = await self._call(self._log_after, since)
            for entry in entries:
                since = entry.revision
                yield entry
            if entries:
                continue
            data_version = await self._wait_for_commit(data_version)

    def _log_after(self, since: int) -> list[LogEntry]:
        db = self._db
        db.execute("BEGIN")
        try:
            compacted = db.execute("SELECT value FROM meta WHERE name='compacted'").fetchone()[0]
            if since < compacted:
                raise Compacted(f"revisions up to {compacted} were compacted")
            rows = db.execute(
                "SELECT rev, changes FROM log WHERE rev > ? ORDER BY rev LIMIT 1000", (since,)
            ).fetchall()
        finally:
            db.execute("COMMIT")
        return [LogEntry(rev, decode_changes(record)) for rev, record in rows]

    def _data_version(self) -> int:
        try:
            return self._poll_db.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.ProgrammingError as exc:  # closed meanwhile
            raise StoreUnavailable(f"sqlite store {self.path}: {exc}") from None

    async def _wait_for_commit(self, data_version: int) -> int:
        """Return once this process or another one committed; the new data_version."""
        self._local_commit.clear()
        while True:
            current = self._data_version()
            if current != data_version:
                return current
            try:  # not asyncio.wait_for: on Python 3.11 it can lose a cancellation
                async with asyncio.timeout(_POLL_INTERVAL):
                    await self._local_commit.wait()
            except TimeoutError:
                continue
            return current

    # -- liveness -------------------------------------------------------------------------

    async def live_start(self, session_id: str, ttl: float) -> None:
        await self._call(
            self._exec, "INSERT OR REPLACE INTO live VALUES (?, ?)", (session_id, time.time() + ttl)
        )

    async def live_refresh(self, session_id: str, ttl: float) -> bool:
        now = time.time()
        updated = await self._call(
            self._exec,
            "UPDATE live SET deadline=? WHERE sid=? AND deadline>=?",
            (now + ttl, session_id, now),
        )
        return updated == 1

    async def live_sessions(self) -> set[str]:
        rows = await self._call(
            self._query, "SELECT sid FROM live WHERE deadline>=?", (time.time(),)
        )
        return {sid for (sid,) in rows}

    async def live_end(self, session_id: str) -> None:
        await self._call(self._exec, "DELETE FROM live WHERE sid=?", (session_id,))

    def _exec(self, sql: str, params: tuple[Any, ...]) -> int:
        return self._db.execute(sql, params).rowcount

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    async def close(self) -> None:
        await self._call(self._db.close)
        self._poll_db.close()
        self._executor.shutdown(wait=False)
