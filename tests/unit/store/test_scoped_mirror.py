"""A controller's scoped mirror on the embedded store: it holds only its scopes, rereads
them when the change log was compacted under it, and keeps no `ScopeResync` alive."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.lab.waiting import eventually
from vlcp.agent.mirror import VIEW_PREFIXES, Mirror
from vlcp.layout import network_scope, port_scope
from vlcp.store import ScopeResync, Store, Transaction, open_store
from vlcp.store import sqlite as sqlite_backend


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite://{tmp_path}/state.db")

    async def layout(txn: Transaction) -> None:
        for n in range(20):
            txn.put(f"lognet/n{n}", {"vni": n})
            txn.put(f"lport/p{n}", {"logicalnetwork": f"n{n}"})
            txn.put(f"netports/n{n}/p{n}", {"host": "elsewhere"})
            txn.put(f"lport-status/p{n}", {"state": "up"})

    await store.transact(layout)
    yield store
    await store.close()


async def put(store: Store, key: str, value: object) -> None:
    async def write(txn: Transaction) -> None:
        txn.put(key, value)

    await store.transact(write)


async def test_the_mirror_holds_its_scopes_and_lets_go_of_the_others(store: Store) -> None:
    mirror = Mirror(store, VIEW_PREFIXES, scoped=True)
    mirror.scope([port_scope("p1"), network_scope("n1")])
    async with _running(mirror):
        await eventually(_holds(mirror, "netports/n1/p1"))
        assert set(mirror.values) == {"lognet/n1", "lport/p1", "netports/n1/p1"}
        await put(store, "netports/n2/p9", {"host": "elsewhere"})
        await put(store, "netports/n1/p9", {"host": "elsewhere"})
        await eventually(_holds(mirror, "netports/n1/p9"))
        assert "netports/n2/p9" not in mirror.values
        mirror.scope([network_scope("n2")])
        await eventually(_holds(mirror, "netports/n2/p9"))
        assert set(mirror.values) == {"lognet/n2", "netports/n2/p2", "netports/n2/p9"}
        assert mirror.netports_of("n1") == {}
        gc.collect()
        assert not any(isinstance(o, ScopeResync) for o in gc.get_objects())


async def test_a_compacted_log_rereads_the_scopes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backend, "LOG_RETAIN", 4)
    monkeypatch.setattr(sqlite_backend, "_TRIM_EVERY", 1)
    subscription = store.subscribe([network_scope("n1")])
    items = aiter(subscription)
    first = await anext(items)
    assert isinstance(first, ScopeResync)
    for i in range(30):  # while the subscriber does not read: trimmed past it
        await put(store, "lognet/n1", {"vni": 1, "i": i})
    values: dict[str, object] = dict(first.values)
    while values.get("lognet/n1") != {"vni": 1, "i": 29}:
        item = await anext(items)
        if isinstance(item, ScopeResync):
            values = dict(item.values)
        else:
            values.update((c.key, c.value) for c in item.changes)
    assert values["netports/n1/p1"] == {"host": "elsewhere"}


@contextlib.asynccontextmanager
async def _running(mirror: Mirror) -> AsyncIterator[None]:
    task = asyncio.create_task(mirror.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _holds(mirror: Mirror, key: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return mirror.settled and key in mirror.values

    return check
