"""Commits: one etcd Txn each, applied at most once however often it is sent.

The Txn compares each read key's ``mod_revision`` with the version read (absent keys
compare as 0), then puts and deletes. Fail-over may send a commit twice; its token makes
the copies exclusive, so at most one of them applies, and a lost answer is settled from
the token, never guessed (see `_Commit`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
_VOID = b"void"
"""The value of a token written by a fence: its commit was given up (a commit's own token
is empty)."""


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
    one applies, and a copy that finds the token learns that an earlier one applied (and
    its revision): a commit whose answer was lost with a killed leader is settled by the
    next copy, never guessed.

    One case needs more: a copy lost on the way (a follower forwards it to a leader that
    dies) may still be applied later, after a newer copy conflicted. So a conflict after a
    lost copy is not reported at once: a fence first writes the token itself (`_VOID`) if
    it is still absent. Then no copy can ever apply, and the conflict is clean; if the
    token was there, a copy did apply, and its revision is returned. The token lives for
    its lease (at least 40 s), far longer than etcd keeps a request in flight.
    """

    def __init__(
        self, backend: Commits, compare: list[Any], writes: Mapping[str, bytes | None]
    ) -> None:
        self.backend = backend
        self.token = backend.new_token()
        self.absent = rpc.Compare(key=self.token, target=_CREATE, result=_EQUAL, create_revision=0)
        self.compare = [*compare, self.absent]
        self.ops = [write_op(backend._key(k), v) for k, v in writes.items()]
        self.ops.append(write_op(backend._mark, b""))
        self.unsure = False
        """Whether a copy may have reached etcd without an answer."""

    async def run(self) -> int:
        reply = await self._send(self._commit_request)
        if reply.succeeded:
            self.backend._compact_later(reply.header.revision)
            return reply.header.revision
        applied = reply.responses[0].response_range.kvs
        if applied:
            return applied[0].mod_revision
        if self.unsure:
            return await self._fence()
        raise Conflict("a key read by the transaction changed before the commit")

    async def _fence(self) -> int:
        """After a conflict that followed a lost copy: make sure that copy never applies."""
        reply = await self._send(self._fence_request)
        token = reply.responses[0].response_range.kvs if not reply.succeeded else []
        if token and token[0].value != _VOID:
            return token[0].mod_revision  # the lost copy had applied
        if reply.succeeded or token:  # fenced now, or by an earlier copy of the fence
            raise Conflict("a key read by the transaction changed before the commit")
        raise StoreUnavailable(  # the token vanished: its lease expired meanwhile
            f"etcd store {self.backend.where}: the token of a commit interrupted by a lost "
            "connection expired; the commit may or may not have been applied",
            maybe_applied=True,
        )

    def _commit_request(self, lease: int) -> Any:
        token = rpc.RequestOp(request_put=rpc.PutRequest(key=self.token, lease=lease))
        return rpc.TxnRequest(
            compare=self.compare, success=[*self.ops, token], failure=[get_op(self.token)]
        )

    def _fence_request(self, lease: int) -> Any:
        void = rpc.RequestOp(request_put=rpc.PutRequest(key=self.token, value=_VOID, lease=lease))
        return rpc.TxnRequest(compare=[self.absent], success=[void], failure=[get_op(self.token)])

    async def _send(self, request: Callable[[int], Any]) -> Any:
        """Send `request(token lease)`; StoreUnavailable says whether anything may have applied."""
        try:
            return await self._send_with_lease(request)
        except StoreUnavailable as exc:
            if self.unsure:
                raise StoreUnavailable(
                    f"{exc}; the commit may or may not have been applied", maybe_applied=True
                ) from None
            raise StoreUnavailable(f"{exc}; the commit was not applied") from None

    async def _send_with_lease(self, request: Callable[[int], Any]) -> Any:
        try:
            return await self._send_once(request(await self.backend.token_lease()))
        except Refused as exc:
            if exc.code != grpc.StatusCode.NOT_FOUND:  # not "requested lease not found"
                raise
        return await self._send_once(request(await self.backend.token_lease(renew=True)))

    async def _send_once(self, request: Any) -> Any:
        async def send(member: Member, timeout: float) -> Any:
            try:
                return await member.kv.Txn(request, timeout=timeout, metadata=REQUIRE_LEADER)
            except grpc.aio.AioRpcError as exc:
                if not any(text in (exc.details() or "") for text in _NOT_SENT):
                    self.unsure = True
                raise

        return await self.backend._call("commit", send)
