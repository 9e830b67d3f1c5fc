"""The OVSDB client and monitor against a real ovsdb-server + vswitchd (a lab hypervisor).

Changes are made the way an operator or a CNI plugin makes them (``ovs-vsctl``), and the
database is read back with ``ovsdb-client dump`` as an independent oracle for the cache.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Hypervisor
from tests.lab.ovsdb import dump_rows, ovsdb_tool_transact
from vlcp.southbound.ovsdb import (
    ChangeKind,
    ChangeSet,
    Monitor,
    NamedUuid,
    OvsdbClient,
    RowChange,
    RpcError,
    TransactError,
    decode_value,
    ops,
    vswitch,
)
from vlcp.southbound.ovsdb.client import Backoff

pytestmark = [
    pytest.mark.root,
    needs_ovs_lab,
]

DB = "Open_vSwitch"
WAIT = 10.0
PORT_TABLES = {
    "Bridge": ["name", "ports"],
    "Port": ["name", "interfaces"],
    "Interface": ["name", "external_ids"],
}
"""Columns vswitchd never writes, so every change seen is one the test made."""


@pytest.fixture
async def client(hypervisor: Hypervisor) -> AsyncIterator[OvsdbClient]:
    backoff = Backoff(initial=0.02, maximum=0.5)
    async with OvsdbClient(hypervisor.db_target, backoff=backoff) as c:
        yield c


async def vsctl(hv: Hypervisor, *args: str) -> str:
    """ovs-vsctl without blocking the event loop (the monitor keeps reading meanwhile)."""
    return await asyncio.to_thread(hv.vsctl, *args)


def named(monitor: Monitor, table: str, name: str) -> tuple[uuid.UUID, dict[str, Any]] | None:
    found = monitor.find(table, name=name)
    return found[0] if found else None


def summary(changes: list[RowChange]) -> set[tuple[ChangeKind, str, str]]:
    """(kind, table, row name) of each change, for exact comparisons."""
    return {(c.kind, c.table, str(c.row.get("name", "-"))) for c in changes}


def assert_cache_matches_server(monitor: Monitor, hv: Hypervisor, tables: dict[str, Any]) -> None:
    """The monitor's cache equals what ovsdb-client dump reads, row for row."""
    assert monitor.schema is not None
    raw = dump_rows(hv.db_target, DB, tables)
    for table, rows in raw.items():
        schema = monitor.schema.table(table)
        expected = {
            row_uuid: {c: decode_value(v, schema.column(c).type) for c, v in row.items()}
            for row_uuid, row in rows.items()
        }
        assert dict(monitor.rows(table)) == expected, table


# ---------------------------------------------------------------- monitor


async def test_monitor_sees_ports_and_interfaces_come_and_go(
    hypervisor: Hypervisor, client: OvsdbClient
) -> None:
    hv = hypervisor
    monitor = await Monitor(client, DB, vswitch.BINDING_TABLES).start(timeout=WAIT)
    assert monitor.method == "monitor_cond"
    changes: list[RowChange] = []
    monitor.add_listener(lambda cs: changes.extend(cs.changes))

    started = time.monotonic()
    await vsctl(hv, "add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev")
    await vsctl(
        hv,
        "add-port",
        "br-int",
        "p1",
        "--",
        "set",
        "interface",
        "p1",
        "type=internal",
        "external_ids:iface-id=lp1",
    )
    ((iface_uuid, iface),) = await monitor.wait_for(
        lambda: vswitch.find_interfaces(monitor, "lp1"), timeout=WAIT
    )
    seen_after = time.monotonic() - started
    assert iface["name"] == "p1"
    assert vswitch.bridge_of_interface(monitor, iface_uuid) == "br-int"
    assert {(ChangeKind.INSERT, "Port", "p1"), (ChangeKind.INSERT, "Interface", "p1")} <= summary(
        changes
    )
    # vswitchd's own write (the OpenFlow port number) reaches the cache too
    await monitor.wait_for(
        lambda: isinstance(monitor.rows("Interface")[iface_uuid]["ofport"], int), timeout=WAIT
    )

    changes.clear()
    await vsctl(hv, "set", "interface", "p1", "external_ids:iface-id=lp2")
    await monitor.wait_for(lambda: vswitch.find_interfaces(monitor, "lp2"), timeout=WAIT)
    assert vswitch.find_interfaces(monitor, "lp1") == []
    (modify,) = [
        c for c in changes if c.table == "Interface" and "external_ids" in c.changed_columns
    ]
    assert modify.kind is ChangeKind.MODIFY
    assert modify.old is not None and modify.new is not None
    assert modify.old["external_ids"] == {"iface-id": "lp1"}
    assert modify.new["external_ids"] == {"iface-id": "lp2"}

    await vsctl(hv, "remove", "interface", "p1", "external_ids", "iface-id")
    await monitor.wait_for(lambda: not vswitch.interfaces_by_iface_id(monitor), timeout=WAIT)

    await vsctl(hv, "add-port", "br-int", "p2", "--", "set", "interface", "p2", "type=internal")
    await monitor.wait_for(lambda: named(monitor, "Port", "p2"), timeout=WAIT)
    changes.clear()
    await vsctl(hv, "del-port", "p1")
    await monitor.wait_for(lambda: named(monitor, "Port", "p1") is None, timeout=WAIT)
    assert {(ChangeKind.DELETE, "Port", "p1"), (ChangeKind.DELETE, "Interface", "p1")} <= summary(
        changes
    )
    assert named(monitor, "Interface", "p1") is None
    assert named(monitor, "Interface", "p2") is not None
    assert_cache_matches_server(monitor, hv, vswitch.BINDING_TABLES)
    print(f"\nfirst port seen by the monitor {seen_after * 1000:.0f} ms after add-br started")


