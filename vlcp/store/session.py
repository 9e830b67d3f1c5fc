"""Liveness sessions: keys that vanish when the process that wrote them dies.

A session is a backend-specific liveness mark (a ZooKeeper ephemeral node, an etcd lease,
a heartbeat deadline in sqlite or Redis) plus a few small documents, none of which grows
with the number of keys the session holds:

- `_sessions/<id>`: the header, ``{"ttl", "created"}``. It exists from `Session.start`
  until the session's keys are gone; a reaper adds ``"reaping": true`` before it starts
  deleting, and from then on the session accepts no writes.
- `_session-keys/<id>/<digest of key>` = `key`: one marker per key written through the
  session (the digest keeps the marker's length fixed, whatever the key's).
- `_owners/<key>` = `<id>`: the key's current owner, so a key taken over by a newer session
  (a restarted controller) is not deleted when the older session is reaped.

Every write through a session reads the header in its transaction (without writing it),
so it commits only if the header did not change meanwhile. A reaper (any process that
finds a header without a live mark, or `Session.close`) first marks the header as
reaping, then lists the markers with one prefix snapshot: a write that committed before
the mark has its marker in that list, and a write that did not conflicts with the mark
and fails with `SessionLost`. The reaper then deletes the keys (those the session still
owns), their owner records and the markers in batches within the transaction limits, and
the header last, so a reaper that stops half-way leaves a header that the next one finds.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from vlcp.layout import OWNERS, SESSION_KEYS, SESSIONS

from . import limits
from .codec import check_key, decode_value, encode_value
from .errors import SessionLost, StoreError
from .lifecycle import stop_loops
from .transaction import Transaction

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

WRITES_PER_KEY = 3
"""A key written through a session also writes its owner record and its marker."""
BATCH_KEYS = limits.MAX_TXN_WRITES // WRITES_PER_KEY
"""Keys per transaction of `put_many`, `delete_many` and the reaper: 333, so that a batch
with the reaper's final header deletion still makes at most 1000 writes."""


def registry_key(session_id: str) -> str:
    """The session's header document."""
    return f"{SESSIONS}{session_id}"


def markers_prefix(session_id: str) -> str:
    return f"{SESSION_KEYS}{session_id}/"


def marker_key(session_id: str, key: str) -> str:
    """The marker recording that `key` was written through the session (its value: `key`)."""
    digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    return f"{markers_prefix(session_id)}{digest}"


def owner_key(key: str) -> str:
    return f"{OWNERS}{key}"


def _batches(items: Iterable[T], cost: Callable[[T], int], budget: int) -> list[list[T]]:
    """`items` in order, cut into runs of at most BATCH_KEYS whose costs sum to <= budget."""
    batches: list[list[T]] = []
    batch: list[T] = []
    used = 0
    for item in items:
        size = cost(item)
        if batch and (len(batch) == BATCH_KEYS or used + size > budget):
            batches.append(batch)
            batch, used = [], 0
        batch.append(item)
        used += size
    if batch:
        batches.append(batch)
    return batches


def _forget_cost(session_id: str, key: str) -> int:
    """Bytes a transaction counts for deleting `key`, its owner record and its marker."""
    return len(key) + len(owner_key(key)) + len(marker_key(session_id, key))


async def _forget(txn: Transaction, session_id: str, keys: list[str]) -> None:
    """Delete `keys` where the session still owns them, and forget them all."""
    owners = await txn.get_many(owner_key(k) for k in keys)
    for key in keys:
        if owners[owner_key(key)] == session_id:
            txn.delete(key)
            txn.delete(owner_key(key))
        txn.delete(marker_key(session_id, key))


async def _mark_reaping(txn: Transaction, session_id: str) -> dict[str, Any] | None:
    """Mark the header so that no write through the session commits any more."""
    header = await txn.get(registry_key(session_id))
    if header is not None and not header.get("reaping"):
        header = {**header, "reaping": True}
        txn.put(registry_key(session_id), header)
    return header


async def reap_all(store: Store, session_id: str) -> None:
    """Delete everything a session owns, in as many transactions as it takes.

    Safe to run in several processes at once, and against a process that still believes
    the session alive and keeps writing through it (see the module docstring).
    """
    header = await store.transact_internal(lambda txn: _mark_reaping(txn, session_id))
    if header is None:
        return  # never existed, or reaped already
    _revision, markers = await store.backend.snapshot(markers_prefix(session_id))
    owned = {decode_value(data) for data in markers.values()}
    owned.update(header.get("keys", []))  # a header written before markers existed
    batches = _batches(
        sorted(owned),
        lambda key: _forget_cost(session_id, key),
        limits.MAX_TXN_BYTES - len(registry_key(session_id)),  # room for the header's deletion
    )
    for number, batch in enumerate(batches or [[]], 1):
        last = number >= len(batches)

        async def reap(txn: Transaction, batch: list[str] = batch, last: bool = last) -> None:
            await _forget(txn, session_id, batch)
            if last:
                txn.delete(registry_key(session_id))

        await store.transact_internal(reap)


