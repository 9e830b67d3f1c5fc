"""Scoped watches (`Store.subscribe`), on every backend with real servers.

A subscription delivers the keys of its scopes only, widens mid-stream without missing a
commit (a writer hammers the scope while it is added), narrows by dropping the scope's
values and delivery, and rereads its scopes after the server comes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from vlcp.layout import network_scope, port_scope, scope_of
from vlcp.store import ScopeResync, Store, Subscription, Transaction, WatchEvent

from .helpers import put, until_available

pytestmark = pytest.mark.slow


class Held:
    """What a subscriber holds: every value delivered, applied as a mirror would."""

    def __init__(self, subscription: Subscription) -> None:
        self.items: AsyncIterator[ScopeResync | WatchEvent] = aiter(subscription)
        self.values: dict[str, Any] = {}
        self.history: dict[str, list[Any]] = {}
        """Key -> every value it took here, in order (a resync's value included)."""
        self.resyncs: list[ScopeResync] = []

    async def step(self, timeout: float = 20.0) -> ScopeResync | WatchEvent:
        item = await asyncio.wait_for(anext(self.items), timeout)
        if isinstance(item, ScopeResync):
            self.resyncs.append(item)
            for key in [k for k in self.values if scope_of(k) in item.scopes]:
                if key not in item.values:
                    self._set(key, None)
            for key, value in item.values.items():
                if self.values.get(key) != value:
                    self._set(key, value)
        else:
            for change in item.changes:
                self._set(change.key, change.value)
        return item

    def _set(self, key: str, value: Any) -> None:
        self.history.setdefault(key, []).append(value)
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value

    async def until(self, key: str, value: Any, timeout: float = 60.0) -> None:
        async def run() -> None:
            while self.values.get(key) != value:
                await self.step()

        await asyncio.wait_for(run(), timeout)


async def test_a_subscription_delivers_its_scopes_only(store: Store) -> None:
    async def layout(txn: Transaction) -> None:
        txn.put("lognet/a", {"vni": 1})
        txn.put("netports/a/p1", {"host": "h1"})
        txn.put("lognet/b", {"vni": 2})
        txn.put("netports/b/p2", {"host": "h2"})
        txn.put("lport/p1", {"logicalnetwork": "a"})
        txn.put("lport/p2", {"logicalnetwork": "b"})
        txn.put("physnet/x", {"type": "vxlan"})

    await store.transact(layout)
    held = Held(store.subscribe([network_scope("a"), port_scope("p1"), "physnet/"]))
    first = await held.step()
    assert isinstance(first, ScopeResync)
    assert held.values == {
        "lognet/a": {"vni": 1},
        "netports/a/p1": {"host": "h1"},
        "lport/p1": {"logicalnetwork": "a"},
        "physnet/x": {"type": "vxlan"},
    }

    async def elsewhere(txn: Transaction) -> None:
        txn.put("netports/b/p3", {"host": "h3"})
        txn.put("lport/p2", {"logicalnetwork": "b", "mac": "x"})
        txn.put("lport-status/p1", {"state": "up"})  # not a subscribed scope either

    await store.transact(elsewhere)
    await put(store, "vtep-macs/a/sw/m1", {"mac": "m1"})
    event = await held.step()
    assert isinstance(event, WatchEvent)
    assert [(c.key, c.value) for c in event.changes] == [("vtep-macs/a/sw/m1", {"mac": "m1"})]


async def test_widening_mid_stream_misses_no_commit(store: Store) -> None:
    """A writer bumps a counter in scope b as fast as it can while b is added: from the
    value the scope's snapshot holds, every later value arrives, once and in order."""
    await put(store, "lognet/a", {"n": 0})
    await put(store, "netports/b/p", 0)
    subscription = store.subscribe([network_scope("a")])
    held = Held(subscription)
    await held.step()
    last = 150
    writing = asyncio.create_task(_count(store, "netports/b/p", last))
    await _written(store, "netports/b/p", 20)
    subscription.update([network_scope("a"), network_scope("b")])
    await held.until("netports/b/p", last)
    await writing
    seen = held.history["netports/b/p"]
    assert seen[0] >= 20, "the scope starts from its snapshot, read mid-stream"
    assert seen == list(range(seen[0], last + 1)), "no gap, no repeat, no step back"
    assert subscription.settled


async def test_narrowing_drops_the_scope_and_its_delivery(store: Store) -> None:
    await put(store, "lognet/a", {"n": 0})
    await put(store, "lognet/b", {"n": 0})
    subscription = store.subscribe([network_scope("a"), network_scope("b")])
    held = Held(subscription)
    await held.step()
    assert set(held.values) == {"lognet/a", "lognet/b"}
    subscription.update([network_scope("a")])
    dropped = await held.step()
    assert isinstance(dropped, ScopeResync) and dropped.scopes == {network_scope("b")}
    assert set(held.values) == {"lognet/a"}
    await put(store, "lognet/b", {"n": 1})  # no longer delivered...
    await put(store, "lognet/a", {"n": 1})  # ...while this still is
    event = await held.step()
    assert isinstance(event, WatchEvent)
    assert [c.key for c in event.changes] == ["lognet/a"]
    assert held.values == {"lognet/a": {"n": 1}}


async def test_a_subscription_rereads_its_scopes_after_the_server_returns(
    server_target, open_stores
) -> None:
    store = await open_stores(server_target.url)
    await put(store, "lognet/a", {"n": 0})
    held = Held(store.subscribe([network_scope("a")]))
    await held.step()
    following = asyncio.create_task(held.until("lognet/a", {"n": 40}, timeout=120))
    for i in range(1, 21):
        await put(store, "lognet/a", {"n": i})
    await asyncio.to_thread(server_target.kill)
    await asyncio.to_thread(server_target.start)
    for i in range(21, 41):
        await until_available(lambda i=i: put(store, "lognet/a", {"n": i}))
    await following
    numbers = [value["n"] for value in held.history["lognet/a"]]
    assert numbers == sorted(numbers), "never back in time, across the outage"


async def _count(store: Store, key: str, last: int) -> None:
    for i in range(1, last + 1):
        await put(store, key, i)


async def _written(store: Store, key: str, at_least: int) -> None:
    while (await store.read([key])).values.get(key, 0) < at_least:
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("target", ["etcd", "zookeeper", "redis"], indirect=True)
async def test_a_filtering_backend_sends_nothing_of_other_scopes(store: Store) -> None:
    """etcd (range watches), ZooKeeper (scope entries) and Redis (a channel per scope)
    filter at the server: a commit elsewhere never reaches the subscriber's feed (sqlite
    filters in the subscriber, behind the same API, so it is not run:
    docs/store-backends.md, scoped watches)."""
    head = (await store.read(())).revision
    feed = store.backend.scope_feed(head)
    feed.add([network_scope("a")], head)
    entries = aiter(feed.entries())
    first = asyncio.ensure_future(anext(entries))
    try:
        for i in range(20):
            await put(store, f"netports/b/p{i}", {"host": "elsewhere"})
            await put(store, f"lport/q{i}", {"logicalnetwork": "b"})
        await put(store, "netports/a/p0", {"host": "here"})
        entry = await asyncio.wait_for(first, 20)
        assert [key for key, _ in entry.changes] == ["netports/a/p0"]
    finally:
        first.cancel()
        await entries.aclose()  # type: ignore[attr-defined]
