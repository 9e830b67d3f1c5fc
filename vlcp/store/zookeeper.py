"""The ZooKeeper store: an ensemble shared by every controller and agent of a deployment.

URL: ``zookeeper://host:port,host:port/root?timeout=5&session_timeout=10``
(the root path defaults to ``/vlcp``; see docs/store-backends.md for every parameter).

Layout under the root path:

- ``data/<first segment>/<key with '/' as '|'>``: one znode per key. A delete writes empty
  data (a tombstone) instead of removing the znode, because ZooKeeper restarts a
  re-created znode's version at 0, which would let a stale transaction pass its version
  check (ABA). Tombstones are removed later in bulk, each batch together with a bump of
  the ``gc`` znode's version (the *epoch*). A key's store version is
  ``epoch * 2**32 + znode version + 1``, and a commit that relies on a version also checks
  the epoch, so a removed-and-re-created znode can never match an old version.
- ``log/<segment>/e<sequence>``: the change log, one sequential znode per commit holding
  its change list; revision = segment * SEGMENT_SPAN + sequence + 1. ``head`` names the
  current segment; every commit checks its version, so a commit lands in the current
  segment or fails. When a segment is full, one multi moves ``head`` on and appends an
  end marker to the old segment, so a reader waiting for "the next entry" always gets
  one. Old segments are deleted whole (never single entries), so sequence numbers within
  a segment have no gaps and a watcher only ever waits for one known path. The data of
  ``log`` names the first segment still kept; a watcher behind it must resync. The
  tombstones written by a segment's commits are collected when the segment is deleted.
- ``live/<session id>``: an ephemeral znode per liveness session, deleted by ZooKeeper
  when this process's ZooKeeper session ends.

A commit is one ZooKeeper multi: a version check per key read, the writes, and the log
entry. kazoo runs its own threads; its ``*_async`` calls are bridged to asyncio futures
(`_KazooBridge`), so the event loop never blocks on the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import threading
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    KazooException,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.serialization import Transaction as MultiRequest
from kazoo.protocol.states import KazooState
from kazoo.retry import KazooRetry

from .backend import (
    MISSING_VERSION,
    Backend,
    Compacted,
    LogEntry,
    Versioned,
    decode_changes,
    encode_changes,
)
from .errors import Conflict, StoreError, StoreUnavailable, TransactionTooLarge

log = logging.getLogger(__name__)

T = TypeVar("T")
V = TypeVar("V")
Call = Callable[[], Any]
"""A thunk that starts one kazoo request and returns its IAsyncResult."""

DEFAULT_PORT = 2181
DEFAULT_ROOT = "/vlcp"
SEGMENT_SPAN = 1 << 24
"""Revisions reserved per log segment; a segment holds far fewer entries (`log_segment`)."""
_EPOCH_SHIFT = 32
_SEGMENT_END = b""
"""Data of the entry that closes a segment (a real entry always lists at least one key)."""
_NODE_ERRORS = (NoNodeError, NodeExistsError, BadVersionError, NotEmptyError)
"""Answers about znodes, returned to the caller; every other failure means unavailable."""
_ROLLED_BACK = (RolledBackError, RuntimeInconsistency)
_INTERNAL_RETRIES = 8
_BATCH = 4096
"""Requests pipelined at once (bounds memory for very large reads)."""
_DELETE_BATCH = 256
"""Deletions per multi when removing old segments and tombstones."""
_CACHE_LIMIT = 200_000
_ROOT_RE = re.compile(r"(/[A-Za-z0-9._:@+=~-]+)+")


# -- configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class ZooKeeperConfig:
    """Everything the URL says; defaults suit a production ensemble."""

    hosts: str
    root: str = DEFAULT_ROOT
    timeout: float = 5.0
    """Seconds to wait for the ensemble before raising StoreUnavailable."""
    session_timeout: float = 10.0
    """ZooKeeper session timeout: how long after this process dies its sessions stay alive."""
    max_request_bytes: int = 1048575
    """The server's jute.maxbuffer: larger requests are refused as TransactionTooLarge."""
    log_segment: int = 2048
    """Commits per change-log segment."""
    log_keep: int = 5
    """Full segments kept besides the current one (at least log_segment * log_keep commits)."""

    @property
    def retained_commits(self) -> int:
        return self.log_segment * self.log_keep


_FLOAT_PARAMS = ("timeout", "session_timeout")
_INT_PARAMS = ("max_request_bytes", "log_segment", "log_keep")


