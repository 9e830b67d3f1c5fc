"""The store contract, run against every backend with real servers.

Each backend must behave the same: snapshots are consistent, transactions are atomic
and isolated under concurrency across OS processes, watches deliver every commit once
and in order, and bad input changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from vlcp.store import (
    ConflictRetriesExhausted,
    InvalidKey,
    InvalidValue,
    Resync,
    Store,
    StoreError,
    Transaction,
    TransactionTooLarge,
    WatchEvent,
    open_store,
)

from .conftest import TIMEOUT
from .helpers import collect_values, next_event, put, read_line, start_worker, until_available

pytestmark = pytest.mark.slow


async def test_put_read_delete(store: Store) -> None:
    await put(store, "net/a", {"vni": 10})
    await put(store, "net/b", [1, "two", 3.5, True])
    snap = await store.read(["net/a", "net/b", "net/missing"])
    assert snap.values == {"net/a": {"vni": 10}, "net/b": [1, "two", 3.5, True]}

    async def drop(txn: Transaction) -> None:
        txn.delete("net/a")
        txn.delete("net/never-existed")

    await store.transact(drop)
    after = await store.read(["net/a", "net/b"])
    assert after.values == {"net/b": [1, "two", 3.5, True]}
    assert after.revision > snap.revision


async def test_read_prefix_is_exact_and_hides_store_keys(store: Store) -> None:
    for key in ("port/1", "port/2", "port/10/x", "portx/1", "por/1"):
        await put(store, key, key)
    session = await store.open_session(ttl=5)
    await session.put("port/3", "ephemeral")
    snap = await store.read_prefix("port/")
    assert snap.values == {
        "port/1": "port/1",
        "port/2": "port/2",
        "port/10/x": "port/10/x",
        "port/3": "ephemeral",
    }
    everything = await store.read_prefix("")
    assert not [k for k in everything.values if k.startswith("_")]
    assert {"portx/1", "por/1"} <= everything.values.keys()


async def test_transaction_reads_its_own_writes(store: Store) -> None:
    async def fn(txn: Transaction) -> tuple[object, object]:
        txn.put("k/a", 1)
        first = await txn.get("k/a")
        txn.delete("k/a")
        return first, await txn.get("k/a")

    assert await store.transact(fn) == (1, None)
    assert (await store.read(["k/a"])).values == {}


async def test_transfers_from_many_processes_preserve_total(store: Store, target) -> None:
    accounts, workers, count = 5, 3, 40

    async def seed(txn: Transaction) -> None:
        for i in range(accounts):
            txn.put(f"acct/{i}", 100)

    await store.transact(seed)
    procs = [
        start_worker("transfer", target.url, f"w{i}", str(count), str(accounts))
        for i in range(workers)
    ]
    try:
        for proc in procs:
            assert await read_line(proc, timeout=240) == "finished"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    balances = (await store.read_prefix("acct/")).values
    done = (await store.read_prefix("done/")).values
    assert sum(balances.values()) == 100 * accounts
    assert done == {f"done/w{i}": count for i in range(workers)}, "an update was lost"


async def test_concurrent_tasks_never_lose_an_increment(store: Store) -> None:
    async def increment(txn: Transaction) -> None:
        txn.put("counter/c", (await txn.get("counter/c") or 0) + 1)

    await asyncio.gather(*(store.transact(increment) for _ in range(30)))
    assert (await store.read(["counter/c"])).values == {"counter/c": 30}


async def test_conflict_exhausted_writes_nothing(target, open_stores) -> None:
    store = await open_stores(target.url, max_attempts=3)
    other = await open_stores(target.url)
    await put(store, "c/a", 0)
    runs = 0

    async def always_overtaken(txn: Transaction) -> None:
        nonlocal runs
        runs += 1
        value = await txn.get("c/a")
        await put(other, "c/a", value + 1)  # a concurrent writer commits first
        txn.put("c/b", "must not appear")
        txn.put("c/a", -1)

    with pytest.raises(ConflictRetriesExhausted):
        await store.transact(always_overtaken)
    assert runs == 3
    assert (await store.read(["c/a", "c/b"])).values == {"c/a": 3}


async def test_exception_in_transaction_writes_nothing(store: Store) -> None:
    await put(store, "x/a", 1)
    before = await store.read_prefix("x/")

    async def fails(txn: Transaction) -> None:
        txn.put("x/a", 2)
        txn.put("x/b", 3)
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await store.transact(fails)
    assert (await store.read_prefix("x/")).values == before.values


def assert_batches_whole(values: dict[str, dict], keys_per_batch: int, acknowledged: int) -> None:
    """Every batch is all there or not at all, and every acknowledged one is there."""
    sizes: dict[int, int] = {}
    for key in values:
        number = int(key.split("/")[1])
        sizes[number] = sizes.get(number, 0) + 1
    assert all(n == keys_per_batch for n in sizes.values()), f"partial batch: {sizes}"
    assert set(range(acknowledged + 1)) <= sizes.keys(), "an acknowledged commit was lost"


async def test_killed_client_leaves_no_partial_transaction(store: Store, target) -> None:
    proc = start_worker("batches", target.url, "40")
    try:
        acknowledged = [int(await read_line(proc)) for _ in range(5)]
    finally:
        proc.kill()  # SIGKILL, most likely while building or committing the next batch
        proc.wait()
    assert_batches_whole((await store.read_prefix("batch/")).values, 40, acknowledged[-1])


async def test_server_gone_mid_commit_leaves_no_partial_transaction(
    server_target, open_stores
) -> None:
    store = await open_stores(server_target.url)
    acknowledged = -1
    failed = asyncio.Event()

    async def writer() -> None:
        nonlocal acknowledged
        for number in range(100_000):

            async def write(txn: Transaction, number: int = number) -> None:
                for i in range(50):
                    txn.put(f"batch/{number}/{i}", {"n": number, "pad": "y" * 200})

            try:
                await store.transact(write)
            except Exception:
                failed.set()
                return
            acknowledged = number

    task = asyncio.create_task(writer())
    while acknowledged < 3:
        await asyncio.sleep(0.01)
    await asyncio.to_thread(server_target.kill)
    await asyncio.wait_for(failed.wait(), 30)
    await task
    await asyncio.to_thread(server_target.start)

    values = (await until_available(lambda: store.read_prefix("batch/"))).values
    assert_batches_whole(values, 50, acknowledged)


async def test_watch_starts_with_resync_then_every_change_in_order(store: Store) -> None:
    await put(store, "w/x", 0)
    await put(store, "other/y", 0)
    watch = store.watch(prefix="w/")
    first = await next_event(watch)
    assert isinstance(first, Resync) and first.values == {"w/x": 0}

    async def writer() -> None:
        for i in range(1, 61):
            await put(store, "w/x", i)
            await put(store, "other/y", i)  # not watched: never delivered

    writing = asyncio.create_task(writer())
    assert await collect_values(watch, "w/x", 60) == list(range(1, 61))
    await writing


async def test_watch_since_replays_missed_commits(store: Store) -> None:
    await put(store, "r/x", 0)
    start = (await store.read(["r/x"])).revision
    for i in range(1, 11):
        await put(store, "r/x", i)
    watch = store.watch(prefix="r/", since=start)
    assert await collect_values(watch, "r/x", 10) == list(range(1, 11))


async def test_watch_on_keys_sees_only_those_keys_and_deletions(store: Store) -> None:
    watch = store.watch(keys=["k/a", "k/b"])
    assert (await next_event(watch)).values == {}

    async def both(txn: Transaction) -> None:
        txn.put("k/a", 1)
        txn.put("k/b", 2)
        txn.put("k/c", 3)

    await store.transact(both)
    event = await next_event(watch)
    assert isinstance(event, WatchEvent)
    assert {(c.key, c.value) for c in event.changes} == {("k/a", 1), ("k/b", 2)}

    async def drop(txn: Transaction) -> None:
        txn.delete("k/a")

    await store.transact(drop)
    event = await next_event(watch)
    assert [(c.key, c.value) for c in event.changes] == [("k/a", None)]


async def test_watch_on_prefixes_and_keys_starts_from_exactly_those(store: Store) -> None:
    """What an agent's mirror watches: several prefixes and single keys, one revision."""

    async def layout(txn: Transaction) -> None:
        for key in ("p/a", "p/b/c", "q/a", "pq/a", "r/a", "single", "singles"):
            txn.put(key, key)

    await store.transact(layout)
    watch = store.watch(prefixes=["p/", "q/"], keys=["single", "absent"])
    first = await next_event(watch)
    assert isinstance(first, Resync)
    assert first.values == {"p/a": "p/a", "p/b/c": "p/b/c", "q/a": "q/a", "single": "single"}

    async def change(txn: Transaction) -> None:
        txn.put("r/a", 1)  # not watched
        txn.put("q/b", 2)
        txn.delete("single")

    await store.transact(change)
    event = await next_event(watch)
    assert isinstance(event, WatchEvent)
    assert {(c.key, c.value) for c in event.changes} == {("q/b", 2), ("single", None)}


