"""What is specific to the etcd backend: versions, revisions, compaction, leases, fail-over.

The shared contract suite (test_contract.py and friends) covers the common behaviour; these
tests pin down the etcd design choices that the contract relies on.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aetcd
import grpc
import pytest

from tests.lab.naming import free_tcp_ports
from tests.lab.services import EtcdCluster, EtcdServer
from vlcp.store import Resync, Store, StoreUnavailable, Transaction, TransactionTooLarge
from vlcp.store.backend import Compacted, LogEntry
from vlcp.store.codec import MAX_KEY_BYTES
from vlcp.store.errors import Conflict
from vlcp.store.etcd import EtcdBackend, EtcdOptions, open_etcd, parse_url
from vlcp.store.limits import MAX_TXN_BYTES, MAX_TXN_READS, MAX_TXN_WRITES

from .helpers import next_event, put


def url_for(endpoints: list[str], root: str | None = None, query: str = "timeout=2") -> str:
    hosts = ",".join(e.removeprefix("http://") for e in endpoints)
    return f"etcd://{hosts}/{root or 'e' + uuid.uuid4().hex[:12]}?{query}"


@pytest.fixture
async def stores() -> AsyncIterator[Any]:
    """Opens etcd stores from URLs and closes them after the test."""
    opened: list[Store] = []

    async def opener(url: str) -> Store:
        store = Store(await open_etcd(url), reap_interval=0.2, watch_retry=0.1)
        opened.append(store)
        return store

    yield opener
    for store in reversed(opened):
        await store.close()


@pytest.fixture
async def store(etcd: EtcdServer, stores: Any) -> Store:
    return await stores(url_for(etcd.endpoints))


def backend(store: Store) -> EtcdBackend:
    assert isinstance(store.backend, EtcdBackend)
    return store.backend


async def compact_etcd(etcd: EtcdServer) -> int:
    """Compact all of etcd's history up to now, as an operator or another client might."""
    async with aetcd.Client(host=etcd.host, port=etcd.port, timeout=5) as client:
        revision = (await client.put(b"/compaction-probe", b"")).header.revision
        await client.compact(revision, physical=True)
        return revision


# -- URLs -------------------------------------------------------------------------------------


def test_url_options() -> None:
    options = parse_url("etcd://a:1,b,[::1]:3/ns/sub?timeout=0.5&retain=0")
    assert options == EtcdOptions(("a:1", "b:2379", "[::1]:3"), "/ns/sub", 0.5, 0)
    assert parse_url("etcd://h:1").root == "/vlcp"
    for bad in ("etcd:///x", "etcd://h:x/n", "etcd://h:1/n?timeout=0", "etcd://h:1/n?tiemout=1"):
        with pytest.raises(ValueError):
            parse_url(bad)


async def test_unreachable_endpoints_fail_within_the_timeout() -> None:
    url = url_for([f"127.0.0.1:{p}" for p in free_tcp_ports(2)], query="timeout=0.5")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"no member answered within 0\.5 s"):
        await open_etcd(url)
    assert time.monotonic() - started < 1.5


async def test_a_dead_endpoint_in_the_list_is_skipped(etcd: EtcdServer, stores: Any) -> None:
    dead = f"127.0.0.1:{free_tcp_ports(1)[0]}"
    store = await stores(url_for([dead, etcd.endpoint]))
    started = time.monotonic()
    await put(store, "a/b", 1)
    assert (await store.read(["a/b"])).values == {"a/b": 1}
    assert time.monotonic() - started < 1.0


# -- versions, revisions, layout ----------------------------------------------------------------


async def test_versions_change_on_every_write_and_never_come_back(store: Store) -> None:
    etcd = backend(store)
    assert (await etcd.fetch(["v/a"]))["v/a"].version == 0
    versions = []
    for data in (b"1", b"1", None, b"2", None, b"1"):
        await etcd.commit({}, {"v/a": data})
        versions.append((await etcd.fetch(["v/a"]))["v/a"].version)
    present = [v for v, d in zip(versions, (1, 1, 0, 1, 0, 1), strict=True) if d]
    assert present == sorted(set(present)), "a re-created key must get a new version"
    assert versions[2] == versions[4] == 0


async def test_revisions_ignore_other_namespaces(etcd: EtcdServer, stores: Any) -> None:
    mine, other = await stores(url_for(etcd.endpoints)), await stores(url_for(etcd.endpoints))
    await put(mine, "n/a", 1)
    before = await mine.read_prefix("")
    watch = mine.watch(prefix="n/")
    assert isinstance(await next_event(watch), Resync)
    for i in range(5):
        await put(other, "n/a", i)
    assert (await mine.read_prefix("")).revision == before.revision
    await put(mine, "n/a", 2)
    event = await next_event(watch)
    assert [(c.key, c.value) for c in event.changes] == [("n/a", 2)]


