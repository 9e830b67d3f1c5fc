"""Opening and closing a networked backend, shared by ZooKeeper, etcd and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

from ..tasks import stop_tasks
from .backend import Backend

B = TypeVar("B", bound=Backend)

STOP_TIMEOUT = 10.0
"""Seconds `stop_loops` waits for cancelled tasks before leaving them behind."""
_RECANCEL_INTERVAL = 0.25
"""How often a task that is still running is cancelled again (a cancellation can be lost)."""


async def start_or_close(backend: B, start: Callable[[], Awaitable[object]]) -> B:
    """`backend` once `start()` succeeded; closed again when it fails or is cancelled,
    so that a failed open leaves no connection or client thread behind."""
    try:
        await start()
    except BaseException:
        await backend.close()
        raise
    return backend


async def stop_loops(tasks: Iterable[asyncio.Task[Any]], *, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the store's background loops (reaper, refreshers, compaction) with
    `vlcp.tasks.stop_tasks`, cancelled again until they end and given up on after `timeout`.

    One `cancel()` is not enough for them: they await backend requests (redis-py's), where on
    Python 3.11 a cancellation can be lost (see `stop_tasks`), and a store's close must not
    hang on a loop that ignores it. The loops have no cleanup that awaits, so cancelling
    them again cuts nothing short. Returns True when every task ended.
    """
    return await stop_tasks(tasks, timeout=timeout, recancel=_RECANCEL_INTERVAL)


class BackgroundTasks:
    """Work a backend starts and does not wait for (log compaction), cancelled at close.

    The set holds a reference to each running task: the event loop keeps only weak ones,
    so an unreferenced task could be garbage-collected before it finishes.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel(self) -> None:
        """Cancel every task and wait until they have all ended (bounded, see `stop_loops`)."""
        await stop_loops(list(self._tasks))
