"""Scoped watches filtered by etcd itself: one watch per key range of each followed scope.

A scope's keys are a few etcd ranges (`layout.scope_extent`: a network is its object and
two prefixes, a port its object), so etcd can send a subscriber the commits of its
scopes and nothing else: a commit elsewhere reaches no unconcerned controller. All the
watches of one subscription share one gRPC stream; each has an id chosen here, so a
dropped scope cancels exactly its own. A scope added after its snapshot at revision S
watches from S + 1: etcd replays its history from there, so nothing is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
from aetcd import rpc

from vlcp.layout import scope_extent

from ..backend import Compacted, LogEntry, ScopeFeed
from ..errors import StoreUnavailable
from .changes import ChangeLog
from .connection import Attempts
from .members import REQUIRE_LEADER
from .namespace import range_end


class EtcdScopeFeed(ScopeFeed):
    """The commits of the followed scopes, from etcd range watches on one stream."""

    def __init__(self, log: ChangeLog, since: int) -> None:
        super().__init__(log, since)  # type: ignore[arg-type]  # a Backend mixin
        self.log = log
        self._outbox: list[Any] = []
        self._flush = asyncio.Event()
        self._ids: dict[str, list[int]] = {}
        self._cancelled: set[int] = set()
        self._next_id = 1

    def add(self, scopes: Iterable[str], after: int) -> None:
        for scope in scopes:
            prefixes, keys = scope_extent(scope)
            starts = [self.log._key(prefix) for prefix in prefixes]
            ranges = [(s, range_end(s)) for s in starts] + [(self.log._key(k), b"") for k in keys]
            ids = self._ids.setdefault(scope, [])
            for start, end in ranges:
                create = rpc.WatchCreateRequest(
                    key=start, range_end=end, start_revision=after + 1, watch_id=self._next_id
                )
                self._outbox.append(rpc.WatchRequest(create_request=create))
                ids.append(self._next_id)
                self._next_id += 1
        self._flush.set()

    def remove(self, scopes: Iterable[str]) -> None:
        for scope in scopes:
            for watch_id in self._ids.pop(scope, ()):
                cancel = rpc.WatchCancelRequest(watch_id=watch_id)
                self._outbox.append(rpc.WatchRequest(cancel_request=cancel))
                self._cancelled.add(watch_id)
        self._flush.set()

    async def entries(self) -> AsyncIterator[LogEntry]:
        member = await Attempts(self.log, "watch").member()
        call = member.watch.Watch(metadata=REQUIRE_LEADER)
        sender = asyncio.create_task(self._send(call))
        try:
            while True:
                response = await self._read(call, sender)
                if response.compact_revision:
                    raise Compacted(f"etcd history before {response.compact_revision} compacted")
                if response.canceled:
                    if response.watch_id in self._cancelled:
                        self._cancelled.discard(response.watch_id)
                        continue
                    reason = response.cancel_reason or "no reason given"
                    raise StoreUnavailable(f"etcd store {self.log.where}: watch canceled: {reason}")
                for entry in self.log._entries(response.events):
                    yield entry
        finally:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
            call.cancel()

    async def _send(self, call: Any) -> None:
        """Write the queued create and cancel requests on the stream, as they come."""
        while True:
            await self._flush.wait()
            self._flush.clear()
            requests, self._outbox = self._outbox, []
            for request in requests:
                await call.write(request)

    async def _read(self, call: Any, sender: asyncio.Task[None]) -> Any:
        """The stream's next response; StoreUnavailable when it broke (either way)."""
        reading = asyncio.ensure_future(call.read())
        try:
            await asyncio.wait((reading, sender), return_when=asyncio.FIRST_COMPLETED)
            if not reading.done():
                raise StoreUnavailable(f"etcd store {self.log.where}: watch requests failed")
            response = reading.result()
        except grpc.aio.AioRpcError as exc:
            raise StoreUnavailable(
                f"etcd store {self.log.where}: watch lost: {exc.details()}"
            ) from None
        except asyncio.CancelledError:
            self.log._raise_if_closed()
            raise
        finally:
            if not reading.done():
                reading.cancel()
        if response is grpc.aio.EOF:
            raise StoreUnavailable(f"etcd store {self.log.where}: watch closed by the server")
        return response
