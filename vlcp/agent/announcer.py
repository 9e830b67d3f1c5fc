"""Where this server's ports are: durable announcements that no restart can withdraw.

For each port it binds, a controller writes `netports/<network>/<port>` (how the other
servers reach it) and `lport-status/<port>` (up, here, since when). These are plain keys
owned by the server by name (`host`), not by a liveness session: a controller that
crashes, restarts, or loses the store for an hour leaves them as they are, so the other
servers keep delivering to its endpoints, which keep working on their switch. They are
removed only by a decision: this server unplugging or yielding the port, the port's
deletion (the model removes both keys), or an operator forgetting the server
(`vlcp server forget`).

Every write is conditional, in the transaction that makes it, so that racing servers
and API calls never undo one another:

- a port is announced only while it exists (a deletion racing an announcement wins);
- a withdrawal deletes the location, and marks the status down, only where they still
  name this server (a newer binding elsewhere has taken them over: they are left alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vlcp.layout import LPORT, netports_key, port_status
from vlcp.store import Store, Transaction

BATCH = 300
"""Ports per transaction: each reads at most 2 keys and writes at most 2 (the store
allows 1000 of each), with room for entries of a few hundred bytes in 400 KiB."""


@dataclass(frozen=True)
class Location:
    """A port bound here, as the other servers need to see it."""

    network: str
    entry: dict[str, Any]
    """The `netports/` value: {"host", "vtep", "mac", "ip", "bound_at"}."""


class Announcer:
    """Writes and withdraws one server's announcements, a few transactions per burst."""

    def __init__(self, store: Store, host: str) -> None:
        self.store = store
        self.host = host

    async def announce(self, ports: Mapping[str, Location], since: float) -> None:
        """Mark `ports` (port id -> where) up on this server, taking them over if needed."""
        for batch in _batches(ports):

            async def write(txn: Transaction, batch: list[str] = batch) -> None:
                exists = await txn.get_many(f"{LPORT}{port}" for port in batch)
                for port in batch:
                    if exists[f"{LPORT}{port}"] is None:
                        continue  # deleted meanwhile: announcing it would resurrect it
                    location = ports[port]
                    txn.put(netports_key(location.network, port), location.entry)
                    status = {"state": "up", "host": self.host, "since": since}
                    txn.put(port_status(port), status)

            await self.store.transact(write)

    async def withdraw(self, ports: Mapping[str, str], since: float) -> None:
        """Withdraw `ports` (port id -> the network it was announced in) from this server.

        Their location goes and their status turns down, where both still name this
        server; a port already taken over by another server is left to it.
        """
        for batch in _batches(ports):

            async def remove(txn: Transaction, batch: list[str] = batch) -> None:
                keys = [netports_key(ports[port], port) for port in batch]
                current = await txn.get_many([*keys, *(port_status(p) for p in batch)])
                for port, key in zip(batch, keys, strict=True):
                    if self._mine(current[key]):
                        txn.delete(key)
                    status = current[port_status(port)]
                    if self._mine(status) and status.get("state") != "down":
                        txn.put(port_status(port), {**status, "state": "down", "since": since})

            await self.store.transact(remove)

    def _mine(self, value: Any) -> bool:
        return isinstance(value, dict) and value.get("host") == self.host


def _batches(ports: Mapping[str, Any]) -> list[list[str]]:
    ids = sorted(ports)
    return [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