async def test_our_own_transaction_is_in_the_cache_when_transact_returns(
    hypervisor: Hypervisor, client: OvsdbClient
) -> None:
    hypervisor.add_bridge("br-int")
    monitor = await Monitor(client, DB, PORT_TABLES).start(timeout=WAIT)
    iface = await vswitch.add_port(
        client, "br-int", "vx0", type="vxlan", options={"remote_ip": "flow", "key": "flow"}
    )
    assert iface in monitor.rows("Interface")  # no wait: updates precede the reply
    assert await vswitch.del_port(client, "vx0")
    assert named(monitor, "Port", "vx0") is None
    assert not await vswitch.del_port(client, "vx0")


# ---------------------------------------------------------------- transactions


async def test_transact_errors_are_precise(hypervisor: Hypervisor, client: OvsdbClient) -> None:
    hypervisor.add_bridge("br-int")

    with pytest.raises(TransactError) as info:  # index on Bridge.name, checked at commit
        await client.transact(
            DB,
            [
                ops.insert("Bridge", {"name": "br-int"}, "b"),
                ops.mutate("Open_vSwitch", [], [("bridges", "insert", {NamedUuid("b")})]),
            ],
        )
    assert info.value.index is None
    assert info.value.error == "constraint violation"
    assert "failed at commit: constraint violation" in str(info.value)

    with pytest.raises(TransactError) as info:
        await client.transact(
            DB, [ops.comment("ok"), ops.update("Bridge", [], {"no_such_column": 1})]
        )
    assert info.value.index == 1
    assert "op 1 (update on Bridge)" in str(info.value)
    assert info.value.error == "unknown column"

    with pytest.raises(TransactError) as info:  # a strong reference to a row that is not there
        await client.transact(
            DB,
            [ops.update("Bridge", [ops.eq("name", "br-int")], {"ports": {uuid.UUID(int=7)}})],
        )
    assert info.value.index is None
    assert info.value.error == "referential integrity violation"

    with pytest.raises(TransactError) as info:  # the helpers guard their target row
        await vswitch.configure_bridge(client, "no-such-br", fail_mode="secure")
    assert info.value.index == 0
    assert 'wait on Bridge where name == "no-such-br"' in str(info.value)

    with pytest.raises(TransactError) as info:  # duplicate port name
        await vswitch.add_port(client, "br-int", "br-int")
    assert info.value.error == "constraint violation"

    with pytest.raises(RpcError) as rpc:
        await client.transact("No_Such_DB", [])
    assert rpc.value.kind == "unknown database"

    # nothing of the failed transactions was committed
    assert await vsctl(hypervisor, "list-br") == "br-int"
    assert await vsctl(hypervisor, "list-ports", "br-int") == ""


async def test_bridge_and_identity_helpers(hypervisor: Hypervisor, client: OvsdbClient) -> None:
    hv = hypervisor
    hv.add_bridge("br-int")
    await vswitch.configure_bridge(
        client,
        "br-int",
        fail_mode="secure",
        protocols=["OpenFlow13", "OpenFlow15"],
        controllers=[f"unix:{hv.dir}/ctl.sock"],
        controller_options={"max_backoff": 1000},
    )
    assert await vsctl(hv, "get", "bridge", "br-int", "fail_mode") == "secure"
    assert await vsctl(hv, "get", "bridge", "br-int", "protocols") == "[OpenFlow13, OpenFlow15]"
    assert await vsctl(hv, "get-controller", "br-int") == f"unix:{hv.dir}/ctl.sock"
    assert await vsctl(hv, "get", "controller", "br-int", "max_backoff") == "1000"
    await vswitch.configure_bridge(client, "br-int", fail_mode=None, controllers=[])
    assert await vsctl(hv, "get", "bridge", "br-int", "fail_mode") == "[]"
    assert await vsctl(hv, "get-controller", "br-int") == ""
    assert await vsctl(hv, "--columns=_uuid", "list", "controller") == ""  # garbage-collected

    monitor = await Monitor(client, DB, vswitch.BINDING_TABLES).start(timeout=WAIT)
    assert vswitch.system_id(monitor) is None
    await vsctl(hv, "set", "open_vswitch", ".", "external_ids:system-id=chassis-1")
    assert await monitor.wait_for(lambda: vswitch.system_id(monitor), timeout=WAIT) == "chassis-1"
    assert await vswitch.read_system_id(client) == "chassis-1"
    await vswitch.set_external_id(client, "Open_vSwitch", None, "system-id", "chassis-2")
    assert vswitch.system_id(monitor) == "chassis-2"
    await vswitch.set_external_id(client, "Open_vSwitch", None, "system-id", None)
    assert vswitch.system_id(monitor) is None


