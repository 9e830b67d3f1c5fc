"""Changes to the model take effect on running servers, without restarts."""

from __future__ import annotations

import asyncio

import pytest

from tests.lab.marks import needs_ovs_lab
from tests.lab.waiting import eventually
from vlcp.pipeline.view import network_numbers

from .tenants import IP1, IP2, MAC1, MAC2, describe_tenants

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
]


async def reachable(host, ip: str, deadline: float = 10.0) -> bool:
    return await asyncio.to_thread(host.ping_ok, ip, deadline=deadline)


async def status(cloud, port: str) -> str | None:
    found = await cloud.port_status(port)
    return found["state"] if found else None


@pytest.fixture
async def cloud(cloud_factory):
    cloud = await cloud_factory(["hv0", "hv1"])
    cloud.trunks("trunk0")
    await describe_tenants(cloud.api)
    return cloud


async def test_new_deleted_and_moved_ports(cloud) -> None:
    api = cloud.api
    a1 = cloud.host("hv0", f"{IP1}/24", mac=MAC1, port="a1")
    a2 = cloud.host("hv1", f"{IP2}/24", mac=MAC2, port="a2")
    for port in ("a1", "a2"):
        await api.wait_port_up(port, timeout=30)
    assert await reachable(a1, IP2)

    # a new port becomes reachable
    await api.create(
        "logical-ports",
        {
            "id": "a4",
            "logicalnetwork": "net-a",
            "subnet": "sub-a",
            "mac_address": "02:00:00:00:00:04",
            "ip_address": "10.0.0.4",
        },
    )
    a4 = cloud.host("hv1", "10.0.0.4/24", mac="02:00:00:00:00:04", port="a4")
    await api.wait_port_up("a4", timeout=30)
    assert await reachable(a1, "10.0.0.4")

    # a port moved to another server is reachable there, and down where it was
    a4.stop()
    await eventually(lambda: _is(cloud, "a4", "down"))
    moved = cloud.host("hv0", "10.0.0.4/24", mac="02:00:00:00:00:04", port="a4")
    await eventually(lambda: _is(cloud, "a4", "up"))
    assert await reachable(a2, "10.0.0.4")
    assert (await cloud.port_status("a4"))["host"] == "hv0"
    del moved

    # a deleted port stops receiving, though its interface is still plugged
    await api.delete("logical-ports", "a2")

    async def a2_unreachable() -> bool:
        return not await reachable(a1, IP2, deadline=1)

    await eventually(a2_unreachable)

    # and nothing of it stays in the store: status, announcement, the session's records
    async def a2_forgotten() -> bool:
        store = cloud.store
        keys = {"lport-status/a2", "netports/net-a/a2"}
        if (await store.read(keys)).values:
            return False
        owners = (await store.read_prefix("_owners/")).values
        markers = (await store.read_prefix("_session-keys/")).values  # value: the key
        return not ({f"_owners/{k}" for k in keys} & owners.keys() or keys & {*markers.values()})

    await eventually(a2_forgotten)


async def _is(cloud, port: str, state: str) -> bool:
    return await status(cloud, port) == state


async def test_deleting_a_network_leaves_no_flows_behind(cloud) -> None:
    api = cloud.api
    hosts = [
        cloud.host("hv0", f"{IP1}/24", mac=MAC1, port="a1"),
        cloud.host("hv1", f"{IP2}/24", mac=MAC2, port="a2"),
    ]
    for port in ("a1", "a2"):
        await api.wait_port_up(port, timeout=30)
    assert await reachable(hosts[0], IP2)
    number = network_numbers(["net-a"])["net-a"]
    for port in ("a1", "a2", "a3", "b1", "b2", "b3"):
        await api.delete("logical-ports", port)
    await api.delete("subnets", "sub-a")
    await api.delete("logical-networks", "net-a")

    async def no_flows_for_a() -> bool:
        for server in cloud.servers.values():
            flows = await asyncio.to_thread(server.hv.dump_flows, "br-int")
            if any(f"reg4={number:#x}" in f or "tun_id=0x1388" in f for f in flows):
                return False
        return True

    await eventually(no_flows_for_a)