async def test_backend_keys_stay_hidden(store: Store) -> None:
    """Liveness marks live under the root but are never store keys."""
    etcd = backend(store)
    start, _ = await etcd.snapshot("")
    changes = etcd.changes(start)
    session = await store.open_session(ttl=5)
    await session.put("h/a", 1)
    await session.close()
    await put(store, "h/last", 1)
    seen: list[LogEntry] = []
    while not any(k == "h/last" for e in seen for k, _ in e.changes):
        seen.append(await asyncio.wait_for(anext(changes), 10))
    await changes.aclose()
    keys = {k for e in seen for k, _ in e.changes} | set((await etcd.snapshot(""))[1])
    assert not [k for k in keys if k.startswith("_live/")], keys
    assert {"h/a", "h/last"} <= keys


# -- size limits ---------------------------------------------------------------------------------


async def test_largest_transaction_fits_etcd_default_request_size(store: Store) -> None:
    """1000 long keys read plus the most bytes written fit etcd's default 1.5 MiB requests."""
    long = "k/" + "r" * (MAX_KEY_BYTES - 10)
    reads = [f"{long}{i:04d}" for i in range(MAX_TXN_READS)]
    value_bytes = MAX_TXN_BYTES // MAX_TXN_WRITES - MAX_KEY_BYTES

    async def fill(txn: Transaction) -> None:
        await txn.get_many(reads)
        for i in range(MAX_TXN_WRITES):
            txn.put(f"w/{'w' * (MAX_KEY_BYTES - 12)}{i:04d}", "v" * (value_bytes - 2))

    await store.transact(fill)
    assert len((await store.read_prefix("w/")).values) == MAX_TXN_WRITES


class DefaultEtcd(EtcdServer):
    """etcd as packaged: --max-txn-ops 128, too few for the store."""

    def _argv(self) -> list[str]:
        return [arg for arg in super()._argv() if not arg.startswith("--max-txn-ops")]


@pytest.fixture
def default_etcd() -> Iterator[EtcdServer]:
    server = DefaultEtcd()
    try:
        yield server.start()
    finally:
        server.close()


async def test_etcd_without_max_txn_ops_says_what_to_change(
    default_etcd: EtcdServer, stores: Any
) -> None:
    store = await stores(url_for(default_etcd.endpoints))

    async def many(txn: Transaction) -> None:
        for i in range(200):
            txn.put(f"m/{i}", i)

    with pytest.raises(TransactionTooLarge, match="max-txn-ops"):
        await store.transact(many)
    assert (await store.read_prefix("m/")).values == {}


# -- the change log and compaction -----------------------------------------------------------


async def test_compacted_history_forces_a_resync(etcd: EtcdServer, store: Store) -> None:
    await put(store, "c/x", 0)
    since = (await store.read(["c/x"])).revision
    await put(store, "c/x", 1)
    await compact_etcd(etcd)
    with pytest.raises(Compacted):
        await anext(backend(store).changes(since))
    watch = store.watch(prefix="c/", since=since)
    resync = await next_event(watch)
    assert isinstance(resync, Resync) and resync.values == {"c/x": 1}
    await put(store, "c/x", 2)
    assert [(c.key, c.value) for c in (await next_event(watch)).changes] == [("c/x", 2)]


async def test_a_revision_beyond_etcd_forces_a_resync(store: Store) -> None:
    """As after etcd was restored from an older backup: waiting would miss changes."""
    await put(store, "b/x", 1)
    ahead = (await store.read(["b/x"])).revision + 1000
    with pytest.raises(Compacted, match="ahead of etcd"):
        await anext(backend(store).changes(ahead))
    watch = store.watch(prefix="b/", since=ahead)
    resync = await next_event(watch)
    assert isinstance(resync, Resync) and resync.values == {"b/x": 1}


async def test_compaction_after_an_idle_namespace_needs_no_resync(
    etcd: EtcdServer, stores: Any
) -> None:
    """Only other namespaces wrote since `since`: nothing was missed, the watch goes on."""
    idle, busy = await stores(url_for(etcd.endpoints)), await stores(url_for(etcd.endpoints))
    await put(idle, "i/x", 0)
    since = (await idle.read(["i/x"])).revision
    for i in range(3):
        await put(busy, "i/x", i)
    await compact_etcd(etcd)
    changes = backend(idle).changes(since)
    pending = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0.3)
    await put(idle, "i/x", 1)
    entry = await asyncio.wait_for(pending, 10)
    assert entry.changes == (("i/x", b"1"),)
    await changes.aclose()


async def test_the_backend_compacts_its_own_history(etcd: EtcdServer, stores: Any) -> None:
    store = await stores(url_for(etcd.endpoints, query="timeout=2&retain=20"))
    await put(store, "r/x", 0)
    first = (await store.read(["r/x"])).revision
    for i in range(60):
        await put(store, "r/x", i)
    deadline = time.monotonic() + 10
    while True:  # the compaction runs in the background
        changes = backend(store).changes(first)
        try:
            await asyncio.wait_for(anext(changes), 5)
        except Compacted:
            break
        finally:
            await changes.aclose()
        assert time.monotonic() < deadline, "history was never compacted"
        await asyncio.sleep(0.1)


# -- liveness --------------------------------------------------------------------------------


