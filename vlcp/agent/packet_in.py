"""Packet-ins to the module that asked for them, within each port's limit.

A module's flow sends a packet to the controller from one of the module's own tables
(`vlcp.pipeline.module.PacketIn`); the switch's packet-in names that table, so the loaded
`ModuleSet` finds the handler (`ModuleSet.packet_in`). For each packet-in the dispatcher:

1. drops it, counted, if no loaded module handles its table (an unloaded module's flows
   are gone, but packets already queued, or sent by a switch's stale flows after a
   restart, still arrive);
2. checks it is a whole Ethernet frame from a port (`Malformed` otherwise; a handler
   raises `BadPacket` for a packet malformed in its own protocol, counted the same way);
3. spends a token of that port's bucket for that kind of packet, so a VIF flooding the
   controller costs its own packets only (`PortRateLimiter`, one per handled table);
4. calls the handler, pure, with the module's context, the current view and the packet
   (with the NETWORK register ingress set, when it did);
5. sends the packet-outs the handler returns: the only I/O, done here; and hands what
   it learned (`Learned`, an ARP answer) to `on_learned`, the agent's.

Nothing a packet or a handler does stops the controller: a malformed packet, a handler
that raises, a packet-out the switch cannot take are counted per module, logged at most
once per `LOG_INTERVAL` per kind and module (`LogThrottle`), and dropped. The counters
stay on the dispatcher (`counters`, `unhandled`) for operators and the module status; a
summary is logged with the first packet-in after each `REPORT_INTERVAL`.

The switch has to be asked for packet-ins: on OVS, a connection to a bridge's management
socket (what the agent dials by default) is a "service" connection, which gets no
asynchronous message until the controller sets a non-zero `miss_send_len`, so every
switch that connects gets a SET_CONFIG asking for whole packets. (A controller the bridge
dials is a "primary" one, already sent packet-ins; the request is harmless there.) The
role stays the default, equal, whose asynchronous configuration includes packet-ins for
`controller()` actions.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import Protocol

from vlcp.pipeline.catalog import ModuleSet
from vlcp.pipeline.fields import NETWORK
from vlcp.pipeline.module import BadPacket, Context, Learned, PacketIn, PacketOut, Received
from vlcp.pipeline.ratelimit import PortRateLimiter
from vlcp.pipeline.view import View
from vlcp.southbound.openflow.flow import Action, output
from vlcp.southbound.openflow.messages import PacketIn as SwitchPacketIn
from vlcp.southbound.openflow.server import Connected, Switch, SwitchEvent
from vlcp.southbound.openflow.server import Received as SwitchReceived

from .log_throttle import LogThrottle

log = logging.getLogger(__name__)

ETHERNET_HEADER = 14
WHOLE_PACKETS = 0xFFFF
"""OFPCML_NO_BUFFER as miss_send_len: whole packets, never a switch buffer id."""
LOG_INTERVAL = 60.0
"""Seconds between two log lines about the same kind of drop in one module."""
REPORT_INTERVAL = 300.0
"""Seconds between two summaries of the counters."""


class Malformed(ValueError):
    """A packet-in that is not a whole Ethernet frame from a switch port."""


@dataclass(slots=True)
class Counters:
    """What became of one module's packet-ins since the controller started."""

    received: int = 0
    """Every packet-in from one of the module's tables, while it was loaded."""
    malformed: int = 0
    limited: int = 0
    """Over its port's rate: dropped before the handler saw it."""
    handled: int = 0
    """The handler answered, and its packet-outs (if any) were sent."""
    errors: int = 0
    """The handler raised or answered something else than packet-outs, or a packet-out
    could not be sent."""

    def dropped(self) -> tuple[int, int, int]:
        return (self.malformed, self.limited, self.errors)

    def __str__(self) -> str:
        return ", ".join(f"{getattr(self, f.name)} {f.name}" for f in fields(self))


class PacketSender(Protocol):
    """What the dispatcher needs of a switch connection (`Switch` has it)."""

    def packet_out(self, data: bytes, actions: Iterable[Action]) -> int: ...


