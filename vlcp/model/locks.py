"""Per-key mutual exclusion inside one process, free of deadlocks by construction.

Transactions of one process that write the same state document would only conflict and
retry; taking a lock per contended key first lets them run one after the other, so 200
concurrent creations in one subnet cost 200 commits, not thousands of retries. Other
processes are still handled by the store's optimistic retries.

A task takes all the keys it needs at once or waits holding none (`take`), or grabs more
keys only when they are free at that instant (`try_take`), so no two tasks ever wait for
each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


class KeyLocks:
    def __init__(self) -> None:
        self._held: dict[str, asyncio.Future[None]] = {}

    def try_take(self, keys: Iterable[str]) -> bool:
        """Take every key if all are free now; otherwise take none."""
        keys = set(keys)
        if any(k in self._held for k in keys):
            return False
        loop = asyncio.get_running_loop()
        for key in keys:
            self._held[key] = loop.create_future()
        return True

    async def take(self, keys: Iterable[str]) -> None:
        """Wait until every key is free, then take them all (the caller holds no key)."""
        keys = set(keys)
        while not self.try_take(keys):
            busy = next(self._held[k] for k in keys if k in self._held)
            await asyncio.shield(busy)

    def release(self, keys: Iterable[str]) -> None:
        for key in keys:
            future = self._held.pop(key, None)
            if future is not None and not future.done():
                future.set_result(None)

    def __len__(self) -> int:
        return len(self._held)
