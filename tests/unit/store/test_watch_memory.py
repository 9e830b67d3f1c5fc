"""A watch and the agent's mirror let go of a `Resync` once it is applied (issue 16: a
restarted agent kept its whole first snapshot, sessions' bookkeeping included, for the life
of the watch, and ended far larger than one grown change by change)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.lab.waiting import eventually
from vlcp.agent.mirror import VIEW_PREFIXES, Mirror
from vlcp.store import Resync, Store, open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite://{tmp_path}/state.db")
    await store.transact(lambda txn: _put(txn, {f"lport/p{n}": {"id": f"p{n}"} for n in range(50)}))
    yield store
    await store.close()


async def _put(txn, values: dict) -> None:
    for key, value in values.items():
        txn.put(key, value)


async def no_resync_alive() -> bool:
    gc.collect()
    return not any(isinstance(o, Resync) for o in gc.get_objects())


async def test_a_watch_drops_its_first_snapshot_once_delivered(store: Store) -> None:
    watch = store.watch(prefix="")
    first = await anext(watch)
    assert isinstance(first, Resync) and len(first.values) >= 50
    del first
    waiting = asyncio.create_task(anext(watch))  # parked until the next commit
    await eventually(no_resync_alive, 5, what="the first Resync collected")
    await store.transact(lambda txn: _put(txn, {"lport/late": {"id": "late"}}))
    assert [c.key for c in (await waiting).changes] == ["lport/late"]
    await watch.aclose()


async def test_the_mirror_drops_the_snapshot_it_applied(store: Store) -> None:
    mirror = Mirror(store, VIEW_PREFIXES)
    task = asyncio.create_task(mirror.run())
    try:
        await asyncio.wait_for(mirror.ready.wait(), 5)
        assert len(mirror.netports) == 0 and "lport/p7" in mirror.values
        await eventually(no_resync_alive, 5, what="the mirror's Resync collected")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
