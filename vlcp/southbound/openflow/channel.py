"""One OpenFlow connection as a plain state machine: bytes and time in, events and bytes out.

No sockets, no asyncio, no clock: the adapter (server.py) feeds `receive(data, now)` and
`handle_timer(now)`, writes out `data_to_send()` and arms a timer for `next_timer()`.
That keeps every protocol rule (version negotiation, echo liveness, xid correlation,
multipart reassembly, barrier semantics) testable with byte strings and fake time,
the way aioquic tests QUIC.

Requests are tracked by xid in three kinds (`wire.reply_kind`): answered once, answered
in multipart pieces, or answered only on failure. The last kind (flow-mods, packet-outs,
bundle adds) is confirmed by the next barrier reply: OpenFlow guarantees that every
message before a barrier has been processed, and so has reported its error, by then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from vlcp.southbound.openflow import wire
from vlcp.southbound.openflow.codec import Codec, Message, codec_for
from vlcp.southbound.openflow.messages import (
    Features,
    FlowRemoved,
    PacketIn,
    PortStatus,
    SwitchError,
)
from vlcp.southbound.openflow.wire import MalformedMessage

log = logging.getLogger(__name__)

ReplyKind = Literal["one", "multipart", "none"]


class ConnectionClosed(Exception):
    """The connection ended before a request was answered."""


class ReplyTooLarge(Exception):
    """A multipart reply grew past the channel's limit (a switch streaming without end)."""


class State(Enum):
    HELLO = "hello"
    FEATURES = "features"
    READY = "ready"
    CLOSED = "closed"


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Ready:
    """Handshake done: version negotiated and the switch has said who it is."""

    version: int
    features: Features


@dataclass(frozen=True, slots=True)
class Reply:
    """A request completed: its reply, all multipart pieces, or () when a barrier
    confirmed a request that only answers on failure."""

    xid: int
    messages: tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class RequestFailed:
    xid: int
    error: Exception


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    """An error for no request we track (e.g. for a packet-out sent without tracking)."""

    error: SwitchError


@dataclass(frozen=True, slots=True)
class Unsolicited:
    """Any other asynchronous message (role status, experimenter, late replies...)."""

    message: Message


@dataclass(frozen=True, slots=True)
class Closed:
    """The channel is dead; flush `data_to_send()` (it may hold an error) and close."""

    reason: str


Event = (
    Ready
    | Reply
    | RequestFailed
    | ErrorReceived
    | Unsolicited
    | Closed
    | PacketIn
    | PortStatus
    | FlowRemoved
)


@dataclass(slots=True)
class _Pending:
    kind: ReplyKind
    seq: int
    is_barrier: bool = False
    discard: bool = False
    """Failed already (too large): swallow its remaining pieces."""
    parts: list[Message] = field(default_factory=list)
    size: int = 0


# ---------------------------------------------------------------- the channel


