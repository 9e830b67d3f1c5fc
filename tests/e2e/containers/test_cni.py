"""Issue 14's CNI plugin end to end: real podman (CNI backend) on two lab servers, each a
private OVS with its own `vlcp run`, one `vlcp api`, one store.

1. Containers of one vlcp network on two servers ping each other, with the address vlcp's
   IPAM chose, the port's MAC and the VXLAN MTU; a second network with the same subnet is
   not reached from the first, nor the first from it. CHECK (run as the runtime runs it)
   passes on a running container. Their server's controller restarted, they still reach
   each other. Removing a container removes its logical port, its OVS port and its veth;
   a second DEL of it succeeds (DEL is idempotent). STATUS passes; GC removes the port,
   OVS port and veth of an attachment the runtime no longer lists, and only those.
2. A bad option is refused with a message `podman run` shows, and so is a port no
   controller binds (its server's `vlcp run` stopped); neither leaves anything behind.
3. Containers in two subnets of one router, on two servers, reach each other through
   their default route (the subnet gateway the plugin returns), routed by vlcp.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable

import pytest

from tests.lab.marks import needs_ovs_lab
from tests.lab.naming import private_dir
from tests.lab.podman import Podman, podman_missing
from tests.lab.waiting import eventually
from vlcp.client import ApiError
from vlcp.lab.servers import BRIDGE

from ..conftest import Cloud, CloudFactory
from .checks import host_ends, pings, vlcp_ports

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
    pytest.mark.skipif(bool(podman_missing()), reason=f"needs {podman_missing()}"),
]

PodmanFactory = Callable[[Cloud, str], Podman]


@pytest.fixture
async def podmans() -> AsyncIterator[PodmanFactory]:
    """A private podman per server (its root under /tmp: podman refuses a run root of more
    than 50 characters); all removed (containers first) however the test ends."""
    made: list[Podman] = []

    def make(cloud: Cloud, server: str) -> Podman:
        podman = Podman(private_dir("pm"), cloud.servers[server].hv, cloud.api.client.url)
        made.append(podman)
        return podman

    yield make
    for podman in made:
        await asyncio.to_thread(podman.close)


async def describe(cloud: Cloud) -> None:
    """Two networks over VXLAN with the same subnet; b's pool starts at .3, so .1 and .2
    exist only in a, .3 only in b."""
    await cloud.api.create(
        "physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[7000, 7099]]}
    )
    for net, start in (("a", "10.0.0.1"), ("b", "10.0.0.3")):
        await cloud.api.create("logical-networks", {"id": f"net-{net}", "physicalnetwork": "vx"})
        await cloud.api.create(
            "subnets",
            {
                "id": f"sub-{net}",
                "logicalnetwork": f"net-{net}",
                "cidr": "10.0.0.0/24",
                "allocated_start": start,
            },
        )


def cni_port(cloud: Cloud, container: str) -> dict:
    """The logical port the plugin created for `container`."""
    ports = [
        p for p in cloud.api.client.list("logical-ports") if p.get("cni_container") == container
    ]
    assert len(ports) == 1, ports
    return ports[0]


def plugin(
    command: str, config: dict, container: str, netns: str | None
) -> subprocess.CompletedProcess:
    """`vlcp-cni` called the way a runtime calls it (for the commands podman 4 never sends
    on its own: CHECK, GC, STATUS, a second DEL)."""
    env = {
        **os.environ,
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/nonexistent",
        **({"CNI_NETNS": netns} if netns else {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "vlcp.integrations.cni"],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def test_containers_on_two_servers(cloud_factory: CloudFactory, podmans: PodmanFactory):
    cloud = await cloud_factory(["hv0", "hv1"])
    await describe(cloud)
    hv0, hv1 = podmans(cloud, "hv0"), podmans(cloud, "hv1")
    for podman in (hv0, hv1):
        podman.network("a", network="net-a")
        podman.network("b", network="net-b")
    ids = dict(
        zip(
            ("a0", "a1", "b1"),
            await asyncio.gather(
                asyncio.to_thread(hv0.start, "a0", "a"),
                asyncio.to_thread(hv1.start, "a1", "a"),
                asyncio.to_thread(hv1.start, "b1", "b"),
            ),
            strict=True,
        )
    )
    ports = {name: await asyncio.to_thread(cni_port, cloud, cid) for name, cid in ids.items()}
    assert {ports["a0"]["ip_address"], ports["a1"]["ip_address"]} == {"10.0.0.1", "10.0.0.2"}
    assert ports["b1"]["ip_address"] == "10.0.0.3"
    link = hv0.exec("a0", "ip", "-o", "link", "show", "eth0")
    assert ports["a0"]["mac_address"] in link and "mtu 1450" in link, link
    assert f"inet {ports['a0']['ip_address']}/24" in hv0.exec("a0", "ip", "-o", "-4", "addr")

    a1_ip = ports["a1"]["ip_address"]
    await eventually(lambda: asyncio.to_thread(pings, hv0, "a0", a1_ip), 15, what="a0 -> a1")
    assert await asyncio.to_thread(pings, hv1, "a1", ports["a0"]["ip_address"])
    # the other network's addresses: .3 only in b, .1/.2 only in a
    assert not await asyncio.to_thread(pings, hv0, "a0", "10.0.0.3", 3)
    assert not await asyncio.to_thread(pings, hv1, "b1", a1_ip, 3)

    config = {
        "cniVersion": "1.0.0",
        "name": "a",
        "network": "net-a",
        "api": cloud.api.client.url,
        "bridge": BRIDGE,
    }
    config_hv0 = {**config, "ovsdb": hv0.hv.db_target, "ovs_netns": hv0.hv.netns}
    check = await asyncio.to_thread(plugin, "CHECK", config_hv0, ids["a0"], hv0.sandbox("a0"))
    assert (check.returncode, check.stdout) == (0, ""), check

    # hv1's controller stopped and started again: the containers keep their network
    controller = cloud.servers["hv1"].controller
    assert controller.stop() == 0, controller.log_tail()
    assert await asyncio.to_thread(pings, hv0, "a0", a1_ip)
    controller.start()
    await controller.ready(cloud.store)
    assert await asyncio.to_thread(pings, hv0, "a0", a1_ip)

    assert len(vlcp_ports(cloud, "hv1")) == 2
    await asyncio.to_thread(hv1, "rm", "-f", "-t", "0", "a1")
    with pytest.raises(ApiError) as gone:
        await cloud.api.get("logical-ports", ports["a1"]["id"])
    assert gone.value.status == 404
    assert len(vlcp_ports(cloud, "hv1")) == len(host_ends(cloud, "hv1")) == 1  # b1's
    config_hv1 = {**config, "ovsdb": hv1.hv.db_target, "ovs_netns": hv1.hv.netns}
    again = await asyncio.to_thread(plugin, "DEL", config_hv1, ids["a1"], None)
    assert (again.returncode, again.stdout) == (0, ""), again

    status = await asyncio.to_thread(plugin, "STATUS", config_hv0, "", None)
    assert (status.returncode, status.stdout) == (0, ""), status
    # GC keeps the attachments the runtime lists, and removes the others of its network
    a0 = [{"containerID": ids["a0"], "ifname": "eth0"}]
    for valid, left in ((a0, 1), ([], 0)):
        config_gc = {**config_hv0, "cni.dev/valid-attachments": valid}
        gc = await asyncio.to_thread(plugin, "GC", config_gc, "", None)
        assert gc.returncode == 0, gc
        assert len(vlcp_ports(cloud, "hv0")) == len(host_ends(cloud, "hv0")) == left
    with pytest.raises(ApiError):
        await cloud.api.get("logical-ports", ports["a0"]["id"])


async def test_refusals_show_in_podman_output_and_leave_nothing(
    cloud_factory: CloudFactory, podmans: PodmanFactory
):
    cloud = await cloud_factory(["hv0"])
    await describe(cloud)
    podman = podmans(cloud, "hv0")
    podman.network("typo", netwrok="net-a")
    podman.network("nowhere", network="nope")
    output = await asyncio.to_thread(podman.start, "c1", "typo", check=False)
    assert "vlcp-cni: unknown option 'netwrok'" in output, output
    output = await asyncio.to_thread(podman.start, "c2", "nowhere", check=False)
    assert "logical network nope does not exist" in output, output
    # no controller binds the port: ADD fails after wait_up, and undoes what it made
    podman.network("unbound", network="net-a", wait_up=1)
    controller = cloud.servers["hv0"].controller
    assert controller.stop() == 0, controller.log_tail()
    output = await asyncio.to_thread(podman.start, "c3", "unbound", check=False)
    assert "was not bound within 1 s" in output, output
    assert [p["id"] for p in cloud.api.client.list("logical-ports")] == []
    assert vlcp_ports(cloud, "hv0") == []


async def test_containers_in_two_subnets_reach_each_other_through_their_router(
    cloud_factory: CloudFactory, podmans: PodmanFactory
):
    cloud = await cloud_factory(["hv0", "hv1"])
    await cloud.api.create(
        "physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[7100, 7199]]}
    )
    await cloud.api.create("routers", {"id": "r"})
    for net, cidr, gateway in (
        ("a", "10.0.0.0/24", "10.0.0.254"),
        ("c", "10.0.1.0/24", "10.0.1.254"),
    ):
        await cloud.api.create("logical-networks", {"id": f"net-{net}", "physicalnetwork": "vx"})
        subnet = {
            "id": f"sub-{net}",
            "logicalnetwork": f"net-{net}",
            "cidr": cidr,
            "gateway": gateway,
        }
        await cloud.api.create("subnets", subnet)
        await asyncio.to_thread(cloud.api.client.add_interface, "r", {"subnet": f"sub-{net}"})
    hv0, hv1 = podmans(cloud, "hv0"), podmans(cloud, "hv1")
    hv0.network("a", network="net-a")
    hv1.network("c", network="net-c")
    ids = await asyncio.gather(
        asyncio.to_thread(hv0.start, "a0", "a"), asyncio.to_thread(hv1.start, "c1", "c")
    )
    a0, c1 = [await asyncio.to_thread(cni_port, cloud, cid) for cid in ids]
    assert "default via 10.0.0.254" in hv0.exec("a0", "ip", "route")
    what = "a0 -> c1 through router r"
    await eventually(lambda: asyncio.to_thread(pings, hv0, "a0", c1["ip_address"]), 15, what=what)
    assert await asyncio.to_thread(pings, hv1, "c1", a0["ip_address"], 3)
