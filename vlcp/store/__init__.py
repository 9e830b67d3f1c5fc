"""The central store: one contract (read, transact, watch, sessions), four backends.

`open_store(url)` picks the backend from the URL scheme:

- ``sqlite:///var/lib/vlcp/state.db`` — embedded, one machine (the default)
- ``zookeeper://127.0.0.1:2181,127.0.0.1:2182/vlcp``
- ``etcd://127.0.0.1:2379/vlcp``
- ``redis://127.0.0.1:6379/0``
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import (
    ConflictRetriesExhausted,
    InvalidKey,
    InvalidValue,
    SessionLost,
    StoreError,
    StoreUnavailable,
    TransactionTooLarge,
)
from .scoped import Subscription
from .session import Session
from .store import Store
from .transaction import Transaction
from .types import Change, Resync, ScopeResync, Snapshot, WatchEvent

__all__ = [
    "Change",
    "ConflictRetriesExhausted",
    "InvalidKey",
    "InvalidValue",
    "Resync",
    "ScopeResync",
    "Session",
    "SessionLost",
    "Snapshot",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Subscription",
    "Transaction",
    "TransactionTooLarge",
    "WatchEvent",
    "open_store",
]

SCHEMES = ("sqlite", "zookeeper", "etcd", "redis")


async def open_store(url: str, **options: object) -> Store:
    """Connect to the store named by `url`; raises ValueError for an unknown or bad URL."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from .sqlite import SqliteBackend

        path = urlsplit(url).path
        if not path or path == "/":
            raise ValueError(f"store URL {url!r} needs a database path: sqlite:///path/to/state.db")
        return Store(SqliteBackend(path), **options)  # type: ignore[arg-type]
    if scheme == "zookeeper":
        from .zookeeper import open_zookeeper

        return Store(await open_zookeeper(url), **options)  # type: ignore[arg-type]
    if scheme == "etcd":
        from .etcd import open_etcd

        return Store(await open_etcd(url), **options)  # type: ignore[arg-type]
    if scheme == "redis":
        from .redis import open_redis

        return Store(await open_redis(url), **options)  # type: ignore[arg-type]
    raise ValueError(f"store URL {url!r}: scheme must be one of {', '.join(SCHEMES)}")
