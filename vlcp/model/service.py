"""The model's entry point: `Model` runs each request as one store transaction.

Operations (`ops.apply`) work inside a store transaction, so a batch composes many of
them in ONE transaction and succeeds whole or changes nothing. `Model` adds what a
transaction function cannot:

- per-key locks so one process's transactions on the same parent queue instead of
  retrying against each other (`locks.KeyLocks`);
- errors are only answered after the reads they rest on are confirmed unchanged (an
  optimistic transaction that fails would otherwise never validate them);
- store failures become `Busy` (503) or `Invalid` (too large), never a bare StoreError.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from vlcp.layout import (
    LOGNET_STATE,
    PHYSNET_STATE,
    ROUTER,
    SUBNET_STATE,
    VNI_RANGES,
    VTEP_BINDING,
    VTEP_SWITCH,
    port_status,
)
from vlcp.store import (
    ConflictRetriesExhausted,
    InvalidKey,
    InvalidValue,
    Resync,
    Store,
    StoreError,
    StoreUnavailable,
    Transaction,
    TransactionTooLarge,
)
from vlcp.store.errors import Conflict as StoreConflict
from vlcp.store.limits import MAX_TXN_READS

from . import vtep
from .common import prefix_reader
from .errors import Busy, Invalid, ModelError, NotFound, TimedOut
from .keys import check_id
from .kind import Kind
from .kinds import BY_NAME, NAMES, ROUTER_INTERFACES
from .locks import KeyLocks
from .lport import LPORTS
from .modules import Change, change_modules, modules_view
from .ops import Op, apply, lock_hint
from .router import ROUTERS

T = TypeVar("T")

CONTENDED = (PHYSNET_STATE, LOGNET_STATE, SUBNET_STATE, ROUTER, VNI_RANGES)
"""Keys that many transactions write: in one process they take turns (see `KeyLocks`)."""
MAX_LIST = 10000


class _NeedLocks(Exception):
    def __init__(self, keys: set[str]) -> None:
        self.keys = keys


class _Unconfirmed(Exception):
    """An error whose reads changed before it could be confirmed: run again."""


class Model:
    """The logical network model over one store (many `Model`s may share a store)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._locks = KeyLocks()

    # -- writes: one transaction each ----------------------------------------------------

    async def create(self, kind: str, body: dict) -> dict:
        return await self._one(Op("create", kind, body=body))  # type: ignore[return-value]

    async def update(self, kind: str, id: str, body: dict) -> dict:
        return await self._one(Op("update", kind, id, body))  # type: ignore[return-value]

    async def delete(self, kind: str, id: str) -> None:
        await self._one(Op("delete", kind, id))

    async def add_router_interface(self, router: str, body: dict) -> dict:
        return await self._one(Op("create", ROUTER_INTERFACES, router, body))  # type: ignore[return-value]

    async def remove_router_interface(self, router: str, subnet: str) -> None:
        await self._one(Op("delete", ROUTER_INTERFACES, router, {"subnet": subnet}))

    async def batch(self, ops: list[Op]) -> list[dict | None]:
        """All operations in ONE transaction: every one succeeds, or nothing changes."""

        async def run(txn: Transaction) -> list[dict | None]:
            results = []
            for index, op in enumerate(ops):
                try:
                    results.append(await apply(txn, op))
                except ModelError as exc:
                    name = f" {op.id}" if op.id else ""
                    what = f"operation {index} ({op.action} {op.kind}{name})"
                    raise exc.within(what, f"ops[{index}]") from None
            return results

        hint = set().union(*(lock_hint(op) for op in ops)) if ops else set()
        return await self.transact(run, hint)

    async def _one(self, op: Op) -> dict | None:
        return await self.transact(lambda txn: apply(txn, op), lock_hint(op))

    async def transact(
        self, fn: Callable[[Transaction], Awaitable[T]], hint: Iterable[str] = ()
    ) -> T:
        """Run `fn` as one store transaction, with the model's locking and error mapping.

        For callers composing their own operations with `apply` (e.g. a plural VLCP call).
        `hint`: contended keys `fn` will write, if known (see `ops.lock_hint`).
        """
        held: set[str] = set()
        hint = set(hint)

        async def attempt(txn: Transaction) -> T:
            try:
                result = await fn(txn)
            except ModelError:
                await self._confirm(txn)
                raise
            needed = {k for k in txn.writes if k.startswith(CONTENDED)} - held
            if needed:
                if not self._locks.try_take(needed):
                    raise _NeedLocks(needed)
                held.update(needed)
            return result

        token = prefix_reader.set(self.store.read_prefix)
        try:
            if hint:
                await self._locks.take(hint)
                held.update(hint)
            for _attempt in range(self.store.max_attempts):
                try:
                    return await self.store.transact(attempt)
                except _NeedLocks as exc:
                    wanted = held | exc.keys
                    self._locks.release(held)
                    held.clear()
                    await self._locks.take(wanted)
                    held.update(wanted)
                except _Unconfirmed:
                    continue
            raise Busy("the store is too contended right now; nothing was written, retry")
        except ConflictRetriesExhausted as exc:
            raise Busy(
                f"the store is too contended right now ({exc}); nothing was written"
            ) from None
        except StoreUnavailable as exc:
            if exc.maybe_applied:  # a commit whose answer was lost for good
                raise Busy(
                    f"the store is unavailable ({exc}); the change may or may not have been "
                    "made: read before retrying"
                ) from None
            raise Busy(f"the store is unavailable ({exc}); nothing was written") from None
        except TransactionTooLarge as exc:
            raise Invalid(f"the request is too large for one transaction: {exc}") from None
        except (InvalidKey, InvalidValue) as exc:
            raise Invalid(str(exc)) from None
        except StoreError as exc:
            raise Busy(f"store error ({type(exc).__name__}: {exc}); nothing was written") from None
        finally:
            prefix_reader.reset(token)
            self._locks.release(held)

    async def _confirm(self, txn: Transaction) -> None:
        """Check that what a failing transaction read is still current (else run it again)."""
        if not txn.read_versions:
            return
        try:
            await self.store.backend.commit(txn.read_versions, {})
        except StoreConflict:
            raise _Unconfirmed from None

    # -- reads -------------------------------------------------------------------------------

    async def get(self, kind: str, id: str) -> dict:
        found = _kind(kind)
        check_id(id)
        key = found.key(id)
        value = (await self._read([key])).get(key)
        if value is None:
            raise NotFound(f"{found.noun} {id} does not exist")
        return value

    async def list(
        self,
        kind: str,
        filters: dict[str, object] | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> list[dict]:
        """Objects of `kind` sorted by id, those after `after`, matching every filter."""
        prefix = _kind(kind).prefix
        if not 1 <= limit <= MAX_LIST:
            raise Invalid(f"limit: {limit} is not in 1..{MAX_LIST}", field="limit")
        try:
            snapshot = await self.store.read_prefix(prefix)
        except StoreError as exc:
            raise Busy(f"the store is unavailable ({exc})") from None
        result = []
        for key in sorted(snapshot.values):
            item = snapshot.values[key]
            if after is not None and item["id"] <= after:
                continue
            if all(_matches(item.get(f), v) for f, v in (filters or {}).items()):
                result.append(item)
                if len(result) >= limit:
                    break
        return result

    async def list_router_interfaces(self, router: str) -> list[dict]:
        return list((await self.get(ROUTERS.name, router))["interfaces"])

    async def get_port(self, id: str) -> dict:
        """A logical port with its "status", both read in one snapshot.

        The status (`{"state", "host", "since"}`) is what the server binding the port last
        reported; None until a server has reported the port. It is not part of the stored
        object, which the agent never writes.
        """
        check_id(id)
        keys = [LPORTS.key(id), port_status(id)]
        values = await self._read(keys)
        port = values.get(keys[0])
        if port is None:
            raise NotFound(f"logical port {id} does not exist")
        return {**port, "status": values.get(keys[1])}

    async def port_status(self, id: str) -> dict | None:
        """The status the binding server wrote, None before any; NotFound without the port."""
        return (await self.get_port(id))["status"]

    async def port_statuses(self, ids: Sequence[str]) -> dict[str, dict | None]:
        """The status of each port of `ids` (None when none was reported), in one read per
        `MAX_TXN_READS` ports (a page of a list is one read), whatever the number of ports."""
        for id in ids:
            check_id(id)
        result: dict[str, dict | None] = {}
        for start in range(0, len(ids), MAX_TXN_READS):
            chunk = ids[start : start + MAX_TXN_READS]
            values = await self._read([port_status(id) for id in chunk])
            result.update({id: values.get(port_status(id)) for id in chunk})
        return result

    async def wait_port_up(self, id: str, timeout: float) -> dict:
        """The port with its "status" once a server reports it up; TimedOut (408) before.

        Waits on a store watch of the port and its status (no polling).
        """
        check_id(id)
        port_key, status_key = LPORTS.key(id), port_status(id)
        state: dict[str, Any] = dict(await self._read([port_key, status_key]))
        try:
            async with asyncio.timeout(max(timeout, 0)):
                watch = self.store.watch(keys=[port_key, status_key])
                try:
                    while True:
                        port, status = state.get(port_key), state.get(status_key)
                        if port is None:
                            raise NotFound(f"logical port {id} does not exist")
                        if isinstance(status, dict) and status.get("state") == "up":
                            return {**port, "status": status}
                        item = await anext(watch)
                        if isinstance(item, Resync):
                            state = dict(item.values)
                        else:
                            for change in item.changes:
                                state[change.key] = change.value
                finally:
                    await watch.aclose()
        except TimeoutError:
            raise TimedOut(f"logical port {id} is not up after {timeout:g} s") from None

    # -- modules: what each server's controller runs (see `modules.py`) -------------------

    async def modules(self, server: str | None = None) -> dict:
        """Every server's modules (or `server`'s): reported, wanted, and still pending."""
        if server is not None:
            check_id(server, "server")
        try:
            return await modules_view(self.store, server)
        except StoreError as exc:
            raise Busy(f"the store is unavailable ({exc})") from None

    async def change_modules(self, change: Change, server: str | None = None) -> dict:
        """Load, unload or reload modules on `server`, or on every server (None): one
        transaction; returns the wanted sets written ({"all", "servers"})."""
        if server is not None:
            check_id(server, "server")
        return await self.transact(lambda txn: change_modules(txn, change, server))

    # -- hardware VTEP bindings (see `vtep.py`) ------------------------------------------

    async def bind_vtep(self, body: Any) -> dict:
        """Bind a switch port's VLAN to a vxlan logical network (one transaction)."""
        return await self.transact(lambda txn: vtep.bind(txn, body))

    async def unbind_vtep(
        self, switch: str, port: str, vlan: int, network: str | None = None
    ) -> None:
        await self.transact(lambda txn: vtep.unbind(txn, switch, port, vlan, network))

    async def unbind_vtep_port(self, switch: str, port: str) -> list[dict]:
        """Every binding of a port, removed in one transaction; returns them."""
        return await self.transact(lambda txn: vtep.unbind_port(txn, switch, port))

    async def vtep_bindings(self, switch: str | None = None) -> list[dict]:
        if switch is not None:
            check_id(switch, "physicalswitch")
        return vtep.bindings_of(await self._read_prefix(VTEP_BINDING), switch)

    async def vtep_switches(self, switch: str | None = None) -> list[dict]:
        """The switches (or `switch`) as their controllers report them, with their bindings."""
        bindings = await self.vtep_bindings(switch)
        reports = await self._read_prefix(VTEP_SWITCH)
        listed = vtep.switches_of(reports, bindings)
        return [s for s in listed if switch is None or s["name"] == switch]

    async def _read_prefix(self, prefix: str) -> dict[str, Any]:
        try:
            return (await self.store.read_prefix(prefix)).values
        except StoreError as exc:
            raise Busy(f"the store is unavailable ({exc})") from None

    async def _read(self, keys: list[str]) -> dict[str, Any]:
        try:
            return (await self.store.read(keys)).values
        except StoreError as exc:
            raise Busy(f"the store is unavailable ({exc})") from None


def _kind(name: str) -> Kind:
    kind = BY_NAME.get(name)
    if kind is None:
        raise NotFound(f"unknown kind {name!r} (one of {', '.join(NAMES)})")
    return kind


def _matches(value: object, wanted: object) -> bool:
    """Equality, and a text filter (from a query string) also matches a number or bool."""
    if value == wanted and type(value) is type(wanted):
        return True
    return isinstance(wanted, str) and not isinstance(value, str) and json.dumps(value) == wanted
