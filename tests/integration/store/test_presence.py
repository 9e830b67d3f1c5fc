"""A process's presence outlives any store outage, and comes back by itself after one.

Issue 9, defect 1: a controller declared its session lost on its own after `ttl` of
failed refreshes, and `vlcp run` exited, although the store had not expired it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from vlcp.layout import SESSIONS
from vlcp.store import Session, Store, StoreUnavailable
from vlcp.store.presence import Presence
from vlcp.store.session import registry_key

from .helpers import until_available

pytestmark = pytest.mark.slow

TTL = 3.0
"""Matches the ZooKeeper targets' `session_timeout` (its sessions ignore `ttl`)."""


@pytest.fixture
async def running() -> AsyncIterator[list[tuple[Presence, asyncio.Task[None]]]]:
    started: list[tuple[Presence, asyncio.Task[None]]] = []
    yield started
    for presence, task in started:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await presence.close()


async def _join(url: str, open_stores, running: list, key: str) -> tuple[Store, Presence, Session]:
    """A store and a running presence holding `key`, with its first session."""
    store = await open_stores(url)
    presence = Presence(store, TTL, retry=0.1)
    task = asyncio.create_task(presence.run())
    running.append((presence, task))
    await presence.put(key, {"alive": True})
    await asyncio.wait_for(presence.joined.wait(), 30)
    assert presence.session is not None
    return store, presence, presence.session


async def _holds(store: Store, key: str, timeout: float = 60.0) -> None:
    async def present() -> bool:
        return (await store.read([key])).values == {key: {"alive": True}}

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await until_available(present, timeout=timeout):
        assert loop.time() < deadline, f"{key} did not come back"
        await asyncio.sleep(0.1)


async def test_an_outage_longer_than_every_timeout_is_ridden_out(
    server_target, open_stores, running
) -> None:
    store, presence, first = await _join(server_target.url, open_stores, running, "servers/hv1")
    server_target.kill()
    # Waiting is the point here: the store stays away for 3x the session's ttl.
    await asyncio.sleep(3 * TTL + 1)
    with pytest.raises(StoreUnavailable):
        await store.read(["servers/hv1"])
    assert not first.lost.is_set(), "the client declared its session lost on its own"
    assert not running[0][1].done()
    server_target.start()
    # Back: the same session if the store kept it, else a new one with the same keys.
    await _holds(store, "servers/hv1")
    await asyncio.wait_for(presence.joined.wait(), 60)
    assert first.lost.is_set() == (presence.rejoins == 1)


async def test_a_session_the_store_expired_is_replaced_with_the_same_keys(
    target, open_stores, running
) -> None:
    store, presence, first = await _join(target.url, open_stores, running, "chassis/hv2")
    await store.backend.live_end(first.id)  # the store forgets it, as on expiry
    await asyncio.wait_for(first.lost.wait(), 30)
    await asyncio.wait_for(presence.joined.wait(), 30)
    assert presence.rejoins == 1 and presence.session is not first
    # the reaper (started with the sessions) removes the dead session, not the keys
    # the new one holds
    while registry_key(first.id) in (await store.read_prefix(SESSIONS)).values:
        await asyncio.sleep(0.1)
    await _holds(store, "chassis/hv2", timeout=1)
