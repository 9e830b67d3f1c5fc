"""Liveness: keys written through a session vanish when its process dies, on every backend."""

from __future__ import annotations

import asyncio

import pytest

from vlcp.store import SessionLost, Store, Transaction, WatchEvent
from vlcp.store.session import reap_all

from .helpers import next_event, put, read_line, start_worker

pytestmark = pytest.mark.slow


async def test_session_keys_vanish_when_the_process_is_killed(store: Store, target) -> None:
    watch = store.watch(prefix="chassis/")
    assert (await next_event(watch)).values == {}
    proc = start_worker("session", target.url, "chassis/hv1")
    try:
        assert await read_line(proc) == "ready"
        appeared = await next_event(watch)
        assert [(c.key, c.value) for c in appeared.changes] == [("chassis/hv1", {"pid": "alive"})]
    finally:
        proc.kill()
        proc.wait()
    store.start_reaper()  # this process notices the dead session and removes its keys
    gone = await next_event(watch, timeout=30)
    assert isinstance(gone, WatchEvent)
    assert [(c.key, c.value) for c in gone.changes] == [("chassis/hv1", None)]


async def test_closing_a_session_deletes_its_keys_at_once(store: Store) -> None:
    session = await store.open_session(ttl=5)
    await session.put("chassis/a", {"ip": "192.0.2.1"})
    await session.put("chassis/b", {"ip": "192.0.2.2"})
    await session.delete("chassis/b")
    assert (await store.read_prefix("chassis/")).values == {"chassis/a": {"ip": "192.0.2.1"}}
    await session.close()
    assert (await store.read_prefix("chassis/")).values == {}
    with pytest.raises(SessionLost):
        await session.put("chassis/c", {})


async def test_a_key_taken_over_by_a_new_session_outlives_the_old_one(store: Store) -> None:
    old = await store.open_session(ttl=5)
    await old.put("chassis/hv", {"gen": 1})
    new = await store.open_session(ttl=5)
    await new.put("chassis/hv", {"gen": 2})
    await old.close()
    assert (await store.read(["chassis/hv"])).values == {"chassis/hv": {"gen": 2}}
    await new.close()
    assert (await store.read(["chassis/hv"])).values == {}


async def test_reaping_is_idempotent_across_processes(store: Store, target, open_stores) -> None:
    other = await open_stores(target.url)
    session = await store.open_session(ttl=5)
    await session.put("chassis/x", 1)
    await store.backend.live_end(session.id)  # as if it had expired
    results = await asyncio.gather(store.reap_dead_sessions(), other.reap_dead_sessions())
    assert sum(results) >= 1
    assert (await store.read(["chassis/x"])).values == {}


async def test_a_session_with_many_keys_is_reaped_whole(store: Store) -> None:
    session = await store.open_session(ttl=5)
    for i in range(650):  # more than two reaping batches
        await session.put(f"many/{i}", i)
    await store.backend.live_end(session.id)  # as if it had expired
    assert await store.reap_dead_sessions() == 1
    assert (await store.read_prefix("many/")).values == {}


async def test_put_many_and_delete_many_are_atomic_and_visible(store: Store) -> None:
    await put(store, "ports/foreign", 0)  # not written through the session
    watch = store.watch(prefix="ports/")
    assert (await next_event(watch)).values == {"ports/foreign": 0}
    session = await store.open_session(ttl=5)
    await session.put_many({"ports/a": 1, "ports/b": 2, "ports/c": 3})
    landed = await next_event(watch)
    assert isinstance(landed, WatchEvent)  # one event: one transaction
    assert sorted((c.key, c.value) for c in landed.changes) == [
        ("ports/a", 1),
        ("ports/b", 2),
        ("ports/c", 3),
    ]
    await session.delete_many(["ports/a", "ports/c", "ports/foreign"])
    deleted = await next_event(watch)
    assert sorted((c.key, c.value) for c in deleted.changes) == [
        ("ports/a", None),
        ("ports/c", None),
    ]
    assert (await store.read_prefix("ports/")).values == {"ports/b": 2, "ports/foreign": 0}
    await session.close()
    closed = await next_event(watch)
    assert [(c.key, c.value) for c in closed.changes] == [("ports/b", None)]
    assert (await store.read_prefix("ports/")).values == {"ports/foreign": 0}


