"""What the contract suite cannot see of the Redis backend: its URL, versions, log, failures.

Tests that kill or freeze the server use a private one, so the shared server stays healthy
for the rest of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from tests.lab.naming import free_tcp_ports
from tests.lab.services import RedisServer
from vlcp.store import (
    Resync,
    StoreError,
    StoreUnavailable,
    TransactionTooLarge,
    WatchEvent,
    open_store,
)
from vlcp.store.backend import Compacted, LogEntry
from vlcp.store.errors import Conflict
from vlcp.store.redis import (
    DEFAULT_PREFIX,
    LOG_RETAIN,
    RedisBackend,
    open_redis,
    parse_redis_url,
)

from .helpers import next_change, next_event, private_server, put

TIMEOUT = 1.0


def _url(base: str, **params: object) -> str:
    query = {"timeout": TIMEOUT, "prefix": f"t{uuid.uuid4().hex[:12]}", **params}
    return base + "?" + "&".join(f"{k}={v}" for k, v in query.items())


@pytest.fixture
async def backend(redis_server: RedisServer) -> AsyncIterator[RedisBackend]:
    backend = await open_redis(_url(redis_server.url))
    yield backend
    await backend.close()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A server of this test alone, which it may kill, freeze and restart."""
    with private_server(RedisServer()) as server:
        yield server


# -- URL -------------------------------------------------------------------------------------


def test_url_defaults_and_parameters() -> None:
    plain = parse_redis_url("redis://db.example")
    assert (plain.host, plain.port, plain.db, plain.timeout) == ("db.example", 6379, 0, 5.0)
    assert (plain.prefix, plain.retain) == (DEFAULT_PREFIX, LOG_RETAIN)
    full = parse_redis_url("redis://u:p%40ss@10.0.0.1:7000/3?timeout=0.5&prefix=lab&retain=500")
    assert (full.host, full.port, full.db, full.username, full.password) == (
        "10.0.0.1",
        7000,
        3,
        "u",
        "p@ss",
    )
    assert (full.timeout, full.prefix, full.retain) == (0.5, "lab", 500)