# ---------------------------------------------------------------- restart and resync


async def test_cache_resyncs_after_an_ovsdb_server_restart(
    hypervisor: Hypervisor, client: OvsdbClient
) -> None:
    """Rows changed while the server was down show up as exactly those changes."""
    hv = hypervisor
    hv.add_bridge("br-int")
    for name in ("p1", "p2", "p-keep"):
        hv.vsctl(
            "add-port",
            "br-int",
            name,
            "--",
            "set",
            "interface",
            name,
            "type=internal",
            f"external_ids:iface-id=lp-{name}",
        )
    monitor = await Monitor(client, DB, PORT_TABLES).start(timeout=WAIT)
    batches: list[ChangeSet] = []
    monitor.add_listener(batches.append)

    # 1. a plain reconnect with nothing changed is silent
    session = client.session
    client.reconnect()
    await client.wait_connected(WAIT, after=session)
    await monitor.wait_for(lambda: monitor.resyncs == 2 and monitor.synced, timeout=WAIT)
    assert batches == []

    # 2. stop ovsdb-server, change the database file behind everyone's back, start again
    bridge_uuid, _ = named(monitor, "Bridge", "br-int") or pytest.fail("no br-int")
    p2_port, _ = named(monitor, "Port", "p2") or pytest.fail("no p2")
    changes_offline = [
        ops.update("Interface", [ops.eq("name", "p1")], {"external_ids": {"iface-id": "lp-moved"}}),
        ops.mutate("Bridge", [ops.by_uuid(bridge_uuid)], [("ports", "delete", {p2_port})]),
        ops.insert("Interface", {"name": "p3", "type": "internal"}, "i3"),
        ops.insert("Port", {"name": "p3", "interfaces": {NamedUuid("i3")}}, "p3"),
        ops.mutate("Bridge", [ops.by_uuid(bridge_uuid)], [("ports", "insert", {NamedUuid("p3")})]),
    ]
    session = client.session
    started = time.monotonic()
    await asyncio.to_thread(
        hv.restart_ovsdb,
        lambda: ovsdb_tool_transact(hv.dir / "conf.db", changes_offline, DB),
    )
    await client.wait_connected(WAIT, after=session)
    await monitor.wait_for(lambda: monitor.resyncs == 3 and monitor.synced, timeout=WAIT)
    resynced_after = time.monotonic() - started

    (resync,) = batches
    assert resync.resync
    assert summary(list(resync.changes)) == {
        (ChangeKind.MODIFY, "Interface", "p1"),
        (ChangeKind.DELETE, "Port", "p2"),
        (ChangeKind.DELETE, "Interface", "p2"),  # garbage-collected with its port
        (ChangeKind.INSERT, "Port", "p3"),
        (ChangeKind.INSERT, "Interface", "p3"),
        (ChangeKind.MODIFY, "Bridge", "br-int"),
    }
    by_name = {(c.table, c.row["name"]): c for c in resync.changes}
    assert by_name["Interface", "p1"].changed_columns == {"external_ids"}
    assert by_name["Interface", "p1"].new["external_ids"] == {"iface-id": "lp-moved"}  # type: ignore[index]
    assert by_name["Bridge", "br-int"].changed_columns == {"ports"}
    assert_cache_matches_server(monitor, hv, PORT_TABLES)

    # 3. the new session is live: later changes arrive as normal updates
    batches.clear()
    await vsctl(hv, "set", "interface", "p-keep", "external_ids:iface-id=lp-new")
    await monitor.wait_for(lambda: vswitch.find_interfaces(monitor, "lp-new"), timeout=WAIT)
    assert all(not batch.resync for batch in batches)
    assert await client.echo("after restart") == ["after restart"]
    print(f"\nresynced {resynced_after * 1000:.0f} ms after the restart began")