class OpenFlowChannel:
    """Protocol state of one controller-to-switch connection (we are the controller)."""

    def __init__(
        self,
        now: float,
        *,
        versions: tuple[int, ...] = wire.SUPPORTED_VERSIONS,
        echo_interval: float = 5.0,
        echo_timeout: float = 10.0,
        handshake_timeout: float = 10.0,
        max_reply_bytes: int = 64 << 20,
        max_output_bytes: int = 64 << 20,
    ) -> None:
        self.versions = frozenset(versions)
        self.echo_interval = echo_interval
        self.echo_timeout = echo_timeout
        self.max_reply_bytes = max_reply_bytes
        self.max_output_bytes = max_output_bytes
        self.state = State.HELLO
        self.version: int | None = None
        self.codec: Codec | None = None
        self.features: Features | None = None
        self.close_reason: str | None = None
        self._handshake_deadline = now + handshake_timeout
        self._last_rx = now
        self._echo_sent_since_rx = False
        self._inbuf = bytearray()
        self._outbuf = bytearray()
        self._pending: dict[int, _Pending] = {}
        self._internal: set[int] = set()  # our own echo and features requests
        self._features_xid = 0
        self._next_xid = 1
        self._seq = 0
        self._queue(wire.encode_hello(self.versions))

    # ------------------------------------------------------------ output

    def data_to_send(self) -> bytes:
        """Everything queued for the switch since the last call."""
        data = bytes(self._outbuf)
        self._outbuf.clear()
        return data

    def _queue(self, data: bytes) -> None:
        self._outbuf += data
        self._seq += 1

    def _allocate_xid(self) -> int:
        while True:
            xid = self._next_xid
            self._next_xid = xid % 0xFFFFFFFF + 1  # 1..2**32-1; 0 is "no xid"
            if xid not in self._pending and xid not in self._internal:
                return xid

    def send(self, message: bytes) -> int:
        """Send without tracking; a failure arrives as `ErrorReceived`. Returns the xid."""
        self._check_open()
        xid = self._allocate_xid()
        self._queue(wire.set_xid(message, xid))
        return xid

    def request(self, message: bytes, kind: ReplyKind | None = None) -> int:
        """Send and track; the outcome is a `Reply` or `RequestFailed` with this xid."""
        self._check_open()
        kind = kind or wire.reply_kind(message)
        xid = self._allocate_xid()
        self._queue(wire.set_xid(message, xid))
        is_barrier = message[1] == wire.OFPT_BARRIER_REQUEST
        self._pending[xid] = _Pending(kind, self._seq, is_barrier)
        return xid

    @property
    def busy(self) -> bool:
        """Whether the switch still owes answers to requests of ours.

        A switch answers in order, so an echo sent behind a large batch of flow-mods is
        answered only after all of them: silence then means work, not death, and the
        requests' own timeouts (which scale with the batch) are the deadline instead.
        """
        return any(xid not in self._internal for xid in self._pending)

    def watch(self, xid: int) -> None:
        """Track an already-confirmed xid again, until the next barrier: a bundled
        message's error can come at commit, long after its add was accepted."""
        self._check_open()
        self._pending[xid] = _Pending("none", self._seq)

    def cancel(self, xid: int) -> None:
        """Forget a request (its caller gave up); a late answer becomes `Unsolicited`."""
        self._pending.pop(xid, None)

    def _check_open(self) -> None:
        if self.state is State.CLOSED:
            raise ConnectionClosed(self.close_reason or "closed")
        if self.codec is None:
            raise RuntimeError("no OpenFlow version negotiated yet")

    def _check_output(self) -> None:
        if len(self._outbuf) > self.max_output_bytes:
            raise ConnectionClosed(f"more than {self.max_output_bytes} bytes left unsent")

    # ------------------------------------------------------------ time

    def next_timer(self) -> float | None:
        """When `handle_timer` must run next (None once closed)."""
        if self.state is State.CLOSED:
            return None
        deadline = self._last_rx + self.echo_interval
        if self._echo_sent_since_rx or self.version is None:  # no probe due (or possible)
            deadline += self.echo_timeout
        if self.state is not State.READY:
            deadline = min(deadline, self._handshake_deadline)
        return deadline

    def handle_timer(self, now: float) -> list[Event]:
        """Handshake deadline, echo probes when idle, and the dead-switch verdict (not
        while the switch is `busy` with our requests)."""
        if self.state is State.CLOSED:
            return []
        if self.state is not State.READY and now >= self._handshake_deadline:
            return self.close("handshake timeout")
        idle = now - self._last_rx
        if idle >= self.echo_interval + self.echo_timeout and not self.busy:
            return self.close(f"echo timeout: nothing received for {idle:.1f}s")
        if idle >= self.echo_interval and not self._echo_sent_since_rx and self.version:
            xid = self._allocate_xid()
            self._internal.add(xid)
            self._queue(wire.encode_echo(self.version, False, b"vlcp", xid))
            self._echo_sent_since_rx = True
        return []

    # ------------------------------------------------------------ input

    def receive(self, data: bytes, now: float) -> list[Event]:
        """Consume bytes from the switch; malformed input closes the channel."""
        if self.state is State.CLOSED:
            return []
        self._inbuf += data
        events: list[Event] = []
        try:
            messages = wire.split_messages(self._inbuf)
            if messages:  # only whole messages prove life: a trickle of bytes does not
                self._last_rx = now
                self._echo_sent_since_rx = False
            for raw in messages:
                self._handle(raw, events)
                if self.state is State.CLOSED:
                    break
            self._check_partial()
            self._check_output()
        except (MalformedMessage, ConnectionClosed) as exc:
            events += self.close(f"protocol error: {exc}")
        return events

    def _check_partial(self) -> None:
        """Judge an incomplete message by its header now, not after 64 KiB of junk."""
        if len(self._inbuf) < wire.HEADER_SIZE or self.state is State.CLOSED:
            return
        header = wire.parse_header(self._inbuf)
        if self.state is State.HELLO and header.type != wire.OFPT_HELLO:
            raise MalformedMessage(f"expected HELLO, got message type {header.type}")
        if self.version is not None and header.version != self.version:
            raise MalformedMessage(
                f"version 0x{header.version:02x} on a 0x{self.version:02x} connection"
            )

    def close(self, reason: str) -> list[Event]:
        """Enter CLOSED; every tracked request fails with `ConnectionClosed`."""
        if self.state is State.CLOSED:
            return []
        self.state = State.CLOSED
        self.close_reason = reason
        error = ConnectionClosed(reason)
        events: list[Event] = [
            RequestFailed(xid, error) for xid, p in self._pending.items() if not p.discard
        ]
        self._pending.clear()
        self._inbuf.clear()
        events.append(Closed(reason))
        return events

    def _handle(self, raw: bytes, events: list[Event]) -> None:
        if self.state is State.HELLO:
            self._negotiate(raw, events)
            return
        assert self.codec is not None
        msg = self.codec.parse(raw)
        mtype, xid = msg.msg_type, msg.xid
        if mtype == wire.OFPT_ECHO_REQUEST:
            self._queue(self.codec.echo_reply(bytes(msg.data or b""), xid))
        elif mtype == wire.OFPT_ERROR:
            self._on_error(self.codec.error(msg), events)
        elif xid in self._internal:
            self._internal.discard(xid)
            if xid == self._features_xid and mtype == wire.OFPT_FEATURES_REPLY:
                self.features = self.codec.features(msg)
                self.state = State.READY
                events.append(Ready(self.codec.version, self.features))
        elif mtype == wire.OFPT_HELLO:
            raise MalformedMessage("second HELLO")
        elif self.state is not State.READY:
            log.debug("dropping message type %d before the handshake completed", mtype)
        elif mtype == wire.OFPT_PACKET_IN:
            events.append(self.codec.packet_in(msg))
        elif mtype == wire.OFPT_PORT_STATUS:
            events.append(self.codec.port_status(msg))
        elif mtype == wire.OFPT_FLOW_REMOVED:
            events.append(self.codec.flow_removed(msg))
        elif xid in self._pending:
            self._on_reply(xid, msg, len(raw), events)
        else:
            events.append(Unsolicited(msg))

    def _negotiate(self, raw: bytes, events: list[Event]) -> None:
        """Pick the highest version both sides offer (OpenFlow 1.3.1+ bitmap rules)."""
        header = wire.parse_header(raw)
        if header.type != wire.OFPT_HELLO:
            raise MalformedMessage(f"expected HELLO, got message type {header.type}")
        offered = wire.decode_hello(raw)
        if offered is None:  # no bitmap: the header version is the peer's highest
            offered = frozenset({min(header.version, max(self.versions))})
        common = offered & self.versions
        if not common:
            ours = max(self.versions)
            text = f"we speak {sorted(self.versions)}, you offer {sorted(offered)}"
            self._queue(
                wire.encode_error(
                    ours, wire.OFPET_HELLO_FAILED, wire.OFPHFC_INCOMPATIBLE, text.encode()
                )
            )
            events += self.close(f"no common OpenFlow version: {text}")
            return
        self.version = max(common)
        self.codec = codec_for(self.version)
        self.state = State.FEATURES
        self._features_xid = self._allocate_xid()
        self._internal.add(self._features_xid)
        self._queue(wire.set_xid(self.codec.features_request(), self._features_xid))

    def _on_error(self, error: SwitchError, events: list[Event]) -> None:
        if error.type == wire.OFPET_HELLO_FAILED:
            events += self.close(f"switch refused the hello: {error}")
        elif error.xid == self._features_xid and self.state is State.FEATURES:
            events += self.close(f"features request failed: {error}")
        elif error.xid in self._pending:
            del self._pending[error.xid]
            events.append(RequestFailed(error.xid, error))
        else:
            self._internal.discard(error.xid)
            events.append(ErrorReceived(error))

    def _on_reply(self, xid: int, msg: Message, size: int, events: list[Event]) -> None:
        pending = self._pending[xid]
        if pending.kind != "multipart":
            del self._pending[xid]
            events.append(Reply(xid, (msg,)))
            if pending.is_barrier:
                self._confirm_before(pending.seq, events)
            return
        last = not getattr(msg, "flags", 0) & wire.OFPMPF_REPLY_MORE
        if pending.discard:
            if last:
                del self._pending[xid]
            return
        pending.parts.append(msg)
        pending.size += size
        if pending.size > self.max_reply_bytes:
            pending.discard, pending.parts = True, []
            error = ReplyTooLarge(f"multipart reply over {self.max_reply_bytes} bytes")
            events.append(RequestFailed(xid, error))
            if last:
                del self._pending[xid]
        elif last:
            del self._pending[xid]
            events.append(Reply(xid, tuple(pending.parts)))

    def _confirm_before(self, seq: int, events: list[Event]) -> None:
        """A barrier reply: every failure-only request sent before it has succeeded."""
        done = [x for x, p in self._pending.items() if p.kind == "none" and p.seq < seq]
        for xid in done:
            del self._pending[xid]
            events.append(Reply(xid, ()))
        if not self._pending:  # a dict never shrinks: not the size of the last bundle
            self._pending = {}
