"""The OVSDB client against a scripted fake server: the failures a real one rarely shows.

ovsdb-server does not send malformed JSON, does not hang on demand, does not probe unix
connections and has had monitor_cond for years, so those paths are driven here by a small
server that the test controls message by message. No root needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from vlcp.southbound.ovsdb import (
    ChangeKind,
    ChangeSet,
    ConnectionLost,
    Monitor,
    OvsdbClient,
    RpcError,
    TransactError,
)
from vlcp.southbound.ovsdb.client import Backoff
from vlcp.southbound.ovsdb.protocol import JsonStreamParser

SCHEMA = {
    "name": "Test",
    "version": "1.0.0",
    "tables": {
        "T": {
            "columns": {
                "name": {"type": "string"},
                "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
            }
        }
    },
}
R1 = str(uuid.UUID(int=1))
R2 = str(uuid.UUID(int=2))
FAST = Backoff(initial=0.01, maximum=0.1)
WAIT = 5.0


class FakeConnection:
    """One client connection to the fake server."""

    def __init__(self, server: FakeOvsdb, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.writer = writer

    def send(self, message: dict[str, Any] | bytes) -> None:
        data = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.writer.write(data)


class FakeOvsdb:
    """A scripted OVSDB server on a unix socket with one table ``T`` in database ``Test``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        self.monitor_cond = True
        self.silent = False
        self.requests: list[tuple[str, list[Any]]] = []
        self.connections: list[FakeConnection] = []
        self.after_reply: Callable[[FakeConnection, str], bytes] | None = None
        self.transact_result: list[Any] = [{}]
        self._server: asyncio.AbstractServer | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for conn in self.connections:
            conn.writer.close()
        await self._server.wait_closed()

    @property
    def live(self) -> FakeConnection:
        """The newest connection."""
        return self.connections[-1]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = WAIT) -> Any:
        """Bounded wait until something the server saw satisfies ``predicate``."""
        async with asyncio.timeout(timeout):
            while not (result := predicate()):
                changed = self._changed
                await changed.wait()
            return result

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = FakeConnection(self, writer)
        self.connections.append(conn)
        self._wake()
        parser = JsonStreamParser()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                for message in parser.feed(data):
                    self._handle(conn, message)
                    self._wake()
        writer.close()

    def _handle(self, conn: FakeConnection, message: dict[str, Any]) -> None:
        method, params, request_id = message.get("method"), message.get("params"), message["id"]
        if method is None:  # a response to our own echo
            self.requests.append(("response", [message]))
            return
        self.requests.append((method, params))
        if self.silent:
            return
        result: Any
        error: Any = None
        if method == "echo":
            result = params
        elif method == "get_schema":
            result = SCHEMA
        elif method == "monitor_cond" and self.monitor_cond:
            result = {"T": {u: {"initial": row} for u, row in self.rows.items()}}
        elif method == "monitor":
            result = {"T": {u: {"new": row} for u, row in self.rows.items()}}
        elif method == "transact":
            result = self.transact_result
        else:
            result, error = None, "unknown method"
        conn.send({"id": request_id, "result": result, "error": error})
        if self.after_reply is not None:
            extra = self.after_reply(conn, method)
            if extra:
                conn.send(extra)


@pytest.fixture
async def server() -> AsyncIterator[FakeOvsdb]:
    directory = Path(tempfile.mkdtemp(prefix="ovsdbfake-"))
    fake = FakeOvsdb(directory / "db.sock")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def client(server: FakeOvsdb) -> AsyncIterator[OvsdbClient]:
    async with OvsdbClient(f"unix:{server.path}", backoff=FAST, probe_interval=None) as c:
        await server.wait_for(lambda: server.connections)  # accepted on the server side too
        yield c


def update2(monitor: Monitor, table_updates: dict[str, Any]) -> dict[str, Any]:
    return {"method": "update2", "params": [monitor._id, table_updates], "id": None}


