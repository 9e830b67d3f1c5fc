"""Scoped watches filtered by Redis itself: one pub/sub channel per scope.

The commit script publishes, beside its stream entry, each touched scope's share of the
change list on that scope's channel (``<prefix>:scope:<scope>``, message
``<revision> <changes>``). A subscriber listens on the channels of the scopes it follows,
on a connection of its own, so a commit elsewhere never reaches an unconcerned controller
and one of its own scopes costs it no request: the change comes pushed.

Pub/sub keeps nothing, so widening closes the gap itself: the scope's channel is
subscribed first, then the stream is read after the scope's snapshot revision S (only
the few commits of that round trip). A commit up to the last revision that read returned
(C) is delivered from the stream, a later one from the channel, and a message at or
before C is a duplicate, dropped. Redis publishes in commit order on one connection, so
each scope's messages arrive in revision order. Nothing survives a lost connection: the
feed then fails with `StoreUnavailable` and the subscription rereads its scopes, as on
every backend. An idle connection is pinged every `_block` seconds, so a silent server is
noticed as with the stream watch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from redis.asyncio import Connection

from vlcp.layout import scope_of

from .backend import LogEntry, ScopeFeed, decode_changes, encode_changes
from .errors import StoreUnavailable

if TYPE_CHECKING:
    from .redis import RedisBackend


def scope_channel(prefix: str, scope: str) -> str:
    """The pub/sub channel a store's commits touching `scope` are published on."""
    return f"{prefix}:scope:{scope}"


def scope_messages(prefix: str, writes: Mapping[str, bytes | None]) -> list[str | bytes]:
    """(channel, changes) for each scope a commit touches: what its script publishes."""
    shares: dict[str, dict[str, bytes | None]] = {}
    for key, data in writes.items():
        shares.setdefault(scope_of(key), {})[key] = data
    flat: list[str | bytes] = []
    for scope, share in shares.items():
        flat += [scope_channel(prefix, scope), encode_changes(share)]
    return flat


