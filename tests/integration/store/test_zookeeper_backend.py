"""What the contract suite cannot see of the ZooKeeper backend: layout, versions, log, failures.

Tests that kill or freeze servers use a private server or ensemble, so the shared server
stays healthy for the rest of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial

import pytest
from kazoo.client import KazooClient

from tests.lab.naming import free_tcp_ports
from tests.lab.services import ZooKeeperEnsemble, ZooKeeperServer
from tests.lab.waiting import eventually
from vlcp.store import (
    Resync,
    StoreError,
    StoreUnavailable,
    TransactionTooLarge,
    WatchEvent,
    open_store,
)
from vlcp.store.backend import MISSING_VERSION, Compacted, LogEntry, ScopeFeed
from vlcp.store.errors import Conflict
from vlcp.store.zookeeper import (
    DEFAULT_ROOT,
    SEGMENT_SPAN,
    ZooKeeperBackend,
    open_zookeeper,
    parse_url,
)

from .helpers import next_change, private_server, put

TIMEOUT = 1.0
pytestmark = pytest.mark.slow


def _url(hosts: str, **params: object) -> str:
    query = {"timeout": TIMEOUT, "session_timeout": 3, **params}
    root = f"/t{uuid.uuid4().hex[:12]}"
    return f"zookeeper://{hosts}{root}?" + "&".join(f"{k}={v}" for k, v in query.items())


@pytest.fixture
async def backend(zookeeper: ZooKeeperServer) -> AsyncIterator[ZooKeeperBackend]:
    backend = await open_zookeeper(_url(zookeeper.hosts))
    yield backend
    await backend.close()


@pytest.fixture
def private_zk() -> Iterator[ZooKeeperServer]:
    """A server of this test alone, which it may kill, freeze and restart."""
    with private_server(ZooKeeperServer()) as server:
        yield server


async def _write(backend: ZooKeeperBackend, key: str, data: bytes | None) -> int:
    return await backend.commit({}, {key: data})


class LoopLag:
    """Measures the longest stall of the event loop: a blocking call shows up here."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            self.worst = max(self.worst, loop.time() - before - 0.01)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


# -- URL -------------------------------------------------------------------------------------


def test_url_defaults_and_parameters() -> None:
    plain = parse_url("zookeeper://zk1")
    assert (plain.hosts, plain.root, plain.timeout, plain.session_timeout) == (
        "zk1:2181",
        DEFAULT_ROOT,
        5.0,
        10.0,
    )
    assert plain.max_request_bytes == 1048575
    assert plain.retained_commits >= 10_000
    full = parse_url(
        "zookeeper://10.0.0.1:2182,10.0.0.2,[::1]:2183/vlcp/prod?timeout=0.5&session_timeout=4"
        "&max_request_bytes=4000000&log_segment=100&log_keep=3"
    )
    assert full.hosts == "10.0.0.1:2182,10.0.0.2:2181,[::1]:2183"
    assert (full.root, full.timeout, full.session_timeout) == ("/vlcp/prod", 0.5, 4.0)
    assert (full.max_request_bytes, full.log_segment, full.log_keep) == (4000000, 100, 3)


