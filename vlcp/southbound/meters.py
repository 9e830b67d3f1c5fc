"""Keeps one bridge's OpenFlow meters equal to the wanted set, next to its flows.

The meters are the switch's half of the packet-in bound: each local port's packet-ins
go through the port's own meter (`vlcp.pipeline.module.to_controller`), so a VIF that
floods the controller is cut down on the switch, before a packet-in is even sent, and
costs the others nothing. The controller's token buckets (`vlcp.agent.packet_in`) bound
what gets through in any case, on switches without meters too.

Meters are kept apart from the flows because little ties them together: the flows name
their meter in a controller2 action, which OVS takes whether or not the meter exists and
keeps when the meter goes. Only one order matters: OVS binds the action to the meter
when the flow is added, so a flow added before its meter stays unmetered; the agent
syncs the meters first (and `FlowManager` attaches them first). A failure here never
holds a flow back. Like the reconciler, the keeper never touches a switch before the wanted set is
complete (`complete`): a restarted controller first knows every port, then deletes only
the meters no port wants. Changes are incremental (the ids changed since the last sync);
the switch's whole meter table is read once per connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from .openflow.channel import ConnectionClosed
from .openflow.codec import Codec
from .openflow.messages import Meter, MeterSupport

log = logging.getLogger(__name__)


class MeterTarget(Protocol):
    """The switch side of the keeper (a connected bridge, `Switch`)."""

    async def meter_support(self) -> MeterSupport: ...

    async def meters(self) -> list[Meter]: ...

    async def send_meter_mods(self, mods: list[bytes]) -> None: ...

    @property
    def codec(self) -> Codec: ...


class MeterKeeper:
    """The meters one bridge should hold (by owner: a port) and the switch holding them."""

    def __init__(self, name: str = "bridge") -> None:
        self.name = name
        self._by_owner: dict[str, Meter] = {}
        self._wanted: dict[int, Meter] = {}
        self._refs: dict[int, int] = {}
        self._changed: set[int] = set()
        self._installed: dict[int, Meter] | None = None
        """What the switch holds, as last read or written; None: read it at the next sync."""
        self._switch: MeterTarget | None = None
        self._support: MeterSupport | None = None
        self._complete = False
        self._lock = asyncio.Lock()
        self.meter_mods_sent = 0

    # -- wanted state (no I/O) -----------------------------------------------------------

    def set_meter(self, owner: str, meter: Meter | None) -> None:
        """`owner`'s meter is now `meter` (None: it has none)."""
        old = self._by_owner.get(owner)
        if old == meter:
            return
        if old is not None:
            del self._by_owner[owner]
            self._release(old.meter_id)
        if meter is not None:
            self._by_owner[owner] = meter
            self._refs[meter.meter_id] = self._refs.get(meter.meter_id, 0) + 1
            self._wanted[meter.meter_id] = meter
            self._changed.add(meter.meter_id)

    def replace(self, meters: dict[str, Meter]) -> None:
        """Every owner's meter at once: owners not in `meters` have none."""
        for owner in self._by_owner.keys() - meters.keys():
            self.set_meter(owner, None)
        for owner, meter in meters.items():
            self.set_meter(owner, meter)

    def _release(self, meter_id: int) -> None:
        self._refs[meter_id] -= 1
        if not self._refs[meter_id]:
            del self._refs[meter_id]
            del self._wanted[meter_id]
        self._changed.add(meter_id)

    def complete(self) -> None:
        """The wanted set holds every owner: the switch may be changed from now on."""
        self._complete = True

    def wanted(self) -> dict[int, Meter]:
        return dict(self._wanted)

    # -- the switch ------------------------------------------------------------------------

    async def attach(self, switch: MeterTarget) -> None:
        """A (re)connected switch: find what it can hold, then make it hold the wanted set."""
        support = await switch.meter_support()
        async with self._lock:
            self._switch, self._support, self._installed = switch, support, None
        if not support.usable:
            log.info(
                "%s: no usable meters: packet-ins are bounded by the controller only", self.name
            )
        await self.sync()

    def detach(self) -> None:
        self._switch = None

    async def sync(self) -> None:
        """Send what changed since the last sync (everything that differs, after an attach)."""
        async with self._lock:
            switch, support = self._switch, self._support
            if switch is None or support is None or not support.usable or not self._complete:
                return
            try:
                if self._installed is None:
                    self._installed = {m.meter_id: m for m in await switch.meters()}
                    ids = self._installed.keys() | self._wanted.keys()
                else:
                    ids = set(self._changed)
                self._changed.clear()
                mods = self._mods(switch, support, ids)
                if mods:
                    await switch.send_meter_mods(mods)
                    self.meter_mods_sent += len(mods)
                for meter_id in ids:
                    self._set_installed(meter_id, support)
            except ConnectionClosed:
                self._switch = None
            except Exception as exc:  # packet-ins stay bounded by the controller meanwhile
                log.warning(
                    "%s: meters not updated, read again at the next change: %s", self.name, exc
                )
                self._installed = None

    def _mods(self, switch: MeterTarget, support: MeterSupport, ids: set[int]) -> list[bytes]:
        assert self._installed is not None
        mods = []
        for meter_id in sorted(ids):
            wanted = self._wanted.get(meter_id) if meter_id <= support.max_meter else None
            held = self._installed.get(meter_id)
            if wanted == held:
                continue
            if wanted is None:
                mods.append(switch.codec.meter_mod("delete", held))
            else:
                mods.append(switch.codec.meter_mod("add" if held is None else "modify", wanted))
        return mods

    def _set_installed(self, meter_id: int, support: MeterSupport) -> None:
        assert self._installed is not None
        wanted = self._wanted.get(meter_id) if meter_id <= support.max_meter else None
        if wanted is None:
            self._installed.pop(meter_id, None)
        else:
            self._installed[meter_id] = wanted