async def test_a_lease_keeps_a_session_alive_until_it_expires(store: Store) -> None:
    etcd = backend(store)
    await etcd.live_start("s1", 1)
    await etcd.live_start("s2", 30)
    assert {"s1", "s2"} <= await etcd.live_sessions()
    for _ in range(6):  # refreshed: outlives its ttl
        assert await etcd.live_refresh("s1", 1)
        await asyncio.sleep(0.3)
    deadline = time.monotonic() + 10
    while "s1" in await etcd.live_sessions():  # not refreshed: etcd revokes the lease
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert not await etcd.live_refresh("s1", 1)
    await etcd.live_end("s2")
    await etcd.live_end("s2")
    assert not {"s1", "s2"} & await etcd.live_sessions()


# -- lost answers and fail-over ----------------------------------------------------------------


class LoseAnswers:
    """A KV stub whose Txn calls reach etcd, but whose first `count` answers get lost."""

    def __init__(self, stub: Any, count: int) -> None:
        self.stub = stub
        self.count = count

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stub, name)

    async def Txn(self, request: Any, **kwargs: Any) -> Any:
        reply = await self.stub.Txn(request, **kwargs)
        if self.count > 0 and request.success and request.success[0].HasField("request_put"):
            self.count -= 1
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, details="Socket closed")
        return reply


async def test_a_commit_whose_answer_was_lost_applies_exactly_once(store: Store) -> None:
    etcd = backend(store)
    for member in etcd.members:
        member.kv = LoseAnswers(member.kv, 1)
    start, _ = await etcd.snapshot("")

    async def increment(txn: Transaction) -> None:
        txn.put("o/n", (await txn.get("o/n") or 0) + 1)

    await store.transact(increment)  # applied, answer lost, sent again: token found
    await store.transact(increment)
    assert (await store.read(["o/n"])).values == {"o/n": 2}
    changes = etcd.changes(start)
    entries = [await asyncio.wait_for(anext(changes), 5) for _ in range(2)]
    await changes.aclose()
    assert [e.changes for e in entries] == [(("o/n", b"1"),), (("o/n", b"2"),)]


class HoldRequests:
    """A KV stub whose first commit Txn never reaches etcd (it fails as if lost on the way
    to a dying leader); the test may deliver it later, as a delayed forward would."""

    def __init__(self, stub: Any, before_failing: Any) -> None:
        self.stub = stub
        self.before_failing = before_failing
        self.held: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stub, name)

    async def Txn(self, request: Any, **kwargs: Any) -> Any:
        if not self.held and request.success and request.success[0].HasField("request_put"):
            self.held.append(request)
            await self.before_failing()
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, details="Socket closed")
        return await self.stub.Txn(request, **kwargs)


async def test_a_conflict_after_a_lost_request_fences_that_request_off(
    store: Store, stores: Any
) -> None:
    """A copy lost on the way may still arrive after the next copy conflicted: the conflict
    is reported only once the commit's token is fenced, so the late copy can never apply."""
    etcd = backend(store)
    other = backend(await stores(f"etcd://{etcd.where}"))
    await put(store, "h/n", 0)
    read = (await etcd.fetch(["h/n"]))["h/n"].version

    async def overtaken() -> None:  # another writer commits while the copy is lost
        await other.commit({}, {"h/n": b"5"})

    stub = etcd.members[0].kv
    holder = HoldRequests(stub, overtaken)
    for member in etcd.members:
        member.kv = holder
    with pytest.raises(Conflict):
        await etcd.commit({"h/n": read}, {"h/n": b"1"})
    late = await stub.Txn(holder.held[0])
    assert not late.succeeded
    assert (await other.fetch(["h/n"]))["h/n"].data == b"5"


async def test_an_expired_token_lease_is_replaced(store: Store) -> None:
    """The lease that keeps commit tokens may be gone (etcd down for long): grant another."""
    etcd = backend(store)
    await put(store, "l/a", 1)
    etcd._token_lease = (0x1234, asyncio.get_running_loop().time())  # no such lease
    await put(store, "l/a", 2)
    assert (await store.read(["l/a"])).values == {"l/a": 2}


@pytest.mark.slow
async def test_killed_members_never_fail_a_transaction(
    etcd_cluster: EtcdCluster, stores: Any
) -> None:
    """Followers and leaders die in turn; with 5 s to spare, no call fails, no commit doubles."""
    cluster = etcd_cluster
    store = await stores(url_for(cluster.endpoints, query="timeout=5"))
    watch = store.watch(prefix="f/")
    assert isinstance(await next_event(watch), Resync)

    async def increment(txn: Transaction) -> None:
        txn.put("f/n", (await txn.get("f/n") or 0) + 1)

    for round_ in range(4):
        victim = backend(store).current if round_ % 2 else await asyncio.to_thread(cluster.leader)
        await store.transact(increment)
        await asyncio.to_thread(cluster.kill_member, victim)
        await store.transact(increment)
        assert (await store.read(["f/n"])).values == {"f/n": 2 * round_ + 2}
        await asyncio.to_thread(cluster.start_member, victim)
        await asyncio.to_thread(cluster.wait_ready)
    seen = []
    while len(seen) < 8:
        event = await next_event(watch)
        seen += [c.value for c in event.changes]
    assert seen == list(range(1, 9))
