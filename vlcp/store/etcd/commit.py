"""Commits: one etcd Txn each, applied at most once however often it is sent.

The Txn compares each read key's ``mod_revision`` with the version read (absent keys
compare as 0), then puts and deletes. Fail-over may send a commit twice; its token makes
the copies exclusive, so at most one of them applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from aetcd import rpc

from ..errors import Conflict, StoreUnavailable
from .changes import ChangeLog
from .leases import Leases
from .members import REQUIRE_LEADER, Member, Refused
from .namespace import get_op, write_op

_MOD = rpc.Compare.CompareTarget.MOD
_CREATE = rpc.Compare.CompareTarget.CREATE
_EQUAL = rpc.Compare.CompareResult.EQUAL
_NOT_SENT = (
    "failed to connect to all addresses",
    "etcdserver: no leader",
    "etcdserver: not capable",
    "etcdserver: too many requests",
    "etcdserver: unhealthy cluster",
)
"""Failures that prove a request never took effect."""


class Commits(ChangeLog, Leases):
    """commit: a read-only one validates its reads, any other is a `_Commit`."""

    async def commit(self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]) -> int:
        compare = [
            rpc.Compare(key=self._key(k), target=_MOD, result=_EQUAL, mod_revision=v)
            for k, v in reads.items()
        ]
        if not writes:
            reply = await self._txn(
                "read", rpc.TxnRequest(compare=compare, success=[get_op(self._mark)])
            )
            if not reply.succeeded:
                raise Conflict(f"one of {len(reads)} keys read changed since")
            return self._revision(reply.responses[0].response_range, reply.header)
        return await _Commit(self, compare, writes).run()


class _Commit:
    """One commit with writes, sent again after failures until the deadline.

    The Txn creates a token key that must not exist yet, so of all the copies sent at most
    one applies. A copy that finds the token tells that an earlier one applied. A conflict
    after a copy was lost on the way is reported as `StoreUnavailable`: that copy might
    still apply (a key read as absent may be absent again), so it is not a clean conflict.
    """

    def __init__(
        self, backend: Commits, compare: list[Any], writes: Mapping[str, bytes | None]
    ) -> None:
        self.backend = backend
        self.token = backend.new_token()
        self.compare = [
            *compare,
            rpc.Compare(key=self.token, target=_CREATE, result=_EQUAL, create_revision=0),
        ]
        self.ops = [write_op(backend._key(k), v) for k, v in writes.items()]
        self.ops.append(write_op(backend._mark, b""))
        self.unsure = False
        """Whether a copy may have reached etcd without an answer."""

    async def run(self) -> int:
        try:
            reply = await self._send_with_lease()
        except StoreUnavailable as exc:
            if self.unsure:
                message = f"{exc}; the commit may or may not have been applied"
                raise StoreUnavailable(message) from None
            raise
        if reply.succeeded:
            self.backend._compact_later(reply.header.revision)
            return reply.header.revision
        applied = reply.responses[0].response_range.kvs
        if applied:
            return applied[0].mod_revision
        if self.unsure:
            raise StoreUnavailable(
                f"etcd store {self.backend.where}: a commit interrupted by a lost connection "
                "then conflicted; it may or may not have been applied"
            )
        raise Conflict("a key read by the transaction changed before the commit")

    async def _send_with_lease(self) -> Any:
        try:
            return await self._send(await self.backend.token_lease())
        except Refused as exc:
            if exc.code != grpc.StatusCode.NOT_FOUND:  # not "requested lease not found"
                raise
        return await self._send(await self.backend.token_lease(renew=True))

    async def _send(self, lease: int) -> Any:
        ops = [*self.ops, rpc.RequestOp(request_put=rpc.PutRequest(key=self.token, lease=lease))]
        request = rpc.TxnRequest(compare=self.compare, success=ops, failure=[get_op(self.token)])

        async def send(member: Member, timeout: float) -> Any:
            try:
                return await member.kv.Txn(request, timeout=timeout, metadata=REQUIRE_LEADER)
            except grpc.aio.AioRpcError as exc:
                if not any(text in (exc.details() or "") for text in _NOT_SENT):
                    self.unsure = True
                raise

        return await self.backend._call("commit", send)