@pytest.mark.parametrize(
    "url",
    [
        "zookeeper:///vlcp",
        "zookeeper://user:pw@zk1/vlcp",
        "zookeeper://zk1:notaport/vlcp",
        "zookeeper://zk1:70000/vlcp",
        "zookeeper://zk1/vlcp?timeout=0",
        "zookeeper://zk1/vlcp?timeout=soon",
        "zookeeper://zk1/vlcp?log_segment=1",
        "zookeeper://zk1/vlcp?unknown=1",
        "zookeeper://zk1/a b",
        "zookeeper://zk1/a/../b",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


# -- data and versions -------------------------------------------------------------------------


async def test_versions_change_on_every_write_and_never_come_back(
    backend: ZooKeeperBackend,
) -> None:
    assert (await backend.fetch(["v/a"]))["v/a"].version == MISSING_VERSION
    await _write(backend, "v/a", b"1")
    first = (await backend.fetch(["v/a"]))["v/a"]
    assert first.data == b"1" and first.version != MISSING_VERSION
    await _write(backend, "v/a", b"2")
    second = (await backend.fetch(["v/a"]))["v/a"]
    await _write(backend, "v/a", None)
    assert (await backend.fetch(["v/a"]))["v/a"].version == MISSING_VERSION
    await _write(backend, "v/a", b"1")  # the same data as at first: still a new version
    again = (await backend.fetch(["v/a"]))["v/a"]
    assert len({first.version, second.version, again.version, MISSING_VERSION}) == 4
    with pytest.raises(Conflict):  # a transaction that read the first incarnation
        await backend.commit({"v/a": first.version}, {"v/b": b"x"})
    assert (await backend.fetch(["v/b"]))["v/b"].data is None


async def test_absent_reads_conflict_when_the_key_appeared(
    zookeeper: ZooKeeperServer, backend: ZooKeeperBackend
) -> None:
    other = await open_zookeeper(f"zookeeper://{zookeeper.hosts}{backend.config.root}")
    try:
        for key in ("n/never", "n/tomb"):
            if key == "n/tomb":
                await _write(backend, key, b"0")
                await _write(backend, key, None)
            version = (await backend.fetch([key]))[key].version
            assert version == MISSING_VERSION
            await _write(other, key, b"1")
            with pytest.raises(Conflict):
                await backend.commit({key: version}, {"n/out": b"x"})
            with pytest.raises(Conflict):
                await backend.commit({key: version}, {})
        assert (await backend.fetch(["n/out"]))["n/out"].data is None
    finally:
        await other.close()


async def test_blind_writes_from_a_cold_process(
    zookeeper: ZooKeeperServer, backend: ZooKeeperBackend
) -> None:
    """A second process, which read nothing, overwrites and deletes keys it never saw."""
    await backend.commit({}, {"b/1": b"1", "b/2": b"2", "b/3": b"3"})
    await _write(backend, "b/3", None)
    cold = await open_zookeeper(f"zookeeper://{zookeeper.hosts}{backend.config.root}")
    try:
        revision = await cold.commit(
            {}, {"b/1": b"one", "b/2": None, "b/3": b"three", "b/4": None, "c": b"top"}
        )
        assert await backend.snapshot("") == (
            revision,
            {"b/1": b"one", "b/3": b"three", "c": b"top"},
        )
    finally:
        await cold.close()


async def test_a_version_read_before_tombstones_were_collected_never_matches_again(
    backend: ZooKeeperBackend,
) -> None:
    """Delete, collect the tombstone, re-create until the znode version is the same: the
    old version must still conflict (ZooKeeper alone would accept it: ABA)."""
    await _write(backend, "aba/k", b"1")
    await _write(backend, "aba/k", b"2")
    old = (await backend.fetch(["aba/k"]))["aba/k"]
    await _write(backend, "aba/k", None)
    await backend._collect_tombstones(["aba/k"])
    for value in (b"1", b"2"):
        await _write(backend, "aba/k", value)
    stat = await asyncio.to_thread(_stat, backend, "aba/k")
    new = (await backend.fetch(["aba/k"]))["aba/k"]
    assert new.data == old.data and new.version != old.version
    assert stat.version == 1  # the znode itself is back at the version that was read
    with pytest.raises(Conflict):
        await backend.commit({"aba/k": old.version}, {"aba/out": b"1"})
    with pytest.raises(Conflict):
        await backend.commit({"aba/k": old.version}, {})
    await backend.commit({"aba/k": new.version}, {"aba/out": b"1"})


def _stat(backend: ZooKeeperBackend, key: str):  # type: ignore[no-untyped-def]
    client = KazooClient(hosts=backend.config.hosts)
    client.start(10)
    try:
        return client.exists(backend._data_path(key))
    finally:
        client.stop()
        client.close()


async def test_absence_checks_and_blind_deletes_leave_no_znodes(
    backend: ZooKeeperBackend,
) -> None:
    await backend.commit({"p/read-absent": MISSING_VERSION}, {"p/y": b"1", "p/never": None})
    await backend.commit({"p/gone": MISSING_VERSION}, {"p/gone": None, "p/z": b"1"})
    names = await asyncio.to_thread(
        _children, backend.config.hosts, backend.config.root + "/data/p"
    )
    assert sorted(names) == ["p|y", "p|z"]


async def test_each_network_s_remote_endpoints_have_a_container_of_their_own(
    backend: ZooKeeperBackend,
) -> None:
    """Reading one network's endpoints lists that network's container only (not one
    child list of every endpoint in the cluster); the whole prefix still reads them all."""
    await backend.commit(
        {},
        {
            "netports/n1/p1": b"1",
            "netports/n2/p2": b"2",
            "vtep-macs/n1/sw/02:00:00:00:00:01": b"3",
            "lport/p1": b"4",
        },
    )
    data = backend.config.root + "/data"
    names = await asyncio.to_thread(_children, backend.config.hosts, data)
    assert sorted(names) == ["lport", "netports|n1", "netports|n2", "vtep-macs|n1"]
    assert await asyncio.to_thread(_children, backend.config.hosts, f"{data}/netports|n1") == [
        "netports|n1|p1"
    ]
    _revision, one = await backend.snapshot_of(["netports/n1/", "vtep-macs/n1/"], ["lport/p1"])
    assert sorted(one) == ["lport/p1", "netports/n1/p1", "vtep-macs/n1/sw/02:00:00:00:00:01"]
    _revision, every = await backend.snapshot("netports/")
    assert sorted(every) == ["netports/n1/p1", "netports/n2/p2"]
    _revision, whole = await backend.snapshot("")
    assert len(whole) == 4


async def test_tombstones_are_collected_with_their_log_segment(
    zookeeper: ZooKeeperServer,
) -> None:
    """Sessions come and go (every one leaves `_sessions/<id>` behind): bounded anyway."""
    url = _url(zookeeper.hosts, log_segment=4, log_keep=1)
    store = await open_store(url)
    try:
        for i in range(15):
            session = await store.open_session(ttl=5)
            await session.put(f"chassis/{i}", {"up": True})
            await session.close()
        for i in range(20):  # later commits push those deletions out of the kept log
            await put(store, "filler/k", i)
        await asyncio.sleep(0.3)  # collection runs in the background after a rotation
        root = store.backend.config.root  # type: ignore[attr-defined]
        for container in ("_sessions", "_owners", "chassis"):
            names = await asyncio.to_thread(_children, zookeeper.hosts, f"{root}/data/{container}")
            assert len(names) <= 8, (container, names)  # at most the last two segments' worth
        assert (await store.read_prefix("chassis/")).values == {}
        assert await store.backend.live_sessions() == set()
    finally:
        await store.close()


async def test_read_only_commit_validates_and_returns_the_current_revision(
    backend: ZooKeeperBackend,
) -> None:
    revision = await backend.commit({}, {"r/a": b"1", "r/b": b"2"})
    versions = {k: v.version for k, v in (await backend.fetch(["r/a", "r/b", "r/c"])).items()}
    assert await backend.commit(versions, {}) == revision
    assert await backend.commit({}, {}) == revision
    later = await _write(backend, "r/other", b"x")
    assert await backend.commit(versions, {}) == later  # unrelated commits do not conflict
    await _write(backend, "r/b", b"3")
    with pytest.raises(Conflict):
        await backend.commit(versions, {})


async def test_stores_with_different_roots_are_separate(zookeeper: ZooKeeperServer) -> None:
    one = await open_zookeeper(_url(zookeeper.hosts))
    two = await open_zookeeper(_url(zookeeper.hosts))
    try:
        await _write(one, "s/a", b"1")
        assert (await two.snapshot(""))[1] == {}
    finally:
        await one.close()
        await two.close()


async def test_many_processes_create_the_layout_at_once(zookeeper: ZooKeeperServer) -> None:
    url = _url(zookeeper.hosts)
    backends = await asyncio.gather(*(open_zookeeper(url) for _ in range(5)))
    try:
        revisions = await asyncio.gather(
            *(_write(b, f"l/{i}", b"1") for i, b in enumerate(backends))
        )
        assert len(set(revisions)) == 5
        assert len((await backends[0].snapshot("l/"))[1]) == 5
    finally:
        for b in backends:
            await b.close()


async def test_requests_beyond_jute_maxbuffer_are_refused_before_sending(
    zookeeper: ZooKeeperServer,
) -> None:
    small = await open_zookeeper(_url(zookeeper.hosts, max_request_bytes=20_000))
    try:
        before = await small.snapshot("")
        with pytest.raises(TransactionTooLarge, match=r"jute\.maxbuffer"):
            await small.commit({}, {"big/a": b'"' + b"x" * 12_000 + b'"'})
        with pytest.raises(TransactionTooLarge):  # sent twice: key and log
            await small.commit({}, {f"big/{i}": b'"' + b"x" * 1000 + b'"' for i in range(12)})
        assert await small.snapshot("") == before
        await _write(small, "big/ok", b'"' + b"x" * 5000 + b'"')  # the connection is fine
    finally:
        await small.close()
    default = await open_zookeeper(_url(zookeeper.hosts))
    try:
        with pytest.raises(TransactionTooLarge):
            await default.commit({}, {f"big/{i}": b'"' + b"y" * 200_000 + b'"' for i in range(3)})
        await _write(default, "big/ok", b"1")
    finally:
        await default.close()


# -- change log -----------------------------------------------------------------------------


async def test_log_segments_rotate_and_watchers_follow(zookeeper: ZooKeeperServer) -> None:
    backend = await open_zookeeper(_url(zookeeper.hosts, log_segment=4, log_keep=10))
    try:
        start, _ = await backend.snapshot("")
        changes = backend.changes(start)
        revisions = [await _write(backend, "g/k", str(i).encode()) for i in range(25)]
        assert revisions == sorted(set(revisions))
        assert revisions[-1] > 4 * SEGMENT_SPAN  # several segments were used
        seen = [await next_change(changes) for _ in range(25)]
        assert [e.revision for e in seen] == revisions
        assert [e.changes for e in seen] == [(("g/k", str(i).encode()),) for i in range(25)]
        # resuming from any revision (as the Store does) continues with the next commit
        for index, revision in enumerate(revisions[-8:-1], len(revisions) - 8):
            resumed = backend.changes(revision)
            assert (await next_change(resumed)).revision == revisions[index + 1]
            await resumed.aclose()
        await changes.aclose()
    finally:
        await backend.close()


async def test_concurrent_clients_across_rotations_lose_and_repeat_nothing(
    zookeeper: ZooKeeperServer,
) -> None:
    """Clients racing each other and the segment rotations: every commit is logged once."""
    url = _url(zookeeper.hosts, log_segment=5, log_keep=1000)
    clients = [await open_zookeeper(url) for _ in range(4)]
    try:
        start, _ = await clients[0].snapshot("")
        changes = clients[0].changes(start)
        seen: list[LogEntry] = []

        async def watch() -> None:
            async for entry in changes:
                seen.append(entry)

        watcher = asyncio.create_task(watch())

        async def commits(index: int, backend: ZooKeeperBackend) -> list[int]:
            return [await _write(backend, f"cc/{index}", str(n).encode()) for n in range(30)]

        acknowledged = await asyncio.gather(*(commits(i, b) for i, b in enumerate(clients)))
        revisions = sorted(r for rs in acknowledged for r in rs)
        assert len(set(revisions)) == 120
        assert revisions[-1] > 10 * SEGMENT_SPAN
        await _eventually(lambda: _at_least(seen, 120))
        assert [e.revision for e in seen] == revisions
        for index, mine in enumerate(acknowledged):
            logged = [e.changes for e in seen if e.changes[0][0] == f"cc/{index}"]
            assert logged == [((f"cc/{index}", str(n).encode()),) for n in range(30)]
            assert mine == sorted(mine)
        watcher.cancel()
    finally:
        for backend in clients:
            await backend.close()


async def _at_least(items: list[LogEntry], count: int) -> bool:
    return len(items) >= count


async def test_snapshot_revisions_are_exact_across_segment_ends(
    zookeeper: ZooKeeperServer,
) -> None:
    backend = await open_zookeeper(_url(zookeeper.hosts, log_segment=3, log_keep=2))
    try:
        for i in range(12):
            await _write(backend, "e/k", str(i).encode())
            await asyncio.sleep(0.05)  # let the segment rotation happen in between
            revision, values = await backend.snapshot("e/")
            assert values == {"e/k": str(i).encode()}
            following = backend.changes(revision)
            nxt = await _write(backend, "f/other", str(i).encode())
            assert (await next_change(following)).revision == nxt
            await following.aclose()
    finally:
        await backend.close()


async def test_old_segments_are_deleted_and_late_watchers_resync(
    zookeeper: ZooKeeperServer,
) -> None:
    url = _url(zookeeper.hosts, log_segment=4, log_keep=2)
    backend = await open_zookeeper(url)
    try:
        for i in range(40):
            await _write(backend, "c/k", str(i).encode())
        log_root = backend.config.root + "/log"

        async def compacted() -> bool:  # compaction runs in the background
            return len(await asyncio.to_thread(_children, zookeeper.hosts, log_root)) <= 4

        await _eventually(compacted)
        segments = await asyncio.to_thread(_children, zookeeper.hosts, log_root)
        assert 3 <= len(segments) <= 4  # log_keep full segments plus the current one
        with pytest.raises(Compacted):
            await anext(backend.changes(0))
        recent = (await backend.snapshot(""))[0]
        latest = await _write(backend, "c/k", b'"last"')
        assert (await next_change(backend.changes(recent))).revision == latest
    finally:
        await backend.close()
    store = await open_store(url, watch_retry=0.1)
    try:
        watch = store.watch(prefix="c/", since=1)
        first = await asyncio.wait_for(anext(watch), 10)
        assert isinstance(first, Resync) and first.values == {"c/k": "last"}
    finally:
        await store.close()


def _children(hosts: str, path: str) -> list[str]:
    client = KazooClient(hosts=hosts)
    client.start(10)
    try:
        return client.get_children(path)
    finally:
        client.stop()
        client.close()


async def test_slow_watchers_never_skip_commits_while_segments_are_deleted(
    zookeeper: ZooKeeperServer,
) -> None:
    """Compaction deletes the segment a slow watcher is reading: it either delivers every
    commit in order or stops with Compacted, never jumps over deleted entries."""
    url = _url(zookeeper.hosts, log_segment=3, log_keep=1)
    writer_backend = await open_zookeeper(url)
    readers = [await open_zookeeper(url) for _ in range(3)]
    try:
        start, _ = await writer_backend.snapshot("")
        acknowledged: list[int] = []
        outcomes: list[tuple[str, list[int]]] = []

        async def slow_reader(backend: ZooKeeperBackend, delay: float) -> None:
            delivered: list[int] = []
            try:
                async for entry in backend.changes(start):
                    delivered.append(entry.revision)
                    if len(delivered) == 150:
                        break
                    await asyncio.sleep(delay)
                outcomes.append(("complete", delivered))
            except Compacted:
                outcomes.append(("compacted", delivered))

        tasks = [
            asyncio.create_task(slow_reader(b, d))
            for b, d in zip(readers, (0.0, 0.002, 0.01), strict=True)
        ]
        for i in range(150):
            acknowledged.append(await _write(writer_backend, "slow/k", str(i).encode()))
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        for _outcome, delivered in outcomes:
            assert delivered == acknowledged[: len(delivered)], "skipped a commit"
        assert "compacted" in {o for o, _ in outcomes}, "no reader was overtaken: proved nothing"
    finally:
        for backend in (writer_backend, *readers):
            await backend.close()


async def test_an_entry_deleted_while_locating_it_is_compacted_not_skipped(
    zookeeper: ZooKeeperServer,
) -> None:
    """The race behind the read order in `_locate`, replayed in slow motion: compaction
    marks and deletes the entry right after the watcher saw its segment closed."""
    backend = await open_zookeeper(_url(zookeeper.hosts, log_segment=3, log_keep=1))
    try:
        for i in range(3):
            await _write(backend, "race/k", str(i).encode())
        await _eventually(lambda: _segment_is(backend, 1))
        zk, client = backend._require()
        real_run = zk.run

        async def slow_motion(calls):  # type: ignore[no-untyped-def]
            results = []
            for call in calls:
                results += await real_run([call])
                if call.args[:1] == (backend._head_path,):  # compaction strikes now
                    first = json.dumps({"first": 1}).encode()
                    await real_run(
                        [
                            partial(client.set_async, backend._log_root, first),
                            partial(client.delete_async, backend._entry_path(0, 0)),
                        ]
                    )
            return results

        zk.run = slow_motion  # type: ignore[method-assign]
        with pytest.raises(Compacted):
            await backend._locate(0, 0, lambda _event: None)
    finally:
        await backend.close()


async def _segment_is(backend: ZooKeeperBackend, segment: int) -> bool:
    return backend._head is not None and backend._head[0] == segment


async def test_revisions_ahead_of_the_log_resync_instead_of_waiting(
    backend: ZooKeeperBackend,
) -> None:
    """As after restoring ZooKeeper from a backup: waiting would silently skip commits."""
    head = await _write(backend, "ahead/k", b"1")
    for since in (head + 3, head + 5 * SEGMENT_SPAN):
        with pytest.raises(Compacted, match="ahead"):
            await next_change(backend.changes(since))
    following = backend.changes(head)  # exactly at the head: waits for the next commit
    waiting = asyncio.create_task(next_change(following))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    revision = await _write(backend, "ahead/k", b"2")
    assert (await waiting).revision == revision
    await following.aclose()


async def test_changes_are_pushed_not_polled(backend: ZooKeeperBackend) -> None:
    start, _ = await backend.snapshot("")
    changes = backend.changes(start)
    waiting = asyncio.create_task(next_change(changes))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    began = time.monotonic()
    revision = await _write(backend, "p/a", b"1")
    assert (await waiting).revision == revision
    assert time.monotonic() - began < 1.0  # far below the 0.3 s of silence observed above
    await changes.aclose()


class RequestCounter:
    """Counts the requests a backend's kazoo client sends (every kind it reads with)."""

    KINDS = ("get_async", "exists_async", "get_children_async", "sync_async")

    def __init__(self, backend: ZooKeeperBackend) -> None:
        self.count = 0
        client = backend._require()[1]
        for kind in self.KINDS:
            setattr(client, kind, self._counting(getattr(client, kind)))

    def _counting(self, send):
        def counted(*args, **kwargs):
            self.count += 1
            return send(*args, **kwargs)

        return counted


async def test_a_watcher_costs_three_requests_per_commit(zookeeper: ZooKeeperServer) -> None:
    """Following the log at its head: read the new entry, watch for the next one and its
    segment; no requests to locate it (issue 16: each commit cost every watcher seven)."""
    url = _url(zookeeper.hosts)
    writer = await open_zookeeper(url)
    watcher = await open_zookeeper(url)
    try:
        start, _ = await watcher.snapshot("")
        changes = watcher.changes(start)
        await _write(writer, "c/first", b"0")
        await next_change(changes)  # the watcher now waits at the head of the log
        counter = RequestCounter(watcher)
        commits = 20
        for n in range(commits):
            parked = counter.count + 2  # it watches the next entry and its segment

            async def watching(parked: int = parked) -> bool:
                return counter.count >= parked

            waiting = asyncio.create_task(next_change(changes))
            await eventually(watching, 5, what="the watcher waiting for the next entry")
            revision = await _write(writer, f"c/{n}", b"1")
            assert (await waiting).revision == revision
        # 3 a commit (seven before); the slack is one reconnect's `_locate` and re-read
        assert counter.count <= 3 * commits + 5, counter.count
        await changes.aclose()
    finally:
        await writer.close()
        await watcher.close()


@contextlib.asynccontextmanager
async def _scoped(url: str) -> AsyncIterator[tuple[ZooKeeperBackend, ScopeFeed, int]]:
    """A writer, and another process's feed of the scope "mine/" from the writer's first
    commit on (and that commit's revision)."""
    writer = await open_zookeeper(url)
    subscriber = await open_zookeeper(url)
    try:
        head = await _write(writer, "other/first", b"0")
        feed = subscriber.scope_feed(head)
        feed.add(["mine/"], head)
        yield writer, feed, head
    finally:
        await writer.close()
        await subscriber.close()


async def test_an_unconcerned_scoped_feed_sends_no_requests(zookeeper: ZooKeeperServer) -> None:
    """A scoped feed is woken by its own scope's commits only: thirty commits elsewhere
    cost it nothing (issue 16: every agent read every commit's log entry)."""
    async with _scoped(_url(zookeeper.hosts)) as (writer, feed, _head):
        subscriber = feed.backend
        assert isinstance(subscriber, ZooKeeperBackend)
        entries = aiter(feed.entries())
        await _write(writer, "mine/a", b"1")
        assert (await next_change(entries)).changes == (("mine/a", b"1"),)
        counter = RequestCounter(subscriber)
        waiting = asyncio.ensure_future(next_change(entries))
        for n in range(30):
            await _write(writer, f"other/{n}", b"1")
        revision = await _write(writer, "mine/b", b"2")
        entry = await waiting
        assert (entry.revision, entry.changes) == (revision, (("mine/b", b"2"),))
        # parking after "mine/a" (listing the scope's entries, watched), then for
        # "mine/b": the listing, its scope entry and the log segment, its log entry, and
        # the listing that finds no more (watched again)
        assert counter.count <= 6, counter.count
        await entries.aclose()  # type: ignore[attr-defined]


async def test_a_scoped_feed_follows_rotations_and_resyncs_when_compacted(
    zookeeper: ZooKeeperServer,
) -> None:
    """Across many short segments the feed delivers exactly its scope's commits, at their
    revisions; old scope entries go with their segments; a feed placed in a deleted
    segment is told to resync."""
    async with _scoped(_url(zookeeper.hosts, log_segment=3, log_keep=1)) as (writer, feed, head):
        got: list[tuple[int, tuple[tuple[str, bytes | None], ...]]] = []

        async def follow() -> None:  # as a subscription does: always reading
            async for entry in feed.entries():
                got.append((entry.revision, entry.changes))

        following = asyncio.create_task(follow())
        expected = []
        for n in range(24):
            await _write(writer, f"other/{n}", b"1")
            if n % 4 == 0:
                revision = await _write(writer, f"mine/{n}", b"2")
                expected.append((revision, ((f"mine/{n}", b"2"),)))

        async def delivered() -> bool:
            assert not following.done(), following
            return len(got) >= len(expected)

        await eventually(delivered, 10, what="the scope's commits delivered")
        assert got == expected
        following.cancel()
        _zk, client = writer._require()

        async def pruned() -> bool:
            names = await writer._zk.run_one(  # type: ignore[union-attr]
                partial(client.get_children_async, writer._scopes_root)
            )
            return len(names) <= 3  # the current segment and log_keep before it, at most

        await eventually(pruned, 10, what="old scope entries deleted with their segments")
        stale = feed.backend.scope_feed(head)
        stale.add(["mine/"], head)
        with pytest.raises(Compacted):
            await next_change(aiter(stale.entries()))


async def test_snapshot_is_consistent_under_concurrent_commits(
    backend: ZooKeeperBackend,
) -> None:
    """Every snapshot equals the state at its revision, even when commits ran meanwhile."""
    keys = [f"q/{i:03d}" for i in range(150)]
    await backend.commit({}, dict.fromkeys(keys, b"0"))
    windows = []
    read_range = backend._read_range

    async def spy(segment: int, start: int, stop: int):  # type: ignore[no-untyped-def]
        windows.append(stop - start)
        return await read_range(segment, start, stop)

    backend._read_range = spy  # type: ignore[method-assign]
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            await backend.commit({}, {k: str(n).encode() for k in keys[n % 3 :: 3]})

    task = asyncio.create_task(writer())
    try:
        for _ in range(25):
            revision, values = await backend.snapshot("q/")
            assert values.keys() == set(keys)
            # one third of the keys per commit: each third is uniform, and they are from
            # consecutive commits, so they differ by at most 2
            numbers = {int(values[k]) for k in keys}
            assert max(numbers) - min(numbers) <= 2, numbers
            for third in range(3):
                assert len({values[k] for k in keys[third::3]}) == 1
            assert revision >= 0
    finally:
        stop.set()
        await task
    assert any(windows), "no snapshot overlapped a commit: the test proved nothing"


# -- liveness -------------------------------------------------------------------------------


def _expire(hosts: str, client_id: tuple[int, bytes]) -> None:
    """End a ZooKeeper session for real: attach to it from another client and close that."""
    thief = KazooClient(hosts=hosts, client_id=client_id)
    thief.start(10)
    thief.stop()
    thief.close()


async def _eventually(condition, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_liveness_follows_the_zookeeper_session(zookeeper: ZooKeeperServer) -> None:
    url = _url(zookeeper.hosts)
    holder = await open_zookeeper(url)
    observer = await open_zookeeper(url)
    try:
        await holder.live_start("s1", 2.0)
        await holder.live_start("s2", 2.0)
        assert {"s1", "s2"} <= await observer.live_sessions()
        assert await holder.live_refresh("s1", 2.0)
        await holder.live_end("s2")
        assert "s2" not in await observer.live_sessions()
        assert not await holder.live_refresh("s2", 2.0)
        await asyncio.to_thread(_expire, zookeeper.hosts, holder._client.client_id)

        async def gone() -> bool:
            return "s1" not in await observer.live_sessions()

        await _eventually(gone)

        async def refused() -> bool:
            with contextlib.suppress(StoreUnavailable):
                return not await holder.live_refresh("s1", 2.0)
            return False

        await _eventually(refused)  # the holder reconnects with a new session: s1 is dead
        await holder.live_start("s3", 2.0)  # and it can start new ones
        assert await holder.live_refresh("s3", 2.0)
    finally:
        await holder.close()
    assert "s3" not in await observer.live_sessions()  # close() ends them at once
    await observer.close()


async def test_expired_session_keys_are_reaped_and_the_holder_learns_it(
    zookeeper: ZooKeeperServer,
) -> None:
    url = _url(zookeeper.hosts)
    holder = await open_store(url)
    reaper = await open_store(url, reap_interval=0.1)
    try:
        session = await holder.open_session(ttl=1.0)
        await session.put("chassis/hv", {"up": True})
        reaper.start_reaper()
        await asyncio.sleep(0.5)
        assert (await reaper.read(["chassis/hv"])).values == {"chassis/hv": {"up": True}}
        await asyncio.to_thread(_expire, zookeeper.hosts, holder.backend._client.client_id)
        await asyncio.wait_for(session.lost.wait(), 15)

        async def reaped() -> bool:
            return (await reaper.read(["chassis/hv"])).values == {}

        await _eventually(reaped)
    finally:
        await holder.close()
        await reaper.close()


# -- failures -------------------------------------------------------------------------------


async def test_unreachable_ensemble_fails_fast() -> None:
    port = free_tcp_ports(1)[0]
    began = time.monotonic()
    with LoopLag() as lag, pytest.raises(StoreUnavailable, match="not connected"):
        await open_zookeeper(f"zookeeper://127.0.0.1:{port}/x?timeout=0.5")
    assert time.monotonic() - began < 2.0
    assert lag.worst < 1.0  # the loop never blocks on ZooKeeper (generous for loaded CI)


async def test_frozen_server_fails_calls_and_idle_watches_in_bounded_time(
    private_zk: ZooKeeperServer,
) -> None:
    backend = await open_zookeeper(_url(private_zk.hosts, session_timeout=2))
    try:
        await _write(backend, "f/a", b"1")
        start, _ = await backend.snapshot("")
        changes = backend.changes(start)
        waiting = asyncio.create_task(next_change(changes, timeout=30))
        await asyncio.sleep(0.2)
        os.kill(private_zk.pid, signal.SIGSTOP)  # type: ignore[arg-type]
        try:
            with LoopLag() as lag:
                began = time.monotonic()
                with pytest.raises(StoreUnavailable):
                    await backend.fetch(["f/a"])
                assert time.monotonic() - began < 3 * TIMEOUT + 2
                with pytest.raises(StoreUnavailable):
                    await waiting  # ping timeout (2/3 of the session) + TIMEOUT
                assert time.monotonic() - began < 2 * 2 / 3 + 2 * TIMEOUT + 2
            assert lag.worst < 1.0  # the loop never blocks on ZooKeeper (generous for loaded CI)
        finally:
            os.kill(private_zk.pid, signal.SIGCONT)  # type: ignore[arg-type]
        await _eventually(lambda: _works(backend))
    finally:
        await backend.close()


async def _works(backend: ZooKeeperBackend) -> bool:
    try:
        await backend.fetch(["f/a"])
    except StoreUnavailable:
        return False
    return True


async def test_all_members_down_fails_within_timeout_then_recovers() -> None:
    with ZooKeeperEnsemble(3) as ensemble:
        backend = await open_zookeeper(_url(ensemble.hosts, session_timeout=6))
        try:
            await backend.live_start("alive", 6.0)
            last = await _write(backend, "d/a", b"0")
            await asyncio.to_thread(ensemble.stop_all)
            calls = {
                "fetch": lambda: backend.fetch(["d/a"]),
                "commit": lambda: _write(backend, "d/a", b"1"),
                "read-only commit": lambda: backend.commit({"d/a": 1}, {}),
                "snapshot": lambda: backend.snapshot(""),
                "live_sessions": backend.live_sessions,
                "live_refresh": lambda: backend.live_refresh("alive", 6.0),
                "changes": lambda: anext(backend.changes(last)),
            }
            with LoopLag() as lag:
                for name, call in calls.items():
                    began = time.monotonic()
                    with pytest.raises(StoreUnavailable):
                        await asyncio.wait_for(call(), 10)
                    assert time.monotonic() - began < 3 * TIMEOUT + 1, name
            assert lag.worst < 1.0  # the loop never blocks on ZooKeeper (generous for loaded CI)
            await asyncio.to_thread(ensemble.start_all)
            await _eventually(lambda: _works(backend), timeout=30)
            resumed = backend.changes(last)
            revision = await _write(backend, "d/a", b"2")
            assert (await next_change(resumed)).revision == revision
            assert await backend.live_refresh("alive", 6.0)  # the session survived
        finally:
            await backend.close()


async def test_leader_loss_during_commits_keeps_data_and_log_in_step() -> None:
    """Commits racing a leader kill either happen whole (data and log) or not at all."""
    with ZooKeeperEnsemble(3) as ensemble:
        url = _url(ensemble.hosts)
        backend = await open_zookeeper(url + "&log_segment=32&log_keep=1000")
        try:
            start, _ = await backend.snapshot("")
            acknowledged: dict[str, bytes] = {}
            stop = asyncio.Event()

            async def writer(name: str) -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    data = f"{name}{n}".encode()
                    with contextlib.suppress(StoreUnavailable, Conflict):
                        await backend.commit({}, {f"w/{name}": data, f"w/{name}-copy": data})
                        acknowledged[name] = data
                    await asyncio.sleep(0.005)

            tasks = [asyncio.create_task(writer(n)) for n in "abc"]
            await asyncio.sleep(0.5)
            await asyncio.to_thread(ensemble.kill_member, ensemble.leader())
            await asyncio.sleep(3)
            stop.set()
            await asyncio.gather(*tasks)
            _, values = await backend.snapshot("w/")
            for name in "abc":
                assert values[f"w/{name}"] == values[f"w/{name}-copy"]
                assert int(values[f"w/{name}"][1:]) >= int(acknowledged[name][1:])
            # the log tells the same story as the data
            await backend.commit({}, {"end/marker": b"1"})
            replayed: dict[str, bytes] = {}
            changes = backend.changes(start)
            while "end/marker" not in replayed:
                entry = await next_change(changes)
                replayed.update({k: v for k, v in entry.changes if v is not None})
            del replayed["end/marker"]
            assert replayed == values
            await changes.aclose()
        finally:
            await backend.close()


async def test_close_is_prompt_and_ends_blocked_watches(private_zk: ZooKeeperServer) -> None:
    backend = await open_zookeeper(_url(private_zk.hosts))
    start, _ = await backend.snapshot("")
    waiting = asyncio.create_task(next_change(backend.changes(start), timeout=30))
    await asyncio.sleep(0.2)
    await asyncio.to_thread(private_zk.kill)
    began = time.monotonic()
    await backend.close()
    assert time.monotonic() - began < 2.0
    with pytest.raises(StoreError):
        await waiting
    with pytest.raises(StoreError, match="closed"):
        await backend.fetch(["a"])


async def test_store_over_zookeeper_watch_resumes_after_session_expiry(
    zookeeper: ZooKeeperServer,
) -> None:
    store = await open_store(_url(zookeeper.hosts), watch_retry=0.1)
    try:
        await put(store, "x/k", 0)
        watch = store.watch(prefix="x/")
        assert isinstance(await asyncio.wait_for(anext(watch), 10), Resync)
        await asyncio.to_thread(_expire, zookeeper.hosts, store.backend._client.client_id)
        for i in range(1, 6):
            await _eventually(lambda i=i: _put_ok(store, i))
        seen = []
        while len(seen) < 5:
            event = await asyncio.wait_for(anext(watch), 10)
            assert isinstance(event, WatchEvent)
            seen.extend(c.value for c in event.changes)
        # a put cut off by the expiry may have been applied before it was retried
        assert [v for i, v in enumerate(seen) if i == 0 or seen[i - 1] != v] == [1, 2, 3, 4, 5]
    finally:
        await store.close()


async def _put_ok(store, value: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        await put(store, "x/k", value)
    except StoreUnavailable:
        return False
    return True
