"""The one bounded polling loop behind every lab ``wait_until``.

The namespace lab (:func:`vlcp.lab.netns.wait_until`) and the service lab
(:func:`vlcp.lab.services.wait_until`) wait for different things and report timeouts
differently, but poll the same way: call, judge the result, sleep, give up at a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(
    condition: Callable[[], T],
    *,
    timeout: float,
    interval: float,
    done: Callable[[T | None], bool],
    timeout_error: Callable[[Exception | None], BaseException],
    ignore: tuple[type[Exception], ...] = (),
    fatal: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``condition`` every ``interval`` until ``done(result)``, and return that result.

    Exceptions in ``ignore`` count as "not yet" (result None), except those in ``fatal``,
    which propagate at once like anything else. At the deadline, the exception built by
    ``timeout_error(last ignored exception)`` is raised, chained to that exception.
    """
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        result: T | None = None
        try:
            result = condition()
        except fatal:
            raise
        except ignore as exc:
            last_exc = exc
        if done(result):
            return result  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise timeout_error(last_exc) from last_exc
        time.sleep(interval)
