"""Sans-I/O JSON-RPC 1.0 for OVSDB: stream framing, message validation, request ids, probes.

OVSDB sends JSON values back to back on a stream with no length prefix or delimiter
(RFC 7047 section 4), so framing means finding where one top-level object ends. This module
does that incrementally, with bounded memory, and turns each object into a typed message.
It never touches a socket or a clock: the asyncio adapter in ``client.py`` feeds it bytes
and the current time, which is what lets the unit tests drive it byte by byte.
"""

from __future__ import annotations

import enum
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import ProtocolError

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
"""Largest single message accepted. An initial monitor reply of a big Open_vSwitch database
is a few MB; a peer that streams a never-ending object must not exhaust our memory."""

DEFAULT_MAX_DEPTH = 128
"""Deepest nesting accepted. OVSDB values nest about 6 deep; this keeps json.loads far from
Python's recursion limit on hostile input."""

# Bytes that change the scanner's state outside and inside a string. Strings are tracked
# as state (not matched whole) so that a long string arriving in many pieces is still
# scanned only once.
_STRUCTURAL = re.compile(rb'["{}\[\]]')
_IN_STRING = re.compile(rb'["\\]')
_WHITESPACE = b" \t\r\n"


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON; Python's parser would accept them silently."""
    raise ValueError(f"invalid JSON constant {name}")


