"""Opening and closing a networked backend, shared by ZooKeeper, etcd and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from .backend import Backend

B = TypeVar("B", bound=Backend)


async def start_or_close(backend: B, start: Callable[[], Awaitable[object]]) -> B:
    """`backend` once `start()` succeeded; closed again when it fails or is cancelled,
    so that a failed open leaves no connection or client thread behind."""
    try:
        await start()
    except BaseException:
        await backend.close()
        raise
    return backend


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
        """Cancel every task and wait until they have all ended (their errors are dropped)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
