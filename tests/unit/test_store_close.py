"""Closing a store ends its background tasks in bounded time, even when a cancellation is lost.

On Python 3.11 `asyncio.wait_for` returns normally when its caller is cancelled just as the
awaited operation completes (redis-py sent every command that way): the cancellation is
gone. `Store.close` cancelled its reaper once and awaited it, and the reaper, which only
stopped when cancelled, ran on: the close hung forever. The backend double below loses
the cancellations that reach it inside a request, the worst case of that race.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from vlcp.store import Store
from vlcp.store.lifecycle import BackgroundTasks, stop_loops

from .test_transaction import MemoryBackend


async def _ends_within(
    seconds: float, work: Awaitable[object], unstick: Callable[[], None]
) -> bool:
    """Whether `work` ends within `seconds`. If not, `unstick()` lets the tasks it waits
    for honour cancellations again and `work` is cancelled: a regression then fails the
    test instead of hanging it (pytest-timeout cannot interrupt a loop this busy)."""
    running = asyncio.ensure_future(work)
    done, _ = await asyncio.wait([running], timeout=seconds)
    if not done:
        unstick()
        running.cancel()
        await asyncio.wait([running], timeout=5)
    return bool(done)


class LosingBackend(MemoryBackend):
    """Liveness requests swallow the cancellations that arrive while they run."""

    def __init__(self, lose: float = math.inf) -> None:
        super().__init__()
        self.lose = lose
        """How many more cancellations to swallow."""
        self.requests = 0
        self.closed = False

    async def request(self) -> None:
        """A request that completes even when cancelled, as 3.11's wait_for can make it."""
        self.requests += 1
        try:
            await asyncio.sleep(0.005)
        except asyncio.CancelledError:
            if self.lose <= 0:
                raise
            self.lose -= 1

    async def live_refresh(self, session_id: str, ttl: float) -> bool:
        await self.request()
        return True

    async def live_sessions(self) -> set[str]:
        await self.request()
        return set()

    async def close(self) -> None:
        self.closed = True


async def test_close_ends_reaper_and_refresher_whose_cancellations_are_lost() -> None:
    for _round in range(20):
        backend = LosingBackend()
        store = Store(backend, reap_interval=0)
        await store.open_session(ttl=0.01)  # refreshed every 3 ms
        while backend.requests < 5:  # the reaper and the refresher are busy
            await asyncio.sleep(0.001)

        def unstick(backend: LosingBackend = backend, store: Store = store) -> None:
            backend.lose = 0
            if store._reaper is not None:
                store._reaper.cancel()

        assert await _ends_within(5, store.close(), unstick), "Store.close hung"
        assert backend.closed
        assert store._reaper is not None and store._reaper.done()


async def test_stop_loops_cancels_again_until_the_task_ends() -> None:
    backend = LosingBackend(lose=2)

    async def requests_forever() -> None:
        while True:
            await backend.request()

    task = asyncio.create_task(requests_forever())
    await asyncio.sleep(0.02)
    assert await _ends_within(5, stop_loops([task]), lambda: setattr(backend, "lose", 0))
    assert task.cancelled() and backend.lose == 0


async def test_stop_loops_leaves_a_task_that_never_ends_after_the_timeout() -> None:
    backend = LosingBackend()

    async def requests_forever() -> None:
        while True:
            await backend.request()

    task = asyncio.create_task(requests_forever(), name="stubborn")
    await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await stop_loops([task], timeout=0.6) is False
    assert 0.6 <= loop.time() - began < 2.0
    assert not task.done()
    backend.lose = 0
    task.cancel()
    await asyncio.wait([task], timeout=1)
    assert task.cancelled()


async def test_background_tasks_cancel_is_bounded_when_a_cancellation_is_lost() -> None:
    backend = LosingBackend(lose=2)
    tasks = BackgroundTasks()

    async def requests_forever() -> None:
        while True:
            await backend.request()

    tasks.spawn(requests_forever())
    await asyncio.sleep(0.02)

    def unstick() -> None:
        backend.lose = 0
        for task in list(tasks._tasks):
            task.cancel()

    assert await _ends_within(5, tasks.cancel(), unstick), "BackgroundTasks.cancel hung"
    assert not tasks._tasks and backend.lose == 0