async def test_delete_many_leaves_a_key_taken_over_by_another_session(store: Store) -> None:
    old = await store.open_session(ttl=5)
    await old.put_many({"chassis/a": {"gen": 1}, "chassis/b": {"gen": 1}})
    new = await store.open_session(ttl=5)
    await new.put("chassis/a", {"gen": 2})
    await old.delete_many(["chassis/a", "chassis/b"])
    assert (await store.read_prefix("chassis/")).values == {"chassis/a": {"gen": 2}}
    await old.put("chassis/a", {"gen": 3})  # taken back: the old session answers for it again
    await new.close()
    assert (await store.read_prefix("chassis/")).values == {"chassis/a": {"gen": 3}}
    await old.close()
    assert (await store.read_prefix("chassis/")).values == {}


async def test_put_many_larger_than_a_transaction_is_split(store: Store) -> None:
    session = await store.open_session(ttl=5)
    big = "x" * (150 * 1024)  # three of them exceed the 400 KiB a transaction may write
    await session.put_many({"big/1": big, "big/2": big, "big/3": big})
    assert (await store.read_prefix("big/")).values == {"big/1": big, "big/2": big, "big/3": big}
    await session.close()
    assert (await store.read_prefix("big/")).values == {}


async def test_a_session_with_thousands_of_keys_stays_small_and_is_reaped_whole(
    store: Store,
) -> None:
    session = await store.open_session(ttl=5)
    header = f"_sessions/{session.id}"
    size = len((await store.backend.fetch([header]))[header].data or b"")
    await session.put_many({f"many/{i}": i for i in range(3000)})
    assert len((await store.read_prefix("many/")).values) == 3000
    stored = (await store.backend.fetch([header]))[header].data
    assert stored is not None and len(stored) == size < 200  # O(1), whatever the key count
    await store.backend.live_end(session.id)  # as if it had expired
    await store.reap_dead_sessions()  # (the background reaper may have started it already)
    assert (await store.read_prefix("many/")).values == {}
    for reserved in ("_sessions/", "_session-keys/", "_owners/"):
        assert (await store.read_prefix(reserved)).values == {}, reserved


async def test_a_zombie_write_racing_the_reaper_leaves_nothing_behind(
    store: Store, target, open_stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zombie's put reads the header while its session looks alive, and commits only
    after the reaper listed the session's keys: it must fail, not leave an orphan key."""
    reaper = await open_stores(target.url)  # another process
    zombie = await store.open_session(ttl=30)  # alive as far as the backend knows
    await zombie.put("zombie/old", 1)
    listed = asyncio.Event()
    header_read = asyncio.Event()
    real_snapshot, real_commit = reaper.backend.snapshot, store.backend.commit

    async def snapshot(prefix: str):  # type: ignore[no-untyped-def]
        result = await real_snapshot(prefix)
        if prefix.startswith("_session-keys/"):
            listed.set()
        return result

    async def commit(reads, writes):  # type: ignore[no-untyped-def]
        if "zombie/new" in writes and not listed.is_set():
            header_read.set()  # the transaction read the header: the session looked alive
            await listed.wait()
        return await real_commit(reads, writes)

    monkeypatch.setattr(reaper.backend, "snapshot", snapshot)
    monkeypatch.setattr(store.backend, "commit", commit)
    write = asyncio.ensure_future(zombie.put("zombie/new", 2))
    await asyncio.wait_for(header_read.wait(), 10)
    # What the reaper of a dead session, or Session.close, runs:
    await asyncio.wait_for(reap_all(reaper, zombie.id), 30)
    with pytest.raises(SessionLost):
        await asyncio.wait_for(write, 10)
    assert zombie.lost.is_set()
    assert (await reaper.read_prefix("zombie/")).values == {}
    for reserved in ("_sessions/", "_session-keys/", "_owners/"):
        assert (await reaper.read_prefix(reserved)).values == {}, reserved


async def test_a_registry_written_before_markers_existed_is_reaped(store: Store) -> None:
    """A session header that still lists its keys (from an older vlcp) is reaped as well."""

    async def legacy(txn: Transaction) -> None:
        txn.put("_sessions/old", {"keys": ["chassis/a", "chassis/b"], "ttl": 5, "created": 0})
        txn.put("_owners/chassis/a", "old")
        txn.put("chassis/a", 1)
        txn.put("_owners/chassis/b", "newer")  # taken over since
        txn.put("chassis/b", 2)

    await store.transact_internal(legacy)
    await store.reap_dead_sessions()  # no live mark: the session "old" is dead
    assert (await store.read_prefix("chassis/")).values == {"chassis/b": 2}
    assert (await store.read_prefix("_sessions/")).values == {}
    assert (await store.read_prefix("_owners/")).values == {"_owners/chassis/b": "newer"}
