"""Scoped watches: a subscription to a set of scopes (`vlcp.layout.scope_of`) that the
subscriber widens and narrows while it runs.

Every key belongs to one scope, computed from the key alone: a logical network's object
and remote endpoints, one logical port's object, or a whole prefix for what does not grow
with the cluster. A controller follows the scopes its own endpoints need, so commits
elsewhere are not delivered to it (and, where the backend filters at the server, do not
wake it at all: see `Backend.scope_feed` and docs/store-backends.md).

Widening without a gap: a scope added while the change log is at revision P is read as
a snapshot at revision S >= P, delivered as a `ScopeResync`, and from then on the log's
entries *after S* for that scope are delivered. Entries in (P, S] are already in the
snapshot and are skipped, entries after S come from the log, which holds every commit:
nothing is missed and nothing goes back in time. Narrowing delivers a `ScopeResync` with
no values for the dropped scopes. A compacted log or a lost connection rereads every
followed scope (small by construction) instead of replaying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from vlcp.layout import scope_extent, scope_of

from .backend import Compacted, LogEntry, ScopeFeed
from .codec import decode_value
from .errors import StoreUnavailable
from .types import Change, ScopeResync, WatchEvent

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)


class Subscription:
    """What `Store.subscribe` returns: iterate it (once) for `ScopeResync` and
    `WatchEvent` items; call `update` at any time to change the followed scopes."""

    def __init__(self, store: Store, scopes: Iterable[str]) -> None:
        self._store = store
        self._wanted = frozenset(scopes)
        self._since: dict[str, int] = {}
        """Scope -> the revision of the snapshot it was read at, in the current feed."""
        self._held: set[str] = set()
        """The scopes whose values the consumer holds (as delivered)."""
        self._revision = 0
        self._wake = asyncio.Event()

    @property
    def scopes(self) -> frozenset[str]:
        """The scopes asked for (the ones delivered follow as soon as they are read)."""
        return self._wanted

    @property
    def settled(self) -> bool:
        """Every scope asked for has been delivered, and no dropped one is still held."""
        return self._held == self._wanted

    def update(self, scopes: Iterable[str]) -> None:
        """Follow exactly `scopes` from now on (the next item says what changed)."""
        scopes = frozenset(scopes)
        if scopes != self._wanted:
            self._wanted = scopes
            self._wake.set()

    async def __aiter__(self) -> AsyncIterator[ScopeResync | WatchEvent]:
        store = self._store
        while not store.closed:
            try:
                async for item in self._follow():
                    yield item
                    del item  # a resync holds every value of its scopes: not until the next
            except Compacted:
                log.info(
                    "%s: change log compacted; rereading %d scopes", store.name, len(self._held)
                )
            except StoreUnavailable as exc:
                if store.closed:
                    return
                log.warning("%s: subscription paused: %s", store.name, exc)
                await asyncio.sleep(store.watch_retry)

    async def _follow(self) -> AsyncIterator[ScopeResync | WatchEvent]:
        """One feed from the current head; every followed scope is read afresh."""
        self._since = {}
        self._revision = (await self._store.read(())).revision
        feed = self._store.backend.scope_feed(self._revision)
        entries = aiter(feed.entries())
        pending = asyncio.ensure_future(anext(entries))
        try:
            while True:
                self._wake.clear()
                if self._wanted != self._since.keys() or self._held - self._wanted:
                    yield await self._rescope(feed)
                    continue
                wake = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait((pending, wake), return_when=asyncio.FIRST_COMPLETED)
                wake.cancel()
                if not pending.done():
                    continue
                entry = pending.result()
                pending = asyncio.ensure_future(anext(entries))
                self._revision = max(self._revision, entry.revision)  # per-scope feeds interleave
                picked = self._pick(entry)
                if picked:
                    yield WatchEvent(entry.revision, picked)
        finally:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
            with contextlib.suppress(Exception):
                await entries.aclose()  # type: ignore[attr-defined]

    async def _rescope(self, feed: ScopeFeed) -> ScopeResync:
        """Read the scopes wanted but not followed; drop the ones followed or held but no
        longer wanted: one resync of both."""
        wanted = self._wanted
        added = wanted - self._since.keys()
        dropped = (self._since.keys() | self._held) - wanted
        for scope in dropped:
            self._since.pop(scope, None)
        if dropped:
            feed.remove(dropped)
        revision, values = self._revision, {}
        if added:
            prefixes: list[str] = []
            keys: list[str] = []
            for scope in added:
                scope_prefixes, scope_keys = scope_extent(scope)
                prefixes += scope_prefixes
                keys += scope_keys
            revision, raw = await self._store.backend.snapshot_of(prefixes, keys)
            values = {k: decode_value(v) for k, v in raw.items() if scope_of(k) in added}
            for scope in added:
                self._since[scope] = revision
            feed.add(added, revision)
        self._held = set(self._since)
        return ScopeResync(revision, frozenset(added | dropped), values)

    def _pick(self, entry: LogEntry) -> tuple[Change, ...]:
        """The changes of followed scopes that their snapshot does not already hold."""
        since = self._since
        revision = entry.revision
        picked = []
        for key, data in entry.changes:
            read_at = since.get(scope_of(key))
            if read_at is not None and revision > read_at:
                picked.append(Change(key, decode_value(data)))
        return tuple(picked)