async def wait_reconnected(client: OvsdbClient, sessions: int) -> None:
    """Bounded wait until the client has made its ``sessions``-th connection."""
    async with asyncio.timeout(WAIT):
        while client.sessions_started < sessions:
            await client.wait_connected(after=client.session)
        await client.wait_connected()


# ---------------------------------------------------------------- echo both ways


async def test_the_servers_echo_is_answered(server: FakeOvsdb, client: OvsdbClient) -> None:
    server.live.send({"method": "echo", "params": ["ping", 1], "id": "echo"})
    (reply,) = await server.wait_for(lambda: [p for m, p in server.requests if m == "response"])
    assert reply[0] == {"id": "echo", "result": ["ping", 1], "error": None}
    assert await client.echo("x") == ["x"]


async def test_a_silent_server_is_probed_then_dropped(server: FakeOvsdb) -> None:
    async with OvsdbClient(f"unix:{server.path}", backoff=FAST, probe_interval=0.2) as client:
        assert client.sessions_started == 1
        server.silent = True
        await server.wait_for(lambda: ("echo", ["vlcp-probe"]) in server.requests)
        server.silent = False
        await wait_reconnected(client, 2)
        await server.wait_for(lambda: len(server.connections) == 2)


async def test_an_unknown_request_from_the_server_gets_an_error_not_a_crash(
    server: FakeOvsdb, client: OvsdbClient
) -> None:
    server.live.send({"method": "frobnicate", "params": [], "id": 42})
    (reply,) = await server.wait_for(lambda: [p for m, p in server.requests if m == "response"])
    assert reply[0]["error"] == "unknown method"
    assert client.sessions_started == 1


# ---------------------------------------------------------------- malformed messages