@pytest.mark.parametrize(
    "url",
    [
        "redis://",
        "redis://h/notadb",
        "redis://h/0?timeout=soon",
        "redis://h/0?timeout=0",
        "redis://h/0?retain=5",
        "redis://h/0?prefix=a%20b",
        "redis://h/0?socket_timeout=1",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="store URL"):
        parse_redis_url(url)


# -- versions and revisions --------------------------------------------------------------------


async def test_versions_change_on_every_write_and_never_come_back(backend: RedisBackend) -> None:
    seen = []
    for data in (b"1", b"1", None, b"1"):
        current = (await backend.fetch(["v/a"]))["v/a"]
        await backend.commit({"v/a": current.version}, {"v/a": data})
        seen.append((await backend.fetch(["v/a"]))["v/a"].version)
    created, rewritten, deleted, recreated = seen
    assert deleted == 0
    assert created < rewritten < recreated, "a re-created key must not get an old version back"
    with pytest.raises(Conflict, match="v/a"):
        await backend.commit({"v/a": rewritten}, {"v/a": b"2"})


async def test_read_only_commit_validates_and_returns_the_current_revision(
    backend: RedisBackend,
) -> None:
    revision = await backend.commit({}, {"r/a": b"1"})
    version = (await backend.fetch(["r/a"]))["r/a"].version
    assert await backend.commit({"r/a": version, "r/missing": 0}, {}) == revision
    with pytest.raises(Conflict):
        await backend.commit({"r/missing": version}, {})


async def test_stores_with_different_prefixes_are_separate(redis_server: RedisServer) -> None:
    one, two = await open_redis(_url(redis_server.url)), await open_redis(_url(redis_server.url))
    try:
        await one.commit({}, {"p/a": b"1"})
        assert (await two.snapshot(""))[1] == {}
        assert (await one.snapshot("p/"))[1] == {"p/a": b"1"}
    finally:
        await one.close()
        await two.close()


async def test_lost_data_never_reuses_versions_and_watchers_resync(
    redis_server: RedisServer,
) -> None:
    """A wiped store (no AOF and a restart, FLUSHALL) must not look like the old one."""
    url = _url(redis_server.url)
    backend = await open_redis(url)
    raw = aioredis.Redis.from_url(redis_server.url)
    try:
        await backend.commit({}, {"w/a": b"1"})
        old = (await backend.fetch(["w/a"]))["w/a"].version
        prefix = backend.settings.prefix
        await raw.delete(
            *[f"{prefix}:{n}" for n in ("data", "ver", "index", "rev", "origin", "log", "live")]
        )
        changes = backend.changes(old)
        waiting = asyncio.create_task(next_change(changes))
        await asyncio.sleep(0.1)
        await backend.commit({}, {"w/a": b"2"})
        with pytest.raises(Compacted):
            await waiting
        assert (await backend.fetch(["w/a"]))["w/a"].version > old
    finally:
        await raw.aclose()
        await backend.close()


# -- change log --------------------------------------------------------------------------------


async def test_changes_are_pushed_not_polled(backend: RedisBackend) -> None:
    start = await backend.commit({}, {"c/a": b"0"})
    changes = backend.changes(start)
    delays = []
    for i in range(20):
        waiting = asyncio.create_task(next_change(changes))
        await asyncio.sleep(0.01)
        began = time.monotonic()
        revision = await backend.commit({}, {"c/a": str(i).encode()})
        entry = await waiting
        delays.append(time.monotonic() - began)
        assert entry == LogEntry(revision, (("c/a", str(i).encode()),))
    assert sorted(delays)[10] < 0.05, f"median watch latency {sorted(delays)[10]:.3f} s"


async def test_changes_from_zero_replay_everything(backend: RedisBackend) -> None:
    first = await backend.commit({}, {"z/a": b"1"})
    second = await backend.commit({}, {"z/a": None, "z/b": b"2"})
    changes = backend.changes(0)
    assert await next_change(changes) == LogEntry(first, (("z/a", b"1"),))
    assert await next_change(changes) == LogEntry(second, (("z/a", None), ("z/b", b"2")))


async def test_trimmed_log_raises_compacted_and_watch_resyncs(redis_server: RedisServer) -> None:
    backend = await open_redis(_url(redis_server.url, retain=100))
    try:
        start = await backend.commit({}, {"t/a": b"0"})
        for i in range(400):
            await backend.commit({}, {"t/a": str(i).encode()})
        with pytest.raises(Compacted):
            await next_change(backend.changes(start))
        recent = await backend.commit({}, {"t/a": b"last"}) - 50
        assert (await next_change(backend.changes(recent))).revision == recent + 1
        length = await backend._client.xlen(backend._keys.log)
        assert 100 <= length < 400, "the stream must be trimmed, but keep `retain` entries"
    finally:
        await backend.close()


async def test_many_blocked_watches_do_not_delay_commits(backend: RedisBackend) -> None:
    start = await backend.commit({}, {"m/a": b"0"})
    watchers = [asyncio.create_task(next_change(backend.changes(start))) for _ in range(30)]
    await asyncio.sleep(0.2)  # every watcher is now blocked in XREAD
    began = time.monotonic()
    for i in range(10):
        await backend.commit({}, {"m/b": str(i).encode()})
    assert time.monotonic() - began < 1.0
    assert {(await w).revision for w in watchers} == {start + 1}


# -- failures ----------------------------------------------------------------------------------


async def test_unreachable_server_fails_fast() -> None:
    (port,) = free_tcp_ports(1)
    began = time.monotonic()
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}"):
        await open_redis(_url(f"redis://127.0.0.1:{port}/0"))
    assert time.monotonic() - began < TIMEOUT


@contextlib.asynccontextmanager
async def _silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers (a hung or partitioned Redis)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_silent_server_fails_within_the_timeout() -> None:
    async with _silent_server() as port:
        url = _url(f"redis://127.0.0.1:{port}/0")
        began = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await open_redis(url)
        assert TIMEOUT * 0.9 < time.monotonic() - began < TIMEOUT * 1.5
        backend = RedisBackend(parse_redis_url(url))  # as if it had hung after connecting
        try:
            for call in (
                lambda: backend.fetch(["a"]),
                lambda: backend.commit({}, {"a": b"1"}),
                lambda: backend.snapshot(""),
                lambda: backend.live_refresh("s", 1.0),
                lambda: anext(backend.changes(0)),
                lambda: anext(_scoped_feed(backend)),
            ):
                began = time.monotonic()
                with pytest.raises(StoreUnavailable):
                    await call()
                assert time.monotonic() - began < TIMEOUT * 1.5
        finally:
            await backend.close()


