"""Keeps one bridge's flow table equal to the desired set, without ever flushing it.

Input: the desired flows, grouped by owner (a port, a network, a module). Output: the
switch holds exactly their union. The reconciler is the only code that changes flows.

- While connected, changes are incremental: an owner's new set is compared with its old
  one, and only flows whose last owner let go are deleted, only flows nobody had yet are
  added.
- On (re)connect it reads the switch's table and applies the difference. Flows carry a
  content-derived cookie (see `openflow.flow`), so a flow with a desired cookie is already
  right and is left alone: a controller restart with the same desired state sends no
  flow-mod at all, and packets keep flowing throughout.
- Additions go before deletions, in one OpenFlow bundle where the switch offers it, so a
  packet meets either the old table or the new one, never a hole.
- Nothing is read or changed on a switch before its owner declares the desired state
  complete (`desired_complete`): a controller still loading the store would otherwise
  take every installed flow for unwanted and flush the switch. Until then a switch that
  connects keeps what it holds, and the first reconcile happens once the state is known.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .openflow.flow import Flow

log = logging.getLogger(__name__)

Owner = Hashable


class InstalledEntry(Protocol):
    """A flow as read back from the switch: only its cookie matters here."""

    cookie: int


class FlowTarget(Protocol):
    """The switch side of the reconciler (a connected bridge)."""

    async def read_flows(self) -> list[InstalledEntry]:
        """Every flow the switch holds, in all tables."""

    async def apply(self, adds: list[Flow], deletes: list[Flow | InstalledEntry]) -> None:
        """Add then delete (strictly, by match, priority and cookie), atomically if possible."""


@dataclass
class Plan:
    """Flow-mods that take a table from what it holds to what is desired."""

    adds: list[Flow] = field(default_factory=list)
    deletes: list[Flow | InstalledEntry] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.adds) + len(self.deletes)


def plan_full(desired: dict[int, Flow], installed: Iterable[InstalledEntry]) -> Plan:
    """The difference between a switch's whole table and the desired flows, by cookie."""
    plan = Plan()
    present: set[int] = set()
    for entry in installed:
        if entry.cookie in desired and entry.cookie not in present:
            present.add(entry.cookie)
        else:
            plan.deletes.append(entry)  # not ours, no longer wanted, or a duplicate
    plan.adds = [flow for cookie, flow in desired.items() if cookie not in present]
    return plan


