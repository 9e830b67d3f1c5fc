"""What a backend provides: the few primitives the generic `Store` is built on.

A backend deals only in encoded bytes and opaque versions; keys are already checked and
values already encoded. Everything above (retries after conflicts, watches with resync,
sessions with their reaper) is written once in `vlcp.store.store` for all backends.
Riding out a lost connection is each backend's job: only it knows whether a request may
have reached the store.
"""

from __future__ import annotations

import abc
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MISSING_VERSION = 0
"""The version a backend reports for a key that does not exist."""


@dataclass(frozen=True, slots=True)
class Versioned:
    """A key's stored bytes (None when absent) and the version to compare at commit."""

    data: bytes | None
    version: int


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One committed transaction: its revision and every key it wrote (None = deleted)."""

    revision: int
    changes: tuple[tuple[str, bytes | None], ...]


class Compacted(Exception):
    """The change log no longer holds the revisions a watcher asked for: it must resync."""


class Backend(abc.ABC):
    """One store technology (sqlite, ZooKeeper, etcd, Redis) behind the common contract."""

    name: str = "backend"

    @abc.abstractmethod
    async def fetch(self, keys: Iterable[str]) -> dict[str, Versioned]:
        """Current data and version of each key (absent keys: data None, version 0).

        Raises `StoreUnavailable` only when the store stayed unreachable for `timeout`.
        """

    @abc.abstractmethod
    async def commit(self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]) -> int:
        """Atomically check that every read key still has its version, then apply `writes`.

        Returns the commit's revision (or the current one when nothing is written).
        Raises `Conflict` when a read key changed (nothing was written).

        A replicated store (ZooKeeper, etcd) rides out the loss of a minority of its
        members: calls move to the members left and are retried until the store URL's
        `timeout` runs out. A commit whose answer was lost with a connection is settled
        from the store, never guessed: if it was applied its revision is returned, if it
        was not (and never will be) it is sent again. Only when the store stays
        unreachable past `timeout` does this raise `StoreUnavailable`, whose
        `maybe_applied` says whether the commit may have been applied (wholly) or
        certainly was not.
        """

    @abc.abstractmethod
    async def snapshot(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        """Every key under `prefix` with its data, consistent as of the returned revision.

        Raises `StoreUnavailable` only when the store stayed unreachable for `timeout`.
        """

    async def snapshot_of(
        self, prefixes: Sequence[str], keys: Sequence[str]
    ) -> tuple[int, dict[str, bytes]]:
        """Every key under one of `prefixes`, and each of `keys` that exists, with its data,
        consistent as of the returned revision: what a watch of several prefixes starts from.

        This default reads one prefix alone, and otherwise everything, keeping what was
        asked for; a backend that can read less (ZooKeeper, sqlite) does.
        """
        if len(prefixes) == 1 and not keys:
            return await self.snapshot(prefixes[0])
        revision, values = await self.snapshot("")
        wanted = set(keys)
        return revision, {
            k: v for k, v in values.items() if k in wanted or k.startswith(tuple(prefixes))
        }

    @abc.abstractmethod
    def changes(self, since: int) -> AsyncIterator[LogEntry]:
        """Every commit after revision `since`, in order, waiting for new ones forever.

        Raises `Compacted` when revisions after `since` are no longer kept, and
        `StoreUnavailable` when the connection is lost (the caller resumes from the last
        revision it saw).
        """

    def scope_feed(self, since: int) -> ScopeFeed:
        """The commits after `since` that a `Subscription` reads, told which scopes it
        follows so that a backend able to filter at the server does (the subscription
        filters what it gets in any case). This default is the whole change log."""
        return ScopeFeed(self, since)

    @abc.abstractmethod
    async def live_start(self, session_id: str, ttl: float) -> None:
        """Mark a session alive; it stays alive while `live_refresh` is called within `ttl`."""

    @abc.abstractmethod
    async def live_refresh(self, session_id: str, ttl: float) -> bool:
        """Extend the session; False when it had already expired (it cannot come back)."""

    @abc.abstractmethod
    async def live_sessions(self) -> set[str]:
        """The ids of sessions that are alive now."""

    @abc.abstractmethod
    async def live_end(self, session_id: str) -> None:
        """Forget a session (it is then dead for every other client)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and background tasks."""


def encode_changes(changes: Mapping[str, bytes | None], commit_id: str | None = None) -> bytes:
    """The change-log record of one commit, for backends that keep their own log.

    A JSON list of ``[key, value or null]`` pairs; with `commit_id`, the object
    ``{"id": commit_id, "changes": [...]}``, which lets a backend find its own commit in
    the log when the commit's answer was lost. `decode_record` reads both forms, so
    entries written before ids existed still decode.
    """
    items = [[key, None if data is None else data.decode()] for key, data in changes.items()]
    record: object = items if commit_id is None else {"id": commit_id, "changes": items}
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def decode_record(record: bytes) -> tuple[str | None, tuple[tuple[str, bytes | None], ...]]:
    """Inverse of `encode_changes`: the commit's id (None if it has none) and its changes."""
    parsed = json.loads(record)
    if isinstance(parsed, list):  # written without an id
        return None, _pairs(parsed)
    return parsed["id"], _pairs(parsed["changes"])


def decode_changes(record: bytes) -> tuple[tuple[str, bytes | None], ...]:
    """The changes of a change-log record (see `decode_record`)."""
    return decode_record(record)[1]


def _pairs(items: list[Any]) -> tuple[tuple[str, bytes | None], ...]:
    return tuple((key, None if text is None else text.encode()) for key, text in items)


class ScopeFeed:
    """The change log as one `Subscription` reads it: every commit after `since`.

    A backend that can deliver less (only the commits touching the followed scopes)
    subclasses this; `add` is called once a scope's snapshot at `after` was read, and the
    feed must then deliver every commit after `after` touching it.
    """

    def __init__(self, backend: Backend, since: int) -> None:
        self.backend = backend
        self.since = since

    def entries(self) -> AsyncIterator[LogEntry]:
        """What `Backend.changes` promises, for at least the followed scopes."""
        return self.backend.changes(self.since)

    def add(self, scopes: Iterable[str], after: int) -> None:
        """Follow `scopes` too, from the commit after revision `after`."""

    def remove(self, scopes: Iterable[str]) -> None:
        """Stop following `scopes` (their commits may still come for a while)."""