class Session:
    """A liveness session of one process; refreshed in the background while it lives."""

    def __init__(self, store: Store, session_id: str, ttl: float) -> None:
        self.store = store
        self.id = session_id
        self.ttl = ttl
        self.lost = asyncio.Event()
        """Set when the session expired (its keys are gone or about to go); not on close()."""
        self._refresher: asyncio.Task[None] | None = None
        self._closed = False
        self._close_callbacks: list[Callable[[Session], Any]] = []

    async def start(self) -> None:
        backend = self.store.backend
        await backend.live_start(self.id, self.ttl)

        async def register(txn: Transaction) -> None:
            txn.put(registry_key(self.id), {"ttl": self.ttl, "created": time.time()})

        await self.store.transact_internal(register)
        self._refresher = asyncio.get_running_loop().create_task(
            self._refresh_forever(), name=f"session {self.id} refresher"
        )

    def on_close(self, callback: Callable[[Session], Any]) -> None:
        self._close_callbacks.append(callback)

    async def put(self, key: str, value: Any) -> None:
        """Set `key` to `value` and tie it to this session (taking it over from another)."""
        await self.put_many({key: value})

    async def delete(self, key: str) -> None:
        """Delete a key this session owns (a key since taken over by another is left)."""
        await self.delete_many([key])

    async def put_many(self, items: Mapping[str, Any]) -> None:
        """Set every key of `items` to its value and tie it to this session, atomically.

        Every key and value is checked before anything is written. The keys are written in
        one transaction when they fit the transaction limits: at most `BATCH_KEYS` (333)
        keys, since each key also writes its owner record and its session marker (3 of
        the 1000 writes a transaction may make), and at most 400 KiB of keys and values
        with that bookkeeping. A larger `items` is split, in order, into several
        transactions of at most 333 keys (and 400 KiB) each: each is atomic, but watchers
        may see the batches land one by one, and an error in a later one (`SessionLost`,
        `StoreUnavailable`) leaves the earlier ones written.
        """
        self._check_open()
        encoded = {check_key(key): encode_value(value) for key, value in items.items()}
        owner = len(encode_value(self.id))

        def cost(key: str) -> int:  # as `Transaction` counts: keys plus encoded values
            return (
                len(key)
                + len(encoded[key])
                + len(owner_key(key))
                + owner
                + len(marker_key(self.id, key))
                + len(encode_value(key))
            )

        for batch in _batches(encoded, cost, limits.MAX_TXN_BYTES):

            async def write(txn: Transaction, batch: list[str] = batch) -> None:
                await self._header(txn)
                for key in batch:
                    txn.put(owner_key(key), self.id)
                    txn.put(marker_key(self.id, key), key)
                    txn.put(key, items[key])

            await self.store.transact_internal(write)

    async def delete_many(self, keys: Iterable[str]) -> None:
        """Delete the `keys` this session owns, atomically, and forget all of them.

        A key since taken over by another session is left alone (but this session no
        longer answers for it); a key never written through this session is not touched.
        One transaction when there are at most `BATCH_KEYS` (333) keys, as for `put_many`;
        more keys are split, in order, into transactions of at most 333 keys each.
        """
        self._check_open()
        unique = list(dict.fromkeys(check_key(key) for key in keys))
        for batch in _batches(unique, lambda key: _forget_cost(self.id, key), limits.MAX_TXN_BYTES):

            async def remove(txn: Transaction, batch: list[str] = batch) -> None:
                await self._header(txn)
                await _forget(txn, self.id, batch)

            await self.store.transact_internal(remove)

    def _check_open(self) -> None:
        if self.lost.is_set() or self._closed:
            raise SessionLost(f"session {self.id} is {'closed' if self._closed else 'lost'}")

    async def _header(self, txn: Transaction) -> dict[str, Any]:
        """The header, read in `txn` so that it commits only while the session lives."""
        self._check_open()
        header = await txn.get(registry_key(self.id))
        if header is None or header.get("reaping"):
            self.lost.set()
            raise SessionLost(f"session {self.id} expired and its keys were removed")
        return header

    async def _refresh_forever(self) -> None:
        """Refresh until the backend says the liveness mark is gone, however long it is away.

        Only the store can tell that a session expired: a client that cannot reach it has
        no idea whether its ZooKeeper session, etcd lease or heartbeat deadline survived
        (a ZooKeeper ensemble restarted as a whole keeps its sessions). So failures are
        logged and retried, never taken for a loss; the answer comes when the store is back.
        """
        backend = self.store.backend
        failing_since: float | None = None
        while not self._closed:
            await asyncio.sleep(self.ttl / 3)
            try:
                if not await backend.live_refresh(self.id, self.ttl):
                    break
            except StoreError as exc:
                if failing_since is None:
                    failing_since = time.monotonic()
                    log.warning("session %s: refresh failed, retrying: %s", self.id, exc)
                continue
            if failing_since is not None:
                away = time.monotonic() - failing_since
                log.info("session %s: alive again after %.1f s without the store", self.id, away)
                failing_since = None
        if not self._closed:
            log.warning("session %s expired: the store removes its keys", self.id)
            self.lost.set()

    async def close(self) -> None:
        """End the session now, deleting its keys (other processes see them go at once)."""
        if self._closed:
            return
        self._closed = True
        if self._refresher is not None:
            await stop_loops([self._refresher])
        try:
            await reap_all(self.store, self.id)
        finally:
            try:
                await self.store.backend.live_end(self.id)
            finally:
                for callback in self._close_callbacks:
                    callback(self)
