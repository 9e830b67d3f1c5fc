"""A TCP proxy in front of one ZooKeeper server that cuts the client's connection at an
exact request: before it reaches the server, or after the server applied it but before its
answer reaches the client. The client (kazoo) sees a real ConnectionLoss and reconnects
through the proxy to the same ZooKeeper session.

It reads ZooKeeper's framing (a 4-byte length before every packet; after the connect
packets, requests start with xid and operation type, answers with the xid), so it knows
which answer belongs to which request.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

from tests.lab.services.server import LOOPBACK

MULTI = 14
"""ZooKeeper's operation type of a multi (a commit)."""
GET_DATA = 4


@dataclass
class _Cut:
    ops: frozenset[int]
    after_sending: bool


class _Link:
    """One client connection and its own connection to the server."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.doomed_xid: int | None = None
        """The request whose answer must not reach the client."""

    def cut(self) -> None:
        self.client.transport.abort()
        self.server.transport.abort()


class ZooKeeperCutter:
    """Forwards 127.0.0.1:`port` to a ZooKeeper server; `cut_at_next` arms one cut."""

    def __init__(self, server_port: int) -> None:
        self.server_port = server_port
        self.port = 0
        self.cuts = 0
        self.refusing = False
        """While True, new connections are closed at once (the server is unreachable)."""
        self._cut: _Cut | None = None
        self._listener: asyncio.Server | None = None
        self._links: set[_Link] = set()

    @property
    def hosts(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def drop(self) -> None:
        """Cut every open connection now."""
        for link in list(self._links):
            link.cut()

    def cut_at_next(self, ops: set[int], *, after_sending: bool) -> None:
        """Cut the connection at the next request of one of `ops`: without sending it, or
        after sending it, dropping its answer."""
        self._cut = _Cut(frozenset(ops), after_sending)

    async def __aenter__(self) -> ZooKeeperCutter:
        self._listener = await asyncio.start_server(self._accept, LOOPBACK, 0)
        self.port = self._listener.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._listener is not None
        self._listener.close()
        self.drop()
        await self._listener.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.server_port)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(self._requests(reader, link), self._answers(up_reader, link))
        finally:
            self._links.discard(link)
            link.cut()

    async def _requests(self, reader: asyncio.StreamReader, link: _Link) -> None:
        first = True
        async for packet in _packets(reader):
            cut = self._cut
            if not first and cut is not None:
                xid, op = struct.unpack(">ii", packet[4:12])
                if op in cut.ops:
                    self._cut = None
                    if not cut.after_sending:
                        self.cuts += 1
                        link.cut()
                        return
                    link.doomed_xid = xid
            first = False
            link.server.write(packet)

    async def _answers(self, reader: asyncio.StreamReader, link: _Link) -> None:
        first = True
        async for packet in _packets(reader):
            if not first and struct.unpack(">i", packet[4:8])[0] == link.doomed_xid:
                self.cuts += 1
                link.cut()
                return
            first = False
            link.client.write(packet)


async def _packets(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """Each length-prefixed packet (length included) until the stream ends."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            length = await reader.readexactly(4)
            yield length + await reader.readexactly(struct.unpack(">i", length)[0])
