"""Replicated stores: a minority loss changes nothing; a total loss fails fast and recovers."""

from __future__ import annotations

import asyncio

import pytest

from vlcp.store import Resync, StoreUnavailable

from .conftest import TIMEOUT
from .helpers import collect_values, next_event, put, until_available

pytestmark = pytest.mark.slow


async def test_minority_loss_changes_nothing(cluster_target, open_stores) -> None:
    cluster = cluster_target.server
    store = await open_stores(cluster_target.url)
    await put(store, "m/x", 0)
    watch = store.watch(prefix="m/")
    assert isinstance(await next_event(watch), Resync)
    collected = asyncio.create_task(collect_values(watch, "m/x", 20, timeout=120))
    for i in range(1, 11):
        await put(store, "m/x", i)
    leader = await asyncio.to_thread(cluster.leader)
    await asyncio.to_thread(cluster.kill_member, leader)
    for i in range(11, 21):
        # a leader election may take a moment; calls in between fail cleanly, never half-done
        await until_available(lambda i=i: put(store, "m/x", i), timeout=30)
    assert await collected == list(range(1, 21))
    assert (await store.read(["m/x"])).values == {"m/x": 20}


async def test_total_loss_fails_fast_then_recovers_with_watches(
    cluster_target, open_stores
) -> None:
    cluster = cluster_target.server
    store = await open_stores(cluster_target.url)
    await put(store, "t/x", 0)
    watch = store.watch(prefix="t/")
    assert isinstance(await next_event(watch), Resync)
    collected = asyncio.create_task(collect_values(watch, "t/x", 2, timeout=180))
    await put(store, "t/x", 1)
    await asyncio.to_thread(cluster.stop_all)

    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(put(store, "t/y", 1), timeout=TIMEOUT * 5)
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(store.read(["t/x"]), timeout=TIMEOUT * 5)

    await asyncio.to_thread(cluster.start_all)
    await until_available(lambda: put(store, "t/x", 2), timeout=60)
    assert await collected == [1, 2]
    assert (await store.read(["t/x", "t/y"])).values == {"t/x": 2}