class PacketInDispatcher:
    """Routes one agent's packet-ins to the loaded modules' handlers (module docstring).

    `modules` and `view` are read at each packet, so a module loaded, unloaded or
    reloaded, and a view caught up, apply to the next packet without telling anyone.
    `view` returns None until the agent has one: packets then count as unhandled.
    """

    def __init__(
        self,
        modules: Callable[[], ModuleSet | None],
        view: Callable[[], View | None],
        *,
        clock: Callable[[], float] = time.monotonic,
        on_learned: Callable[[Learned, float], None] | None = None,
    ) -> None:
        self._modules = modules
        self._view = view
        self._clock = clock
        self._on_learned = on_learned
        self.counters: dict[str, Counters] = {}
        """Per module, by name (kept after it is unloaded)."""
        self.unhandled: Counter[str] = Counter()
        """Packet-ins no loaded module handled, by table name (or id, for a foreign table)."""
        self._limiters: dict[str, tuple[PacketIn, PortRateLimiter]] = {}
        """Table -> its declaration and buckets; a reloaded module's new declaration gets
        new buckets, any other change of the module set keeps them."""
        self._throttle = LogThrottle(log, LOG_INTERVAL)
        self._reported_at = clock()
        self._reported: tuple[dict[str, Counters], Counter[str]] = ({}, Counter())
        """The counters as last logged."""

    # ------------------------------------------------------------ events

    def on_event(self, event: SwitchEvent) -> None:
        """One event of the OpenFlow server (see `FlowManager`'s `on_event`)."""
        if isinstance(event, Connected):
            self.configure(event.switch)
        elif isinstance(event, SwitchReceived) and isinstance(event.event, SwitchPacketIn):
            self.dispatch(event.switch, event.event)

    def configure(self, switch: Switch) -> None:
        """Ask a newly connected switch for whole packet-ins (see the module docstring)."""
        try:
            switch.send(switch.codec.set_config(miss_send_len=WHOLE_PACKETS))
        except Exception as exc:  # closed already: the next connection asks again
            log.info("%r: could not ask for packet-ins: %s", switch, exc)

    def dispatch(self, switch: PacketSender, packet: SwitchPacketIn) -> None:
        """Handle one packet-in from `switch`; never raises."""
        now = self._clock()
        modules = self._modules()
        found = modules.packet_in(packet.table_id) if modules is not None else None
        view = self._view()
        if found is None or view is None:
            table = modules.pipeline.name_of(packet.table_id) if modules else str(packet.table_id)
            self.unhandled[table] += 1
            self._throttle.log(
                ("unhandled", table),
                now,
                logging.INFO,
                "packet-in from table %s dropped: %s",
                table,
                "no view yet" if found is not None else "no loaded module handles it",
            )
        else:
            context, declared = found
            module = modules.catalog.table_owner[declared.table]
            self._handle(switch, module, context, declared, view, packet, now)
        if now - self._reported_at >= REPORT_INTERVAL:
            self.report(now)

    # ------------------------------------------------------------ one packet

    def _handle(
        self,
        switch: PacketSender,
        module: str,
        context: Context,
        declared: PacketIn,
        view: View,
        packet: SwitchPacketIn,
        now: float,
    ) -> None:
        counters = self.counters.setdefault(module, Counters())
        counters.received += 1
        try:
            received = parse(packet)
        except Malformed as exc:
            self._malformed(counters, module, packet.in_port, exc, now)
            return
        if not self._limiter(declared).allow(received.in_port, now):
            counters.limited += 1  # no log line: the summary counts them
            return
        try:
            answers = list(declared.handler(context, view, received))
            wrong = [a for a in answers if not isinstance(a, (PacketOut, Learned))]
            if wrong:
                raise TypeError(f"a handler answers PacketOut or Learned, not {wrong[0]!r}")
            for answer in answers:
                if isinstance(answer, PacketOut):
                    switch.packet_out(answer.data, (output(answer.port),))
                elif self._on_learned is not None:
                    self._on_learned(answer, now)
        except BadPacket as exc:
            self._malformed(counters, module, received.in_port, exc, now)
            return
        except Exception as exc:  # the packet is lost, the controller is not
            counters.errors += 1
            self._throttle.log(
                ("error", module),
                now,
                logging.WARNING,
                "%s: packet-in from port %d (table %s) failed: %r",
                module,
                received.in_port,
                declared.table,
                exc,
                exc_info=exc,
            )
            return
        counters.handled += 1

    def _malformed(
        self, counters: Counters, module: str, port: int | None, exc: ValueError, now: float
    ) -> None:
        counters.malformed += 1
        self._throttle.log(
            ("malformed", module),
            now,
            logging.WARNING,
            "%s: malformed packet-in from port %s dropped: %s",
            module,
            port,
            exc,
        )

    def _limiter(self, declared: PacketIn) -> PortRateLimiter:
        entry = self._limiters.get(declared.table)
        if entry is None or entry[0] is not declared:
            entry = self._limiters[declared.table] = (declared, declared.limiter())
        return entry[1]

    # ------------------------------------------------------------ reporting

    def report(self, now: float) -> None:
        """Log the counters if they changed (a warning if packets were dropped since the
        last report), and forget the ports whose buckets refilled, so memory follows the
        ports sending now."""
        for _, limiter in self._limiters.values():
            limiter.prune(now)
        self._reported_at = now
        before_counters, before_unhandled = self._reported
        if self.counters == before_counters and self.unhandled == before_unhandled:
            return
        dropped = self.unhandled != before_unhandled or any(
            c.dropped() != before_counters.get(m, Counters()).dropped()
            for m, c in self.counters.items()
        )
        modules = "; ".join(f"{m}: {c}" for m, c in sorted(self.counters.items()))
        unhandled = ", ".join(f"{t}: {n}" for t, n in sorted(self.unhandled.items()))
        log.log(
            logging.WARNING if dropped else logging.INFO,
            "packet-ins since start: %s; unhandled: %s",
            modules or "none",
            unhandled or "none",
        )
        self._reported = (
            {m: replace(c) for m, c in self.counters.items()},
            Counter(self.unhandled),
        )


def parse(packet: SwitchPacketIn) -> Received:
    """What a handler sees of a packet-in: its port, its network (the NETWORK register,
    None when ingress did not set it) and the whole frame."""
    if packet.in_port is None:
        raise Malformed("no in_port")
    if len(packet.data) < ETHERNET_HEADER:
        raise Malformed(f"{len(packet.data)} bytes: not an Ethernet frame")
    if len(packet.data) < packet.total_len:
        raise Malformed(f"truncated to {len(packet.data)} of {packet.total_len} bytes")
    register = dict(packet.match_fields).get(NETWORK.reg)
    network = NETWORK.extract(register) if isinstance(register, int) else 0
    return Received(packet.in_port, network or None, packet.data)
