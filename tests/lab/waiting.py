"""Waiting for a condition from an async test: the asyncio twin of the lab's ``wait_until``.

End-to-end tests wait on what the system does (a port up, a key gone, flows converged),
never for a fixed time; a timeout names what was awaited and, if given, the evidence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

INTERVAL = 0.05


async def eventually(
    predicate: Callable[[], Awaitable[bool]],
    timeout: float = 20.0,
    *,
    what: str = "the condition",
    details: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Return once ``predicate()`` is true; fail after ``timeout`` seconds naming ``what``.

    ``details()`` runs on timeout, to say why (logs, the last state seen).
    """
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(INTERVAL)
    except TimeoutError:
        extra = f"\n{await details()}" if details is not None else ""
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{extra}") from None


async def settled(
    count: Callable[[], int], quiet: float = 0.5, timeout: float = 20.0, *, what: str = "a count"
) -> int:
    """Return ``count()`` once it has not changed for ``quiet`` seconds (packets still
    queued somewhere have arrived); fail after ``timeout`` seconds naming ``what``."""
    last = -1

    async def unchanged() -> bool:
        nonlocal last
        before, last = last, count()
        if before == last:
            return True
        await asyncio.sleep(quiet)
        return False

    await eventually(unchanged, timeout, what=f"{what} to settle")
    return last
