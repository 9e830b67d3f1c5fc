"""The OVSDB client against a private ovsdb-server holding a hardware_vtep database.

Also where the lock tests live: locks are a server feature independent of the schema,
and this server is cheap to start (no namespace, no vswitchd). It listens on TCP too,
which covers ``tcp:HOST:PORT`` targets.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.lab.ovsdb import (
    VTEP_SCHEMA,
    OvsdbServer,
    dump_rows,
    ovsdb_tool_transact,
    ovsdb_tools_missing,
)
from vlcp.southbound.ovsdb import (
    ChangeKind,
    ChangeSet,
    Monitor,
    OvsdbClient,
    TransactError,
    decode_value,
    ops,
)
from vlcp.southbound.ovsdb.client import Backoff

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        os.geteuid() != 0 or bool(ovsdb_tools_missing()) or not VTEP_SCHEMA.exists(),
        reason="needs root, the OVSDB tools and the hardware_vtep schema",
    ),
]

DB = "hardware_vtep"
WAIT = 10.0
FAST = Backoff(initial=0.02, maximum=0.5)
VTEP_TABLES = [
    "Global",
    "Physical_Switch",
    "Physical_Port",
    "Logical_Switch",
    "Ucast_Macs_Remote",
    "Physical_Locator",
]


@pytest.fixture
def vtep_server() -> Iterator[OvsdbServer]:
    """A private ovsdb-server with an empty hardware_vtep database (stopped by PID)."""
    server = OvsdbServer([VTEP_SCHEMA]).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def client(vtep_server: OvsdbServer) -> AsyncIterator[OvsdbClient]:
    async with OvsdbClient(vtep_server.tcp_target, backoff=FAST) as c:
        yield c


async def vtep_ctl(server: OvsdbServer, *args: str) -> str:
    return await asyncio.to_thread(server.vtep_ctl, *args)


def by_name(monitor: Monitor, table: str, name: str) -> tuple[uuid.UUID, dict[str, Any]] | None:
    found = monitor.find(table, name=name)
    return found[0] if found else None


def assert_cache_matches_server(monitor: Monitor, server: OvsdbServer) -> None:
    """The cache equals an ``ovsdb-client dump`` of the same tables and columns."""
    assert monitor.schema is not None
    tables = {
        t: list(next(iter(rows.values())).keys()) for t, rows in monitor.tables.items() if rows
    }
    raw = dump_rows(server.unix_target, DB, tables)
    for table, rows in raw.items():
        schema = monitor.schema.table(table)
        expected = {
            u: {c: decode_value(v, schema.column(c).type) for c, v in row.items()}
            for u, row in rows.items()
        }
        assert dict(monitor.rows(table)) == expected, table


# ---------------------------------------------------------------- hardware_vtep monitor


async def test_hardware_vtep_database_is_monitored(
    vtep_server: OvsdbServer, client: OvsdbClient
) -> None:
    assert "hardware_vtep" in await client.list_dbs()
    monitor = await Monitor(client, DB, VTEP_TABLES).start(timeout=WAIT)
    changes: list[ChangeSet] = []
    monitor.add_listener(changes.append)

    started = time.monotonic()
    await vtep_ctl(vtep_server, "add-ps", "br0")
    await vtep_ctl(vtep_server, "set", "Physical_Switch", "br0", "tunnel_ips=192.0.2.10")
    await vtep_ctl(vtep_server, "add-port", "br0", "p0")
    await vtep_ctl(vtep_server, "add-ls", "ls0")
    await vtep_ctl(vtep_server, "set", "Logical_Switch", "ls0", "tunnel_key=5000")
    await vtep_ctl(vtep_server, "bind-ls", "br0", "p0", "100", "ls0")
    await vtep_ctl(vtep_server, "add-ucast-remote", "ls0", "00:11:22:33:44:55", "192.0.2.1")

    ps_uuid, ps = await monitor.wait_for(lambda: by_name(monitor, "Physical_Switch", "br0"), WAIT)
    ls_uuid, ls = await monitor.wait_for(
        lambda: (
            (found := by_name(monitor, "Logical_Switch", "ls0"))
            and found[1]["tunnel_key"]
            and found
        ),
        WAIT,
    )
    await monitor.wait_for(lambda: monitor.rows("Ucast_Macs_Remote"), WAIT)
    elapsed = time.monotonic() - started

    (global_row,) = monitor.rows("Global").values()
    assert global_row["switches"] == frozenset({ps_uuid})
    assert ps["tunnel_ips"] == frozenset({"192.0.2.10"})
    assert ls["tunnel_key"] == 5000
    port_uuid, port = by_name(monitor, "Physical_Port", "p0") or pytest.fail("no p0")
    assert port_uuid in ps["ports"]
    assert port["vlan_bindings"] == {100: ls_uuid}  # a map of integer -> uuid
    ((mac_row),) = monitor.rows("Ucast_Macs_Remote").values()
    assert mac_row["MAC"] == "00:11:22:33:44:55"
    assert mac_row["logical_switch"] == ls_uuid
    locator = monitor.rows("Physical_Locator")[mac_row["locator"]]
    assert locator["dst_ip"] == "192.0.2.1"
    assert locator["encapsulation_type"] == "vxlan_over_ipv4"
    assert_cache_matches_server(monitor, vtep_server)

    changes.clear()
    await vtep_ctl(vtep_server, "del-ucast-remote", "ls0", "00:11:22:33:44:55")
    await vtep_ctl(vtep_server, "unbind-ls", "br0", "p0", "100")
    await vtep_ctl(vtep_server, "del-ls", "ls0")
    await monitor.wait_for(lambda: not monitor.rows("Logical_Switch"), WAIT)
    deleted = {
        (c.table, c.uuid) for batch in changes for c in batch.changes if c.kind is ChangeKind.DELETE
    }
    assert ("Logical_Switch", ls_uuid) in deleted
    assert not monitor.rows("Ucast_Macs_Remote")
    assert monitor.rows("Physical_Port")[port_uuid]["vlan_bindings"] == {}
    assert_cache_matches_server(monitor, vtep_server)
    print(f"\nhardware_vtep rows seen {elapsed * 1000:.0f} ms after the first vtep-ctl")


async def test_a_conditional_monitor_sees_only_matching_rows(
    vtep_server: OvsdbServer, client: OvsdbClient
) -> None:
    monitor = await Monitor(
        client, DB, {"Logical_Switch": ["name"]}, where={"Logical_Switch": [ops.eq("name", "ls1")]}
    ).start(timeout=WAIT)
    await vtep_ctl(vtep_server, "add-ls", "ls0")
    await vtep_ctl(vtep_server, "add-ls", "ls1")
    await monitor.wait_for(lambda: monitor.rows("Logical_Switch"), WAIT)
    assert [row["name"] for row in monitor.rows("Logical_Switch").values()] == ["ls1"]


async def test_vtep_cache_resyncs_after_a_server_restart(
    vtep_server: OvsdbServer, client: OvsdbClient
) -> None:
    await vtep_ctl(vtep_server, "add-ls", "ls-gone")
    await vtep_ctl(vtep_server, "add-ls", "ls-kept")
    monitor = await Monitor(client, DB, {"Logical_Switch": ["name", "tunnel_key"]}).start(
        timeout=WAIT
    )
    batches: list[ChangeSet] = []
    monitor.add_listener(batches.append)
    session = client.session
    vtep_server.kill()
    # change the file while nobody can watch, then start the server on the same files
    await asyncio.to_thread(
        ovsdb_tool_transact,
        vtep_server.db_file(VTEP_SCHEMA),
        [
            ops.delete("Logical_Switch", [ops.eq("name", "ls-gone")]),
            ops.update("Logical_Switch", [ops.eq("name", "ls-kept")], {"tunnel_key": 42}),
            ops.insert("Logical_Switch", {"name": "ls-new"}),
        ],
        DB,
    )
    await asyncio.to_thread(vtep_server.start)
    await client.wait_connected(WAIT, after=session)
    await monitor.wait_for(lambda: monitor.resyncs == 2 and monitor.synced, WAIT)
    (resync,) = batches
    assert {(c.kind, c.row["name"]) for c in resync.changes} == {
        (ChangeKind.DELETE, "ls-gone"),
        (ChangeKind.MODIFY, "ls-kept"),
        (ChangeKind.INSERT, "ls-new"),
    }
    assert_cache_matches_server(monitor, vtep_server)


# ---------------------------------------------------------------- locks


async def test_locks_between_two_clients(vtep_server: OvsdbServer) -> None:
    lock = "vlcp_vtep_leader"
    async with (
        OvsdbClient(vtep_server.unix_target, backoff=FAST) as a,
        OvsdbClient(vtep_server.tcp_target, backoff=FAST) as b,
    ):
        seen: dict[str, asyncio.Queue[bool]] = {"a": asyncio.Queue(), "b": asyncio.Queue()}
        a.on_lock_change(lambda name, owned: seen["a"].put_nowait(owned))
        b.on_lock_change(lambda name, owned: seen["b"].put_nowait(owned))

        async def next_change(who: str) -> bool:
            return await asyncio.wait_for(seen[who].get(), WAIT)

        with pytest.raises(ValueError, match="not a valid lock id"):
            await a.lock("no-hyphens-allowed")
        assert await a.lock(lock) is True
        assert await next_change("a") is True
        assert await b.lock(lock) is False  # queued behind a
        assert await b.lock(lock) is False  # asking twice is harmless
        assert a.has_lock(lock) and not b.has_lock(lock)

        # only the owner may commit a transaction that asserts the lock
        fenced = [ops.assert_lock(lock), ops.insert("Logical_Switch", {"name": "by-owner"})]
        await a.transact(DB, fenced)
        with pytest.raises(TransactError) as info:
            await b.transact(DB, fenced)
        assert info.value.index == 0 and info.value.error == "not owner"

        await a.unlock(lock)  # b is next in line: "locked"
        assert await next_change("a") is False
        assert await next_change("b") is True
        assert b.has_lock(lock)

        assert await a.steal(lock) is True  # b is told "stolen" ...
        assert await next_change("b") is False
        await a.unlock(lock)  # ... but stays in the queue, so it gets the lock back
        assert await next_change("b") is True
        await b.wait_lock(lock, timeout=WAIT)

        assert await a.lock(lock) is False  # a waiter may still steal
        assert await a.steal(lock) is True
        assert await next_change("b") is False
        assert [await next_change("a") for _ in range(3)] == [True, False, True]

        # a wanted lock survives a reconnect: the client asks again on the new connection
        await a.unlock(lock)
        await b.unlock(lock)
        assert await b.lock(lock) is True
        session = b.session
        b.reconnect()
        await b.wait_connected(WAIT, after=session)
        await b.wait_lock(lock, timeout=WAIT)
        assert await a.lock(lock) is False
