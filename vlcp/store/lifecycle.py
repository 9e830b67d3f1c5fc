"""Opening and closing a networked backend, shared by ZooKeeper, etcd and Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

from .backend import Backend

B = TypeVar("B", bound=Backend)

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0
"""Seconds `stop_tasks` waits for cancelled tasks before leaving them behind."""
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


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], *, timeout: float = STOP_TIMEOUT) -> bool:
    """Cancel `tasks` and wait until they have ended, for at most `timeout` seconds.

    One `cancel()` is not enough: a cancellation can be lost. On Python 3.11,
    `asyncio.wait_for` (which redis-py awaits on every command it sends) returns normally
    when its caller is cancelled just as the awaited operation completes, and a loop that
    relies on that cancellation then runs forever. So a task still running is cancelled
    again every quarter of a second, and one still running after `timeout` (a task that
    ignores cancellation) is logged and left behind instead of being waited for forever.

    Meant for loops without cleanup that awaits (a later cancellation would cut it short).
    Returns True when every task ended. Their results and errors are dropped.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = set(tasks)
    for task in pending:
        task.add_done_callback(_drop_result)
    while pending := {task for task in pending if not task.done()}:
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning(
                "%d task(s) still running %g s after being cancelled, left behind: %s",
                len(pending),
                timeout,
                ", ".join(sorted(task.get_name() for task in pending)),
            )
            return False
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=min(_RECANCEL_INTERVAL, remaining))
    return True


def _drop_result(task: asyncio.Task[Any]) -> None:
    """Mark the outcome as retrieved, so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()


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
        """Cancel every task and wait until they have all ended (bounded, see `stop_tasks`)."""
        await stop_tasks(list(self._tasks))
