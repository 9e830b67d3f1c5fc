"""What every part of the ZooKeeper backend shares: the connection, paths and hints.

`ZooKeeperCore` holds the state; the change log, consistent reads, commits and
liveness are mixins on top of it (one module each), assembled in `backend`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any, Generic, TypeVar

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from ..backend import MISSING_VERSION, Versioned
from ..errors import StoreUnavailable
from ..lifecycle import BackgroundTasks
from .kazoo_bridge import KazooBridge
from .layout import ZnodeLayout, store_version
from .url import ZooKeeperConfig

T = TypeVar("T")
V = TypeVar("V")

INTERNAL_RETRIES = 8
"""Attempts at an operation that races with other processes before giving up."""
_CACHE_LIMIT = 200_000


class Hints(Generic[V]):
    """A bounded map of hints that forgets everything when full: a stale or missing hint
    only costs a retried multi, never a wrong result (the server checks every version)."""

    def __init__(self) -> None:
        self._items: dict[str, V] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> V | None:
        return self._items.get(key)

    def put(self, key: str, value: V) -> None:
        if len(self._items) >= _CACHE_LIMIT:
            self._items.clear()
        self._items[key] = value

    def discard(self, key: str) -> None:
        self._items.pop(key, None)


def chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ZooKeeperCore(ZnodeLayout):
    """The connection, the cached log head and what this process knows of data znodes."""

    def __init__(self, config: ZooKeeperConfig) -> None:
        super().__init__(config.root)
        self.config = config
        self._client: KazooClient | None = None
        self._zk: KazooBridge | None = None
        self._head: tuple[int, int] | None = None
        """Cached (current segment, znode version of head)."""
        self._epoch = 0
        """The newest tombstone epoch seen."""
        self._known: Hints[bool] = Hints()
        """Data znodes seen to exist (they go only when a tombstone is collected)."""
        self._tombstones: Hints[tuple[int, int]] = Hints()
        """key -> (znode version, epoch) of the tombstone last seen: lets a commit check
        'still absent' with the version it read, instead of failing to re-create it."""
        self._containers: set[str] = set()
        self._scope_dirs: Hints[bool] = Hints()
        """Scope znodes (and their parents) known to exist, for the scope entries."""
        self._tasks = BackgroundTasks()
        self._wakers: weakref.WeakSet[asyncio.Event] = weakref.WeakSet()
        """Events of the watchers waiting for a log entry: close() sets them all."""
        self._rotating = False
        self._closed = False

    def _require(self) -> tuple[KazooBridge, KazooClient]:
        if self._closed or self._zk is None or self._client is None:
            raise StoreUnavailable("the ZooKeeper store is closed")
        return self._zk, self._client

    async def _refresh_head(self) -> None:
        zk, client = self._require()
        result = await zk.run_one(partial(client.get_async, self._head_path))
        if isinstance(result, NoNodeError):
            raise zk.unavailable(f"{self._head_path} is missing: the store layout was removed")
        self._head = (int(result[0]), result[1].version)

    # -- what this process knows of data znodes --------------------------------------------

    def _note_epoch(self, stat: Any) -> int:
        if stat is None:
            raise self._require()[0].unavailable(f"{self._gc_path} is missing: layout removed")
        self._epoch = max(self._epoch, stat.version)
        return stat.version

    def _versioned(self, key: str, result: Any, epoch: int) -> Versioned:
        if isinstance(result, NoNodeError):
            self._forget(key)
            return Versioned(None, MISSING_VERSION)
        data, stat = result
        self._known.put(self._data_path(key), True)
        if not data:
            self._tombstones.put(key, (stat.version, epoch))
            return Versioned(None, MISSING_VERSION)
        self._tombstones.discard(key)
        return Versioned(data, store_version(epoch, stat.version))

    def _forget(self, key: str) -> None:
        """The key's znode is gone (or its tombstone was collected)."""
        self._known.discard(self._data_path(key))
        self._tombstones.discard(key)
