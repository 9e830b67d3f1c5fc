"""The VTEP controller against an emulated switch and a real store: what it writes in each
`hardware_vtep` table, what it learns back, that it never rewrites what is right, and that
only the lock holder writes. No vlcp servers: the store is written as the API and the
servers' controllers would write it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.lab.ovs import Hypervisor, connect_underlay
from tests.lab.vtep import VtepLab, VtepSwitch
from tests.lab.waiting import eventually
from vlcp.agent.hwvtep.controller import VtepController
from vlcp.layout import LOGNET, PHYSNET, netports_key, vtep_binding, vtep_mac
from vlcp.store import Store, open_store

SERVER_VTEP = "192.0.2.77"
PORT_MAC = "02:00:00:00:00:01"
BM_MAC = "02:00:00:00:00:09"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    db = await open_store(f"sqlite://{tmp_path}/state.db")
    yield db
    await db.close()


@pytest.fixture
def switch(vtep_lab: VtepLab, hypervisor: Hypervisor) -> VtepSwitch:
    """Switch ps0 on the underlay, with bare-metal host `BM_MAC` on VLAN 100 of port p0."""
    ps = vtep_lab.switch("ps0")
    connect_underlay(hypervisor, ps)
    ps.start_emulator()
    vtep_lab.bare_metal(ps, "10.0.0.9/24", vlan=100, mac=BM_MAC, port="p0")
    return ps


@contextlib.asynccontextmanager
async def running(controller: VtepController) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(controller.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def describe(store: Store) -> None:
    """A vxlan network with one port on a server, bound to VLAN 100 of port p0."""

    async def write(txn) -> None:
        txn.put(f"{PHYSNET}vx", {"id": "vx", "type": "vxlan"})
        txn.put(f"{LOGNET}net-a", {"id": "net-a", "physicalnetwork": "vx", "vni": 5001})
        entry = {"host": "hv-x", "vtep": SERVER_VTEP, "mac": PORT_MAC, "ip": "10.0.0.1"}
        txn.put(netports_key("net-a", "a1"), entry)
        txn.put(vtep_binding("ps0", "p0", 100), {"logicalnetwork": "net-a"})

    await store.transact(write)


def ctl(switch: VtepSwitch, *args: str) -> str:
    return switch.vtep_ctl(*args)


async def test_writes_the_network_learns_the_host_and_cleans_up(
    switch: VtepSwitch, store: Store, vtep_lab: VtepLab
) -> None:
    await describe(store)
    controller = VtepController(store, switch.manager, "ps0", "test")
    async with running(controller):
        await eventually(lambda: _has(switch, ("list-ls",), "net-a"), 20, what="the logical switch")
        assert ctl(switch, "get", "Logical_Switch", "net-a", "tunnel_key") == "5001"
        await eventually(
            lambda: _has(switch, ("list-bindings", "ps0", "p0"), "0100 net-a"), 20, what="binding"
        )
        remote = ctl(switch, "list-remote-macs", "net-a")
        assert f"{PORT_MAC} -> vxlan_over_ipv4/{SERVER_VTEP}" in remote
        assert f"unknown-dst -> vxlan_over_ipv4/{SERVER_VTEP}" in remote

        # the bare-metal host speaks: the switch learns its MAC, the store gets it
        bm_key = vtep_mac("net-a", "ps0", BM_MAC)
        bare_metal = vtep_lab.hosts_of(switch)[0]
        await asyncio.to_thread(bare_metal.ping, "10.0.0.1", count=1)

        async def learned() -> bool:
            return bm_key in (await store.read([bm_key])).values

        await eventually(learned, 20, what="the learned MAC in the store")
        entry = (await store.read([bm_key])).values[bm_key]
        assert entry == {"mac": BM_MAC, "vtep": switch.vtep_ip, "switch": "ps0"}

        # unbinding leaves nothing of the network on the switch, nor in the store
        await store.transact(_deleting(vtep_binding("ps0", "p0", 100)))
        await eventually(lambda: _lacks(switch, ("list-ls",), "net-a"), 20, what="the network gone")
        await eventually(lambda: _gone(store, bm_key), 20, what="the learned MAC gone")


def _deleting(key: str):
    async def fn(txn) -> None:
        txn.delete(key)

    return fn


async def _gone(store: Store, key: str) -> bool:
    return key not in (await store.read([key])).values


async def _has(switch: VtepSwitch, args: tuple[str, ...], text: str) -> bool:
    return await asyncio.to_thread(switch.shows, text, *args)


async def _lacks(switch: VtepSwitch, args: tuple[str, ...], text: str) -> bool:
    return not await _has(switch, args, text)


def _uuids(switch: VtepSwitch, table: str) -> set[str]:
    return set(switch.vtep_ctl("--columns=_uuid", "--bare", "list", table).split())


async def test_a_restart_rewrites_only_what_changed_meanwhile(
    switch: VtepSwitch, store: Store
) -> None:
    """Stopped, then a second port appears: the restarted controller adds its MAC and
    keeps every row that was right (the same UUIDs), the flood set replaced."""
    await describe(store)
    first = VtepController(store, switch.manager, "ps0", "one")
    async with running(first):
        await eventually(lambda: _has(switch, ("list-remote-macs", "net-a"), PORT_MAC), 20)
    before = {t: _uuids(switch, t) for t in ("Logical_Switch", "Ucast_Macs_Remote")}
    entry = {"host": "hv-y", "vtep": "192.0.2.78", "mac": "02:00:00:00:00:02"}

    async def second_port(txn) -> None:
        txn.put(netports_key("net-a", "a2"), entry)

    await store.transact(second_port)
    again = VtepController(store, switch.manager, "ps0", "two")
    async with running(again):
        await eventually(
            lambda: _has(switch, ("list-remote-macs", "net-a"), "02:00:00:00:00:02"), 20
        )
    assert _uuids(switch, "Logical_Switch") == before["Logical_Switch"]
    assert before["Ucast_Macs_Remote"] < _uuids(switch, "Ucast_Macs_Remote")
    remote = switch.vtep_ctl("list-remote-macs", "net-a")
    assert "unknown-dst -> vxlan_over_ipv4/192.0.2.77" in remote
    assert "unknown-dst -> vxlan_over_ipv4/192.0.2.78" in remote


async def test_one_writer_per_switch_and_failover(switch: VtepSwitch, store: Store) -> None:
    """Two instances: one holds the lock and writes; cancelled, the other takes over."""
    await describe(store)
    one = VtepController(store, switch.manager, "ps0", "one")
    two = VtepController(store, switch.manager, "ps0", "two")
    async with running(one) as first:
        await asyncio.wait_for(one.active.wait(), 20)
        async with running(two):
            await eventually(lambda: _has(switch, ("list-ls",), "net-a"), 20)
            assert not two.active.is_set()
            first.cancel()  # its connection closes: ovsdb-server hands the lock on
            await asyncio.wait_for(two.active.wait(), 20)
            await store.transact(_deleting(vtep_binding("ps0", "p0", 100)))
            await eventually(lambda: _lacks(switch, ("list-ls",), "net-a"), 20)


async def test_a_deleted_network_leaves_nothing_on_the_switch(
    switch: VtepSwitch, store: Store
) -> None:
    """The binding stays (the API lists it for unbinding), but the switch forgets the
    network at once: a binding applies only to an existing vxlan network."""
    await describe(store)
    controller = VtepController(store, switch.manager, "ps0", "test")
    async with running(controller):
        await eventually(lambda: _has(switch, ("list-remote-macs", "net-a"), PORT_MAC), 20)
        await store.transact(_deleting(f"{LOGNET}net-a"))
        await eventually(lambda: _lacks(switch, ("list-ls",), "net-a"), 20)
    assert switch.vtep_ctl("--bare", "--columns=MAC", "list", "Ucast_Macs_Remote") == ""
    assert "100" not in switch.vtep_ctl(
        "--bare", "--columns=vlan_bindings", "list", "Physical_Port"
    )
