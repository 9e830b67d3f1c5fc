"""Liveness sessions: keys that vanish when the process that wrote them dies.

A session is a registry key `_sessions/<id>` listing the keys written through it, plus a
backend-specific liveness mark (a ZooKeeper ephemeral node, an etcd lease, a heartbeat
deadline in sqlite or Redis). Any process that finds a registry without a live mark
deletes the keys it lists, in one transaction. Each key also records its owner in
`_owners/<key>`, so a key taken over by a newer session (a restarted controller) is not
deleted when the older session is reaped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .codec import check_key
from .errors import SessionLost, StoreError
from .lifecycle import stop_tasks
from .transaction import Transaction

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)


def registry_key(session_id: str) -> str:
    return f"_sessions/{session_id}"


def owner_key(key: str) -> str:
    return f"_owners/{key}"


REAP_BATCH = 300
"""Keys reaped per transaction: two deletes each stay within the contract's write limit."""


async def reap_session(txn: Transaction, session_id: str) -> bool:
    """Delete up to REAP_BATCH keys a session still owns; True once nothing is left.

    The registry goes last, so a reaper that stops half-way leaves a registry that the
    next one finishes.
    """
    registry = await txn.get(registry_key(session_id))
    if registry is None:
        return True
    owned, rest = registry.get("keys", [])[:REAP_BATCH], registry.get("keys", [])[REAP_BATCH:]
    owners = await txn.get_many(owner_key(k) for k in owned)
    for key in owned:
        if owners[owner_key(key)] == session_id:
            txn.delete(key)
            txn.delete(owner_key(key))
    if rest:
        txn.put(registry_key(session_id), {**registry, "keys": rest})
        return False
    txn.delete(registry_key(session_id))
    return True


async def reap_all(store: Store, session_id: str) -> None:
    """Delete everything a session owns, in as many transactions as it takes."""
    while not await store.transact_internal(lambda txn: reap_session(txn, session_id)):
        pass


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
            txn.put(registry_key(self.id), {"keys": [], "ttl": self.ttl, "created": time.time()})

        await self.store.transact_internal(register)
        self._refresher = asyncio.get_running_loop().create_task(
            self._refresh_forever(), name=f"session {self.id} refresher"
        )

    def on_close(self, callback: Callable[[Session], Any]) -> None:
        self._close_callbacks.append(callback)

    async def put(self, key: str, value: Any) -> None:
        """Set `key` to `value` and tie it to this session (taking it over from another)."""
        check_key(key)

        async def write(txn: Transaction) -> None:
            registry = await self._registry(txn)
            if key not in registry["keys"]:
                registry["keys"].append(key)
                txn.put(registry_key(self.id), registry)
            txn.put(owner_key(key), self.id)
            txn.put(key, value)

        await self.store.transact_internal(write)

    async def delete(self, key: str) -> None:
        """Delete a key this session owns (a key since taken over by another is left)."""
        check_key(key)

        async def remove(txn: Transaction) -> None:
            registry = await self._registry(txn)
            if key in registry["keys"]:
                registry["keys"].remove(key)
                txn.put(registry_key(self.id), registry)
                if await txn.get(owner_key(key)) == self.id:
                    txn.delete(key)
                    txn.delete(owner_key(key))

        await self.store.transact_internal(remove)

    async def _registry(self, txn: Transaction) -> dict[str, Any]:
        if self.lost.is_set() or self._closed:
            raise SessionLost(f"session {self.id} is {'closed' if self._closed else 'lost'}")
        registry = await txn.get(registry_key(self.id))
        if registry is None:
            self.lost.set()
            raise SessionLost(f"session {self.id} expired and its keys were removed")
        return registry

    async def _refresh_forever(self) -> None:
        backend = self.store.backend
        last_ok = time.monotonic()
        while not self._closed:
            await asyncio.sleep(self.ttl / 3)
            try:
                if not await backend.live_refresh(self.id, self.ttl):
                    break
                last_ok = time.monotonic()
            except StoreError as exc:
                log.warning("session %s: refresh failed: %s", self.id, exc)
                if time.monotonic() - last_ok > self.ttl:
                    break
        if not self._closed:
            log.warning("session %s lost: its keys will be removed", self.id)
            self.lost.set()

    async def close(self) -> None:
        """End the session now, deleting its keys (other processes see them go at once)."""
        if self._closed:
            return
        self._closed = True
        if self._refresher is not None:
            await stop_tasks([self._refresher])
        try:
            await reap_all(self.store, self.id)
        finally:
            try:
                await self.store.backend.live_end(self.id)
            finally:
                for callback in self._close_callbacks:
                    callback(self)
