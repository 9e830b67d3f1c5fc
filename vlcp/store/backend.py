"""What a backend provides: the few primitives the generic `Store` is built on.

A backend deals only in encoded bytes and opaque versions; keys are already checked and
values already encoded. Everything above (retries, watches with resync, sessions with
their reaper) is written once in `vlcp.store.store` for all backends.
"""

from __future__ import annotations

import abc
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass

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
        """Current data and version of each key (absent keys: data None, version 0)."""

    @abc.abstractmethod
    async def commit(self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]) -> int:
        """Atomically check that every read key still has its version, then apply `writes`.

        Returns the commit's revision (or the current one when nothing is written).
        Raises `Conflict` when a read key changed, `StoreUnavailable` when the store cannot
        be reached; in both cases nothing was written.
        """

    @abc.abstractmethod
    async def snapshot(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        """Every key under `prefix` with its data, consistent as of the returned revision."""

    @abc.abstractmethod
    def changes(self, since: int) -> AsyncIterator[LogEntry]:
        """Every commit after revision `since`, in order, waiting for new ones forever.

        Raises `Compacted` when revisions after `since` are no longer kept, and
        `StoreUnavailable` when the connection is lost (the caller resumes from the last
        revision it saw).
        """

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


def encode_changes(changes: Mapping[str, bytes | None]) -> bytes:
    """The change-log record of one commit, for backends that keep their own log."""
    items = [[key, None if data is None else data.decode()] for key, data in changes.items()]
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False).encode()


def decode_changes(record: bytes) -> tuple[tuple[str, bytes | None], ...]:
    """Inverse of `encode_changes`."""
    return tuple((key, None if text is None else text.encode()) for key, text in json.loads(record))
