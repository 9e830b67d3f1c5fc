"""An in-memory copy of the parts of the store a controller reads, kept by one watch.

The store's change log carries every commit to every watcher anyway (see
docs/store-backends.md), so one watch over everything, filtered here to the prefixes a
controller uses, costs no more than many narrow watches and has one revision order. What
the controller then *computes* is limited to its own endpoints (see `view.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from vlcp.store import Resync, Store

log = logging.getLogger(__name__)

PREFIXES = ("physnet/", "physport/", "lognet/", "lport/", "subnet/", "netports/", "chassis/")
"""Objects the pipeline needs, where ports are (`netports/<network>/<port>`) and servers."""

Listener = Callable[[set[str]], None]


class Mirror:
    """Values of the watched prefixes, and the keys each commit changed."""

    def __init__(self, store: Store, prefixes: Iterable[str] = PREFIXES) -> None:
        self.store = store
        self.prefixes = tuple(prefixes)
        self.values: dict[str, Any] = {}
        self.revision = 0
        self.ready = asyncio.Event()
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """`listener(changed_keys)` after each applied commit or resync."""
        self._listeners.append(listener)

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def under(self, prefix: str) -> dict[str, Any]:
        """Every mirrored key starting with `prefix` (a scan: keep prefixes narrow)."""
        return {k: v for k, v in self.values.items() if k.startswith(prefix)}

    def _wanted(self, key: str) -> bool:
        return key.startswith(self.prefixes)

    async def run(self) -> None:
        """Follow the store forever (a task); survives store outages (the watch resumes)."""
        async for item in self.store.watch(prefix=""):
            if isinstance(item, Resync):
                fresh = {k: v for k, v in item.values.items() if self._wanted(k)}
                changed = set(fresh) ^ set(self.values)
                changed |= {k for k in fresh if k in self.values and fresh[k] != self.values[k]}
                self.values = fresh
            else:
                changed = set()
                for change in item.changes:
                    if not self._wanted(change.key):
                        continue
                    changed.add(change.key)
                    if change.value is None:
                        self.values.pop(change.key, None)
                    else:
                        self.values[change.key] = change.value
            self.revision = item.revision
            self.ready.set()
            if changed:
                for listener in self._listeners:
                    listener(changed)
