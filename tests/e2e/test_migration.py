"""Migration: the same logical port plugged on two servers at once; the newest binding wins.

A VM's port is live on hv1 when the same port (same iface-id, MAC and IP) appears on
hv2 while hv1's interface is still there, as in a live migration. Traffic follows it to
hv2, also from hv1's other ports, and hv1 stops delivering to its stale interface; when
hv2's interface goes, hv1's binding, still plugged, serves the port again.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.lab.marks import needs_ovs_lab
from tests.lab.waiting import eventually

from .tenants import IP1, IP2, MAC1, MAC2, describe_tenants
from .test_live_changes import reachable

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
]

IP4, MAC4 = "10.0.0.4", "02:00:00:00:00:04"


async def host_of(cloud, port: str) -> str | None:
    status = await cloud.port_status(port)
    return status["host"] if status and status["state"] == "up" else None


async def pings_arrive(peer, host, ip: str) -> bool:
    """Whether `host` itself receives `peer`'s pings to `ip` (a capture on its interface)."""
    capture = host.capture("icmp[icmptype] == icmp-echo")
    try:
        assert await reachable(peer, ip)
        await asyncio.to_thread(peer.ping, ip, count=3, interval=0.05)
    finally:
        seen = capture.stop()
    return bool(seen)


async def follows(source, new, old) -> bool:
    """In one round, `new` receives `source`'s pings to the port and the stale `old` none.

    hv2 reporting the port up says nothing of the other servers: each applies the move on
    its own, so until `source`'s server has, its pings still reach `old`."""
    return await pings_arrive(source, new, IP4) and not await pings_arrive(source, old, IP4)


async def test_the_newest_binding_wins_and_the_old_one_serves_again_when_it_goes(
    cloud_factory,
) -> None:
    cloud = await cloud_factory(["hv0", "hv1", "hv2"])
    api = cloud.api
    await describe_tenants(api)
    await api.create(
        "logical-ports",
        {"id": "a4", "logicalnetwork": "net-a", "subnet": "sub-a", "mac_address": MAC4,
         "ip_address": IP4},
    )  # fmt: skip
    peer = cloud.host("hv0", f"{IP1}/24", mac=MAC1, port="a1")
    neighbour = cloud.host("hv1", f"{IP2}/24", mac=MAC2, port="a2")  # beside the old location
    old = cloud.host("hv1", f"{IP4}/24", mac=MAC4, port="a4")
    await api.wait_port_up("a4", timeout=30)
    assert await host_of(cloud, "a4") == "hv1"
    assert await pings_arrive(peer, old, IP4)

    new = cloud.host("hv2", f"{IP4}/24", mac=MAC4, port="a4")  # hv1's is still plugged

    async def moved() -> bool:
        return await host_of(cloud, "a4") == "hv2"

    await eventually(moved)
    for source in (peer, neighbour):  # from another server, and from the old one itself
        await eventually(
            lambda s=source: follows(s, new, old),
            what=f"{source} -> a4 to reach hv2's interface only",
        )

    new.stop()

    async def back() -> bool:
        return await host_of(cloud, "a4") == "hv1"

    await eventually(back)
    assert await pings_arrive(peer, old, IP4)
