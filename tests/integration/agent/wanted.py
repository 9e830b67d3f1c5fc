"""Writing a wanted module set as the API does, for tests that drive an agent in process."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vlcp.layout import MODULES_ALL, modules_key
from vlcp.store import Store, Transaction
from vlcp.wanted_set import WantedSet


async def want(
    store: Store,
    modules: Iterable[str],
    *,
    server: str | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """`server`'s own wanted set (None: `modules-all`), with the modules' settings."""
    key = modules_key(server) if server is not None else MODULES_ALL
    document = WantedSet(frozenset(modules), settings=dict(settings or {})).value()

    async def write(txn: Transaction) -> None:
        txn.put(key, document)

    await store.transact(write)
