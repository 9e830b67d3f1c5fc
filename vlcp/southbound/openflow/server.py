"""The asyncio edge of OpenFlow: sockets in, `OpenFlowChannel` inside, futures out.

All protocol rules live in channel.py; this file only moves bytes, arms the channel's
timer and maps xids to futures. Each connection is an `asyncio.Protocol`, so the event
loop reads every socket in turn (one flooding peer cannot starve the others), write
back-pressure pauses reading, and no per-connection task exists that could die with an
unhandled exception: every callback catches, logs and closes its own connection only.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from vlcp.southbound.openflow.channel import (
    Closed,
    ConnectionClosed,
    Event,
    OpenFlowChannel,
    Ready,
    Reply,
    ReplyKind,
    RequestFailed,
)
from vlcp.southbound.openflow.codec import Codec, Message
from vlcp.southbound.openflow.messages import Features
from vlcp.southbound.openflow.operations import SwitchOperations, Tracked

log = logging.getLogger(__name__)

PER_MESSAGE_TIMEOUT = 0.002
"""Seconds added to `request_timeout` per message of a batch (OVS takes 10-50 µs each;
a switch also busy reconfiguring thousands of ports takes much longer)."""
CLOSE_GRACE = 1.0
"""Seconds a closing connection may spend flushing to a peer that does not read."""


@dataclass(frozen=True, slots=True)
class Connected:
    switch: Switch


@dataclass(frozen=True, slots=True)
class Disconnected:
    switch: Switch
    reason: str


@dataclass(frozen=True, slots=True)
class Received:
    """An asynchronous message: PacketIn, PortStatus, FlowRemoved, ErrorReceived, Unsolicited."""

    switch: Switch
    event: Event


SwitchEvent = Connected | Disconnected | Received


class Switch(SwitchOperations, asyncio.Protocol):
    """One switch connection; usable once `Connected` is posted (or `connect()` returns).

    The operations (request, multipart, barrier, flow_stats, send_flow_mods, packet_out,
    groups) come from `SwitchOperations`; this class supplies the I/O they stand on.
    """

    def __init__(self, server: OpenFlowServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self.channel = OpenFlowChannel(self._loop.time(), **server.channel_options)
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._futures: dict[int, asyncio.Future[tuple[Message, ...]]] = {}
        self._ready: asyncio.Future[Switch] = self._loop.create_future()
        self._ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._bundle_ids = itertools.count(1)
        self.supports_bundles = True
        self.peer: Any = None

    def __repr__(self) -> str:
        dpid = f"{self.features.datapath_id:016x}" if self.features else "?"
        return f"Switch(dpid={dpid}, peer={self.peer!r}, state={self.channel.state.value})"

    @property
    def features(self) -> Features | None:
        return self.channel.features

    @property
    def dpid(self) -> int:
        assert self.features is not None
        return self.features.datapath_id

    @property
    def codec(self) -> Codec:
        assert self.channel.codec is not None
        return self.channel.codec

    @property
    def closed(self) -> bool:
        return self._closed.done()

    # ------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.peer = transport.get_extra_info("peername") or "unix"
        self._server._connections.add(self)
        self._step(lambda now: [])

    def data_received(self, data: bytes) -> None:
        self._step(lambda now: self.channel.receive(data, now))

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "connection closed by peer"
        self._dispatch(self.channel.close(reason))
        self._finish()

    def pause_writing(self) -> None:
        if self._transport is not None:  # the switch is not reading: stop reading it too
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def _step(self, action: Any) -> None:
        """Run one channel step, then flush and re-arm; a bug closes only this switch."""
        try:
            self._dispatch(action(self._loop.time()))
            self._flush()
            if self._timer is not None:
                self._timer.cancel()
            deadline = self.channel.next_timer()
            if deadline is not None:
                self._timer = self._loop.call_at(deadline, self._step, self.channel.handle_timer)
        except Exception:
            log.exception("%r: internal error, closing the connection", self)
            try:
                self.close("internal error")
            except Exception:
                if self._transport is not None:
                    self._transport.abort()

    def _flush(self) -> None:
        data = self.channel.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _dispatch(self, events: Iterable[Event]) -> None:
        for event in events:
            if isinstance(event, Reply | RequestFailed):
                future = self._futures.pop(event.xid, None)
                if not self._futures:  # a dict never shrinks: not the size of the last bundle
                    self._futures = {}
                if future is not None and not future.done():
                    if isinstance(event, Reply):
                        future.set_result(event.messages)
                    else:
                        future.set_exception(event.error)
            elif isinstance(event, Ready):
                self._ready.set_result(self)
                self._server._on_ready(self)
            elif isinstance(event, Closed):
                log.info("%r closed: %s", self, event.reason)
                self._flush()
                if self._transport is not None:  # flush what is left, but not forever
                    self._transport.close()
                    self._loop.call_later(CLOSE_GRACE, self._transport.abort)
            else:
                self._server._post(Received(self, event))

    def _finish(self) -> None:
        if self._closed.done():
            return
        if self._timer is not None:
            self._timer.cancel()
        reason = self.channel.close_reason or "closed"
        if not self._ready.done():
            self._ready.set_exception(ConnectionClosed(reason))
        self._server._on_lost(self, reason)
        self._closed.set_result(None)

    # ------------------------------------------------------------ API

    def close(self, reason: str = "closed by the controller") -> None:
        self._dispatch(self.channel.close(reason))

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def send(self, message: bytes) -> int:
        """Send without waiting; a rejection arrives as a `Received(ErrorReceived)` event."""
        xid = self.channel.send(message)
        self._flush()
        return xid

    def _track(self, message: bytes | int, kind: ReplyKind = "none") -> Tracked:
        """A future for a new request, or (given an xid) for a bundled one's late error."""
        if isinstance(message, int):
            xid = message
            self.channel.watch(xid)
        else:
            xid = self.channel.request(message, kind)
            self._flush()
        future: asyncio.Future[tuple[Message, ...]] = self._loop.create_future()
        self._futures[xid] = future
        return xid, future

    async def _wait(self, requests: Sequence[Tracked], timeout: float | None) -> list[Any]:
        """Results (or exceptions) of several requests; on timeout they are forgotten."""
        gathered = asyncio.gather(*(f for _, f in requests), return_exceptions=True)
        if timeout is None:  # a batch of 40,000 flow-mods takes a busy switch a while
            timeout = self._server.request_timeout + PER_MESSAGE_TIMEOUT * len(requests)
        try:
            return await asyncio.wait_for(gathered, timeout)
        except TimeoutError:
            for xid, _ in requests:
                self.channel.cancel(xid)
                self._futures.pop(xid, None)
            raise


