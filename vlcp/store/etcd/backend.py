"""The etcd backend: the mixins of this package assembled, with reads and its life cycle."""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from aetcd import rpc

from ..backend import MISSING_VERSION, Backend, Versioned
from ..errors import StoreUnavailable
from ..lifecycle import start_or_close
from .commit import Commits
from .members import Refused
from .namespace import get_op, range_end
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
        for _ in range(5):
            try:
                return await self._snapshot_once(prefix)
            except Refused as exc:  # compacted (or not yet applied) while paging: again
                if exc.code != grpc.StatusCode.OUT_OF_RANGE:
                    raise
        raise StoreUnavailable(f"etcd store {self.where}: history compacted during every snapshot")

    async def _snapshot_once(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        """One consistent read, paged at a fixed etcd revision so huge prefixes stay cheap."""
        start = self._key(prefix) if prefix else self._base
        end = range_end(start)
        first = rpc.RangeRequest(key=start, range_end=end, limit=_SNAPSHOT_PAGE)
        reply = await self._txn(
            "snapshot",
            rpc.TxnRequest(success=[get_op(self._mark), rpc.RequestOp(request_range=first)]),
        )
        revision = self._revision(reply.responses[0].response_range, reply.header)
        page = reply.responses[1].response_range
        values: dict[str, bytes] = {}
        while True:
            for kv in page.kvs:
                key = self._store_key(kv.key)
                if key is not None:
                    values[key] = bytes(kv.value)
            if not page.more:
                return revision, values
            page = await self._range(
                "snapshot",
                rpc.RangeRequest(
                    key=page.kvs[-1].key + b"\0",
                    range_end=end,
                    limit=_SNAPSHOT_PAGE,
                    revision=reply.header.revision,
                ),
            )

    async def close(self) -> None:
        self.closed = True
        await self._tasks.cancel()
        await self._close_channels()


async def open_etcd(url: str) -> EtcdBackend:
    """Connect to the cluster named by `url`; StoreUnavailable if no member answers in time."""
    backend = EtcdBackend(parse_url(url))
    # listing the sessions proves that a member with a leader answers
    return await start_or_close(backend, backend.live_sessions)