@pytest.mark.parametrize(
    "garbage",
    [
        b"{]",
        b"not json at all",
        b'{"id": 999999, "result": [], "error": null}',  # reply to nothing
        b'{"method": "update2", "params": ["vlcp-monitor-X", {"T": 5}], "id": null}',
    ],
)
async def test_malformed_message_drops_the_connection_and_the_monitor_resyncs(
    server: FakeOvsdb, client: OvsdbClient, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    server.rows = {R1: {"name": "one"}}
    monitor = await Monitor(client, "Test", ["T"]).start(timeout=WAIT)
    seen: list[ChangeSet] = []
    monitor.add_listener(seen.append)
    assert {r["name"] for r in monitor.rows("T").values()} == {"one"}

    pending = asyncio.ensure_future(client.call("never-answered", []))
    server.silent = True
    await server.wait_for(lambda: ("never-answered", []) in server.requests)
    server.silent = False
    server.rows = {R2: {"name": "two", "tags": ["set", ["a", "b"]]}}  # changed "while away"
    caplog.set_level(logging.ERROR, logger="vlcp.southbound.ovsdb")
    server.live.send(garbage.replace(b"vlcp-monitor-X", monitor._id.encode()))

    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(pending, WAIT)
    await wait_reconnected(client, 2)
    await monitor.wait_for(lambda: monitor.resyncs == 2, timeout=WAIT)
    assert "malformed" in caplog.text
    (resync,) = seen
    assert resync.resync
    kinds = {(c.kind, str(c.uuid)) for c in resync.changes}
    assert kinds == {(ChangeKind.DELETE, R1), (ChangeKind.INSERT, R2)}
    assert monitor.rows("T")[uuid.UUID(R2)] == {"name": "two", "tags": frozenset({"a", "b"})}


async def test_a_listener_that_raises_does_not_break_the_monitor(
    server: FakeOvsdb, client: OvsdbClient
) -> None:
    monitor = await Monitor(client, "Test", ["T"]).start(timeout=WAIT)
    monitor.add_listener(lambda changes: 1 / 0)
    server.live.send(update2(monitor, {"T": {R1: {"insert": {"name": "x"}}}}))
    await monitor.wait_for(lambda: monitor.rows("T"), timeout=WAIT)
    assert client.sessions_started == 1


# ---------------------------------------------------------------- monitor protocol paths


async def test_updates_right_behind_the_initial_reply_are_not_lost(
    server: FakeOvsdb, client: OvsdbClient
) -> None:
    """update2 notifications that arrive in the same read as the monitor_cond reply."""
    server.rows = {R1: {"name": "one"}}

    def follow(conn: FakeConnection, method: str) -> bytes:
        if method != "monitor_cond":
            return b""
        monitor_id = server.requests[-1][1][1]
        return json.dumps(
            {
                "method": "update2",
                "params": [monitor_id, {"T": {R1: {"modify": {"tags": "new"}}}}],
                "id": None,
            }
        ).encode()

    server.after_reply = follow
    monitor = await Monitor(client, "Test", ["T"]).start(timeout=WAIT)
    await monitor.wait_for(lambda: monitor.rows("T")[uuid.UUID(R1)]["tags"], timeout=WAIT)
    assert monitor.rows("T")[uuid.UUID(R1)] == {"name": "one", "tags": frozenset({"new"})}


async def test_falls_back_to_plain_monitor_when_monitor_cond_is_unknown(
    server: FakeOvsdb, client: OvsdbClient
) -> None:
    server.monitor_cond = False
    server.rows = {R1: {"name": "one", "tags": ["set", []]}}
    monitor = await Monitor(client, "Test", {"T": ["name", "tags"]}).start(timeout=WAIT)
    assert monitor.method == "monitor"
    changes: list[ChangeSet] = []
    monitor.add_listener(changes.append)
    server.live.send(
        {
            "method": "update",
            "params": [
                monitor._id,
                {"T": {R1: {"old": {"tags": ["set", []]}, "new": {"name": "one", "tags": "t"}}}},
            ],
            "id": None,
        }
    )
    await monitor.wait_for(lambda: changes, timeout=WAIT)
    assert changes[0].changes[0].changed_columns == {"tags"}
    assert monitor.rows("T")[uuid.UUID(R1)]["tags"] == frozenset({"t"})


async def test_monitor_errors_surface_in_wait_synced(
    server: FakeOvsdb, client: OvsdbClient
) -> None:
    with pytest.raises(KeyError, match="NoSuchTable"):
        await Monitor(client, "Test", ["NoSuchTable"]).start(timeout=WAIT)


# ---------------------------------------------------------------- requests


async def test_transact_error_names_the_failing_op(server: FakeOvsdb, client: OvsdbClient) -> None:
    server.transact_result = [{}, {"error": "constraint violation", "details": "dup"}, None]
    ops = [
        {"op": "comment", "comment": "x"},
        {"op": "insert", "table": "T", "row": {}},
        {"op": "delete", "table": "T", "where": []},
    ]
    with pytest.raises(TransactError) as info:
        await client.transact("Test", ops)
    assert info.value.index == 1
    assert str(info.value).endswith("op 1 (insert into T): constraint violation: dup")


async def test_rpc_errors_are_raised_with_their_kind(
    server: FakeOvsdb, client: OvsdbClient
) -> None:
    with pytest.raises(RpcError) as info:
        await client.call("no_such_method", [])
    assert info.value.kind == "unknown method"


async def test_requests_wait_for_a_connection(server: FakeOvsdb) -> None:
    client = OvsdbClient(f"unix:{server.path}", backoff=FAST)
    await client.start(wait=False)
    try:
        assert await asyncio.wait_for(client.echo("early"), WAIT) == ["early"]
    finally:
        await client.close()


async def test_a_server_that_goes_away_is_reconnected(server: FakeOvsdb) -> None:
    async with OvsdbClient(f"unix:{server.path}", backoff=FAST) as client:
        await server.wait_for(lambda: server.connections)  # accepted on the server side too
        await server.stop()
        await server.start()
        await wait_reconnected(client, 2)
        assert await client.echo() == []
