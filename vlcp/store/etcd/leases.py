"""etcd leases: the one that keeps commit tokens, and one per liveness session."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import uuid

import grpc
from aetcd import rpc

from ..errors import StoreUnavailable
from .connection import EtcdConnection
from .members import Member, Refused
from .namespace import range_end
from .url import EtcdOptions

_TOKEN_TTL = 60
"""Seconds a commit token outlives its commit: far longer than any retry of that commit."""


class Leases(EtcdConnection):
    """Commit tokens and the lease that keeps them; liveness sessions as leases."""

    def __init__(self, options: EtcdOptions) -> None:
        super().__init__(options)
        self._client = uuid.uuid4().hex[:16]
        self._commits = itertools.count(1)
        self._token_lease: tuple[int, float] | None = None
        self._token_lease_lock = asyncio.Lock()

    # -- commit tokens --------------------------------------------------------------------

    def new_token(self) -> bytes:
        return self._tokens + f"{self._client}-{next(self._commits)}".encode()

    async def token_lease(self, *, renew: bool = False) -> int:
        """A lease that keeps commit tokens for a while, replaced long before it expires."""
        async with self._token_lease_lock:
            now = asyncio.get_running_loop().time()
            if renew or self._token_lease is None or now - self._token_lease[1] > _TOKEN_TTL / 3:
                grant = rpc.LeaseGrantRequest(TTL=_TOKEN_TTL)
                reply = await self._request("commit", lambda m: m.lease.LeaseGrant, grant)
                self._token_lease = (reply.ID, now)
            return self._token_lease[0]

    # -- liveness -------------------------------------------------------------------------

    def _lease_id(self, session_id: str) -> int:
        """A lease id derived from the session, so any process can refresh or end it."""
        digest = hashlib.blake2b(self._live + session_id.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") >> 1 or 1

    async def live_start(self, session_id: str, ttl: float) -> None:
        lease = self._lease_id(session_id)
        grant = rpc.LeaseGrantRequest(TTL=max(1, math.ceil(ttl)), ID=lease)
        try:
            await self._request("session start", lambda m: m.lease.LeaseGrant, grant)
        except Refused as exc:
            if "lease already exists" not in exc.details:  # a retried grant that had worked
                raise
        mark = rpc.PutRequest(key=self._live + session_id.encode(), value=b"", lease=lease)
        await self._request("session start", lambda m: m.kv.Put, mark)

    async def live_refresh(self, session_id: str, ttl: float) -> bool:
        """One lease keepalive; etcd renews a lease by the TTL it was granted with."""
        request = rpc.LeaseKeepAliveRequest(ID=self._lease_id(session_id))

        async def keepalive(member: Member, timeout: float) -> bool:
            call = member.lease.LeaseKeepAlive(iter([request]), timeout=timeout)
            async for reply in call:
                return reply.TTL > 0
            raise StoreUnavailable(f"etcd store {self.where}: lease keepalive got no answer")

        return await self._call("session refresh", keepalive)

    async def live_sessions(self) -> set[str]:
        reply = await self._range(
            "session list",
            rpc.RangeRequest(key=self._live, range_end=range_end(self._live), keys_only=True),
        )
        return {kv.key[len(self._live) :].decode() for kv in reply.kvs}

    async def live_end(self, session_id: str) -> None:
        revoke = rpc.LeaseRevokeRequest(ID=self._lease_id(session_id))
        try:  # revoking the lease deletes the liveness mark with it
            await self._request("session end", lambda m: m.lease.LeaseRevoke, revoke)
        except Refused as exc:
            if exc.code != grpc.StatusCode.NOT_FOUND:
                raise
