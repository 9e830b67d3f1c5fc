"""An in-memory copy of the parts of the store a controller reads, kept by one watch.

A controller's mirror is scoped (`Store.subscribe`): of the objects that grow with the
cluster it holds only the networks and ports its view names (`scope`, fed from
`LocalView.scopes`), plus the small prefixes of `prefixes` whole; it starts from a
snapshot of those alone and drops a scope's values when it is no longer named (see
docs/store-backends.md, "Scoped watches"). A VTEP controller's mirror follows its
prefixes whole. What the controller then *computes* is limited to its own endpoints (see
`view_builder.py`), so the mirror also keeps the indexes that computation needs, to never
scan itself: the ports announced in each network, the subnets of each network, the
routers attached to each subnet and the physical-port objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from vlcp.layout import (
    LOGNET,
    LPORT,
    PHYSNET,
    PHYSPORT,
    REMOTES,
    ROUTER,
    SUBNET,
    scope_of,
    split_remote_key,
    watched_scopes,
)
from vlcp.store import Resync, ScopeResync, Store, Subscription, WatchEvent

log = logging.getLogger(__name__)

VIEW_PREFIXES = (PHYSNET, PHYSPORT, LOGNET, LPORT, *REMOTES)
"""What the view is built from (`view_builder`): the objects of the networks and ports,
where ports are (`netports/<network>/<port>`) and the MACs hardware VTEP switches learned
(`vtep-macs/<network>/...`), which are remote endpoints like other servers' ports. The
agent adds what its known modules watch (`Catalog.watches`): the servers' presence
(`chassis/`) only through module `external`, whose forwarding servers are elected from it."""

Listener = Callable[[set[str]], None]


class Mirror:
    """Values of the watched prefixes, and the keys each commit changed."""

    def __init__(
        self, store: Store, prefixes: Iterable[str] = VIEW_PREFIXES, *, scoped: bool = False
    ) -> None:
        self.store = store
        self.prefixes = tuple(prefixes)
        self.scoped = scoped
        """A controller's mirror: of the `SCOPED` prefixes, only the networks and ports
        given to `scope`; otherwise every key under `prefixes` (a VTEP controller)."""
        self.subscription: Subscription | None = None
        self._scopes: set[str] = set()
        self.values: dict[str, Any] = {}
        self.netports: dict[str, dict[str, Any]] = {}
        """Index: network id -> {endpoint id: its `netports/<network>/<port>` or
        `vtep-macs/<network>/<switch>/<mac>` entry} (`layout.split_remote_key`)."""
        self.physports: dict[str, Any] = {}
        """Index: every `physport/...` object by key (a handful per cluster)."""
        self.subnets: dict[str, dict[str, Any]] = {}
        """Index: network id -> {subnet id: its `subnet/<id>` object} (when watched)."""
        self.routers: dict[str, set[str]] = {}
        """Index: subnet id -> the ids of the routers with an interface on it (when watched)."""
        self.revision = 0
        self.ready = asyncio.Event()
        self._listeners: list[Listener] = []

    @classmethod
    def snapshot(cls, values: Mapping[str, Any]) -> Mirror:
        """A mirror of these values and their indexes, never run: what `build_view`
        reads, built from scratch (so tests compare it with the indexes kept live)."""
        mirror = cls(store=None)  # type: ignore[arg-type]  # never run
        for key, value in values.items():
            mirror.apply_change(key, value)
        return mirror

    def follow(self, *prefixes: str) -> None:
        """Watch these prefixes (or single keys) too; before `run`, for keys named after
        this server, whose id is known only once OVSDB is read."""
        self.prefixes = (*self.prefixes, *prefixes)

    def scope(self, scopes: Iterable[str]) -> None:
        """Follow these network and port scopes (`layout.network_scope`, `port_scope`)
        besides the fixed ones of `prefixes`: values of scopes no longer named go."""
        self._scopes = set(scopes)
        if self.subscription is not None:
            self.subscription.update(watched_scopes(self.prefixes) | self._scopes)

    @property
    def settled(self) -> bool:
        """Every scope asked for is read: the view built now is the whole view (until the
        next `scope` call names more)."""
        return not self.scoped or (self.subscription is not None and self.subscription.settled)

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

    def routers_on(self, subnet: str) -> set[str]:
        """The routers with an interface on a subnet (do not modify)."""
        return self.routers.get(subnet, set())

    def apply_change(self, key: str, value: Any) -> None:
        """Store one key's new value (None: deleted) and keep the indexes in step."""
        if key.startswith(SUBNET):
            self._index_subnet(key.removeprefix(SUBNET), self.values.get(key), value)
        elif key.startswith(ROUTER):
            self._index_router(key.removeprefix(ROUTER), self.values.get(key), value)
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

    def _index_router(self, router_id: str, old: Any, new: Any) -> None:
        for value, add in ((old, False), (new, True)):
            for subnet in _interface_subnets(value):
                routers = self.routers.setdefault(subnet, set())
                if add:
                    routers.add(router_id)
                else:
                    routers.discard(router_id)
                if not routers:
                    del self.routers[subnet]

    async def run(self) -> None:
        """Follow the store forever (a task); survives store outages (the watch resumes)."""
        if self.scoped:
            self.subscription = self.store.subscribe(watched_scopes(self.prefixes) | self._scopes)
            items: AsyncIterator[WatchEvent | Resync | ScopeResync] = aiter(self.subscription)
        else:
            prefixes = [p for p in self.prefixes if p.endswith("/")]
            keys = [k for k in self.prefixes if not k.endswith("/")]
            items = self.store.watch(prefixes=prefixes, keys=keys)
        async for item in items:
            if isinstance(item, ScopeResync):
                changed = self._rescope(item)
            elif isinstance(item, Resync):
                changed = self._resync(item)
            else:
                changed = self._apply(item)
            self.revision = max(self.revision, item.revision)
            # A Resync holds every value of the store, wanted or not: not until the next
            # change, which may be hours away.
            del item
            self.ready.set()
            if changed:
                for listener in self._listeners:
                    listener(changed)

    def _resync(self, resync: Resync) -> set[str]:
        """Replace the mirror by a complete state; the keys that changed."""
        fresh = resync.values  # the watch delivers only what the mirror follows
        changed = set(fresh) ^ set(self.values)
        changed |= {k for k in fresh if k in self.values and fresh[k] != self.values[k]}
        for key in changed:
            self.apply_change(key, fresh.get(key))
        return changed

    def _rescope(self, resync: ScopeResync) -> set[str]:
        """Replace the values of some scopes (none: they were dropped); the keys that
        changed. The mirror holds only followed scopes, so one pass over it is small."""
        fresh = resync.values
        scopes = resync.scopes
        gone = {k for k in self.values if k not in fresh and scope_of(k) in scopes}
        changed = gone | {k for k, v in fresh.items() if self.values.get(k) != v}
        for key in changed:
            self.apply_change(key, fresh.get(key))
        return changed

    def _apply(self, event: WatchEvent) -> set[str]:
        """Apply one commit's changes (the watch delivers only followed keys); their keys."""
        for change in event.changes:
            self.apply_change(change.key, change.value)
        return {change.key for change in event.changes}


def _interface_subnets(router: Any) -> list[str]:
    """The subnets a stored router has interfaces on (nothing for malformed data)."""
    interfaces = router.get("interfaces") if isinstance(router, dict) else None
    if not isinstance(interfaces, list):
        return []
    return [
        i["subnet"] for i in interfaces if isinstance(i, dict) and isinstance(i.get("subnet"), str)
    ]


def _put(index: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        index.pop(key, None)
    else:
        index[key] = value
