"""Changes to the model take effect on running servers, without restarts."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.lab.ovs import missing_tools
from vlcp.model.errors import ModelError
from vlcp.pipeline.view import network_numbers

from .test_l2_tenants import IP1, IP2, MAC1, MAC2, describe_tenants

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or bool(missing_tools()), reason="needs root and the OVS tools"
    ),
]


async def reachable(host, ip: str, deadline: float = 10.0) -> bool:
    return await asyncio.to_thread(host.ping_ok, ip, deadline=deadline)


async def status(model, port: str) -> str | None:
    try:
        found = await model.port_status(port)
    except ModelError:
        return None
    return found["state"] if found else None


async def eventually(predicate, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.1)


@pytest.fixture
async def cloud(cloud_factory):
    cloud = await cloud_factory(["hv0", "hv1"])
    cloud.trunks("trunk0")
    await describe_tenants(cloud.model)
    return cloud


async def test_new_deleted_and_moved_ports(cloud) -> None:
    model = cloud.model
    a1 = cloud.host("hv0", f"{IP1}/24", mac=MAC1, port="a1")
    a2 = cloud.host("hv1", f"{IP2}/24", mac=MAC2, port="a2")
    for port in ("a1", "a2"):
        await model.wait_port_up(port, timeout=30)
    assert await reachable(a1, IP2)

    # a new port becomes reachable
    await model.create(
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
    await model.wait_port_up("a4", timeout=30)
    assert await reachable(a1, "10.0.0.4")

    # a port moved to another server is reachable there, and down where it was
    a4.stop()
    await eventually(lambda: _is(model, "a4", "down"))
    moved = cloud.host("hv0", "10.0.0.4/24", mac="02:00:00:00:00:04", port="a4")
    await eventually(lambda: _is(model, "a4", "up"))
    assert await reachable(a2, "10.0.0.4")
    assert (await model.port_status("a4"))["host"] == "hv0"
    del moved

    # a deleted port stops receiving, though its interface is still plugged
    await model.delete("logical-ports", "a2")

    async def a2_unreachable() -> bool:
        return not await reachable(a1, IP2, deadline=1)

    await eventually(a2_unreachable)

    # and nothing of it stays in the store: status, announcement, the session's records
    async def a2_forgotten() -> bool:
        store = model.store
        keys = {"lport-status/a2", "netports/net-a/a2"}
        if (await store.read(keys)).values:
            return False
        owners = (await store.read_prefix("_owners/")).values
        markers = (await store.read_prefix("_session-keys/")).values  # value: the key
        return not ({f"_owners/{k}" for k in keys} & owners.keys() or keys & {*markers.values()})

    await eventually(a2_forgotten)


async def _is(model, port: str, state: str) -> bool:
    return await status(model, port) == state


async def test_deleting_a_network_leaves_no_flows_behind(cloud) -> None:
    model = cloud.model
    hosts = [
        cloud.host("hv0", f"{IP1}/24", mac=MAC1, port="a1"),
        cloud.host("hv1", f"{IP2}/24", mac=MAC2, port="a2"),
    ]
    for port in ("a1", "a2"):
        await model.wait_port_up(port, timeout=30)
    assert await reachable(hosts[0], IP2)
    number = network_numbers(["net-a"])["net-a"]
    for port in ("a1", "a2", "a3", "b1", "b2", "b3"):
        await model.delete("logical-ports", port)
    await model.delete("subnets", "sub-a")
    await model.delete("logical-networks", "net-a")

    async def no_flows_for_a() -> bool:
        for server in cloud.servers.values():
            flows = await asyncio.to_thread(server.hv.dump_flows, "br-int")
            if any(f"reg4={number:#x}" in f or "tun_id=0x1388" in f for f in flows):
                return False
        return True

    await eventually(no_flows_for_a)
