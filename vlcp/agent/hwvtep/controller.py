"""One switch's VTEP controller: the store and the switch's `hardware_vtep` OVSDB, in step.

Any number of instances may run for one switch (on different machines, for failover): each
asks the switch's ovsdb-server for the OVSDB lock `vlcp_vtep_<switch>`, and only the owner
writes, each of its transactions fenced by an `assert` of the lock, so a stale owner that
lost the lock while a transaction was on its way writes nothing. ovsdb-server frees the lock
with its owner's connection, so when an instance dies the next one in line gets it and
starts from the rows it finds (`plan` writes only the difference).

Both directions are level-triggered: a change of the store (bindings, networks, ports) or
of the switch (a reconnect, a learned MAC, someone else's write) only wakes the loop, which
computes the whole difference again. Coalescing bursts this way costs one pass over one
switch's rows, and a failed write is simply retried by the next pass.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any

from vlcp.layout import (
    LOGNET,
    PHYSNET,
    REMOTES,
    VTEP_MACS,
    vtep_bindings,
    vtep_mac_switch,
    vtep_switch,
)
from vlcp.southbound.ovsdb import Monitor, OvsdbClient, OvsdbError, ops
from vlcp.store import Store, StoreError, Transaction
from vlcp.tasks import stop_tasks

from ..mirror import Mirror
from .plan import plan
from .wanted import Tables, learned, wanted

log = logging.getLogger(__name__)

DB = "hardware_vtep"
TABLES = (
    "Physical_Switch",
    "Physical_Port",
    "Logical_Switch",
    "Physical_Locator",
    "Physical_Locator_Set",
    "Ucast_Macs_Local",
    "Ucast_Macs_Remote",
    "Mcast_Macs_Local",
    "Mcast_Macs_Remote",
)
RETRY = 1.0
"""Seconds before a pass that failed (switch or store unreachable, a conflict) runs again."""
STORE_BATCH = 333
"""Learned-MAC keys written per store transaction (the store takes at most 1000 keys)."""


def lock_name(switch: str) -> str:
    """The OVSDB lock of one switch (a lock id has only letters, digits and '_')."""
    return "vlcp_vtep_" + re.sub(r"[^A-Za-z0-9_]", "_", switch)


class VtepController:
    """Keeps `switch` (behind the OVSDB `manager` target) equal to the store, while this
    instance holds the switch's lock."""

    def __init__(self, store: Store, manager: str, switch: str, node: str) -> None:
        self.store = store
        self.switch = switch
        self.node = node
        self.client = OvsdbClient(manager)
        self.monitor = Monitor(self.client, DB, TABLES)
        self.report_key = vtep_switch(switch)
        prefixes = (LOGNET, PHYSNET, *REMOTES, vtep_bindings(switch), self.report_key)
        self.mirror = Mirror(store, prefixes)
        self.lock = lock_name(switch)
        self.active = asyncio.Event()
        """Set while this instance holds the lock (tests and logs watch it)."""
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled: follow the store, wait for the lock, keep both sides in step."""
        wake = self._wake.set
        self.mirror.add_listener(lambda keys: wake())
        self.monitor.add_listener(lambda changes: wake())
        self.client.on_lock_change(self._lock_changed)
        tasks = [asyncio.create_task(self.mirror.run(), name="vtep-mirror")]
        try:
            await self.client.start(wait=False)
            await self.monitor.start(wait=False)
            await self.client.lock(self.lock)
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self.client.has_lock(self.lock) and self.monitor.synced:
                    await self._pass()
        finally:
            await stop_tasks(tasks)
            await self.monitor.stop()
            await self.client.close()

    def _lock_changed(self, name: str, owned: bool) -> None:
        if name != self.lock:
            return
        log.info("%s %s lock %s", self.node, "took" if owned else "lost", name)
        if owned:
            self.active.set()
        else:
            self.active.clear()
        self._wake.set()

    async def _pass(self) -> None:
        """Write the switch's difference, then the store's; retry later if either fails."""
        await self.mirror.ready.wait()
        tables = self.monitor.tables
        try:
            await self._write_switch(tables)
            await self._write_store(tables)
        except (OvsdbError, OSError, StoreError) as exc:
            log.warning("switch %s: pass failed (%s), retrying in %g s", self.switch, exc, RETRY)
            asyncio.get_running_loop().call_later(RETRY, self._wake.set)

    async def _write_switch(self, tables: Tables) -> None:
        want = wanted(self.mirror.values, self.mirror.netports, self.switch)
        operations = plan(tables, self.switch, want)
        if operations:
            log.info("switch %s: %d operations", self.switch, len(operations))
            fenced = [ops.assert_lock(self.lock), *operations, ops.comment(f"vlcp {self.node}")]
            await self.client.transact(DB, fenced)

    async def _write_store(self, tables: Tables) -> None:
        """The MACs the switch learned (`vtep-macs/`) and what it reports (`vtep-switch/`)."""
        fresh: dict[str, Any] = learned(tables, self.switch)
        fresh[self.report_key] = self._report(tables)
        current = {k: v for k, v in self.mirror.values.items() if self._mine(k)}
        current[self.report_key] = self.mirror.get(self.report_key)
        writes = [(k, v) for k, v in fresh.items() if current.get(k) != v]
        writes += [(k, None) for k in current if k not in fresh]
        for start in range(0, len(writes), STORE_BATCH):
            batch = writes[start : start + STORE_BATCH]
            await self.store.transact(lambda txn, b=batch: _put_all(txn, b))

    def _mine(self, key: str) -> bool:
        return key.startswith(VTEP_MACS) and vtep_mac_switch(key) == self.switch

    def _report(self, tables: Tables) -> dict[str, Any]:
        """The switch as the API lists it: description, tunnel IPs, ports and bindings."""
        names = {u: row["name"] for u, row in tables.get("Logical_Switch", {}).items()}
        ports = tables.get("Physical_Port", {})
        for row in tables.get("Physical_Switch", {}).values():
            if row.get("name") == self.switch:
                bound = {
                    str(ports[u]["name"]): _bindings(ports[u].get("vlan_bindings"), names)
                    for u in row.get("ports") or ()
                    if u in ports
                }
                return {
                    "description": row.get("description") or "",
                    "tunnel_ips": sorted(row.get("tunnel_ips") or ()),
                    "management_ips": sorted(row.get("management_ips") or ()),
                    "switch_fault_status": sorted(row.get("switch_fault_status") or ()),
                    "ports": dict(sorted(bound.items())),
                    "controller": self.node,
                }
        return {"missing": True, "controller": self.node}


def _bindings(vlan_bindings: Any, names: Mapping[Any, Any]) -> dict[str, str]:
    """{vlan (as text: a JSON key): logical switch name}."""
    return {str(v): str(names.get(u, u)) for v, u in sorted((vlan_bindings or {}).items())}


async def _put_all(txn: Transaction, writes: list[tuple[str, Any]]) -> None:
    for key, value in writes:
        if value is None:
            txn.delete(key)
        else:
            txn.put(key, value)
