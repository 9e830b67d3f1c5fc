"""The store contract, written once over any `Backend`.

- `read` / `read_prefix`: consistent snapshots of many keys.
- `transact`: optimistic multi-key read-modify-write, retried on conflict (bounded).
- `watch`: ordered change events with revisions; after a reconnect it replays what was
  missed, or sends a `Resync` with the complete state when that is no longer possible.
- `open_session`: liveness; keys put through a session vanish when it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from vlcp.layout import SESSIONS

from .backend import Backend, Compacted
from .codec import check_key, check_prefix, decode_value
from .errors import Conflict, ConflictRetriesExhausted, StoreError, StoreUnavailable
from .lifecycle import stop_loops
from .scoped import Subscription
from .session import Session, reap_all
from .transaction import Transaction
from .types import Change, Resync, Snapshot, WatchEvent

log = logging.getLogger(__name__)
T = TypeVar("T")

FULL_REAP_EVERY = 30
"""Reaper rounds between two full reaps while the live sessions stay the same."""


class Store:
    """A central store: the one object the model, the API and the agents share."""

    def __init__(
        self,
        backend: Backend,
        *,
        max_attempts: int = 64,
        reap_interval: float = 1.0,
        watch_retry: float = 0.2,
    ) -> None:
        self.backend = backend
        self.max_attempts = max_attempts
        self.reap_interval = reap_interval
        self.watch_retry = watch_retry
        self._reaper: asyncio.Task[None] | None = None
        self._sessions: set[Session] = set()
        self._closed = False

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def closed(self) -> bool:
        """Closed stores end their watches and subscriptions."""
        return self._closed

    # -- reads and transactions -------------------------------------------------------

    async def read(self, keys: Iterable[str]) -> Snapshot:
        """A consistent snapshot of `keys` (absent keys are left out of `values`)."""
        keys = list(keys)

        async def snapshot(txn: Transaction) -> dict[str, Any]:
            return await txn.get_many(keys)

        revision, values = await self._run(snapshot, internal=False)
        return Snapshot(revision, {k: v for k, v in values.items() if v is not None})

    async def read_prefix(self, prefix: str) -> Snapshot:
        """Every key under `prefix` ('' for all), consistent as of one revision."""
        revision, raw = await self.backend.snapshot(check_prefix(prefix))
        return Snapshot(
            revision, {k: decode_value(v) for k, v in raw.items() if _visible(k, prefix)}
        )

    async def transact(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        """Run `fn(txn)` and commit what it wrote, atomically, if nothing it read changed.

        On a conflict `fn` runs again on fresh data, up to `max_attempts` times. An
        exception from `fn` aborts the transaction and propagates; nothing is written.
        """
        return (await self._run(fn, internal=False))[1]

    async def _run(
        self, fn: Callable[[Transaction], Awaitable[T]], *, internal: bool
    ) -> tuple[int, T]:
        delay = 0.001
        for _attempt in range(self.max_attempts):
            txn = Transaction(self.backend, internal=internal)
            result = await fn(txn)
            try:
                revision = await self.backend.commit(txn.read_versions, txn.writes)
            except Conflict:
                await asyncio.sleep(random.uniform(0, delay))
                delay = min(delay * 2, 0.1)
                continue
            return revision, result
        raise ConflictRetriesExhausted(
            f"transaction conflicted with concurrent writers {self.max_attempts} times in a row"
        )

    async def transact_internal(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        """`transact` allowed to touch the store's reserved '_' keys (sessions, owners)."""
        return (await self._run(fn, internal=True))[1]

    # -- watches -------------------------------------------------------------------------

    async def watch(
        self,
        *,
        prefix: str | None = None,
        prefixes: Iterable[str] | None = None,
        keys: Iterable[str] | None = None,
        since: int | None = None,
    ) -> AsyncIterator[WatchEvent | Resync]:
        """Changes to the keys under `prefix`, or under any of `prefixes` and to `keys`, in
        commit order, forever.

        Without `since` the first item is a `Resync` with the current values. With `since`
        (a revision from an earlier event) the changes after it are replayed, or a `Resync`
        comes when the store no longer keeps them. Losing the store only pauses the watch:
        it resumes from the last revision it delivered, without losing or repeating one.
        """
        if (prefix is None) == (prefixes is None and keys is None):
            raise ValueError("watch needs prefix=, or prefixes= and/or keys=")
        key_set = frozenset(check_key(k) for k in keys or ())
        if prefix is not None:
            watched = (check_prefix(prefix),)
        else:
            watched = tuple(dict.fromkeys(check_prefix(p) for p in prefixes or ()))

        # Reserved '_' keys only under a reserved prefix (see `_visible`); both tests are
        # one C-level startswith per key of every commit.
        reserved = tuple(p for p in watched if p.startswith("_"))

        def wanted(key: str) -> bool:
            if key in key_set:
                return True
            return key.startswith(reserved if key.startswith("_") else watched)

        async def snapshot() -> Resync:
            if not watched:
                snap = await self.read(key_set)
                return Resync(snap.revision, snap.values)
            revision, raw = await self.backend.snapshot_of(watched, sorted(key_set))
            return Resync(revision, {k: decode_value(v) for k, v in raw.items() if wanted(k)})

        revision = since
        while not self._closed:
            try:
                if revision is None:
                    resync = await snapshot()
                    revision = resync.revision
                    yield resync
                    del resync  # every watched value: not for as long as the watch lives
                async for entry in self.backend.changes(revision):
                    picked = tuple(
                        Change(k, decode_value(v)) for k, v in entry.changes if wanted(k)
                    )
                    revision = entry.revision
                    if picked:
                        yield WatchEvent(entry.revision, picked)
            except Compacted:
                log.info(
                    "%s: change log compacted past revision %s; resyncing", self.name, revision
                )
                revision = None
            except StoreUnavailable as exc:
                if self._closed:
                    return
                log.warning("%s: watch paused at revision %s: %s", self.name, revision, exc)
                await asyncio.sleep(self.watch_retry)

    def subscribe(self, scopes: Iterable[str] = ()) -> Subscription:
        """A scoped watch: the values of `scopes` (`vlcp.layout.scope_of`) and then the
        changes to them, while `Subscription.update` widens or narrows the set without a
        gap (see `vlcp.store.scoped`)."""
        return Subscription(self, scopes)

    # -- liveness ------------------------------------------------------------------------

    async def open_session(self, ttl: float = 10.0) -> Session:
        """A liveness session: keys put through it vanish when it dies or is closed."""
        session = Session(self, f"{uuid.uuid4().hex}", ttl)
        await session.start()
        self._sessions.add(session)
        session.on_close(self._sessions.discard)
        self.start_reaper()
        return session

    def start_reaper(self) -> None:
        """Delete the keys of dead sessions, from whichever process notices first."""
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(
                self._reap_forever(), name=f"{self.name} store reaper"
            )

    async def reap_dead_sessions(self) -> int:
        """Remove every dead session's keys now; returns how many sessions were reaped."""
        # The session headers are read before the live set: a session that starts in
        # between has no header in this snapshot, so it can never be mistaken for a dead
        # one. Only the small headers are listed; each dead session's markers are read
        # when it is reaped.
        _revision, headers = await self.backend.snapshot(SESSIONS)
        alive = await self.backend.live_sessions()
        dead = [k.removeprefix(SESSIONS) for k in headers]
        dead = [sid for sid in dead if sid not in alive]
        for session_id in dead:
            await reap_all(self, session_id)
        return len(dead)

    async def _reap_forever(self) -> None:
        """Reap every `reap_interval`, reading the session headers only when it can matter.

        Every process runs this loop, and listing the headers costs a request per session
        on ZooKeeper: done each second by every server, the cluster's idle load grew as
        the square of its servers. A session can only have died if the live set changed
        since a reap that found every header alive, so the loop reads the live set (one
        request) and lists the headers only when it differs; a full reap every
        `FULL_REAP_EVERY` rounds still catches what a change between two reads could hide
        (a session that starts and dies within one interval)."""
        # Ends by itself once the store is closed, even if the cancellation from close()
        # was lost (see `stop_loops`).
        quiet: frozenset[str] | None = None
        rounds = 0
        while not self._closed:
            try:
                alive = frozenset(await self.backend.live_sessions())
                if alive != quiet or rounds >= FULL_REAP_EVERY:
                    quiet, rounds = None, 0
                    reaped = await self.reap_dead_sessions()
                    if reaped:
                        log.info("%s: removed the keys of %d dead session(s)", self.name, reaped)
                    else:
                        quiet = alive
                rounds += 1
            except StoreError as exc:
                log.warning("%s: reaper will retry: %s", self.name, exc)
            await asyncio.sleep(self.reap_interval)

    async def close(self) -> None:
        """Close sessions (deleting their keys when the store is reachable) and connections.

        Watches of a closed store end (their iteration stops) instead of retrying.
        """
        self._closed = True
        if self._reaper is not None:
            await stop_loops([self._reaper])
        for session in list(self._sessions):
            with contextlib.suppress(Exception):
                await session.close()
        await self.backend.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _visible(key: str, prefix: str) -> bool:
    """Reserved '_' keys show up only when asked for by a reserved prefix."""
    return not key.startswith("_") or prefix.startswith("_")
