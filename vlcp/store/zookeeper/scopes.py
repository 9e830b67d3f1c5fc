"""Scoped watches filtered by ZooKeeper: a subscriber watches its own scopes' entries only.

Every commit's multi creates, next to its log entry, an empty sequential znode per scope
it writes to (``scopes/<segment>/<scope>/e<n>``, see `layout`). Both are created by one
transaction, so they share its zxid (``czxid``). A subscriber keeps a cursor per scope:
it watches the children of the scope's znode in the cursor's segment (creating it when
missing) and, for the whole feed, the log ``head`` (a new segment). A commit elsewhere
touches neither, so it wakes nobody.

When a scope entry appears, the subscriber finds the log entry with the same czxid
(usually the segment's newest: its ``pzxid`` says so in the same round trip; otherwise a
search over the entries since the last one it found), reads it and delivers that scope's
changes at the log entry's revision. A scope whose snapshot was read at revision S starts
at its first entry whose czxid is above the czxid of the log entry at S, so everything
after S is delivered and nothing before it.

A cursor that finds no next entry in a segment the head has left moves on to the next
segment: the head was read before the scope's entries were listed, and no commit lands in a
segment after the rotation that closed it. Compaction marks the log before deleting, so a
cursor whose segment is gone (checked after the listing) resyncs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from kazoo.exceptions import NoNodeError

from vlcp.layout import scope_of

from ..backend import Compacted, LogEntry, ScopeFeed, decode_changes
from .layout import SEGMENT_SPAN, revision

if TYPE_CHECKING:
    from .log import ChangeLog

_PROBES = 16
"""Positions probed per round trip when searching entries by czxid."""


@dataclass
class _Cursor:
    """Where a scope is in its entries, and the least log position its next one can have."""

    segment: int
    position: int
    """The scope entry to read next in `segment`."""
    low: int
    """The log entries of `segment` before this one are already past."""


class ZooKeeperScopeFeed(ScopeFeed):
    """The commits of the followed scopes, woken by their own scope entries only."""

    def __init__(self, log: ChangeLog, since: int) -> None:
        super().__init__(log, since)  # type: ignore[arg-type]  # a Backend mixin
        self.log = log
        self._cursors: dict[str, _Cursor] = {}
        self._starting: dict[str, int] = {}
        """Scope -> the revision of its snapshot, until its cursor is placed."""
        self._due: set[str] = set()
        self._head: int | None = None
        self._head_fired = True
        self._wake = asyncio.Event()
        self._last: tuple[int, tuple[tuple[str, bytes | None], ...]] | None = None
        """The log entry read last (a commit to several followed scopes is read once)."""

    def add(self, scopes: Iterable[str], after: int) -> None:
        for scope in scopes:
            self._cursors.pop(scope, None)
            self._starting[scope] = after
        self._wake.set()

    def remove(self, scopes: Iterable[str]) -> None:
        for scope in scopes:
            self._cursors.pop(scope, None)
            self._starting.pop(scope, None)

    async def entries(self) -> AsyncIterator[LogEntry]:
        zk, client = self.log._require()
        loop = asyncio.get_running_loop()
        self.log._wakers.add(self._wake)
        while True:
            self.log._require()  # close() sets the wake event: end here
            self._wake.clear()
            if self._head_fired:
                self._head_fired = False
                watch = self._watch(loop, self._head_changed)
                head = await zk.run_one(partial(client.get_async, self.log._head_path, watch))
                if isinstance(head, NoNodeError):
                    raise zk.unavailable(f"{self.log._head_path} is missing: layout removed")
                self._head = int(head[0])
                self._due.update(self._cursors)
            pasts: dict[int, int] = {}  # placements at one revision share its bound
            for scope, after in list(self._starting.items()):
                cursor = await self._place(scope, after, pasts)
                if self._starting.get(scope) == after:
                    del self._starting[scope]
                    self._cursors[scope] = cursor
                    self._due.add(scope)
            while self._due:
                scope = self._due.pop()
                async for entry in self._advance(scope, loop):
                    yield entry
            if not (self._head_fired or self._starting or self._due):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(60):  # a safety net: watches fire on their own
                        await self._wake.wait()
                    continue
                self._head_fired = True  # nothing for a minute: look at everything again

    def _watch(self, loop: asyncio.AbstractEventLoop, fired: Callable[[], None]) -> Any:
        """A kazoo watch callback running `fired` on the loop (from kazoo's thread)."""

        def watch(_event: Any = None) -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fired)

        return watch

    def _head_changed(self) -> None:
        self._head_fired = True
        self._wake.set()

    def _entry_appeared(self, scope: str) -> None:
        if scope in self._cursors:
            self._due.add(scope)
            self._wake.set()

    async def _place(self, scope: str, after: int, pasts: dict[int, int]) -> _Cursor:
        """The cursor of a scope read at revision `after`: its first entry past it.

        Placements come in bursts (a starting agent places one scope per local port and
        network, all read at one revision), so the czxid bound of `after` is looked up
        once per burst (`pasts`), and the scope's newest entry is checked first: usually
        nothing was written to it since, and no search is needed."""
        zk, client = self.log._require()
        segment, count = divmod(after, SEGMENT_SPAN)
        if after not in pasts:
            pasts[after] = await self._czxid_before(segment, count)
        past = pasts[after]
        names = await zk.run_one(
            partial(client.get_children_async, self.log._scope_path(segment, scope))
        )
        known = 0 if isinstance(names, NoNodeError) else len(names)
        path_of = partial(self.log._scope_entry_path, segment, scope)
        if known:
            newest = await zk.run_one(partial(client.exists_async, path_of(known - 1)))
            if newest is None:
                raise Compacted(f"{path_of(known - 1)} was removed")
            if newest.czxid <= past:
                return _Cursor(segment, known, count)
            known -= 1  # the newest is past `after`: the first such is at or before it
        return _Cursor(segment, await self._first_above(path_of, 0, known, past), count)

    async def _czxid_before(self, segment: int, count: int) -> int:
        """The czxid of the log entry before position `count` of `segment` (-1: none)."""
        if not count:
            return -1
        zk, client = self.log._require()
        entry = await zk.run_one(
            partial(client.exists_async, self.log._entry_path(segment, count - 1))
        )
        if entry is None:
            raise Compacted(f"change-log segment {segment} was removed")
        return int(entry.czxid)

    async def _advance(
        self, scope: str, loop: asyncio.AbstractEventLoop
    ) -> AsyncIterator[LogEntry]:
        """The scope's entries that appeared, until it waits for the next one: a child
        watch on the scope's znode, which fires on a new entry or when compaction deletes
        it (an exists watch on an entry that never comes would stay on the server)."""
        zk, client = self.log._require()
        cursor = self._cursors.get(scope)
        watch = self._watch(loop, partial(self._entry_appeared, scope))
        created = False
        while cursor is not None and self._cursors.get(scope) is cursor:
            segment = cursor.segment
            parent = self.log._scope_path(segment, scope)
            names = await zk.run_one(partial(client.get_children_async, parent, watch))
            if isinstance(names, NoNodeError) and not created:
                await self._create_parents(segment, scope)
                created = True
                continue
            if isinstance(names, NoNodeError):
                raise Compacted(f"change-log segment {segment} was removed")
            if cursor.position < len(names):
                for entry in await self._new_entries(scope, cursor, len(names)):
                    yield entry
                continue
            if self._head is None or self._head <= segment:
                return  # waiting, watched (a rotation fires the head's watch)
            # the head left the segment before it was listed: nothing more comes to it
            if segment < await self.log._first_kept():
                raise Compacted(f"change-log segment {segment} was removed")
            cursor.segment, cursor.position, cursor.low = segment + 1, 0, 0
            created = False

    async def _create_parents(self, segment: int, scope: str) -> None:
        """Create the scope's znode in `segment` (and its parents) to watch its children;
        one made in a segment compacted meanwhile is deleted by the next compaction."""
        zk, client = self.log._require()
        paths = (
            self.log._scopes_root,
            self.log._scope_segment_path(segment),
            self.log._scope_path(segment, scope),
        )
        await zk.run([partial(client.create_async, path, b"") for path in paths])

    async def _new_entries(self, scope: str, cursor: _Cursor, count: int) -> list[LogEntry]:
        """The commits of the scope's entries from `cursor` to `count` (moving it there),
        each at its log entry's revision with this scope's changes only."""
        zk, client = self.log._require()
        segment = cursor.segment
        *entries, log_segment = await zk.run(
            [
                *(
                    partial(client.exists_async, self.log._scope_entry_path(segment, scope, p))
                    for p in range(cursor.position, count)
                ),
                partial(client.exists_async, self.log._segment_path(segment)),
            ]
        )
        if log_segment is None or None in entries:
            raise Compacted(f"change-log segment {segment} was removed")
        found = []
        for entry in entries:
            if log_segment.pzxid == entry.czxid:  # the newest commit: no search
                sequence = log_segment.cversion - 1
            else:
                sequence = await self._first_above(
                    partial(self.log._entry_path, segment),
                    cursor.low,
                    log_segment.cversion,
                    entry.czxid - 1,
                )
            changes = await self._read(segment, sequence)
            cursor.position, cursor.low = cursor.position + 1, sequence + 1
            mine = tuple(change for change in changes if scope_of(change[0]) == scope)
            found.append(LogEntry(revision(segment, sequence), mine))
        return found

    async def _read(self, segment: int, sequence: int) -> tuple[tuple[str, bytes | None], ...]:
        """The changes of log entry `sequence` of `segment` (read once for all scopes)."""
        at = revision(segment, sequence)
        if self._last is not None and self._last[0] == at:
            return self._last[1]
        found = await self.log._read_entries(segment, sequence, 1)
        if found[0] is None:
            raise Compacted(f"change-log segment {segment} was removed")
        self._last = (at, decode_changes(found[0]))
        return self._last[1]

    async def _first_above(
        self, path_of: Callable[[int], str], low: int, high: int, zxid: int
    ) -> int:
        """The first position in [low, high) whose znode was created after `zxid` (high if
        none): positions are created in zxid order, so a few probes a round trip narrow
        it down."""
        zk, client = self.log._require()
        while low < high:
            step = -(-(high - low) // _PROBES)
            probes = list(range(low, high, step))
            stats = await zk.run([partial(client.exists_async, path_of(p)) for p in probes])
            for probe, stat in zip(probes, stats, strict=True):
                if stat is None:
                    raise Compacted(f"{path_of(probe)} was removed")
                if stat.czxid > zxid:
                    high = probe
                    break
                low = probe + 1
        return low
