"""The change log: etcd's own history, read with a watch from a revision, and compacted
by the backend to keep `retain` revisions (URL ``retain=``; 0 leaves it to the operator)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
from aetcd import rpc

from ..backend import Compacted, LogEntry
from ..errors import StoreUnavailable
from ..lifecycle import BackgroundTasks
from .connection import Attempts, EtcdConnection
from .members import REQUIRE_LEADER, check_refusal
from .namespace import get_op, range_end
from .url import EtcdOptions

log = logging.getLogger(__name__)

_COMPACT_EVERY = 1000
_DELETE = rpc.Event.EventType.DELETE


class ChangeLog(EtcdConnection):
    """changes() over a watch of the namespace, and history compaction after commits."""

    def __init__(self, options: EtcdOptions) -> None:
        super().__init__(options)
        self._compacted_to = 0
        self._tasks = BackgroundTasks()

    async def changes(self, since: int) -> AsyncIterator[LogEntry]:
        call, response = await self._watch(since + 1)
        try:
            await self._check_not_ahead(since, response.header.revision)
            while True:
                if response.compact_revision:
                    call.cancel()
                    resume = await self._resume_after_compaction(since)
                    call, response = await self._watch(resume + 1)
                    continue
                for entry in self._entries(response.events):
                    since = entry.revision
                    yield entry
                response = await self._next_response(call)
        finally:
            call.cancel()

    async def _watch(self, start: int) -> tuple[Any, Any]:
        """A watch on our range from revision `start`, and its first response."""
        create = rpc.WatchCreateRequest(
            key=self._base, range_end=range_end(self._base), start_revision=start
        )
        attempts = Attempts(self, "watch")
        while True:
            member = await attempts.member()
            call = member.watch.Watch(metadata=REQUIRE_LEADER)
            try:
                async with asyncio.timeout(max(attempts.remaining(), 0.01)):
                    await call.write(rpc.WatchRequest(create_request=create))
                    return call, await self._next_response(call)
            except grpc.aio.AioRpcError as exc:
                call.cancel()
                check_refusal(exc, self.where, "watch")
                attempts.failed(member, exc.details() or exc.code().name)
            except (TimeoutError, StoreUnavailable) as exc:
                call.cancel()
                attempts.failed(member, str(exc) or "no answer to the watch request")
            except asyncio.CancelledError:
                call.cancel()
                self._raise_if_closed()
                raise

    async def _next_response(self, call: Any) -> Any:
        """The next watch response; StoreUnavailable when the stream broke."""
        try:
            response = await call.read()
        except grpc.aio.AioRpcError as exc:
            message = f"etcd store {self.where}: watch lost: {exc.details()}"
            raise StoreUnavailable(message) from None
        except asyncio.CancelledError:
            self._raise_if_closed()
            raise
        if response is grpc.aio.EOF:
            raise StoreUnavailable(f"etcd store {self.where}: watch closed by the server")
        if response.canceled and not response.compact_revision:
            reason = response.cancel_reason or "no reason given"
            raise StoreUnavailable(f"etcd store {self.where}: watch canceled: {reason}")
        return response

    async def _check_not_ahead(self, since: int, member_revision: int) -> None:
        """Compacted when `since` is beyond etcd's revision: etcd was restored from a backup.

        Watching would wait, silently, until etcd's revision catches up. A member's own
        revision may lag behind the cluster's, so only a linearizable read decides.
        """
        if since <= member_revision:
            return
        reply = await self._range("watch", rpc.RangeRequest(key=self._mark))
        if since > reply.header.revision:
            raise Compacted(
                f"revision {since} is ahead of etcd's {reply.header.revision}: "
                "the cluster lost history (restored from a backup?)"
            )

    async def _resume_after_compaction(self, since: int) -> int:
        """Where to watch from when etcd's history after `since` is gone.

        When the namespace committed nothing after `since` (only other namespaces of a
        shared cluster did), nothing was missed: resume at the current revision. Otherwise
        the caller has to resync.
        """
        reply = await self._txn("watch", rpc.TxnRequest(success=[get_op(self._mark)]))
        if self._revision(reply.responses[0].response_range, reply.header) > since:
            raise Compacted(f"etcd history after revision {since} was compacted")
        return reply.header.revision

    def _entries(self, events: Iterable[Any]) -> list[LogEntry]:
        """Events grouped into commits (etcd never splits a revision across responses)."""
        commits: dict[int, list[tuple[str, bytes | None]]] = {}
        for event in events:
            key = self._store_key(event.kv.key)
            if key is not None:
                data = None if event.type == _DELETE else bytes(event.kv.value)
                commits.setdefault(event.kv.mod_revision, []).append((key, data))
        return [LogEntry(rev, tuple(commits[rev])) for rev in sorted(commits)]

    def _compact_later(self, revision: int) -> None:
        """Now and then (every retain/10 revisions at most), drop history older than `retain`."""
        retain = self.options.retain
        target = revision - retain
        if retain and target >= self._compacted_to + min(_COMPACT_EVERY, max(1, retain // 10)):
            self._compacted_to = target
            self._tasks.spawn(self._compact(target))

    async def _compact(self, revision: int) -> None:
        request = rpc.CompactionRequest(revision=revision)
        try:
            await self._call("compaction", lambda m, t: m.kv.Compact(request, timeout=t))
        except StoreUnavailable as exc:  # already compacted by another client, or down
            log.debug("etcd store %s: compaction to %d skipped: %s", self.where, revision, exc)