def _scoped_feed(backend: RedisBackend) -> AsyncIterator[LogEntry]:
    """The entries of a scoped feed following one scope."""
    feed = backend.scope_feed(0)
    feed.add(["physnet/"], 0)
    return feed.entries()


async def test_server_killed_and_restarted(private_redis: RedisServer) -> None:
    """Calls fail within the timeout while it is down, work again after, and lose nothing."""
    backend = await open_redis(_url(private_redis.url))
    try:
        start = await backend.commit({}, {"k/a": b"1"})
        changes = backend.changes(start)
        waiting = asyncio.create_task(next_change(changes))
        await asyncio.sleep(0.1)
        acknowledged = await backend.commit({}, {"k/a": b"2"})
        assert (await waiting).revision == acknowledged

        blocked = asyncio.create_task(next_change(changes))
        await asyncio.sleep(0.1)
        await asyncio.to_thread(private_redis.kill)
        began = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await blocked
        for call in (lambda: backend.fetch(["k/a"]), lambda: backend.commit({}, {"k/b": b"1"})):
            with pytest.raises(StoreUnavailable):
                await call()
        assert time.monotonic() - began < TIMEOUT

        await asyncio.to_thread(private_redis.start)
        assert (await backend.fetch(["k/a"]))["k/a"].data == b"2", "AOF must keep the commit"
        later = await backend.commit({}, {"k/a": b"3"})
        resumed = backend.changes(start)  # the stream survived: replay from before the kill
        assert [(await next_change(resumed)).revision for _ in range(2)] == [acknowledged, later]
    finally:
        await backend.close()


async def test_frozen_server_fails_blocked_watch_and_calls_in_bounded_time(
    private_redis: RedisServer,
) -> None:
    backend = await open_redis(_url(private_redis.url))
    pid = private_redis.pid
    assert pid is not None
    try:
        start = await backend.commit({}, {"f/a": b"1"})
        blocked = asyncio.create_task(next_change(backend.changes(start), timeout=30))
        await asyncio.sleep(0.1)
        os.kill(pid, signal.SIGSTOP)
        began = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await backend.commit({}, {"f/a": b"2"})
        assert time.monotonic() - began < TIMEOUT * 1.5
        with pytest.raises(StoreUnavailable):
            await blocked
        # an idle watch re-polls at most every `timeout` s, then waits `timeout` for the reply
        assert time.monotonic() - began < TIMEOUT * 2.5
    finally:
        os.kill(pid, signal.SIGCONT)
        await backend.close()


async def test_store_close_is_bounded_while_the_server_is_frozen(
    private_redis: RedisServer,
) -> None:
    """A server that stops answering (SIGSTOP) with a session, a watch, the reaper and a
    commit in flight: close gives up on each request after the timeout and ends."""
    store = await open_store(_url(private_redis.url), reap_interval=0, watch_retry=0.05)
    pid = private_redis.pid
    assert pid is not None
    try:
        session = await store.open_session(ttl=5)
        await session.put("z/mine", 1)
        watch = store.watch(prefix="z/")
        assert isinstance(await next_event(watch), Resync)

        async def watcher() -> int:
            return sum([1 async for _ in watch])  # ends when the store is closed

        watching = asyncio.create_task(watcher())

        async def writer() -> None:
            for i in range(1_000_000):
                await put(store, "z/w", i)

        writing = asyncio.create_task(writer())
        await asyncio.sleep(0.1)
        os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(0.05)  # the writer's commit is now in flight
        began = time.monotonic()
        closing = asyncio.create_task(store.close())
        # deleting the session's keys (one read) and ending it (one write) each wait for
        # the timeout; the rest does not wait for the server
        done, _ = await asyncio.wait([closing], timeout=TIMEOUT * 2 + 2)
        assert done, f"close still running after {time.monotonic() - began:.1f} s"
        closing.result()
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(writing, TIMEOUT + 1)
        await asyncio.wait_for(watching, TIMEOUT + 1)
    finally:
        os.kill(pid, signal.SIGCONT)
        if not store._closed:
            await store.close()


