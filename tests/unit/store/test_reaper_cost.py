"""The background reaper lists the session headers only when a session may have died.

Every process runs the reaper each second; on ZooKeeper listing the headers costs a
request per session, so 100 idle agents kept the server busy with ~14,700 requests a
second (bench/README.md, simulated servers). With the live set unchanged since a reap
that found every header alive, a round costs one request.
"""

from __future__ import annotations

import asyncio

from vlcp.layout import SESSIONS
from vlcp.store import Store
from vlcp.store import store as store_module

from ..test_transaction import MemoryBackend


class CountingBackend(MemoryBackend):
    """Counts header listings and reaper rounds; its live set is set by the test."""

    def __init__(self) -> None:
        super().__init__()
        self.alive: set[str] = set()
        self.listings = 0
        self.rounds = 0

    async def snapshot(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        if prefix == SESSIONS:
            self.listings += 1
        return await super().snapshot(prefix)

    async def live_sessions(self) -> set[str]:
        self.rounds += 1
        return set(self.alive)

    async def live_start(self, session_id: str, ttl: float) -> None:
        self.alive.add(session_id)


async def _rounds(backend: CountingBackend, count: int) -> None:
    start = backend.rounds
    while backend.rounds < start + count:
        await asyncio.sleep(0.001)


async def test_a_quiet_cluster_costs_one_read_per_round_and_a_death_is_reaped() -> None:
    backend = CountingBackend()
    store = Store(backend, reap_interval=0.001)
    session = await store.open_session(ttl=60)
    await session.put("chassis/hv1", {"vtep": "192.0.2.1"})
    await _rounds(backend, 10)
    quiet_listings = backend.listings
    await _rounds(backend, 10)
    assert backend.listings == quiet_listings  # nothing died: no header listed

    backend.alive.discard(session.id)  # the session dies (its process is gone)
    while (await store.read(["chassis/hv1"])).values:
        await asyncio.sleep(0.001)
    assert backend.listings > quiet_listings
    await store.close()


async def test_a_full_reap_still_runs_every_so_many_rounds(monkeypatch) -> None:
    monkeypatch.setattr(store_module, "FULL_REAP_EVERY", 5)
    backend = CountingBackend()
    store = Store(backend, reap_interval=0.001)
    await store.open_session(ttl=60)
    await _rounds(backend, 3)
    before = backend.listings
    await _rounds(backend, 12)
    assert backend.listings >= before + 2
    await store.close()