async def test_watch_resumes_across_server_restart(server_target, open_stores) -> None:

    store = await open_stores(server_target.url)
    await put(store, "s/x", 0)
    watch = store.watch(prefix="s/")
    assert isinstance(await next_event(watch), Resync)
    collected = asyncio.create_task(collect_values(watch, "s/x", 40, timeout=120))
    for i in range(1, 21):
        await put(store, "s/x", i)
    await asyncio.to_thread(server_target.kill)
    await asyncio.to_thread(server_target.start)
    for i in range(21, 41):
        await until_available(lambda i=i: put(store, "s/x", i))
    assert await collected == list(range(1, 41))


BAD_KEYS = [42, "", "/a", "a/", "a//b", "a b", "a\nb", "é", "_reserved", "x" * 500, "a/../b/"]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
async def test_bad_keys_are_refused_and_change_nothing(store: Store, key: object) -> None:
    await put(store, "ok/a", 1)
    before = await store.read_prefix("")

    async def write(txn: Transaction) -> None:
        txn.put("ok/a", 2)
        txn.put(key, 1)  # type: ignore[arg-type]

    with pytest.raises(InvalidKey):
        await store.transact(write)
    with pytest.raises(InvalidKey):
        await store.read([key])  # type: ignore[list-item]
    after = await store.read_prefix("")
    assert (after.revision, after.values) == (before.revision, before.values)