async def test_close_ends_blocked_watches_and_connections(redis_server: RedisServer) -> None:
    backend = await open_redis(_url(redis_server.url))
    start = await backend.commit({}, {"x/a": b"1"})
    blocked = asyncio.create_task(next_change(backend.changes(start)))
    await asyncio.sleep(0.1)
    raw = aioredis.Redis.from_url(redis_server.url)
    try:
        before = await raw.client_list()
        assert sum(c["name"] == "vlcp-store" for c in before) >= 2
        await asyncio.wait_for(backend.close(), 1.0)
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(blocked, 1.0)
        with pytest.raises(StoreUnavailable, match="closed"):
            await backend.fetch(["x/a"])
        await asyncio.sleep(0.1)
        mine = {c["id"] for c in before if c["name"] == "vlcp-store"}
        assert not mine & {c["id"] for c in await raw.client_list()}, "a connection leaked"
    finally:
        await raw.aclose()


async def test_out_of_memory_refuses_the_whole_commit(private_redis: RedisServer) -> None:
    backend = await open_redis(_url(private_redis.url))
    try:
        await backend.commit({}, {"o/first": b"1"})
        used = (await backend._client.info("memory"))["used_memory"]
        await backend._client.config_set("maxmemory", used + 200_000)
        batch = 0
        with pytest.raises(StoreUnavailable, match="OOM"):
            for batch in range(1000):
                await backend.commit(
                    {}, {f"o/{batch}/{i}": b'"' + b"x" * 1000 + b'"' for i in range(50)}
                )
        await backend._client.config_set("maxmemory", 0)
        keys = (await backend.snapshot("o/"))[1]
        assert not [k for k in keys if k.startswith(f"o/{batch}/")], "a refused commit wrote"
        assert len(keys) == 1 + 50 * batch
    finally:
        await backend.close()


def test_server_refusals_become_store_errors() -> None:
    """Replies the lab server cannot be made to send (its size limits are at least 1 MB)."""
    from redis.exceptions import ResponseError

    backend = RedisBackend(parse_redis_url("redis://127.0.0.1:1/0"))
    assert isinstance(
        backend._rejected("committing", ResponseError("Protocol error: invalid bulk length")),
        TransactionTooLarge,
    )
    for reply in ("MISCONF Errors writing to the AOF file", "BUSY Redis is busy"):
        assert isinstance(backend._rejected("committing", ResponseError(reply)), StoreUnavailable)
    other = backend._rejected("committing", ResponseError("ERR unknown command"))
    assert type(other) is StoreError


# -- liveness ----------------------------------------------------------------------------------


async def test_liveness_uses_the_server_clock(backend: RedisBackend) -> None:
    await backend.live_start("s1", 0.3)
    await backend.live_start("s2", 30)
    assert {"s1", "s2"} <= await backend.live_sessions()
    assert await backend.live_refresh("s1", 0.3)
    await asyncio.sleep(0.5)
    assert "s1" not in await backend.live_sessions()
    assert not await backend.live_refresh("s1", 30), "an expired session must stay dead"
    assert not await backend.live_refresh("never-started", 30)
    await backend.live_end("s2")
    assert await backend.live_sessions() == set()


async def test_store_over_redis_watch_resyncs_after_trim(redis_server: RedisServer) -> None:
    from vlcp.store import open_store

    store = await open_store(_url(redis_server.url, retain=100), watch_retry=0.05)
    try:
        await put(store, "q/a", 0)
        since = (await store.read(["q/a"])).revision
        for i in range(300):
            await put(store, "q/a", i)
        watch = store.watch(prefix="q/", since=since)
        first = await asyncio.wait_for(anext(watch), 10)
        assert isinstance(first, Resync) and first.values == {"q/a": 299}
        await put(store, "q/a", "after")
        event = await asyncio.wait_for(anext(watch), 10)
        assert isinstance(event, WatchEvent) and event.changes[0].value == "after"
    finally:
        await store.close()