class OpenFlowServer:
    """Accepts switches on TCP and unix sockets (or dials them) and posts their events.

    ``events`` is unbounded for connects and disconnects (one per connection) but holds
    at most ``max_events`` asynchronous messages: beyond that packet-ins are dropped and
    counted in ``dropped``, so a slow consumer costs packets, never memory.
    """

    def __init__(
        self,
        *,
        echo_interval: float = 5.0,
        echo_timeout: float = 10.0,
        handshake_timeout: float = 10.0,
        request_timeout: float = 30.0,
        max_events: int = 10_000,
    ) -> None:
        self.channel_options = {
            "echo_interval": echo_interval,
            "echo_timeout": echo_timeout,
            "handshake_timeout": handshake_timeout,
        }
        self.request_timeout = request_timeout
        self.max_events = max_events
        self.events: asyncio.Queue[SwitchEvent] = asyncio.Queue()
        self.switches: dict[int, Switch] = {}
        self.dropped = 0
        self._connections: set[Switch] = set()
        self._servers: list[asyncio.Server] = []
        self._unix_paths: list[str] = []

    async def listen(self, target: str) -> str:
        """Listen on "tcp:HOST:PORT" (port 0 picks one) or "unix:PATH"; returns the target."""
        loop = asyncio.get_running_loop()
        kind, _, address = target.partition(":")
        if kind == "unix":
            _unlink_socket(address)  # a stale socket from an earlier run
            server = await loop.create_unix_server(lambda: Switch(self), address)
            self._unix_paths.append(address)
        elif kind == "tcp":
            host, _, port = address.rpartition(":")
            server = await loop.create_server(lambda: Switch(self), host, int(port))
            target = "tcp:{}:{}".format(*server.sockets[0].getsockname()[:2])
        else:
            raise ValueError(f"unknown listen target {target!r}")
        self._servers.append(server)
        return target

    async def connect(self, target: str) -> Switch:
        """Dial a switch listening on "tcp:HOST:PORT" or "unix:PATH"; returns it once ready."""
        loop = asyncio.get_running_loop()
        kind, _, address = target.partition(":")
        if kind == "unix":
            _, switch = await loop.create_unix_connection(lambda: Switch(self), address)
        else:
            host, _, port = address.rpartition(":")
            _, switch = await loop.create_connection(lambda: Switch(self), host, int(port))
        return await asyncio.shield(switch._ready)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for switch in list(self._connections):
            switch.close("controller shutting down")
        await asyncio.gather(*(s.wait_closed() for s in list(self._connections)))
        for server in self._servers:
            await server.wait_closed()
        for path in self._unix_paths:
            _unlink_socket(path)

    async def __aenter__(self) -> OpenFlowServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _on_ready(self, switch: Switch) -> None:
        old = self.switches.get(switch.dpid)
        if old is not None and old is not switch:
            old.close("replaced by a new connection from the same datapath")
        self.switches[switch.dpid] = switch
        self.events.put_nowait(Connected(switch))

    def _on_lost(self, switch: Switch, reason: str) -> None:
        self._connections.discard(switch)
        if switch.features is not None:
            if self.switches.get(switch.dpid) is switch:
                del self.switches[switch.dpid]
            self.events.put_nowait(Disconnected(switch, reason))

    def _post(self, event: Received) -> None:
        if self.events.qsize() >= self.max_events:
            self.dropped += 1
            if self.dropped & (self.dropped - 1) == 0:  # log at 1, 2, 4, 8, ...
                log.warning("event queue full: %d asynchronous messages dropped", self.dropped)
            return
        self.events.put_nowait(event)


def _unlink_socket(path: str) -> None:
    """Remove a unix socket file (never anything else that might be at that path)."""
    if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
        os.unlink(path)
