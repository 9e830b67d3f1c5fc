"""Calls with fail-over: every call has a deadline and moves between members until then.

Calls go to one member and move to the next when it cannot be reached, has no leader or
does not answer within half the deadline (a killed leader silently swallows what a
follower forwarded to it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from ..errors import StoreUnavailable
from .members import REQUIRE_LEADER, Member, check_refusal
from .namespace import EtcdNamespace
from .url import EtcdOptions

T = TypeVar("T")

_RETRY_PAUSE = 0.1


class Attempts:
    """Members to try in turn for one call, until one answers or the deadline passes.

    After a failure the cluster's current member moves on, so later calls start with one
    that worked; after each full round of failures, a short pause.
    """

    def __init__(self, connection: EtcdConnection, what: str) -> None:
        self.connection = connection
        self.what = what
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + connection.options.timeout
        self.failures = 0
        self.last = "no member tried"

    def remaining(self) -> float:
        return self.deadline - self.loop.time()

    async def member(self) -> Member:
        """The next member with a live connection; StoreUnavailable once time is up."""
        connection = self.connection
        members = connection.members
        while True:
            if connection.closed:
                raise StoreUnavailable(f"etcd store {connection.where}: closed")
            remaining = self.remaining()
            if remaining <= 0:
                raise StoreUnavailable(
                    f"etcd store {connection.where}: {self.what} failed, no member answered "
                    f"within {connection.options.timeout:g} s (last error: {self.last})"
                )
            if self.failures and self.failures % len(members) == 0:
                await asyncio.sleep(min(_RETRY_PAUSE, remaining))
            member = members[connection.current]
            limit = min(self.remaining(), max(connection.options.timeout / len(members), 0.5))
            if await member.connected(limit):
                return member
            self.failed(member, "cannot connect")

    def failed(self, member: Member, reason: str) -> None:
        self.last = f"{member.endpoint}: {reason}"
        self.failures += 1
        self.connection.skip(member)


class EtcdConnection(EtcdNamespace):
    """The members of one cluster, and calls that fail over between them."""

    def __init__(self, options: EtcdOptions) -> None:
        super().__init__(options.root)
        self.options = options
        self.where = f"{','.join(options.endpoints)}{options.root}"
        self.members = [Member.connect(e, options.timeout) for e in options.endpoints]
        self.current = 0
        self.closed = False

    def skip(self, member: Member) -> None:
        """Move the next calls to the following member, unless another call already did."""
        if self.members[self.current] is member:
            self.current = (self.current + 1) % len(self.members)

    async def _call(self, what: str, invoke: Callable[[Member, float], Awaitable[T]]) -> T:
        """Run `invoke(member, timeout)` on a reachable member, moving on when one fails.

        Each try gets at most half the deadline, so that a request lost with a killed
        leader is sent again once a new leader is elected.
        """
        attempts = Attempts(self, what)
        limit = max(1.0, self.options.timeout / 2)
        while True:
            member = await attempts.member()
            try:
                return await invoke(member, min(attempts.remaining(), limit))
            except grpc.aio.AioRpcError as exc:
                check_refusal(exc, self.where, what)
                attempts.failed(member, exc.details() or exc.code().name)
            except asyncio.CancelledError:
                self._raise_if_closed()
                raise

    async def _request(
        self, what: str, method: Callable[[Member], Callable[..., Awaitable[Any]]], request: Any
    ) -> Any:
        """One unary call, `method(member)(request)`, answered by a member with a leader."""
        return await self._call(
            what, lambda m, t: method(m)(request, timeout=t, metadata=REQUIRE_LEADER)
        )

    async def _txn(self, what: str, request: Any) -> Any:
        return await self._request(what, lambda m: m.kv.Txn, request)

    async def _range(self, what: str, request: Any) -> Any:
        return await self._request(what, lambda m: m.kv.Range, request)

    def _raise_if_closed(self) -> None:
        """grpc cancels the calls of a closed channel; callers get StoreUnavailable instead.

        A cancellation of the calling task itself is left alone.
        """
        task = asyncio.current_task()
        if self.closed and not (task is not None and task.cancelling()):
            raise StoreUnavailable(f"etcd store {self.where}: closed") from None

    async def _close_channels(self) -> None:
        for member in self.members:
            await member.channel.close()  # ends every call on it, watches included
