"""The etcd backend: the mixins of this package assembled, with reads and its life cycle."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import grpc
from aetcd import rpc

from ..backend import MISSING_VERSION, Backend, ScopeFeed, Versioned
from ..errors import StoreUnavailable
from ..lifecycle import start_or_close
from .commit import Commits
from .members import Refused
from .namespace import get_op, range_end
from .scopes import EtcdScopeFeed
from .url import parse_url

_FETCH_CHUNK = 1000
_SNAPSHOT_PAGE = 5000


class EtcdBackend(Commits, Backend):
    """A store in an etcd v3 cluster (or a single member)."""

    name = "etcd"

    async def fetch(self, keys: Iterable[str]) -> dict[str, Versioned]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, Versioned] = {}
        for start in range(0, len(keys), _FETCH_CHUNK):
            chunk = keys[start : start + _FETCH_CHUNK]
            request = rpc.TxnRequest(success=[get_op(self._key(k)) for k in chunk])
            reply = await self._txn("read", request)
            for key, op in zip(chunk, reply.responses, strict=True):
                kvs = op.response_range.kvs
                found[key] = (
                    Versioned(bytes(kvs[0].value), kvs[0].mod_revision)
                    if kvs
                    else Versioned(None, MISSING_VERSION)
                )
        return found

    async def snapshot(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        start = self._key(prefix) if prefix else self._base
        return await self._snapshot([(start, range_end(start))])

    async def snapshot_of(
        self, prefixes: Sequence[str], keys: Sequence[str]
    ) -> tuple[int, dict[str, bytes]]:
        """One range per prefix and one per key, all read at one etcd revision."""
        ranges = []
        for prefix in prefixes:
            start = self._key(prefix) if prefix else self._base
            ranges.append((start, range_end(start)))
        ranges += [(self._key(key), b"") for key in keys]
        return await self._snapshot(ranges)

    async def _snapshot(self, ranges: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, bytes]]:
        for _ in range(5):
            try:
                return await self._snapshot_once(ranges)
            except Refused as exc:  # compacted (or not yet applied) while paging: again
                if exc.code != grpc.StatusCode.OUT_OF_RANGE:
                    raise
        raise StoreUnavailable(f"etcd store {self.where}: history compacted during every snapshot")

    async def _snapshot_once(
        self, ranges: list[tuple[bytes, bytes]]
    ) -> tuple[int, dict[str, bytes]]:
        """One consistent read of key ranges (an empty end: one key), their first pages in
        one transaction, the rest paged at its etcd revision so huge prefixes stay cheap."""
        firsts = [
            rpc.RequestOp(request_range=rpc.RangeRequest(key=k, range_end=e, limit=_SNAPSHOT_PAGE))
            for k, e in ranges
        ]
        reply = await self._txn("snapshot", rpc.TxnRequest(success=[get_op(self._mark), *firsts]))
        revision = self._revision(reply.responses[0].response_range, reply.header)
        values: dict[str, bytes] = {}
        for (_start, end), response in zip(ranges, reply.responses[1:], strict=True):
            page = response.response_range
            while True:
                for kv in page.kvs:
                    key = self._store_key(kv.key)
                    if key is not None:
                        values[key] = bytes(kv.value)
                if not page.more:
                    break
                page = await self._range(
                    "snapshot",
                    rpc.RangeRequest(
                        key=page.kvs[-1].key + b"\0",
                        range_end=end,
                        limit=_SNAPSHOT_PAGE,
                        revision=reply.header.revision,
                    ),
                )
        return revision, values

    def scope_feed(self, since: int) -> ScopeFeed:
        """Filtered by etcd: range watches of the followed scopes only (`scopes`)."""
        return EtcdScopeFeed(self, since)

    async def close(self) -> None:
        self.closed = True
        await self._tasks.cancel()
        await self._close_channels()


async def open_etcd(url: str) -> EtcdBackend:
    """Connect to the cluster named by `url`; StoreUnavailable if no member answers in time."""
    backend = EtcdBackend(parse_url(url))
    # listing the sessions proves that a member with a leader answers
    return await start_or_close(backend, backend.live_sessions)
