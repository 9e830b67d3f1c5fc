"""One OVSDB connection (a "session") and how to open one from a target string.

A session owns the protocol state and the futures of the requests sent on it. When it ends,
every one of those futures fails with :class:`ConnectionLost`, because a reply can never
arrive on another connection. Session-scoped server state (monitors, locks) dies with it
too, which is why the client re-creates that state through session hooks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from .errors import ClientClosed, ConnectionLost, OvsdbError
from .protocol import JsonRpcProtocol, Response

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """Where the server listens: ``unix:PATH`` or ``tcp:HOST:PORT`` (``tcp:[::1]:6640``)."""

    kind: str
    path: str = ""
    host: str = ""
    port: int = 0

    @classmethod
    def parse(cls, text: str) -> Target:
        """Parse an OVS-style connection string; anything else is a ValueError."""
        kind, _, rest = text.partition(":")
        if kind == "unix" and rest:
            return cls("unix", path=rest)
        if kind == "tcp":
            host, sep, port = rest.rpartition(":")
            if sep and host and port.isdigit():
                return cls("tcp", host=host.strip("[]"), port=int(port))
        raise ValueError(f"unsupported OVSDB target {text!r} (want unix:PATH or tcp:HOST:PORT)")

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp:{host}:{self.port}"

    async def open(self, limit: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect; raises OSError when nobody listens."""
        if self.kind == "unix":
            return await asyncio.open_unix_connection(self.path, limit=limit)
        return await asyncio.open_connection(self.host, self.port, limit=limit)


class Session:
    """One live connection: protocol state, writer and the requests awaiting replies."""

    def __init__(
        self,
        number: int,
        writer: asyncio.StreamWriter,
        protocol: JsonRpcProtocol,
    ) -> None:
        self.number = number
        """Counts connections from 1, so logs and tests can tell sessions apart."""
        self.protocol = protocol
        self._writer = writer
        self._futures: dict[int, asyncio.Future[Response]] = {}
        self._closed: BaseException | None = None
        self.ended = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        """Work tied to this connection (session hooks); cancelled when it ends."""

    def __repr__(self) -> str:
        return f"Session({self.number}{', closed' if self.closed else ''})"

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def check_open(self) -> None:
        """Raise the reason this session ended, if it has."""
        if self._closed is not None:
            raise ConnectionLost(f"{self!r} ended: {self._closed}") from self._closed

    def send_request(self, method: str, params: list[Any]) -> asyncio.Future[Response]:
        """Write a request; the returned future resolves with its :class:`Response`."""
        self.check_open()
        request_id, data = self.protocol.request(method, params)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = future
        self.write(data)
        return future

    def write(self, data: bytes) -> None:
        """Queue bytes on the transport (the reader loop or a caller drains it)."""
        self.check_open()
        self._writer.write(data)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        try:
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise ConnectionLost(str(exc)) from exc

    def resolve(self, response: Response) -> None:
        """Hand a reply to whoever waits for it (they may have given up: then drop it)."""
        future = self._futures.pop(response.id, None)
        if future is not None and not future.done():
            future.set_result(response)

    def close(self, reason: BaseException) -> None:
        """End the session: close the socket, fail every waiting request."""
        if self._closed is not None:
            return
        self._closed = reason
        self._writer.close()
        if isinstance(reason, ConnectionLost | ClientClosed):
            error: OvsdbError = reason
        else:
            error = ConnectionLost(f"connection lost: {reason}")
        for future in self._futures.values():
            if not future.done():
                future.set_exception(error)
                future.exception()  # mark retrieved: nobody may be waiting any more
        self._futures.clear()
        self.ended.set()
