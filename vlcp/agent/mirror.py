"""An in-memory copy of the parts of the store a controller reads, kept by one watch.

The store's change log carries every commit to every watcher anyway (see
docs/store-backends.md), so one watch over everything, filtered here to the prefixes a
controller uses, costs no more than many narrow watches and has one revision order. What
the controller then *computes* is limited to its own endpoints (see `view_builder.py`),
so the mirror also keeps the indexes that computation needs, to never scan itself: the
ports announced in each network, the subnets of each network and the physical-port
objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from vlcp.layout import LOGNET, LPORT, PHYSNET, PHYSPORT, REMOTES, SUBNET, split_remote_key
from vlcp.store import Resync, Store

log = logging.getLogger(__name__)

VIEW_PREFIXES = (PHYSNET, PHYSPORT, LOGNET, LPORT, *REMOTES)
"""What the view is built from (`view_builder`): the objects of the networks and ports,
where ports are (`netports/<network>/<port>`) and the MACs hardware VTEP switches learned
(`vtep-macs/<network>/...`), which are remote endpoints like other servers' ports. The
agent adds what its known modules watch (`Catalog.watches`). Not the servers' presence
(`chassis/`): whether a controller runs changes no flow anywhere."""

Listener = Callable[[set[str]], None]


class Mirror:
    """Values of the watched prefixes, and the keys each commit changed."""

    def __init__(self, store: Store, prefixes: Iterable[str] = VIEW_PREFIXES) -> None:
        self.store = store
        self.prefixes = tuple(prefixes)
        self.values: dict[str, Any] = {}
        self.netports: dict[str, dict[str, Any]] = {}
        """Index: network id -> {endpoint id: its `netports/<network>/<port>` or
        `vtep-macs/<network>/<switch>/<mac>` entry} (`layout.split_remote_key`)."""
        self.physports: dict[str, Any] = {}
        """Index: every `physport/...` object by key (a handful per cluster)."""
        self.subnets: dict[str, dict[str, Any]] = {}
        """Index: network id -> {subnet id: its `subnet/<id>` object} (when watched)."""
        self.revision = 0
        self.ready = asyncio.Event()
        self._listeners: list[Listener] = []

    def follow(self, *prefixes: str) -> None:
        """Watch these prefixes (or single keys) too; before `run`, for keys named after
        this server, whose id is known only once OVSDB is read."""
        self.prefixes = (*self.prefixes, *prefixes)

    def add_listener(self, listener: Listener) -> None:
        """`listener(changed_keys)` after each applied commit or resync."""
        self._listeners.append(listener)

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def netports_of(self, network: str) -> dict[str, Any]:
        """The ports announced in a network: {port id: entry} (do not modify)."""
        return self.netports.get(network, {})

    def subnets_of(self, network: str) -> dict[str, Any]:
        """The subnets of a network: {subnet id: object} (do not modify)."""
        return self.subnets.get(network, {})

    def _wanted(self, key: str) -> bool:
        return key.startswith(self.prefixes)

    def apply_change(self, key: str, value: Any) -> None:
        """Store one key's new value (None: deleted) and keep the indexes in step."""
        if key.startswith(SUBNET):
            self._index_subnet(key.removeprefix(SUBNET), self.values.get(key), value)
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value
        if key.startswith(PHYSPORT):
            _put(self.physports, key, value)
        elif key.startswith(REMOTES):
            network, port = split_remote_key(key)
            ports = self.netports.setdefault(network, {})
            _put(ports, port, value)
            if not ports:
                del self.netports[network]

    def _index_subnet(self, subnet_id: str, old: Any, new: Any) -> None:
        for value, put in ((old, None), (new, new)):
            network = value.get("logicalnetwork") if isinstance(value, dict) else None
            if not isinstance(network, str):
                continue
            subnets = self.subnets.setdefault(network, {})
            _put(subnets, subnet_id, put)
            if not subnets:
                del self.subnets[network]

    async def run(self) -> None:
        """Follow the store forever (a task); survives store outages (the watch resumes)."""
        async for item in self.store.watch(prefix=""):
            if isinstance(item, Resync):
                fresh = {k: v for k, v in item.values.items() if self._wanted(k)}
                changed = set(fresh) ^ set(self.values)
                changed |= {k for k in fresh if k in self.values and fresh[k] != self.values[k]}
                for key in changed:
                    self.apply_change(key, fresh.get(key))
            else:
                changed = set()
                for change in item.changes:
                    if self._wanted(change.key):
                        changed.add(change.key)
                        self.apply_change(change.key, change.value)
            self.revision = item.revision
            self.ready.set()
            if changed:
                for listener in self._listeners:
                    listener(changed)


def _put(index: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        index.pop(key, None)
    else:
        index[key] = value
