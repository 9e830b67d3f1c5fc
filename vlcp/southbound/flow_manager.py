"""Connects the reconcilers to the switches that come and go on an OpenFlow server.

One `Reconciler` per datapath id holds that bridge's desired flows whether or not the
switch is connected; when the switch (re)connects it is attached (its table read and
only the difference applied), when it goes away it is detached and its flows stay. A
`MeterKeeper` per datapath id does the same for the bridge's meters, before the flows
(OVS binds a flow to its meter when the flow is added); a meter it cannot set holds no
flow back.

The manager is the one reader of the server's events; `on_event` sees each of them first
(the agent's packet-in dispatch), so another consumer needs no queue of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..tasks import stop_tasks
from .meters import MeterKeeper
from .openflow.channel import ConnectionClosed
from .openflow.server import Connected, Disconnected, OpenFlowServer, Switch, SwitchEvent
from .reconciler import Plan, Reconciler

log = logging.getLogger(__name__)

SyncedCallback = Callable[[Switch, Reconciler, Plan], Awaitable[None] | None]
EventCallback = Callable[[SwitchEvent], None]


class FlowManager:
    """Keeps every connected bridge's flows equal to its reconciler's desired set."""

    def __init__(
        self,
        server: OpenFlowServer,
        *,
        on_synced: SyncedCallback | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        self.server = server
        self.on_synced = on_synced
        self.on_event = on_event
        """Called with every event of the server, before the manager acts on it."""
        self.reconcilers: dict[int, Reconciler] = {}
        self.meters: dict[int, MeterKeeper] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def reconciler(self, dpid: int) -> Reconciler:
        """The reconciler of one bridge, created (and started) on first use."""
        if dpid not in self.reconcilers:
            reconciler = Reconciler(f"dpid {dpid:016x}")
            self.reconcilers[dpid] = reconciler
            self._spawn(reconciler.run())
        return self.reconcilers[dpid]

    def meter_keeper(self, dpid: int) -> MeterKeeper:
        """The meters of one bridge, created on first use."""
        if dpid not in self.meters:
            self.meters[dpid] = MeterKeeper(f"dpid {dpid:016x}")
        return self.meters[dpid]

    async def run(self) -> None:
        """Follow the server's connection events until cancelled."""
        try:
            while True:
                event = await self.server.events.get()
                if self.on_event is not None:
                    try:
                        self.on_event(event)
                    except Exception:  # its bug must not stop the flows of every bridge
                        log.exception("event callback failed on %r", event)
                if isinstance(event, Connected):
                    self._spawn(self._attach(event.switch))
                elif isinstance(event, Disconnected):
                    reconciler = self.reconcilers.get(event.switch.dpid)
                    if reconciler is not None:
                        reconciler.detach()
                    if (keeper := self.meters.get(event.switch.dpid)) is not None:
                        keeper.detach()
        finally:
            await stop_tasks(self._tasks)

    async def dial(self, target: str, *, retry: float = 0.2) -> None:
        """Stay connected to a switch that listens, such as a bridge's `<bridge>.mgmt` socket.

        Dialling beats waiting to be dialled: a restarted controller is back in
        milliseconds, while vswitchd's own reconnect backoff would take seconds.
        """
        while True:
            try:
                switch = await self.server.connect(target)
            except (OSError, ConnectionError, TimeoutError) as exc:
                log.debug("%s: cannot connect yet: %s", target, exc)
                await asyncio.sleep(retry)
                continue
            except ConnectionClosed as exc:  # a switch too busy to say hello in time
                log.info("%s: connection closed before it was ready: %s", target, exc)
                await asyncio.sleep(retry)
                continue
            await switch.wait_closed()
            await asyncio.sleep(retry)

    async def _attach(self, switch: Switch) -> None:
        reconciler = self.reconciler(switch.dpid)
        try:  # meters first: a flow added before the meter it names stays unmetered
            await self.meter_keeper(switch.dpid).attach(switch)
        except Exception as exc:  # packet-ins stay bounded by the controller meanwhile
            log.warning("%s: could not read or set meters: %s", switch, exc)
        try:
            plan = await reconciler.attach(switch)
            await reconciler.synced()
        except Exception as exc:  # the switch reconnects, and we try again then
            log.warning("%s: could not reconcile: %s", switch, exc)
            switch.close(f"reconcile failed: {exc}")
            return
        if self.on_synced is not None:
            result = self.on_synced(switch, reconciler, plan)
            if asyncio.iscoroutine(result):
                await result

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
