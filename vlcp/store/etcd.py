"""The etcd v3 store: one etcd cluster shared by every controller and agent.

Layout under the namespace root R (the URL path, ``/vlcp`` by default):

- ``R/<key>`` holds a store key. Its etcd ``mod_revision`` is the key's version: a global,
  strictly increasing revision, so a deleted and re-created key never gets an old version.
- ``R`` itself is the namespace's revision mark, rewritten by every commit: its
  ``mod_revision`` is the revision of the namespace's latest commit. Snapshots report it,
  so commits in other namespaces of a shared cluster do not move our revisions.
- ``R/_live/<session>`` is a session's liveness mark, attached to an etcd lease.
- ``R.txn/<client>-<n>`` is a commit's token, kept a minute by a lease (see `_Commit`);
  outside ``R/``, so watchers never see it.

A commit is one etcd Txn: compare each read key's ``mod_revision`` with the version read
(absent keys compare as 0), then put and delete. The change log is etcd's own history,
read with a watch from a revision; the backend compacts that history to keep `retain`
revisions (URL ``retain=``; 0 leaves compaction to the operator).

Every call has a deadline (URL ``timeout=``). Calls go to one member and move to the next
when it cannot be reached, has no leader or does not answer within half the deadline
(a killed leader silently swallows what a follower forwarded to it). A commit may thus be
sent twice; its token makes the copies exclusive, so at most one of them applies.

The generated gRPC stubs shipped with aetcd are used directly: aetcd's client talks to a
single member and hides the connection state that this fail-over needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import grpc
from aetcd import rpc

from .backend import MISSING_VERSION, Backend, Compacted, LogEntry, Versioned
from .errors import Conflict, StoreUnavailable, TransactionTooLarge

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_PORT = 2379
DEFAULT_ROOT = "/vlcp"
DEFAULT_TIMEOUT = 5.0
LOG_RETAIN = 20000
"""Revisions of etcd history kept for watchers that reconnect; older ones force a resync."""

_COMPACT_EVERY = 1000
_TOKEN_TTL = 60
"""Seconds a commit token outlives its commit: far longer than any retry of that commit."""
_FETCH_CHUNK = 1000
_SNAPSHOT_PAGE = 5000
_RETRY_PAUSE = 0.1
_LIVE = "_live/"
"""Reserved first segment under the root: liveness marks, never store keys."""
_REQUIRE_LEADER = (("hasleader", "true"),)
"""etcd metadata: a member without a leader refuses at once instead of stalling."""

_MOD = rpc.Compare.CompareTarget.MOD
_CREATE = rpc.Compare.CompareTarget.CREATE
_EQUAL = rpc.Compare.CompareResult.EQUAL
_DELETE = rpc.Event.EventType.DELETE
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
_NOT_SENT = (
    "failed to connect to all addresses",
    "etcdserver: no leader",
    "etcdserver: not capable",
    "etcdserver: too many requests",
    "etcdserver: unhealthy cluster",
)
"""Failures that prove a request never took effect."""
_TOO_LARGE = ("too many operations in txn request", "request is too large", "larger than max")


# -- URL ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EtcdOptions:
    """What an ``etcd://host:port[,host:port...]/root?timeout=5&retain=20000`` URL says."""

    endpoints: tuple[str, ...]
    root: str = DEFAULT_ROOT
    timeout: float = DEFAULT_TIMEOUT
    retain: int = LOG_RETAIN


