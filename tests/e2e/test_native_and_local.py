"""Native networks cross servers untagged; local networks never leave their server."""

from __future__ import annotations

import asyncio

import pytest

from tests.lab.marks import needs_ovs_lab

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
]

PORTS = {  # port: (server, network, mac, ip)
    "n1": ("hv0", "net-n", "02:00:00:00:01:01", "10.1.0.1"),
    "n2": ("hv1", "net-n", "02:00:00:00:01:02", "10.1.0.2"),
    "l1": ("hv0", "net-l", "02:00:00:00:02:01", "10.2.0.1"),
    "l2": ("hv0", "net-l", "02:00:00:00:02:02", "10.2.0.2"),
    "l3": ("hv1", "net-l", "02:00:00:00:02:03", "10.2.0.3"),
}


async def test_native_crosses_servers_and_local_stays_home(cloud_factory) -> None:
    cloud = await cloud_factory(["hv0", "hv1"])
    cloud.trunks("trunk0")
    api = cloud.api
    await api.create("physical-networks", {"id": "nat", "type": "native"})
    await api.create("physical-ports", {"physicalnetwork": "nat", "name": "trunk0"})
    await api.create("physical-networks", {"id": "loc", "type": "local"})
    for network, physnet, cidr in (
        ("net-n", "nat", "10.1.0.0/24"),
        ("net-l", "loc", "10.2.0.0/24"),
    ):
        await api.create("logical-networks", {"id": network, "physicalnetwork": physnet})
        await api.create(
            "subnets", {"id": f"sub-{network}", "logicalnetwork": network, "cidr": cidr}
        )
    hosts = {}
    for port, (server, network, mac, ip) in PORTS.items():
        await api.create(
            "logical-ports",
            {"id": port, "logicalnetwork": network, "mac_address": mac, "ip_address": ip},
        )
        hosts[port] = cloud.host(server, f"{ip}/24", mac=mac, port=port)
    for port in PORTS:
        await api.wait_port_up(port, timeout=30)

    async def ping(src: str, dst: str, deadline: float) -> bool:
        return await asyncio.to_thread(hosts[src].ping_ok, hosts[dst].ip, deadline=deadline)

    assert await ping("n1", "n2", 10), "a native network spans servers"
    assert await ping("l1", "l2", 10), "a local network works on its server"
    assert not await ping("l1", "l3", 3), "a local network must not leave its server"
