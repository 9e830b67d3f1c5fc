"""Stopping asyncio tasks: the one way vlcp cancels tasks and waits for them to end.

Every layer stops tasks (the store its reaper and refreshers, the southbound its reconcilers
and OVSDB session hooks, `vlcp run` and `vlcp demo` their agents), and each used to write
its own cancel-and-wait, with its own mistakes: one swallowed the caller's own cancellation
and Ctrl-C, others dropped the errors of the tasks they stopped. This module imports nothing
from vlcp, so that every layer may use it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


async def stop_tasks(
    tasks: Iterable[asyncio.Future[Any]],
    *,
    timeout: float | None = None,
    recancel: float | None = None,
) -> bool:
    """Cancel `tasks` and wait until every one has ended; True when they all did.

    The contract:

    - **Cancelled and waited for.** Each task not yet done is cancelled once. A task that
      ignores that cancellation (it catches CancelledError to clean up, or loses it) is
      waited for, not cancelled again: a second cancellation would cut its cleanup short
      (an agent withdrawing its presence, an API server closing its connections).
    - `recancel`: for loops without cleanup that awaits, cancel a task still running again
      every `recancel` seconds. On Python 3.11 `asyncio.wait_for` (which redis-py awaits on
      every command) returns normally when its caller is cancelled just as the operation
      completes: the cancellation is lost, and a loop that only ends when cancelled runs on.
    - `timeout`: give up after that many seconds; the tasks still running are logged and
      left behind (the result is then False) rather than waited for forever. None (the
      default) waits as long as it takes.
    - **Their errors are logged, not raised.** A task that ended with an exception (before
      or while being stopped) has it logged with its traceback: the caller is stopping, and
      one failing task must neither keep the others running nor replace the caller's own
      exception. A task that ends later (left behind, or after the caller was cancelled)
      has its error logged when it ends. A task's KeyboardInterrupt or SystemExit is not an
      error to log but a request to stop the process: it is raised once every task ended.
    - **The caller's own cancellation is never swallowed.** When the task calling
      `stop_tasks` is cancelled (or interrupted by KeyboardInterrupt) while it waits, that
      propagates at once; the tasks have been cancelled already and end on their own.
    """
    futures = list(dict.fromkeys(tasks))  # each once, in the caller's order
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    pending = [future for future in futures if not future.done()]
    for future in pending:
        future.cancel()
    try:
        while pending:
            wait = recancel
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    log.warning(
                        "%d task(s) still running %g s after being cancelled, left behind: %s",
                        len(pending),
                        timeout,
                        ", ".join(sorted(_name(future) for future in pending)),
                    )
                    break
                wait = remaining if wait is None else min(wait, remaining)
            await asyncio.wait(pending, timeout=wait)
            pending = [future for future in pending if not future.done()]
            if recancel is not None:
                for future in pending:
                    future.cancel()
    except BaseException:  # our own cancellation or Ctrl-C: theirs are reported when they end
        for future in futures:
            future.add_done_callback(_report_later)  # at once for those already done
        raise
    for future in pending:  # left behind after the timeout
        future.add_done_callback(_report_later)
    interrupts = [
        interrupt for future in futures if future.done() and (interrupt := _report(future))
    ]
    if interrupts:
        raise interrupts[0]
    return not pending


def _report(future: asyncio.Future[Any]) -> BaseException | None:
    """Log the error a stopped task ended with; return its KeyboardInterrupt or SystemExit.

    Retrieving the outcome also keeps asyncio from logging "exception was never retrieved".
    """
    if future.cancelled():
        return None
    exc = future.exception()
    if isinstance(exc, Exception):
        log.error("%s failed: %r", _name(future), exc, exc_info=exc)
        return None
    return exc


def _report_later(future: asyncio.Future[Any]) -> None:
    """Done callback for a task that ends after `stop_tasks` returned: nobody is left to
    raise its KeyboardInterrupt or SystemExit to, so that is logged too."""
    interrupt = _report(future)
    if interrupt is not None:
        log.warning("%s ended with %r", _name(future), interrupt)


def _name(future: asyncio.Future[Any]) -> str:
    return future.get_name() if isinstance(future, asyncio.Task) else repr(future)