class JsonStreamParser:
    """Split a byte stream of concatenated JSON objects into parsed objects.

    The scanner only tracks string/escape state and bracket depth, jumping between the
    bytes that matter with a regex, so each byte is scanned once however the message is
    split (about 40 ms per MB of dense OVSDB rows here). ``json.loads`` validates each
    complete object. Any error is fatal: after a :class:`ProtocolError` the stream
    position is lost, and the only sane recovery is a new connection.
    """

    def __init__(
        self,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.max_message_size = max_message_size
        self.max_depth = max_depth
        self._buf = bytearray()
        self._pos = 0  # next byte to scan; always >= the start of the current message (0)
        self._depth = 0
        self._in_string = False
        self._failed = False

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete message (bounded by ``max_message_size``)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Any]:
        """Add received bytes; return every object they complete, in order."""
        if self._failed:
            raise ProtocolError("stream already failed")
        try:
            return self._feed(data)
        except ProtocolError:
            self._failed = True
            raise

    def _feed(self, data: bytes) -> list[Any]:
        buf = self._buf
        buf += data
        out: list[Any] = []
        start = 0  # start of the message being scanned within buf
        pos = self._pos
        while True:
            if self._depth == 0:
                # Between messages: skip whitespace, demand an object.
                while start < len(buf) and buf[start] in _WHITESPACE:
                    start += 1
                if start >= len(buf):
                    break
                if buf[start] != ord("{"):
                    raise ProtocolError(
                        f"expected a JSON object, got {bytes(buf[start : start + 20])!r}"
                    )
                pos = max(pos, start)
            if self._in_string:
                match = _IN_STRING.search(buf, pos)
                if match is None:
                    pos = len(buf)
                    break
                pos = match.start()
                if buf[pos] == ord("\\"):
                    if pos + 1 >= len(buf):
                        break  # the escaped byte has not arrived yet
                    pos += 2
                else:
                    self._in_string = False
                    pos += 1
                continue
            match = _STRUCTURAL.search(buf, pos)
            if match is None:
                pos = len(buf)
                break
            pos = match.end()
            char = buf[match.start()]
            if char == ord('"'):
                self._in_string = True
            elif char in b"{[":
                self._depth += 1
                if self._depth > self.max_depth:
                    raise ProtocolError(f"JSON nested deeper than {self.max_depth}")
            else:
                self._depth -= 1
                if self._depth == 0:
                    out.append(self._decode(buf, start, pos))
                    start = pos
            if pos - start > self.max_message_size:
                raise ProtocolError(f"message larger than {self.max_message_size} bytes")
        if len(buf) - start > self.max_message_size:
            raise ProtocolError(f"message larger than {self.max_message_size} bytes")
        del buf[:start]
        self._pos = max(0, pos - start)
        return out

    def _decode(self, buf: bytearray, start: int, end: int) -> Any:
        """Parse one complete object; bad UTF-8 or bad JSON is a protocol error."""
        if end - start > self.max_message_size:
            raise ProtocolError(f"message larger than {self.max_message_size} bytes")
        try:
            return json.loads(bytes(buf[start:end]), parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise ProtocolError(f"invalid JSON: {exc}") from exc


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class Request:
    """A request from the peer that expects a response (ovsdb-server sends "echo")."""

    id: Any
    method: str
    params: list[Any]


@dataclass(frozen=True)
class Notification:
    """A request without id: "update", "update2", "locked", "stolen", ..."""

    method: str
    params: list[Any]


@dataclass(frozen=True)
class Response:
    """The answer to one of our requests: exactly one of result and error is meaningful."""

    id: Any
    result: Any
    error: Any

    @property
    def ok(self) -> bool:
        """Whether the request succeeded (``error`` is null)."""
        return self.error is None


Message = Request | Notification | Response


def encode(message: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON; NaN is refused because the peer could not parse it."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class JsonRpcProtocol:
    """JSON-RPC 1.0 state of one connection: framing, id allocation and reply matching.

    Outgoing calls return the bytes to write; incoming bytes become :data:`Message` values.
    A response whose id we never sent (or already matched) is a protocol error: it means the
    peer and we disagree about the conversation, and continuing would pair replies with the
    wrong callers.
    """

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._parser = JsonStreamParser(max_message_size)
        self._ids = itertools.count(1)
        self._pending: dict[int, str] = {}

    @property
    def pending(self) -> dict[int, str]:
        """Ids of requests sent and not yet answered, with their methods."""
        return dict(self._pending)

    def request(self, method: str, params: list[Any]) -> tuple[int, bytes]:
        """Allocate an id for a request; return it with the bytes to send."""
        request_id = next(self._ids)
        data = encode({"method": method, "params": params, "id": request_id})
        self._pending[request_id] = method
        return request_id, data

    def notification(self, method: str, params: list[Any]) -> bytes:
        """The bytes of a notification (a request with a null id)."""
        return encode({"method": method, "params": params, "id": None})

    def response(self, request_id: Any, result: Any) -> bytes:
        """The bytes of a successful reply to a request the peer made."""
        return encode({"result": result, "error": None, "id": request_id})

    def error_response(self, request_id: Any, error: Any) -> bytes:
        """The bytes of an error reply to a request the peer made."""
        return encode({"result": None, "error": error, "id": request_id})

    def receive(self, data: bytes) -> list[Message]:
        """Parse received bytes into messages; raises :class:`ProtocolError` on bad input."""
        return [self._classify(obj) for obj in self._parser.feed(data)]

    def _classify(self, obj: dict[str, Any]) -> Message:
        if "method" in obj:
            method, params = obj["method"], obj.get("params", [])
            if not isinstance(method, str):
                raise ProtocolError(f"method is not a string: {method!r}")
            if not isinstance(params, list):
                raise ProtocolError(f"params of {method} is not an array: {params!r}")
            if obj.get("id") is None:
                return Notification(method, params)
            return Request(obj["id"], method, params)
        if "result" in obj or "error" in obj:
            request_id = obj.get("id")
            if isinstance(request_id, bool) or not isinstance(request_id, int):
                raise ProtocolError(f"response with foreign id {request_id!r}")
            if self._pending.pop(request_id, None) is None:
                raise ProtocolError(f"response to unknown request id {request_id}")
            return Response(request_id, obj.get("result"), obj.get("error"))
        raise ProtocolError(f"neither request nor response: {str(obj)[:200]}")


# ---------------------------------------------------------------- inactivity probe


class ProbeAction(enum.Enum):
    """What the connection should do now to check that the peer is alive."""

    NONE = "none"
    SEND_ECHO = "send_echo"
    DEAD = "dead"


class Liveness:
    """The inactivity probe of OVS's own JSON-RPC sessions, with time passed in.

    After ``interval`` seconds without receiving anything we send an echo; if another
    ``interval`` passes still without a byte, the peer is declared dead. A stuck server
    (SIGSTOPped, wedged, or behind a black-holed TCP path) otherwise keeps the connection
    "up" forever while our cache silently goes stale. Any received byte counts as life, so a
    busy connection never needs probes.
    """

    def __init__(self, interval: float | None, now: float) -> None:
        if interval is not None and interval <= 0:
            raise ValueError("probe interval must be positive (or None to disable)")
        self.interval = interval
        self._last_rx = now
        self._probe_sent: float | None = None

    def received(self, now: float) -> None:
        """Note traffic from the peer: it is alive, cancel any probe in flight."""
        self._last_rx = now
        self._probe_sent = None

    def deadline(self) -> float | None:
        """When :meth:`poll` next has something to do (None: never)."""
        if self.interval is None:
            return None
        base = self._probe_sent if self._probe_sent is not None else self._last_rx
        return base + self.interval

    def poll(self, now: float) -> ProbeAction:
        """Advance the probe: maybe send an echo, maybe give up on the peer."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return ProbeAction.NONE
        if self._probe_sent is None:
            self._probe_sent = now
            return ProbeAction.SEND_ECHO
        return ProbeAction.DEAD