class Reconciler:
    """The desired flows of one bridge, and the task that makes the switch hold them."""

    def __init__(self, name: str = "bridge", *, retry_delay: float = 0.5) -> None:
        self.name = name
        self.retry_delay = retry_delay
        self._dirty = False
        self._by_owner: dict[Owner, frozenset[Flow]] = {}
        self._refs: dict[int, int] = {}
        self._desired: dict[int, Flow] = {}
        self._installed: dict[int, Flow | InstalledEntry] = {}
        self._to_add: dict[int, Flow] = {}
        self._to_delete: dict[int, Flow | InstalledEntry] = {}
        self._target: FlowTarget | None = None
        self._io = asyncio.Lock()
        self._complete = asyncio.Event()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self.flow_mods_sent = 0
        """Flow-mods sent since creation (adds + deletes): what a reconnect costs."""

    # -- desired state (pure bookkeeping, no I/O) ------------------------------------------

    def set_flows(self, owner: Owner, flows: Iterable[Flow]) -> None:
        """Make `owner`'s flows exactly `flows` (an empty set removes the owner)."""
        new = frozenset(flows)
        old = self._by_owner.get(owner, frozenset())
        if new == old:
            return
        if new:
            self._by_owner[owner] = new
        else:
            self._by_owner.pop(owner, None)
        for flow in new - old:
            self._acquire(flow)
        for flow in old - new:
            self._release(flow)
        self._schedule()

    def remove_owner(self, owner: Owner) -> None:
        self.set_flows(owner, ())

    def owners(self) -> frozenset[Owner]:
        """Every owner that has flows."""
        return frozenset(self._by_owner)

    def desired_complete(self) -> None:
        """The desired set now holds every owner's flows: the switch may be reconciled.

        Call it once, after the first full compilation of the bridge's state. Before it,
        `attach` waits and the incremental task sends nothing, so an incomplete set can
        never delete a flow that is still wanted.
        """
        self._complete.set()

    @property
    def is_complete(self) -> bool:
        return self._complete.is_set()

    def desired(self) -> dict[int, Flow]:
        """The union of every owner's flows, by cookie."""
        return dict(self._desired)

    def _acquire(self, flow: Flow) -> None:
        count = self._refs.get(flow.cookie, 0)
        self._refs[flow.cookie] = count + 1
        if count:
            return
        self._desired[flow.cookie] = flow
        if self._to_delete.pop(flow.cookie, None) is None and flow.cookie not in self._installed:
            self._to_add[flow.cookie] = flow

    def _release(self, flow: Flow) -> None:
        count = self._refs[flow.cookie] - 1
        if count:
            self._refs[flow.cookie] = count
            return
        del self._refs[flow.cookie]
        del self._desired[flow.cookie]
        if self._to_add.pop(flow.cookie, None) is None and flow.cookie in self._installed:
            self._to_delete[flow.cookie] = self._installed[flow.cookie]

    # -- the switch ---------------------------------------------------------------------

    async def attach(self, target: FlowTarget) -> Plan:
        """A (re)connected switch: read its table and apply only the difference.

        Waits until the desired state is complete (`desired_complete`); the switch keeps
        every flow it holds meanwhile.
        """
        if not self._complete.is_set():
            log.info("%s: switch connected; reconciling once the desired state is known", self.name)
            await self._complete.wait()
        async with self._io:
            self._target = target
            return await self._resync(target)

    def detach(self) -> None:
        """The switch went away: its flows stay; the next `attach` reads them again."""
        self._target = None

    async def _resync(self, target: FlowTarget) -> Plan:
        installed = await target.read_flows()
        plan = plan_full(self._desired, installed)
        await self._send(target, plan)
        deleted = {id(e) for e in plan.deletes}
        self._installed = {e.cookie: e for e in installed if id(e) not in deleted}
        self._installed.update((f.cookie, f) for f in plan.adds)
        # The desired set may have changed while we talked to the switch: queue the rest.
        self._to_add = {c: f for c, f in self._desired.items() if c not in self._installed}
        self._to_delete = {c: e for c, e in self._installed.items() if c not in self._desired}
        self._dirty = False
        log.info("%s: reconciled: +%d -%d flows", self.name, len(plan.adds), len(plan.deletes))
        self._schedule()
        return plan

    async def _send(self, target: FlowTarget, plan: Plan) -> None:
        if plan:
            await target.apply(plan.adds, plan.deletes)
            self.flow_mods_sent += len(plan)

    async def run(self) -> None:
        """Apply incremental changes while a switch is attached (run as a task)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            async with self._io:
                target = self._target
                if target is None:
                    continue
                try:
                    if self._dirty:
                        await asyncio.sleep(self.retry_delay)
                        if self._target is target:
                            await self._resync(target)
                    else:
                        await self._apply_pending(target)
                except Exception as exc:
                    log.warning("%s: updating the switch failed: %s", self.name, exc)
                    self._dirty = True
                    self._wake.set()

    async def _apply_pending(self, target: FlowTarget) -> None:
        adds, deletes = self._to_add, self._to_delete
        self._to_add, self._to_delete = {}, {}
        await self._send(target, Plan(list(adds.values()), list(deletes.values())))
        self._installed.update(adds)
        for cookie in deletes:
            self._installed.pop(cookie, None)
        self._schedule()

    def _schedule(self) -> None:
        """Wake the task if there is work; otherwise tell waiters the switch is in sync."""
        if self._to_add or self._to_delete or self._dirty:
            self._idle.clear()
            self._wake.set()
        elif self._target is not None:
            self._idle.set()

    async def synced(self) -> None:
        """Return once the attached switch holds every desired flow (ready means ready)."""
        await self._idle.wait()
