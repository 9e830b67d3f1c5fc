"""The segmented change log: reading and watching it, rotating segments, compacting.

Readers wait for one known path (the next entry), watched with a pushed ZooKeeper
watch. Full segments are closed by a rotation, and old ones are deleted whole together
with the tombstones their commits wrote (see `layout`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Any

from kazoo.exceptions import BadVersionError, NoNodeError, NotEmptyError

from ..backend import Compacted, LogEntry, decode_changes
from ..errors import StoreError
from .core import INTERNAL_RETRIES, ZooKeeperCore, chunks
from .kazoo_bridge import failed_op
from .layout import SEGMENT_END, SEGMENT_SPAN, revision

log = logging.getLogger(__name__)

_DELETE_BATCH = 256
"""Deletions per multi when removing old segments and tombstones."""


class ChangeLog(ZooKeeperCore):
    """Reads and watches the change log, and keeps it to `log_keep` full segments."""

    # -- reading -------------------------------------------------------------------------

    async def _read_entries(self, segment: int, start: int, count: int) -> list[bytes | None]:
        """Data of entries start..start+count-1 of `segment` (None where missing)."""
        zk, client = self._require()
        calls = [
            partial(client.get_async, self._entry_path(segment, sequence))
            for sequence in range(start, start + count)
        ]
        return [None if isinstance(r, NoNodeError) else r[0] for r in await zk.run(calls)]

    async def _read_range(self, segment: int, start: int, stop: int) -> list[LogEntry] | None:
        """The commits in entries start..stop-1 of `segment`; None if one is missing."""
        entries = []
        found = await self._read_entries(segment, start, stop - start)
        for sequence, data in enumerate(found, start):
            if data is None:
                return None
            if data != SEGMENT_END:
                entries.append(LogEntry(revision(segment, sequence), decode_changes(data)))
        return entries

    async def _first_kept(self) -> int:
        zk, client = self._require()
        result = await zk.run_one(partial(client.get_async, self._log_root))
        return int(json.loads(result[0])["first"])

    async def changes(self, since: int) -> AsyncIterator[LogEntry]:
        zk, client = self._require()
        segment, position = divmod(since, SEGMENT_SPAN)
        if segment < await self._first_kept():
            raise Compacted(f"change-log segments before {segment} were removed")
        wake = asyncio.Event()
        self._wakers.add(wake)
        watch = zk.waker(wake)
        batch = 1
        synced = False
        # Whether the entry before `position` was just read from our member: then the next
        # one is certain to come (a commit or the segment's end marker), and watching for it
        # is one request, not a `_locate`.
        current = False
        while True:
            found = await self._read_entries(segment, position, batch)
            caught_up = False
            for data in found:
                if data is None:
                    caught_up = True
                    break
                if data == SEGMENT_END:
                    segment, position = segment + 1, 0
                    current = False
                    break
                position += 1
                current = True
                yield LogEntry(segment * SEGMENT_SPAN + position, decode_changes(data))
            else:
                if len(found) > 1:
                    batch = min(batch * 2, 256)  # a backlog: read ahead
                    continue
                # One entry, as after most wake-ups: more rarely follow, so watch the next
                # entry rather than read it (three requests a commit, not seven).
                caught_up = True
            if not caught_up:
                continue  # went on to the next segment
            wake.clear()
            if current:
                where = await self._watch_next(segment, position, watch)
                current = False  # a wake-up that finds nothing must `_locate` again
            else:
                where = await self._locate(segment, position, watch)
            batch = 2 if where == "appeared" else 1
            if where == "closed":
                segment, position = segment + 1, 0
            elif where == "ahead" and not synced:  # our member may lag behind the committer
                synced = True
                await zk.run_one(partial(client.sync_async, self.config.root))
            elif where == "ahead":
                raise Compacted(  # waiting would skip commits: make the watcher resync
                    f"revision {since} is ahead of the change log (restored from a backup?)"
                )
            elif where == "waiting":
                synced = False
                await self._wait(wake)

    async def _watch_next(self, segment: int, position: int, watch: Callable[[Any], None]) -> str:
        """Watch for the entry after one just read: "appeared" or "waiting", in one round
        trip of two requests (a `_locate` when the segment is gone).

        Every segment gets an end marker when it closes, so the entry after one that was
        read will appear, unless the segment is deleted first: a reader that dawdled after
        its last entry can find it compacted. So the segment is watched too (its deletion
        wakes the reader, whose next read then finds it compacted).
        """
        zk, client = self._require()
        current, entry = await zk.run(
            [
                partial(client.exists_async, self._segment_path(segment), watch),
                partial(client.exists_async, self._entry_path(segment, position), watch),
            ]
        )
        if current is None:
            return await self._locate(segment, position, watch)
        return "waiting" if entry is None else "appeared"

    async def _locate(self, segment: int, position: int, watch: Callable[[Any], None]) -> str:
        """Why entry `position` of `segment` is missing, watching for it to appear.

        "appeared" (read it now), "closed" (the segment ended before it: go on to the next),
        "ahead" (the log has fewer commits than that) or "waiting" (the next commit will
        create it); raises Compacted when the segment was deleted.
        """
        zk, client = self._require()
        # Order matters: the head before the entry (a segment closed before the entry was
        # found missing will never get it), the compaction mark after it (a missing entry
        # that was deleted had its segment marked compacted first).
        head, current, entry, first = await zk.run(
            [
                partial(client.get_async, self._head_path),
                partial(client.exists_async, self._segment_path(segment)),
                partial(client.exists_async, self._entry_path(segment, position), watch),
                partial(client.get_async, self._log_root),
            ]
        )
        if entry is not None:
            return "appeared"
        if segment < int(json.loads(first[0])["first"]):
            raise Compacted(f"change-log segment {segment} was removed")
        head_segment = int(head[0])
        if head_segment > segment:
            return "closed"
        if head_segment < segment or current is None or current.cversion < position:
            return "ahead"
        return "waiting"

    async def _wait(self, wake: asyncio.Event) -> None:
        """Sleep until the watched entry appears, the connection changes, or close().

        kazoo fires every watch when the connection drops, so a lost server wakes this
        too; the periodic wake-up is only a safety net.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):  # not wait_for: it can lose a cancellation on 3.11
                await wake.wait()
        self._require()

    # -- rotation and compaction ---------------------------------------------------------

    def _start_rotation(self, segment: int) -> None:
        if not self._rotating:
            self._rotating = True
            self._tasks.spawn(self._rotate(segment))

    async def _rotate(self, segment: int) -> None:
        """Close the full `segment` and start the next one, then drop old segments.

        Its own operation: it must not inherit the deadline of the commit that started it.
        """
        try:
            zk, client = self._require()
            if self._head is None or self._head[0] != segment:
                return
            with zk.operation():
                txn = client.transaction()
                txn.set_data(self._head_path, str(segment + 1).encode(), self._head[1])
                txn.create(self._segment_path(segment + 1), b"")
                txn.create(f"{self._segment_path(segment)}/e", SEGMENT_END, sequence=True)
                results = await zk.run_one(txn.commit_async)
                if failed_op(results) is None:
                    self._head = (segment + 1, results[0].version)
                    await self._compact(segment + 1)
                else:
                    await self._refresh_head()
        except StoreError as exc:
            log.info("zookeeper: log segment rotation deferred: %s", exc)
        finally:
            self._rotating = False

    async def _compact(self, current: int) -> None:
        """Delete whole segments older than the `log_keep` full ones before `current`."""
        zk, client = self._require()
        (mark, stat), names = await zk.run(
            [
                partial(client.get_async, self._log_root),
                partial(client.get_children_async, self._log_root),
            ]
        )
        old = sorted(s for s in map(int, names) if s < current - self.config.log_keep)
        if not old:
            return
        if json.loads(mark)["first"] <= old[-1]:  # mark them compacted before deleting
            data = json.dumps({"first": old[-1] + 1}).encode()
            marked = await zk.run_one(partial(client.set_async, self._log_root, data, stat.version))
            if isinstance(marked, BadVersionError):
                return  # another process is compacting
        for segment in old:
            await self._delete_segment(segment)
        await self._delete_scope_segments(old[-1] + 1)

    async def _delete_scope_segments(self, first: int) -> None:
        """Delete the scope entries of the segments before `first` (any left behind by an
        earlier compaction too), deepest znodes first; scoped readers check the log's
        compaction mark, set before, when they find an entry missing."""
        zk, client = self._require()
        names = await zk.run_one(partial(client.get_children_async, self._scopes_root))
        if isinstance(names, NoNodeError):
            return
        for segment in sorted(int(n) for n in names if int(n) < first):
            path = self._scope_segment_path(segment)
            scopes = await zk.run_one(partial(client.get_children_async, path))
            if isinstance(scopes, NoNodeError):
                continue
            parents = [f"{path}/{name}" for name in scopes]
            listings = await zk.run([partial(client.get_children_async, p) for p in parents])
            doomed = [
                f"{parent}/{entry}"
                for parent, entries in zip(parents, listings, strict=True)
                if not isinstance(entries, NoNodeError)
                for entry in entries
            ]
            # one session's requests apply in order: children go before their parents
            await zk.run([partial(client.delete_async, p) for p in (*doomed, *parents, path)])

    async def _delete_segment(self, segment: int) -> None:
        """Collect the tombstones its commits wrote, then delete its entries and itself."""
        zk, client = self._require()
        path = self._segment_path(segment)
        for _attempt in range(INTERNAL_RETRIES):
            names = await zk.run_one(partial(client.get_children_async, path))
            if isinstance(names, NoNodeError):
                return
            entries = await zk.run([partial(client.get_async, f"{path}/{n}") for n in names])
            deleted = {
                key
                for entry in entries
                if not isinstance(entry, NoNodeError) and entry[0]
                for key, data in decode_changes(entry[0])
                if data is None
            }
            await self._collect_tombstones(sorted(deleted))
            for chunk in chunks(names, _DELETE_BATCH):
                txn = client.transaction()
                for name in chunk:
                    txn.delete(f"{path}/{name}")
                await zk.run_one(txn.commit_async)
            if not isinstance(await zk.run_one(partial(client.delete_async, path)), NotEmptyError):
                return

    async def _collect_tombstones(self, keys: Sequence[str]) -> None:
        """Remove the znodes of `keys` that are still tombstones, bumping the epoch with
        each batch (a version read before it then fails its check: no ABA)."""
        zk, client = self._require()
        for chunk in chunks(keys, _DELETE_BATCH):
            for _attempt in range(3):  # a key written meanwhile fails the batch: look again
                paths = [self._data_path(k) for k in chunk]
                stats = await zk.run([partial(client.exists_async, p) for p in paths])
                doomed = [
                    (key, path, stat.version)
                    for key, path, stat in zip(chunk, paths, stats, strict=True)
                    if stat is not None and stat.dataLength == 0
                ]
                if not doomed:
                    break
                txn = client.transaction()
                txn.set_data(self._gc_path, b"", -1)
                for _key, path, version in doomed:
                    txn.delete(path, version)
                if failed_op(await zk.run_one(txn.commit_async)) is None:
                    for key, _path, _version in doomed:
                        self._forget(key)
                    break