def parse_url(url: str) -> ZooKeeperConfig:
    """``zookeeper://h1:p1,h2:p2/root?timeout=5&...``; ValueError says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "zookeeper":
        raise ValueError(f"store URL {url!r}: scheme must be zookeeper")
    hosts = _parse_hosts(url, parts.netloc)
    root = parts.path.rstrip("/") or DEFAULT_ROOT
    if not _ROOT_RE.fullmatch(root) or any(p in (".", "..") for p in root.split("/")):
        raise ValueError(f"store URL {url!r}: bad root path {root!r}")
    options: dict[str, Any] = {}
    for name, text in parse_qsl(parts.query, keep_blank_values=True):
        options[name] = _parse_param(url, name, text)
    config = ZooKeeperConfig(hosts=hosts, root=root, **options)
    if config.log_segment < 2 or config.log_segment > SEGMENT_SPAN // 2 or config.log_keep < 1:
        raise ValueError(
            f"store URL {url!r}: need 2 <= log_segment <= {SEGMENT_SPAN // 2}, log_keep >= 1"
        )
    return config


def _parse_hosts(url: str, netloc: str) -> str:
    if not netloc or "@" in netloc:
        raise ValueError(f"store URL {url!r} needs host:port[,host:port...] (no credentials)")
    hosts = []
    for item in netloc.split(","):
        host, _, port = item.strip().rpartition(":") if ":" in item else (item.strip(), "", "")
        port = port or str(DEFAULT_PORT)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"store URL {url!r}: bad host:port {item!r}")
        hosts.append(f"{host}:{port}")
    return ",".join(hosts)


def _parse_param(url: str, name: str, text: str) -> float | int:
    try:
        if name in _FLOAT_PARAMS:
            value: float | int = float(text)
            if not math.isfinite(value) or value <= 0:
                raise ValueError
            return value
        if name in _INT_PARAMS:
            value = int(text)
            if value <= 0:
                raise ValueError
            return value
    except ValueError:
        raise ValueError(f"store URL {url!r}: {name}={text!r} must be a positive number") from None
    known = ", ".join(_FLOAT_PARAMS + _INT_PARAMS)
    raise ValueError(f"store URL {url!r}: unknown parameter {name!r} (known: {known})")


async def open_zookeeper(url: str) -> ZooKeeperBackend:
    """Connect to the ensemble named by `url` and prepare the layout (StoreUnavailable if down)."""
    backend = ZooKeeperBackend(parse_url(url))
    try:
        await backend.start()
    except BaseException:
        await backend.close()
        raise
    return backend


# -- kazoo to asyncio ---------------------------------------------------------------------


class _KazooBridge:
    """Runs batches of kazoo requests from the event loop without ever blocking it.

    Requests are pipelined in the order given, and ZooKeeper answers a session's requests
    in order, so a batch reads one session-consistent view. Connection failures become
    StoreUnavailable within `timeout`; answers about znodes (NoNode, BadVersion...) are
    returned as exception objects for the caller to interpret.
    """

    def __init__(
        self, client: KazooClient, loop: asyncio.AbstractEventLoop, config: ZooKeeperConfig
    ):
        self.client = client
        self.loop = loop
        self.config = config
        self.state_changed = asyncio.Event()
        self.closed = False
        client.add_listener(self._on_state)

    def _on_state(self, _state: KazooState) -> None:
        """kazoo's connection thread reports a transition; wake the loop (never block here)."""
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self.loop.call_soon_threadsafe(self.state_changed.set)

    def unavailable(self, what: str) -> StoreUnavailable:
        return StoreUnavailable(f"ZooKeeper {self.config.hosts}: {what}")

    async def wait_connected(self) -> None:
        """Return once connected; StoreUnavailable if that takes longer than `timeout`."""
        deadline = self.loop.time() + self.config.timeout
        while not self.client.connected:
            if self.closed:
                raise StoreUnavailable("the ZooKeeper store is closed")
            self.state_changed.clear()
            if self.client.connected:
                break
            remaining = deadline - self.loop.time()
            try:
                await asyncio.wait_for(self.state_changed.wait(), max(remaining, 0))
            except TimeoutError:
                state = self.client.state
                raise self.unavailable(
                    f"not connected within {self.config.timeout:g} s (state {state})"
                ) from None

    async def run(self, calls: Sequence[Call]) -> list[Any]:
        """Send `calls` in order once connected; each result or its znode error."""
        await self.wait_connected()
        results: list[Any] = []
        for start in range(0, len(calls), _BATCH):
            pending = [call() for call in calls[start : start + _BATCH]]
            await self._wait_all(pending)
            results.extend(self._outcome(item) for item in pending)
        return results

    async def run_one(self, call: Call) -> Any:
        return (await self.run([call]))[0]

    async def _wait_all(self, pending: list[Any]) -> None:
        """Wait for every request; give up when none answered for `timeout` seconds."""
        if not pending:
            return
        done = self.loop.create_future()
        lock = threading.Lock()
        counts = [len(pending), 0]  # remaining, answered

        def answered(_result: Any) -> None:  # runs on a kazoo thread
            with lock:
                counts[0] -= 1
                counts[1] += 1
                last = counts[0] == 0
            if last:
                with contextlib.suppress(RuntimeError):
                    self.loop.call_soon_threadsafe(_resolve, done)

        for item in pending:
            item.rawlink(answered)
        seen = 0
        while not done.done():
            await asyncio.wait([done], timeout=self.config.timeout)
            if done.done():
                break
            if counts[1] == seen:
                raise self.unavailable(f"no answer within {self.config.timeout:g} s")
            seen = counts[1]

    def _outcome(self, item: Any) -> Any:
        if item.successful():
            return item.value
        exc = item.exception
        if isinstance(exc, _NODE_ERRORS):
            return exc
        raise self.unavailable(f"request failed: {type(exc).__name__} {exc}".rstrip())

    def waker(self, event: asyncio.Event) -> Callable[[Any], None]:
        """A kazoo watch callback that sets `event` on the loop (from kazoo's thread)."""
        loop = self.loop

        def wake(_event: Any = None) -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

        return wake


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# -- helpers ------------------------------------------------------------------------------