class RedisScopeFeed(ScopeFeed):
    """The commits of the followed scopes, pushed on their channels."""

    def __init__(self, backend: RedisBackend, since: int) -> None:
        super().__init__(backend, since)
        self.redis = backend
        self._prefix = f"{backend.settings.prefix}:scope:"
        self._requests: list[tuple[frozenset[str], int | None]] = []
        """Scopes to follow from a revision, or (with None) to let go of, in call order."""
        self._changed = asyncio.Event()
        self._followed: set[str] = set()
        self._caught_up: dict[str, int] = {}
        """Scope -> the last revision its catch-up read covered (older messages repeat it)."""
        self._inbox: deque[list[Any]] = deque()
        self._arrived = asyncio.Event()

    def add(self, scopes: Iterable[str], after: int) -> None:
        self._requests.append((frozenset(scopes), after))
        self._changed.set()

    def remove(self, scopes: Iterable[str]) -> None:
        self._requests.append((frozenset(scopes), None))
        self._changed.set()

    async def entries(self) -> AsyncIterator[LogEntry]:
        backend = self.redis
        connection = Connection(  # a failure ends the feed: never a silent reconnect
            **backend.connection_options(),
            client_name="vlcp-scopes",
            protocol=2,  # RESP2: every push, pong included, is a plain array
        )
        reader: asyncio.Task[None] | None = None
        try:
            async with backend._guard("connecting for scoped watches"):
                await connection.connect()
            reader = asyncio.create_task(self._read(connection))
            while True:
                if self._requests:
                    self._changed.clear()
                    async for entry in self._apply(connection, reader):
                        yield entry
                elif self._inbox:
                    entry = self._entry(self._inbox.popleft())
                    if entry is not None:
                        yield entry
                elif not await self._wait(reader, backend._block, scopes_too=True):
                    await self._ping(connection, reader)
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(BaseException):
                    await reader
            with contextlib.suppress(Exception):
                await connection.disconnect()

    async def _read(self, connection: Connection) -> None:
        """Every push of the connection, in order, until it fails (which ends the feed)."""
        while True:
            self._inbox.append(await connection.read_response(timeout=None))
            self._arrived.set()

    async def _wait(self, reader: asyncio.Task[None], limit: float, *, scopes_too: bool) -> bool:
        """Wait up to `limit` for a push (or, `scopes_too`, a change of the followed
        scopes); False if none came. A failed connection raises StoreUnavailable."""
        if self._inbox or (scopes_too and self._changed.is_set()):
            return True
        self._arrived.clear()
        waits = [asyncio.ensure_future(self._arrived.wait())]
        if scopes_too:
            waits.append(asyncio.ensure_future(self._changed.wait()))
        try:
            done, _ = await asyncio.wait(
                [*waits, reader], timeout=limit, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for wait in waits:
                wait.cancel()
        if reader.done():
            error = None if reader.cancelled() else reader.exception()
            raise StoreUnavailable(
                f"{self.redis.settings.address}: scoped-watch connection lost: {error}"
            )
        return bool(done)

    async def _ping(self, connection: Connection, reader: asyncio.Task[None]) -> None:
        """A quiet connection must answer a ping within the store's timeout."""
        async with self.redis._guard("pinging the scoped-watch connection"):
            await connection.send_command("PING")
        if not await self._wait(reader, self.redis.timeout, scopes_too=False):
            raise StoreUnavailable(
                f"{self.redis.settings.address}: no answer to a ping within "
                f"{self.redis.timeout:g} s"
            )

    async def _apply(
        self, connection: Connection, reader: asyncio.Task[None]
    ) -> AsyncIterator[LogEntry]:
        """Carry out the queued add and remove calls, in order; for added scopes, the
        commits between their snapshot and their subscription, read from the stream."""
        requests, self._requests = self._requests, []
        for scopes, after in requests:
            channels = [scope_channel(self.redis.settings.prefix, s) for s in sorted(scopes)]
            if after is None:
                self._followed -= scopes
                for scope in scopes:
                    self._caught_up.pop(scope, None)
                async with self.redis._guard("leaving scope channels"):
                    await connection.send_command("UNSUBSCRIBE", *channels)
                continue
            async with self.redis._guard("joining scope channels"):
                await connection.send_command("SUBSCRIBE", *channels)
            held = await self._confirmed(reader, set(channels))
            caught_up = after
            for entry in await self.redis.entries_after(after):
                caught_up = entry.revision
                share = tuple(c for c in entry.changes if scope_of(c[0]) in scopes)
                if share:
                    yield LogEntry(entry.revision, share)
            self._followed |= scopes
            for scope in scopes:
                self._caught_up[scope] = caught_up
            self._inbox.extendleft(reversed(held))  # handled next, in their order

    async def _confirmed(self, reader: asyncio.Task[None], channels: set[str]) -> list[list[Any]]:
        """Wait until Redis confirmed each channel's subscription; the pushes that came
        meanwhile, to be handled after the catch-up."""
        held = []
        while channels:
            if not self._inbox and not await self._wait(
                reader, self.redis.timeout, scopes_too=False
            ):
                raise StoreUnavailable(
                    f"{self.redis.settings.address}: no subscription confirmed within "
                    f"{self.redis.timeout:g} s"
                )
            message = self._inbox.popleft()
            if _kind(message) == "subscribe":
                channels.discard(_text(message[1]))
            else:
                held.append(message)
        return held

    def _entry(self, message: list[Any]) -> LogEntry | None:
        """The change a `message` push carries, unless it repeats a catch-up or belongs
        to a scope let go of; None for every other push (confirmations, pongs)."""
        if _kind(message) != "message":
            return None
        scope = _text(message[1]).removeprefix(self._prefix)
        if scope not in self._followed:
            return None
        revision_text, _, changes = bytes(message[2]).partition(b" ")
        revision = int(revision_text)
        if revision <= self._caught_up.get(scope, 0):
            return None
        return LogEntry(revision, decode_changes(changes))


def _kind(message: list[Any]) -> str:
    """The type of a push: "message", "subscribe", "unsubscribe" or "pong"."""
    return _text(message[0])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
