"""One etcd member (its gRPC channel and stubs), and what etcd's errors mean.

The generated gRPC stubs shipped with aetcd are used directly: aetcd's client talks to
a single member and hides the connection state that fail-over needs.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import grpc
from aetcd import rpc

from ..errors import StoreUnavailable, TransactionTooLarge

REQUIRE_LEADER = (("hasleader", "true"),)
"""etcd metadata: a member without a leader refuses at once instead of stalling."""

_READY = grpc.ChannelConnectivity.READY
_DOWN = (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN)
_TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
_TOO_LARGE = ("too many operations in txn request", "request is too large", "larger than max")


class Refused(StoreUnavailable):
    """etcd answered with an error that trying again will not fix."""

    def __init__(self, message: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


def check_refusal(exc: grpc.aio.AioRpcError, where: str, what: str) -> None:
    """Raise what an error that is not about reaching etcd means; return if it is transient."""
    details = exc.details() or ""
    if any(text in details for text in _TOO_LARGE):
        setting = "--max-txn-ops 2048" if "operations" in details else "--max-request-bytes"
        raise TransactionTooLarge(
            f"etcd store {where} refused the {what}: {details} "
            f"(start etcd with {setting}; see docs/store-backends.md)"
        )
    if exc.code() not in _TRANSIENT or "database space exceeded" in details:
        raise Refused(f"etcd store {where}: {what} refused: {details}", exc.code(), details)


@dataclass
class Member:
    """One etcd member: its channel and the stubs on it."""

    endpoint: str
    channel: grpc.aio.Channel
    kv: Any
    watch: Any
    lease: Any

    @classmethod
    def connect(cls, endpoint: str, timeout: float) -> Member:
        options = [
            ("grpc.max_receive_message_length", -1),
            ("grpc.max_send_message_length", -1),
            # A member that comes back is used again within a second, not minutes.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            # Detect a silent (frozen, partitioned) member under an open watch. etcd refuses
            # pings more often than every 5 s (--grpc-keepalive-min-time).
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", max(1000, int(timeout * 1000))),
            ("grpc.http2.max_pings_without_data", 0),
        ]
        channel = grpc.aio.insecure_channel(endpoint, options=options)
        return cls(
            endpoint,
            channel,
            rpc.KVStub(channel),
            rpc.WatchStub(channel),
            rpc.LeaseStub(channel),
        )

    async def connected(self, limit: float) -> bool:
        """Whether the connection is up, waiting at most `limit` for it to come up."""
        state = self.channel.get_state(try_to_connect=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                while state != _READY:
                    if state in _DOWN:
                        return False
                    await self.channel.wait_for_state_change(state)
                    state = self.channel.get_state(try_to_connect=True)
        return state == _READY
