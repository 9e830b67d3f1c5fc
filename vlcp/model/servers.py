"""Servers as the store knows them: a controller's presence and what it announced.

A server's port announcements (`netports/...`, `lport-status/...`) are durable: they
outlive its controller, so that a crash, a restart or a store outage never withdraws a
port anywhere. When a server is gone for good (decommissioned, dead hardware), the
operator says so, and `forget_server` withdraws what it announced, so the other servers
stop delivering to it, and drops its module set and module report, so changes made for
every server stop checking against a controller that will never run again.
"""

from __future__ import annotations

from typing import Any

from vlcp.layout import NETPORTS, PORT_STATUSES, chassis_key, module_status, modules_key
from vlcp.store import Store, Transaction

from .errors import Conflict

BATCH = 400
"""Keys per transaction (each read, and deleted if still the server's)."""


async def forget_server(store: Store, system_id: str, *, force: bool = False) -> int:
    """Withdraw every port `system_id` announces, and drop its module set and report;
    returns how many port announcements (keys) were removed.

    Refused (409) while the server's controller is present, since it would announce its
    ports again at once; `force` withdraws them anyway. Each key is deleted only if it
    still names the server, so a port that moved to another server meanwhile stays.
    """
    if not force and (await store.read([chassis_key(system_id)])).values:
        raise Conflict(
            f"server {system_id!r} is running (its controller holds {chassis_key(system_id)}); "
            "stop it first, or force"
        )
    locations = await store.read_prefix(NETPORTS)
    statuses = await store.read_prefix(PORT_STATUSES)
    keys = [
        key
        for key, value in {**locations.values, **statuses.values}.items()
        if _names(value, system_id)
    ]
    removed = 0
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]

        async def withdraw(txn: Transaction, batch: list[str] = batch) -> int:
            current = await txn.get_many(batch)
            mine = [key for key in batch if _names(current[key], system_id)]
            for key in mine:
                txn.delete(key)
            return len(mine)

        removed += await store.transact(withdraw)

    async def drop_modules(txn: Transaction) -> None:
        for key in (modules_key(system_id), module_status(system_id)):
            txn.delete(key)

    await store.transact(drop_modules)
    return removed


def _names(value: Any, system_id: str) -> bool:
    return isinstance(value, dict) and value.get("host") == system_id