def _version(epoch: int, zk_version: int) -> int:
    """Store version of a present key (never MISSING_VERSION: ZooKeeper counts from 0)."""
    return (epoch << _EPOCH_SHIFT) + zk_version + 1


def _split_version(version: int) -> tuple[int, int]:
    """(epoch, znode version) of a store version."""
    return version >> _EPOCH_SHIFT, (version & ((1 << _EPOCH_SHIFT) - 1)) - 1


def _stat_version(stat: Any, epoch: int) -> int:
    """Store version from a znode stat (None or empty data: absent)."""
    if stat is None or stat.dataLength == 0:
        return MISSING_VERSION
    return _version(epoch, stat.version)


def _failed_op(results: list[Any]) -> int | None:
    """Index of the operation that made a multi fail (None if it succeeded)."""
    for index, result in enumerate(results):
        if isinstance(result, KazooException) and not isinstance(result, _ROLLED_BACK):
            return index
    return None


def _entry_position(path: str) -> tuple[int, int]:
    """(segment, sequence) of a log entry from its path: .../log/<segment>/e<sequence>."""
    segment, entry = path.rsplit("/", 2)[-2:]
    return int(segment), int(entry[1:])


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class _Marker:
    """Where the log head was (segment, entries in it), and the tombstone epoch then."""

    segment: int
    count: int
    epoch: int

    @property
    def revision(self) -> int:
        return self.segment * SEGMENT_SPAN + self.count


_TXN_METHODS = {"create": "create", "set": "set_data", "check": "check", "delete": "delete"}


