"""Liveness: keys written through a session vanish when its process dies, on every backend."""

from __future__ import annotations

import asyncio

import pytest

from vlcp.store import SessionLost, Store, WatchEvent

from .helpers import next_event, read_line, start_worker

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