def parse_url(url: str) -> EtcdOptions:
    """Options from a store URL; ValueError names what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "etcd":
        raise ValueError(f"store URL {url!r} is not an etcd:// URL")
    endpoints = tuple(_endpoint(item, url) for item in parts.netloc.split(",") if item)
    if not endpoints:
        raise ValueError(f"store URL {url!r} names no etcd endpoint: etcd://host:port/root")
    root = parts.path.rstrip("/") or DEFAULT_ROOT
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"timeout", "retain"}
    if unknown:
        raise ValueError(f"store URL {url!r}: unknown option(s) {', '.join(sorted(unknown))}")
    try:
        timeout = float(query.get("timeout", [DEFAULT_TIMEOUT])[-1])
        retain = int(query.get("retain", [LOG_RETAIN])[-1])
    except ValueError:
        raise ValueError(
            f"store URL {url!r}: timeout must be a number, retain an integer"
        ) from None
    if not timeout > 0 or retain < 0:
        raise ValueError(f"store URL {url!r}: timeout must be > 0 and retain >= 0")
    return EtcdOptions(endpoints, root, timeout, retain)


def _endpoint(item: str, url: str) -> str:
    """``host:port`` for gRPC (etcd's client port when the port is left out)."""
    host, sep, port = item.rpartition(":")
    if not sep or host.endswith(":") or "]" in port:  # no port, or a bare IPv6 address
        return f"{item}:{DEFAULT_PORT}"
    if not host or not port.isdigit():
        raise ValueError(f"store URL {url!r}: bad endpoint {item!r}, expected host:port")
    return item


async def open_etcd(url: str) -> EtcdBackend:
    """Connect to the cluster named by `url`; StoreUnavailable if no member answers in time."""
    backend = EtcdBackend(parse_url(url))
    try:
        await backend.live_sessions()  # proves that a member with a leader answers
    except BaseException:
        await backend.close()
        raise
    return backend


# -- connections ------------------------------------------------------------------------------


class _Refused(StoreUnavailable):
    """etcd answered with an error that trying again will not fix."""

    def __init__(self, message: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


@dataclass
class _Member:
    """One etcd member: its channel and the stubs on it."""

    endpoint: str
    channel: grpc.aio.Channel
    kv: Any
    watch: Any
    lease: Any

    @classmethod
    def connect(cls, endpoint: str, timeout: float) -> _Member:
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


class _Attempts:
    """Members to try in turn for one call, until one answers or the deadline passes.

    After a failure the cluster's current member moves on, so later calls start with one
    that worked; after each full round of failures, a short pause.
    """

    def __init__(self, backend: EtcdBackend, what: str) -> None:
        self.backend = backend
        self.what = what
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + backend.options.timeout
        self.failures = 0
        self.last = "no member tried"

    def remaining(self) -> float:
        return self.deadline - self.loop.time()

    async def member(self) -> _Member:
        """The next member with a live connection; StoreUnavailable once time is up."""
        members = self.backend.members
        while True:
            if self.backend.closed:
                raise StoreUnavailable(f"etcd store {self.backend.where}: closed")
            remaining = self.remaining()
            if remaining <= 0:
                raise StoreUnavailable(
                    f"etcd store {self.backend.where}: {self.what} failed, no member answered "
                    f"within {self.backend.options.timeout:g} s (last error: {self.last})"
                )
            if self.failures and self.failures % len(members) == 0:
                await asyncio.sleep(min(_RETRY_PAUSE, remaining))
            member = members[self.backend.current]
            limit = min(self.remaining(), max(self.backend.options.timeout / len(members), 0.5))
            if await member.connected(limit):
                return member
            self.failed(member, "cannot connect")

    def failed(self, member: _Member, reason: str) -> None:
        self.last = f"{member.endpoint}: {reason}"
        self.failures += 1
        self.backend.skip(member)


def _check_refusal(exc: grpc.aio.AioRpcError, where: str, what: str) -> None:
    """Raise what an error that is not about reaching etcd means; return if it is transient."""
    details = exc.details() or ""
    if any(text in details for text in _TOO_LARGE):
        setting = "--max-txn-ops 2048" if "operations" in details else "--max-request-bytes"
        raise TransactionTooLarge(
            f"etcd store {where} refused the {what}: {details} "
            f"(start etcd with {setting}; see docs/store-backends.md)"
        )
    if exc.code() not in _TRANSIENT or "database space exceeded" in details:
        raise _Refused(f"etcd store {where}: {what} refused: {details}", exc.code(), details)


def _range_end(prefix: bytes) -> bytes:
    """The end of the etcd key range of every key starting with `prefix` (ends with '/')."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


# -- the backend ------------------------------------------------------------------------------


class EtcdBackend(Backend):
    """A store in an etcd v3 cluster (or a single member)."""

    name = "etcd"

    def __init__(self, options: EtcdOptions) -> None:
        self.options = options
        self.where = f"{','.join(options.endpoints)}{options.root}"
        self.members = [_Member.connect(e, options.timeout) for e in options.endpoints]
        self.current = 0
        self.closed = False
        self._mark = options.root.encode()
        self._base = self._mark + b"/"
        self._live = self._base + _LIVE.encode()
        self._tokens = self._mark + b".txn/"
        self._compacted_to = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._client = uuid.uuid4().hex[:16]
        self._commits = itertools.count(1)
        self._token_lease: tuple[int, float] | None = None
        self._token_lease_lock = asyncio.Lock()

    def skip(self, member: _Member) -> None:
        """Move the next calls to the following member, unless another call already did."""
        if self.members[self.current] is member:
            self.current = (self.current + 1) % len(self.members)

    async def _call(self, what: str, invoke: Callable[[_Member, float], Awaitable[T]]) -> T:
        """Run `invoke(member, timeout)` on a reachable member, moving on when one fails.

        Each try gets at most half the deadline, so that a request lost with a killed
        leader is sent again once a new leader is elected.
        """
        attempts = _Attempts(self, what)
        limit = max(1.0, self.options.timeout / 2)
        while True:
            member = await attempts.member()
            try:
                return await invoke(member, min(attempts.remaining(), limit))
            except grpc.aio.AioRpcError as exc:
                _check_refusal(exc, self.where, what)
                attempts.failed(member, exc.details() or exc.code().name)
            except asyncio.CancelledError:
                self._raise_if_closed()
                raise

    def _raise_if_closed(self) -> None:
        """grpc cancels the calls of a closed channel; callers get StoreUnavailable instead.

        A cancellation of the calling task itself is left alone.
        """
        task = asyncio.current_task()
        if self.closed and not (task is not None and task.cancelling()):
            raise StoreUnavailable(f"etcd store {self.where}: closed") from None

    async def _txn(self, what: str, request: Any) -> Any:
        return await self._call(
            what, lambda m, t: m.kv.Txn(request, timeout=t, metadata=_REQUIRE_LEADER)
        )

    async def _range(self, what: str, request: Any) -> Any:
        return await self._call(
            what, lambda m, t: m.kv.Range(request, timeout=t, metadata=_REQUIRE_LEADER)
        )

    def _key(self, key: str) -> bytes:
        return self._base + key.encode()

    def _store_key(self, etcd_key: bytes) -> str | None:
        """The store key of an etcd key in our range; None for liveness marks."""
        key = etcd_key[len(self._base) :].decode()
        return None if key.startswith(_LIVE) else key

    def _revision(self, mark_range: Any, header: Any) -> int:
        """The namespace's revision: its last commit's, or etcd's when it never committed."""
        return mark_range.kvs[0].mod_revision if mark_range.kvs else header.revision

    # -- data --------------------------------------------------------------------------

    async def fetch(self, keys: Iterable[str]) -> dict[str, Versioned]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, Versioned] = {}
        for start in range(0, len(keys), _FETCH_CHUNK):
            chunk = keys[start : start + _FETCH_CHUNK]
            request = rpc.TxnRequest(success=[_get(self._key(k)) for k in chunk])
            reply = await self._txn("read", request)
            for key, op in zip(chunk, reply.responses, strict=True):
                kvs = op.response_range.kvs
                found[key] = (
                    Versioned(bytes(kvs[0].value), kvs[0].mod_revision)
                    if kvs
                    else Versioned(None, MISSING_VERSION)
                )
        return found

    async def commit(self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]) -> int:
        compare = [
            rpc.Compare(key=self._key(k), target=_MOD, result=_EQUAL, mod_revision=v)
            for k, v in reads.items()
        ]
        if not writes:
            reply = await self._txn(
                "read", rpc.TxnRequest(compare=compare, success=[_get(self._mark)])
            )
            if not reply.succeeded:
                raise Conflict(f"one of {len(reads)} keys read changed since")
            return self._revision(reply.responses[0].response_range, reply.header)
        return await _Commit(self, compare, writes).run()

    async def snapshot(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        for _ in range(5):
            try:
                return await self._snapshot_once(prefix)
            except _Refused as exc:  # compacted (or not yet applied) while paging: again
                if exc.code != grpc.StatusCode.OUT_OF_RANGE:
                    raise
        raise StoreUnavailable(f"etcd store {self.where}: history compacted during every snapshot")

    async def _snapshot_once(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        """One consistent read, paged at a fixed etcd revision so huge prefixes stay cheap."""
        start = self._key(prefix) if prefix else self._base
        end = _range_end(start)
        first = rpc.RangeRequest(key=start, range_end=end, limit=_SNAPSHOT_PAGE)
        reply = await self._txn(
            "snapshot",
            rpc.TxnRequest(success=[_get(self._mark), rpc.RequestOp(request_range=first)]),
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

    # -- change log ----------------------------------------------------------------------

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
            key=self._base, range_end=_range_end(self._base), start_revision=start
        )
        attempts = _Attempts(self, "watch")
        while True:
            member = await attempts.member()
            call = member.watch.Watch(metadata=_REQUIRE_LEADER)
            try:
                async with asyncio.timeout(max(attempts.remaining(), 0.01)):
                    await call.write(rpc.WatchRequest(create_request=create))
                    return call, await self._next_response(call)
            except grpc.aio.AioRpcError as exc:
                call.cancel()
                _check_refusal(exc, self.where, "watch")
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
        reply = await self._txn("watch", rpc.TxnRequest(success=[_get(self._mark)]))
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
            task = asyncio.get_running_loop().create_task(self._compact(target))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _compact(self, revision: int) -> None:
        request = rpc.CompactionRequest(revision=revision)
        try:
            await self._call("compaction", lambda m, t: m.kv.Compact(request, timeout=t))
        except StoreUnavailable as exc:  # already compacted by another client, or down
            log.debug("etcd store %s: compaction to %d skipped: %s", self.where, revision, exc)

    # -- commit tokens --------------------------------------------------------------------

    def new_token(self) -> bytes:
        return self._tokens + f"{self._client}-{next(self._commits)}".encode()

    async def token_lease(self, *, renew: bool = False) -> int:
        """A lease that keeps commit tokens for a while, replaced long before it expires."""
        async with self._token_lease_lock:
            now = asyncio.get_running_loop().time()
            if renew or self._token_lease is None or now - self._token_lease[1] > _TOKEN_TTL / 3:
                grant = rpc.LeaseGrantRequest(TTL=_TOKEN_TTL)
                reply = await self._call(
                    "commit",
                    lambda m, t: m.lease.LeaseGrant(grant, timeout=t, metadata=_REQUIRE_LEADER),
                )
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
            await self._call(
                "session start",
                lambda m, t: m.lease.LeaseGrant(grant, timeout=t, metadata=_REQUIRE_LEADER),
            )
        except _Refused as exc:
            if "lease already exists" not in exc.details:  # a retried grant that had worked
                raise
        mark = rpc.PutRequest(key=self._live + session_id.encode(), value=b"", lease=lease)
        await self._call(
            "session start",
            lambda m, t: m.kv.Put(mark, timeout=t, metadata=_REQUIRE_LEADER),
        )

    async def live_refresh(self, session_id: str, ttl: float) -> bool:
        """One lease keepalive; etcd renews a lease by the TTL it was granted with."""
        request = rpc.LeaseKeepAliveRequest(ID=self._lease_id(session_id))

        async def keepalive(member: _Member, timeout: float) -> bool:
            call = member.lease.LeaseKeepAlive(iter([request]), timeout=timeout)
            async for reply in call:
                return reply.TTL > 0
            raise StoreUnavailable(f"etcd store {self.where}: lease keepalive got no answer")

        return await self._call("session refresh", keepalive)

    async def live_sessions(self) -> set[str]:
        reply = await self._range(
            "session list",
            rpc.RangeRequest(key=self._live, range_end=_range_end(self._live), keys_only=True),
        )
        return {kv.key[len(self._live) :].decode() for kv in reply.kvs}

    async def live_end(self, session_id: str) -> None:
        revoke = rpc.LeaseRevokeRequest(ID=self._lease_id(session_id))
        try:  # revoking the lease deletes the liveness mark with it
            await self._call(
                "session end",
                lambda m, t: m.lease.LeaseRevoke(revoke, timeout=t, metadata=_REQUIRE_LEADER),
            )
        except _Refused as exc:
            if exc.code != grpc.StatusCode.NOT_FOUND:
                raise

    async def close(self) -> None:
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for member in self.members:
            await member.channel.close()  # ends every call on it, watches included


class _Commit:
    """One commit with writes, sent again after failures until the deadline.

    The Txn creates a token key that must not exist yet, so of all the copies sent at most
    one applies. A copy that finds the token tells that an earlier one applied. A conflict
    after a copy was lost on the way is reported as `StoreUnavailable`: that copy might
    still apply (a key read as absent may be absent again), so it is not a clean conflict.
    """

    def __init__(
        self, backend: EtcdBackend, compare: list[Any], writes: Mapping[str, bytes | None]
    ) -> None:
        self.backend = backend
        self.token = backend.new_token()
        self.compare = [
            *compare,
            rpc.Compare(key=self.token, target=_CREATE, result=_EQUAL, create_revision=0),
        ]
        self.ops = [_write(backend._key(k), v) for k, v in writes.items()]
        self.ops.append(_write(backend._mark, b""))
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
        except _Refused as exc:
            if exc.code != grpc.StatusCode.NOT_FOUND:  # not "requested lease not found"
                raise
        return await self._send(await self.backend.token_lease(renew=True))

    async def _send(self, lease: int) -> Any:
        ops = [*self.ops, rpc.RequestOp(request_put=rpc.PutRequest(key=self.token, lease=lease))]
        request = rpc.TxnRequest(compare=self.compare, success=ops, failure=[_get(self.token)])

        async def send(member: _Member, timeout: float) -> Any:
            try:
                return await member.kv.Txn(request, timeout=timeout, metadata=_REQUIRE_LEADER)
            except grpc.aio.AioRpcError as exc:
                if not any(text in (exc.details() or "") for text in _NOT_SENT):
                    self.unsure = True
                raise

        return await self.backend._call("commit", send)


def _get(key: bytes) -> Any:
    return rpc.RequestOp(request_range=rpc.RangeRequest(key=key))


def _write(key: bytes, data: bytes | None) -> Any:
    if data is None:
        return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key))
    return rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=data))