@dataclass
class _Plan:
    """One commit's multi: its kazoo transaction and what each operation stands for."""

    txn: Any
    ops: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, key, op) per operation: kind is head, read, blind or log."""
    epochs: set[int] = field(default_factory=set)
    """Tombstone epochs the read versions depend on."""

    def add(self, kind: str, key: str, op: str, *args: Any, **options: Any) -> None:
        getattr(self.txn, _TXN_METHODS[op])(*args, **options)
        self.ops.append((kind, key, op))


class _Hints(Generic[V]):
    """A bounded map of hints that forgets everything when full: a stale or missing hint
    only costs a retried multi, never a wrong result (the server checks every version)."""

    def __init__(self) -> None:
        self._items: dict[str, V] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> V | None:
        return self._items.get(key)

    def put(self, key: str, value: V) -> None:
        if len(self._items) >= _CACHE_LIMIT:
            self._items.clear()
        self._items[key] = value

    def discard(self, key: str) -> None:
        self._items.pop(key, None)


# -- the backend --------------------------------------------------------------------------


class ZooKeeperBackend(Backend):
    """A store in a ZooKeeper ensemble (tested with ZooKeeper 3.8)."""

    name = "zookeeper"

    def __init__(self, config: ZooKeeperConfig) -> None:
        self.config = config
        root = config.root
        self._data_root = f"{root}/data"
        self._log_root = f"{root}/log"
        self._head_path = f"{root}/head"
        self._gc_path = f"{root}/gc"
        self._live_root = f"{root}/live"
        self._client: KazooClient | None = None
        self._zk: _KazooBridge | None = None
        self._head: tuple[int, int] | None = None
        """Cached (current segment, znode version of head)."""
        self._epoch = 0
        """The newest tombstone epoch seen."""
        self._known: _Hints[bool] = _Hints()
        """Data znodes seen to exist (they go only when a tombstone is collected)."""
        self._tombstones: _Hints[tuple[int, int]] = _Hints()
        """key -> (znode version, epoch) of the tombstone last seen: lets a commit check
        'still absent' with the version it read, instead of failing to re-create it."""
        self._containers: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wakers: weakref.WeakSet[asyncio.Event] = weakref.WeakSet()
        self._rotating = False
        self._closed = False

    # -- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (StoreUnavailable after `timeout`) and create the layout if missing."""
        client = KazooClient(
            hosts=self.config.hosts,
            timeout=self.config.session_timeout,
            # reconnect forever, at least once a second: members that come back are used at once
            connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=1.0),
        )
        self._client = client
        self._zk = _KazooBridge(client, asyncio.get_running_loop(), self.config)
        client.start_async()
        await self._zk.wait_connected()
        await self._create_layout()
        await self._refresh_head()

    async def _create_layout(self) -> None:
        """Create the root's znodes in one multi, so a half-made layout never exists."""
        zk, client = self._require()
        parts = self.config.root.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            path = "/" + "/".join(parts[:depth])
            await zk.run_one(partial(client.create_async, path, b""))  # NodeExists is fine
        txn = client.transaction()
        txn.create(self._data_root, b"")
        txn.create(self._log_root, json.dumps({"first": 0}).encode())
        txn.create(self._segment_path(0), b"")
        txn.create(self._head_path, b"0")
        txn.create(self._gc_path, b"")
        txn.create(self._live_root, b"")
        results = await zk.run_one(txn.commit_async)
        failed = _failed_op(results)
        if failed is not None and not isinstance(results[failed], NodeExistsError):
            raise zk.unavailable(f"cannot create the store layout: {results[failed]!r}")

    async def close(self) -> None:
        """Stop background work and the kazoo client; ephemeral liveness znodes go with it."""
        if self._closed:
            return
        self._closed = True
        for event in list(self._wakers):
            event.set()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._zk is not None:
            self._zk.closed = True
            self._zk.state_changed.set()
        if self._client is not None:
            stopping = asyncio.get_running_loop().run_in_executor(
                None, self._stop_client, self._client
            )
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stopping, self.config.timeout + 1)

    @staticmethod
    def _stop_client(client: KazooClient) -> None:
        """Blocking (it joins kazoo's threads): run off the event loop."""
        with contextlib.suppress(Exception):
            client.stop()
        with contextlib.suppress(Exception):
            client.close()

    def _require(self) -> tuple[_KazooBridge, KazooClient]:
        if self._closed or self._zk is None or self._client is None:
            raise StoreUnavailable("the ZooKeeper store is closed")
        return self._zk, self._client

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- paths ---------------------------------------------------------------------------

    def _container_path(self, key: str) -> str:
        return f"{self._data_root}/{key.split('/', 1)[0]}"

    def _data_path(self, key: str) -> str:
        return f"{self._container_path(key)}/{key.replace('/', '|')}"

    def _segment_path(self, segment: int) -> str:
        return f"{self._log_root}/{segment:010d}"

    def _entry_path(self, segment: int, sequence: int) -> str:
        return f"{self._segment_path(segment)}/e{sequence:010d}"

    # -- data ----------------------------------------------------------------------------

    async def fetch(self, keys: Iterable[str]) -> dict[str, Versioned]:
        zk, client = self._require()
        keys = list(dict.fromkeys(keys))
        gc, *results = await zk.run(
            [
                partial(client.exists_async, self._gc_path),  # first: see _version
                *(partial(client.get_async, self._data_path(k)) for k in keys),
            ]
        )
        epoch = self._note_epoch(gc)
        return {
            key: self._versioned(key, result, epoch)
            for key, result in zip(keys, results, strict=True)
        }

    def _note_epoch(self, stat: Any) -> int:
        if stat is None:
            raise self._require()[0].unavailable(f"{self._gc_path} is missing: layout removed")
        self._epoch = max(self._epoch, stat.version)
        return stat.version

    def _versioned(self, key: str, result: Any, epoch: int) -> Versioned:
        if isinstance(result, NoNodeError):
            self._forget(key)
            return Versioned(None, MISSING_VERSION)
        data, stat = result
        self._known.put(self._data_path(key), True)
        if not data:
            self._tombstones.put(key, (stat.version, epoch))
            return Versioned(None, MISSING_VERSION)
        self._tombstones.discard(key)
        return Versioned(data, _version(epoch, stat.version))

    def _forget(self, key: str) -> None:
        """The key's znode is gone (or its tombstone was collected)."""
        self._known.discard(self._data_path(key))
        self._tombstones.discard(key)

    async def commit(self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]) -> int:
        self._require()
        if not writes:
            return await self._validate_reads(dict(reads))
        for _attempt in range(_INTERNAL_RETRIES):
            revision = await self._try_commit(reads, writes)
            if revision is not None:
                return revision
        raise Conflict("the commit kept racing with concurrent writers; retrying")

    async def _try_commit(
        self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]
    ) -> int | None:
        """One multi; the revision, None to retry at once, or Conflict when a read changed."""
        zk, _client = self._require()
        await self._prepare(reads, writes)
        plan = self._plan(reads, writes)
        self._check_size(plan)
        results = await zk.run_one(plan.txn.commit_async)
        failed = _failed_op(results)
        if failed is None:
            return self._committed(plan, results, writes)
        kind, key, _op = plan.ops[failed]
        if kind == "read":
            raise Conflict(f"changed since read: {key or 'a key (tombstones were collected)'}")
        if kind == "blind" and isinstance(results[failed], NodeExistsError):
            self._known.put(self._data_path(key), True)
        elif kind == "blind":  # its tombstone was collected
            self._forget(key)
        else:  # the head moved on (a new log segment)
            await self._refresh_head()
        return None

    async def _prepare(self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]) -> None:
        """Create missing key containers and learn which blindly written znodes exist."""
        zk, client = self._require()
        containers = {self._container_path(k) for k in (*reads, *writes)} - self._containers
        unknown = [
            self._data_path(k)
            for k in writes
            if k not in reads and self._data_path(k) not in self._known
        ]
        if self._head is None:
            await self._refresh_head()
        if not containers and not unknown:
            return
        calls = [partial(client.create_async, path, b"") for path in containers]
        calls += [partial(client.exists_async, path) for path in unknown]
        results = await zk.run(calls)
        self._containers.update(containers)
        for path, stat in zip(unknown, results[len(containers) :], strict=True):
            if stat is not None:
                self._known.put(path, True)

    def _plan(self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]) -> _Plan:
        _zk, client = self._require()
        assert self._head is not None
        segment, head_version = self._head
        plan = _Plan(client.transaction())
        plan.add("head", "", "check", self._head_path, head_version)
        for key in dict.fromkeys((*reads, *writes)):
            self._key_ops(plan, key, reads, writes)
        if len(plan.epochs) > 1:
            raise Conflict("read before and after tombstones were collected")
        for epoch in plan.epochs:
            plan.add("read", "", "check", self._gc_path, epoch)
        log_entry = f"{self._segment_path(segment)}/e"
        plan.add("log", "", "create", log_entry, encode_changes(writes), sequence=True)
        return plan

    def _key_ops(
        self, plan: _Plan, key: str, reads: Mapping[str, int], writes: Mapping[str, bytes | None]
    ) -> None:
        """Add the operations for `key`: write it, check it still has the version read."""
        path = self._data_path(key)
        data = writes.get(key) or b""
        writing = key in writes
        if key not in reads:
            if path in self._known:
                plan.add("blind", key, "set", path, data, -1)
            else:
                self._create_or_probe(plan, "blind", key, data)
            return
        if reads[key] != MISSING_VERSION:
            epoch, version = _split_version(reads[key])
        elif (tombstone := self._tombstones.get(key)) is not None:
            version, epoch = tombstone  # absent: still the same tombstone?
        else:  # absent and no znode: creating it fails if the key appeared since
            self._create_or_probe(plan, "read", key, data if writing else b"")
            return
        plan.epochs.add(epoch)
        if writing and (data or reads[key] != MISSING_VERSION):
            plan.add("read", key, "set", path, data, version)
        else:
            plan.add("read", key, "check", path, version)

    def _create_or_probe(self, plan: _Plan, kind: str, key: str, data: bytes) -> None:
        """Create the znode with `data`; with no data, create and delete it in the same
        multi: that proves it is absent without leaving a tombstone behind."""
        path = self._data_path(key)
        plan.add(kind, key, "create", path, data)
        if not data:
            plan.add(kind, key, "delete", path, 0)

    def _check_size(self, plan: _Plan) -> None:
        """Refuse what the server would drop the connection for (jute.maxbuffer)."""
        size = len(MultiRequest(plan.txn.operations).serialize()) + 8
        if size > self.config.max_request_bytes:
            raise TransactionTooLarge(
                f"ZooKeeper would refuse this commit: the request is {size} bytes and the "
                f"server accepts at most jute.maxbuffer = {self.config.max_request_bytes} bytes "
                "(each written value is sent twice: the key and the change log)"
            )

    def _committed(
        self, plan: _Plan, results: list[Any], writes: Mapping[str, bytes | None]
    ) -> int:
        """Update the caches from a successful multi and return its revision."""
        last: dict[str, tuple[str, Any]] = {}
        for (kind, key, op), result in zip(plan.ops, results, strict=True):
            if kind in ("read", "blind") and key:
                last[key] = (op, result)
        for key, (op, result) in last.items():
            self._remember(key, op, result, writes.get(key))
        segment, sequence = _entry_position(results[-1])
        if sequence + 1 >= self.config.log_segment:
            self._start_rotation(segment)
        return segment * SEGMENT_SPAN + sequence + 1

    def _remember(self, key: str, op: str, result: Any, data: bytes | None) -> None:
        """What the last operation on a key left: no znode, a new znode version, or as is."""
        if op == "delete":
            self._forget(key)
            return
        if op == "check":
            return
        version = 0 if op == "create" else result.version
        self._known.put(self._data_path(key), True)
        if data:
            self._tombstones.discard(key)
        else:  # a stale epoch here only makes a later check fail, never pass wrongly
            self._tombstones.put(key, (version, self._epoch))

    # -- consistent reads ---------------------------------------------------------------------

    def _marker_calls(self, segment: int) -> list[Call]:
        _zk, client = self._require()
        return [
            partial(client.get_async, self._head_path),
            partial(client.exists_async, self._segment_path(segment)),
            partial(client.exists_async, self._gc_path),
        ]

    def _marker(self, segment: int, answers: Sequence[Any]) -> _Marker | None:
        """The log head from `_marker_calls` answers, None if `segment` is not current."""
        head, stat, gc = answers
        if isinstance(head, NoNodeError):
            raise self._require()[0].unavailable(f"{self._head_path} is missing: layout removed")
        epoch = self._note_epoch(gc)
        current = int(head[0])
        self._head = max(self._head or (0, 0), (current, head[1].version))
        if current != segment or stat is None:
            return None
        return _Marker(segment, stat.cversion, epoch)

    async def _consistent(
        self, reads: Callable[[], Awaitable[T]], relevant: Callable[[str], bool]
    ) -> tuple[_Marker, T, list[LogEntry]]:
        """Run `reads` between two reads of the log head, after a sync with the leader.

        Returns the head after the reads, their outcome, and the commits that ran
        meanwhile and wrote a key for which `relevant` is true (the caller re-applies them
        or treats them as a conflict). A segment change or a tombstone collection in
        between makes it try again.
        """
        zk, client = self._require()
        for _attempt in range(_INTERNAL_RETRIES):
            if self._head is None:
                await self._refresh_head()
            assert self._head is not None
            segment = self._head[0]
            sync = partial(client.sync_async, self.config.root)
            before = self._marker(segment, (await zk.run([sync, *self._marker_calls(segment)]))[1:])
            if before is None:
                continue
            outcome = await reads()
            after = self._marker(segment, await zk.run(self._marker_calls(segment)))
            if after is None or after.epoch != before.epoch:
                continue
            window = await self._read_range(segment, before.count, after.count)
            if window is None:
                continue
            return after, outcome, [e for e in window if any(relevant(k) for k, _ in e.changes)]
        raise zk.unavailable("the change log head kept moving during a consistent read")

    async def _validate_reads(self, reads: dict[str, int]) -> int:
        """A read-only commit: every read version is still current at the returned revision."""
        zk, client = self._require()
        keys = list(reads)

        async def read_versions() -> list[Any]:
            return await zk.run([partial(client.exists_async, self._data_path(k)) for k in keys])

        marker, stats, window = await self._consistent(read_versions, reads.__contains__)
        for key, stat in zip(keys, stats, strict=True):
            if stat is not None and stat.dataLength == 0:
                self._tombstones.put(key, (stat.version, marker.epoch))
            if _stat_version(stat, marker.epoch) != reads[key]:
                raise Conflict(f"changed since read: {key}")
        if window:
            raise Conflict(f"changed while validating: {window[0].changes[0][0]}")
        return marker.revision

    async def snapshot(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        marker, values, window = await self._consistent(
            partial(self._read_prefix, prefix), lambda key: key.startswith(prefix)
        )
        for entry in window:  # commits that ran during the reads: replay them
            for key, data in entry.changes:
                if not key.startswith(prefix):
                    continue
                if data is None:
                    values.pop(key, None)
                else:
                    values[key] = data
        return marker.revision, values

    async def _read_prefix(self, prefix: str) -> dict[str, bytes]:
        zk, client = self._require()
        if prefix:
            containers = [self._container_path(prefix)]
        else:
            names = await zk.run_one(partial(client.get_children_async, self._data_root))
            containers = [f"{self._data_root}/{n}" for n in names]
        listings = await zk.run([partial(client.get_children_async, c) for c in containers])
        paths: list[tuple[str, str]] = []
        for container, names in zip(containers, listings, strict=True):
            if isinstance(names, NoNodeError):
                continue
            for name in names:
                key = name.replace("|", "/")
                if key.startswith(prefix):
                    paths.append((key, f"{container}/{name}"))
        results = await zk.run([partial(client.get_async, path) for _key, path in paths])
        values = {}
        for (key, _path), result in zip(paths, results, strict=True):
            if not isinstance(result, NoNodeError) and result[0]:
                values[key] = result[0]
        return values

    # -- change log ----------------------------------------------------------------------

    async def _refresh_head(self) -> None:
        zk, client = self._require()
        result = await zk.run_one(partial(client.get_async, self._head_path))
        if isinstance(result, NoNodeError):
            raise zk.unavailable(f"{self._head_path} is missing: the store layout was removed")
        self._head = (int(result[0]), result[1].version)

    async def _read_entries(self, segment: int, start: int, count: int) -> list[bytes | None]:
        """Data of entries start..start+count-1 of `segment` (None where missing)."""
        zk, client = self._require()
        calls = [
            partial(client.get_async, self._entry_path(segment, sequence))
            for sequence in range(start, start + count)
        ]
        return [None if isinstance(r, NoNodeError) else r[0] for r in await zk.run(calls)]

    async def _read_range(self, segment: int, start: int, stop: int) -> list[LogEntry] | None:
        """The commits in entries start..stop-1 of `segment`; None if one is missing."""
        entries = []
        found = await self._read_entries(segment, start, stop - start)
        for sequence, data in enumerate(found, start):
            if data is None:
                return None
            if data != _SEGMENT_END:
                revision = segment * SEGMENT_SPAN + sequence + 1
                entries.append(LogEntry(revision, decode_changes(data)))
        return entries

    async def _first_kept(self) -> int:
        zk, client = self._require()
        result = await zk.run_one(partial(client.get_async, self._log_root))
        return int(json.loads(result[0])["first"])

    async def changes(self, since: int) -> AsyncIterator[LogEntry]:
        zk, client = self._require()
        segment, position = divmod(since, SEGMENT_SPAN)
        if segment < await self._first_kept():
            raise Compacted(f"change-log segments before {segment} were removed")
        wake = asyncio.Event()
        self._wakers.add(wake)
        watch = zk.waker(wake)
        batch = 1
        synced = False
        while True:
            found = await self._read_entries(segment, position, batch)
            caught_up = False
            for data in found:
                if data is None:
                    caught_up = True
                    break
                if data == _SEGMENT_END:
                    segment, position = segment + 1, 0
                    break
                position += 1
                yield LogEntry(segment * SEGMENT_SPAN + position, decode_changes(data))
            else:
                batch = min(batch * 2, 256)  # more may be waiting: read ahead
                continue
            if not caught_up:
                continue  # went on to the next segment
            batch = 1
            wake.clear()
            where = await self._locate(segment, position, watch)
            if where == "closed":
                segment, position = segment + 1, 0
            elif where == "ahead" and not synced:  # our member may lag behind the committer
                synced = True
                await zk.run_one(partial(client.sync_async, self.config.root))
            elif where == "ahead":
                raise Compacted(  # waiting would skip commits: make the watcher resync
                    f"revision {since} is ahead of the change log (restored from a backup?)"
                )
            elif where == "waiting":
                synced = False
                await self._wait(wake)

    async def _locate(self, segment: int, position: int, watch: Callable[[Any], None]) -> str:
        """Why entry `position` of `segment` is missing, watching for it to appear.

        "appeared" (read it now), "closed" (the segment ended before it: go on to the next),
        "ahead" (the log has fewer commits than that) or "waiting" (the next commit will
        create it); raises Compacted when the segment was deleted.
        """
        zk, client = self._require()
        # Order matters: the head before the entry (a segment closed before the entry was
        # found missing will never get it), the compaction mark after it (a missing entry
        # that was deleted had its segment marked compacted first).
        head, current, entry, first = await zk.run(
            [
                partial(client.get_async, self._head_path),
                partial(client.exists_async, self._segment_path(segment)),
                partial(client.exists_async, self._entry_path(segment, position), watch),
                partial(client.get_async, self._log_root),
            ]
        )
        if entry is not None:
            return "appeared"
        if segment < int(json.loads(first[0])["first"]):
            raise Compacted(f"change-log segment {segment} was removed")
        head_segment = int(head[0])
        if head_segment > segment:
            return "closed"
        if head_segment < segment or current is None or current.cversion < position:
            return "ahead"
        return "waiting"

    async def _wait(self, wake: asyncio.Event) -> None:
        """Sleep until the watched entry appears, the connection changes, or close().

        kazoo fires every watch when the connection drops, so a lost server wakes this
        too; the periodic wake-up is only a safety net.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), 60)
        self._require()

    def _start_rotation(self, segment: int) -> None:
        if not self._rotating:
            self._rotating = True
            self._spawn(self._rotate(segment))

    async def _rotate(self, segment: int) -> None:
        """Close the full `segment` and start the next one, then drop old segments."""
        try:
            zk, client = self._require()
            if self._head is None or self._head[0] != segment:
                return
            txn = client.transaction()
            txn.set_data(self._head_path, str(segment + 1).encode(), self._head[1])
            txn.create(self._segment_path(segment + 1), b"")
            txn.create(f"{self._segment_path(segment)}/e", _SEGMENT_END, sequence=True)
            results = await zk.run_one(txn.commit_async)
            if _failed_op(results) is None:
                self._head = (segment + 1, results[0].version)
                await self._compact(segment + 1)
            else:
                await self._refresh_head()
        except StoreError as exc:
            log.info("zookeeper: log segment rotation deferred: %s", exc)
        finally:
            self._rotating = False

    async def _compact(self, current: int) -> None:
        """Delete whole segments older than the `log_keep` full ones before `current`."""
        zk, client = self._require()
        (mark, stat), names = await zk.run(
            [
                partial(client.get_async, self._log_root),
                partial(client.get_children_async, self._log_root),
            ]
        )
        old = sorted(s for s in map(int, names) if s < current - self.config.log_keep)
        if not old:
            return
        if json.loads(mark)["first"] <= old[-1]:  # mark them compacted before deleting
            data = json.dumps({"first": old[-1] + 1}).encode()
            marked = await zk.run_one(partial(client.set_async, self._log_root, data, stat.version))
            if isinstance(marked, BadVersionError):
                return  # another process is compacting
        for segment in old:
            await self._delete_segment(segment)

    async def _delete_segment(self, segment: int) -> None:
        """Collect the tombstones its commits wrote, then delete its entries and itself."""
        zk, client = self._require()
        path = self._segment_path(segment)
        for _attempt in range(_INTERNAL_RETRIES):
            names = await zk.run_one(partial(client.get_children_async, path))
            if isinstance(names, NoNodeError):
                return
            entries = await zk.run([partial(client.get_async, f"{path}/{n}") for n in names])
            deleted = {
                key
                for entry in entries
                if not isinstance(entry, NoNodeError) and entry[0]
                for key, data in decode_changes(entry[0])
                if data is None
            }
            await self._collect_tombstones(sorted(deleted))
            for chunk in _chunks(names, _DELETE_BATCH):
                txn = client.transaction()
                for name in chunk:
                    txn.delete(f"{path}/{name}")
                await zk.run_one(txn.commit_async)
            if not isinstance(await zk.run_one(partial(client.delete_async, path)), NotEmptyError):
                return

    async def _collect_tombstones(self, keys: Sequence[str]) -> None:
        """Remove the znodes of `keys` that are still tombstones, bumping the epoch with
        each batch (a version read before it then fails its check: no ABA)."""
        zk, client = self._require()
        for chunk in _chunks(keys, _DELETE_BATCH):
            for _attempt in range(3):  # a key written meanwhile fails the batch: look again
                paths = [self._data_path(k) for k in chunk]
                stats = await zk.run([partial(client.exists_async, p) for p in paths])
                doomed = [
                    (key, path, stat.version)
                    for key, path, stat in zip(chunk, paths, stats, strict=True)
                    if stat is not None and stat.dataLength == 0
                ]
                if not doomed:
                    break
                txn = client.transaction()
                txn.set_data(self._gc_path, b"", -1)
                for _key, path, version in doomed:
                    txn.delete(path, version)
                if _failed_op(await zk.run_one(txn.commit_async)) is None:
                    for key, _path, _version in doomed:
                        self._forget(key)
                    break

    # -- liveness ------------------------------------------------------------------------

    def _live_path(self, session_id: str) -> str:
        return f"{self._live_root}/{session_id}"

    async def live_start(self, session_id: str, ttl: float) -> None:
        """An ephemeral znode: alive until this process's ZooKeeper session ends.

        `ttl` is not used: ZooKeeper's session timeout (`session_timeout`) decides.
        """
        zk, client = self._require()
        path = self._live_path(session_id)
        data = json.dumps({"ttl": ttl}).encode()
        created = await zk.run_one(partial(client.create_async, path, data, ephemeral=True))
        if isinstance(created, NodeExistsError):  # left by an earlier ZooKeeper session
            await zk.run(
                [
                    partial(client.delete_async, path),
                    partial(client.create_async, path, data, ephemeral=True),
                ]
            )

    async def live_refresh(self, session_id: str, ttl: float) -> bool:
        """True while the znode lives, owned by the current ZooKeeper session."""
        zk, client = self._require()
        stat = await zk.run_one(partial(client.exists_async, self._live_path(session_id)))
        owner = client.client_id
        if owner is None:  # disconnected right after answering: undecided, not expired
            raise zk.unavailable("connection lost while refreshing a session")
        return stat is not None and stat.ephemeralOwner == owner[0]

    async def live_sessions(self) -> set[str]:
        zk, client = self._require()
        names = await zk.run_one(partial(client.get_children_async, self._live_root))
        return set() if isinstance(names, NoNodeError) else set(names)

    async def live_end(self, session_id: str) -> None:
        zk, client = self._require()
        await zk.run_one(partial(client.delete_async, self._live_path(session_id)))
