"""Replicated stores: a minority loss changes nothing; a total loss fails fast and recovers."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from vlcp.store import Resync, Store, StoreUnavailable, Transaction

from .conftest import CLUSTER_TIMEOUT
from .helpers import collect_values, next_event, put, read_line, start_worker, until_available

pytestmark = pytest.mark.slow


async def _leader(cluster) -> int:  # type: ignore[no-untyped-def]
    leader = await asyncio.to_thread(cluster.leader)
    assert leader is not None, "the cluster has no leader"
    return leader


async def _other_follower(cluster, *besides: int) -> int:  # type: ignore[no-untyped-def]
    """A member that is neither the leader nor one of `besides`."""
    leader = await _leader(cluster)
    return next(i for i in range(cluster.size) if i != leader and i not in besides)


async def test_minority_loss_changes_nothing(cluster_target, open_stores) -> None:
    """Every call succeeds while the leader is dead, and then while a follower is."""
    cluster = cluster_target.server
    store = await open_stores(cluster_target.url)
    await put(store, "m/x", 0)
    watch = store.watch(prefix="m/")
    assert isinstance(await next_event(watch), Resync)
    collected = asyncio.create_task(collect_values(watch, "m/x", 30, timeout=120))
    for i in range(1, 11):
        await put(store, "m/x", i)
    leader = await _leader(cluster)
    await asyncio.to_thread(cluster.kill_member, leader)
    for i in range(11, 21):
        await put(store, "m/x", i)
    assert (await store.read(["m/x"])).values == {"m/x": 20}
    await asyncio.to_thread(cluster.start_member, leader)
    follower = await _other_follower(cluster, leader)
    await asyncio.to_thread(cluster.kill_member, follower)
    for i in range(21, 31):
        await put(store, "m/x", i)
    assert await collected == list(range(1, 31))
    assert (await store.read(["m/x"])).values == {"m/x": 30}


async def _transfers_done(store: Store) -> int:
    return sum((await store.read_prefix("done/")).values.values())


async def _until_transferred(
    store: Store, procs: list[subprocess.Popen[str]], at_least: int
) -> int:
    """Wait until the workers committed `at_least` transfers in all; fail if one died."""
    async with asyncio.timeout(60):
        while (done := await _transfers_done(store)) < at_least:
            for proc in procs:
                if proc.poll() is not None:
                    raise AssertionError(f"worker exited {proc.returncode}: {proc.stderr.read()}")  # type: ignore[union-attr]
            await asyncio.sleep(0.05)
    return done


async def test_transfers_from_many_processes_never_fail_through_a_minority_loss(
    cluster_target, open_stores
) -> None:
    """Guarantee 1 with separate client processes: the leader is killed and restarted, then
    a follower, while transfers run; not one transaction fails, none is lost or repeated."""
    cluster = cluster_target.server
    store = await open_stores(cluster_target.url)
    accounts, workers, count = 6, 4, 75
    total = workers * count

    async def seed(txn: Transaction) -> None:
        for i in range(accounts):
            txn.put(f"acct/{i}", 100)

    await store.transact(seed)
    procs = [
        start_worker("transfer", cluster_target.url, f"w{i}", str(count), str(accounts), "0.12")
        for i in range(workers)
    ]
    try:
        await _until_transferred(store, procs, total // 6)
        leader = await _leader(cluster)
        await asyncio.to_thread(cluster.kill_member, leader)
        assert await _transfers_done(store) < total, "the leader died after the transfers"
        await _until_transferred(store, procs, 2 * total // 6)
        await asyncio.to_thread(cluster.start_member, leader)
        follower = await _other_follower(cluster, leader)
        await asyncio.to_thread(cluster.kill_member, follower)
        before = await _transfers_done(store)
        assert before < total, "the follower died after the transfers"
        await _until_transferred(store, procs, min(before + total // 6, total))
        await asyncio.to_thread(cluster.start_member, follower)
        for proc in procs:
            assert await read_line(proc, timeout=120) == "finished"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    balances = (await store.read_prefix("acct/")).values
    done = (await store.read_prefix("done/")).values
    assert sum(balances.values()) == 100 * accounts
    assert done == {f"done/w{i}": count for i in range(workers)}, "a transfer was lost or repeated"


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
        await asyncio.wait_for(put(store, "t/y", 1), timeout=CLUSTER_TIMEOUT * 2)
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(store.read(["t/x"]), timeout=CLUSTER_TIMEOUT * 2)

    await asyncio.to_thread(cluster.start_all)
    await until_available(lambda: put(store, "t/x", 2), timeout=60)
    assert await collected == [1, 2]
    assert (await store.read(["t/x", "t/y"])).values == {"t/x": 2}