BAD_VALUES = [
    None,
    {1, 2},
    object(),
    float("nan"),
    float("inf"),
    {1: "int key"},
    b"bytes",
    "x" * 300_000,
]


@pytest.mark.parametrize("value", BAD_VALUES, ids=lambda v: type(v).__name__)
async def test_bad_values_are_refused_and_change_nothing(store: Store, value: object) -> None:
    before = await store.read_prefix("")

    async def write(txn: Transaction) -> None:
        txn.put("ok/a", 2)
        txn.put("ok/b", value)

    with pytest.raises(InvalidValue):
        await store.transact(write)
    after = await store.read_prefix("")
    assert (after.revision, after.values) == (before.revision, before.values)


@pytest.mark.parametrize("shape", ["too-many-keys", "too-many-bytes"])
async def test_oversized_transactions_are_refused_and_change_nothing(
    store: Store, shape: str
) -> None:
    before = await store.read_prefix("")

    async def write(txn: Transaction) -> None:
        if shape == "too-many-keys":
            for i in range(1001):
                txn.put(f"big/{i}", i)
        else:
            for i in range(10):
                txn.put(f"big/{i}", "z" * 50_000)

    with pytest.raises(TransactionTooLarge):
        await store.transact(write)
    after = await store.read_prefix("")
    assert (after.revision, after.values) == (before.revision, before.values)


async def test_largest_allowed_transaction_commits(store: Store) -> None:
    async def write(txn: Transaction) -> None:
        for i in range(1000):
            txn.put(f"big/{i:04d}", {"i": i, "pad": "p" * 300})

    await store.transact(write)
    assert len((await store.read_prefix("big/")).values) == 1000


async def test_watches_end_when_their_store_is_closed(target, open_stores) -> None:
    store = await open_stores(target.url)
    watch = store.watch(prefix="e/")
    assert isinstance(await next_event(watch), Resync)
    pending = asyncio.create_task(anext(watch, "ended"))
    await asyncio.sleep(0.05)  # the watch is now waiting for commits
    await store.close()
    assert await asyncio.wait_for(pending, 10) == "ended"


async def test_close_is_prompt_while_requests_are_in_flight(target) -> None:
    """Closing while the reaper, a session, a watch and a writer are all busy never hangs.

    Closing with the reaper in a request used to hang now and then on Redis: redis-py's
    `asyncio.wait_for` lost the reaper's cancellation (Python 3.11), and close waited for it
    forever. Each round closes at another moment.
    """
    for round_ in range(8):
        await _close_while_busy(target.url, f"busy/{round_}/", 0.05 + 0.05 * (round_ % 4))


async def _close_while_busy(url: str, prefix: str, busy_for: float) -> None:
    store = await open_store(url, reap_interval=0, watch_retry=0.05)
    try:
        session = await store.open_session(ttl=1)
        await session.put(f"{prefix}mine", 1)
        watch = store.watch(prefix=prefix)
        assert isinstance(await next_event(watch), Resync)
    except BaseException:
        await store.close()
        raise

    async def writer() -> None:
        with contextlib.suppress(StoreError):  # the store is closed under it
            for i in range(1_000_000):
                await put(store, f"{prefix}w", i)

    async def watcher() -> int:
        return sum([1 async for _ in watch])  # ends when the store is closed

    writing = asyncio.create_task(writer())
    watching = asyncio.create_task(watcher())
    await asyncio.sleep(busy_for)
    loop = asyncio.get_running_loop()
    began = loop.time()
    # bounded from outside with asyncio.wait, so that a regression fails instead of hanging
    closing = asyncio.create_task(store.close())
    done, _ = await asyncio.wait([closing], timeout=4 * TIMEOUT + 2)
    if not done:  # unstick the broken close, so that the run goes on
        if store._reaper is not None:
            store._reaper.cancel()
        await asyncio.wait([closing], timeout=10)
    assert done, f"close still running after {loop.time() - began:.1f} s"
    closing.result()
    await asyncio.wait_for(writing, TIMEOUT + 2)
    await asyncio.wait_for(watching, TIMEOUT + 2)
