"""Issue 14's Docker plugin end to end: a real private dockerd and `vlcp docker-plugin` on
each of two lab servers (a private OVS with its own `vlcp run`), one `vlcp api`, one store.

The same `docker network create -d vlcp --ipam-driver vlcp` on both hosts joins one vlcp
network, which the plugin creates; containers on the two servers ping each other and the
gateway, with addresses from vlcp's IPAM (or the one `docker run --ip` asked for); a
second network with the same subnet is not reached; a bad option is refused in `docker
network create`'s output; the plugin restarted, containers still reach each other, and
(through the new process) `docker rm` removes the port and its OVS interface, and the last
`docker network rm` the vlcp network.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from tests.lab.dockerd import Dockerd, DockerPlugin, docker_missing
from tests.lab.marks import needs_ovs_lab
from tests.lab.naming import private_dir
from tests.lab.waiting import eventually
from vlcp.client import ApiError

from ..conftest import Cloud, CloudFactory
from .checks import host_ends, pings, vlcp_ports

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
    pytest.mark.skipif(bool(docker_missing()), reason=f"needs {docker_missing()}"),
]

SUBNET = "10.0.0.0/24"


@pytest.fixture
async def dockers() -> AsyncIterator[Callable[[Cloud, str], Dockerd]]:
    """dockerd and the plugin per server; containers, networks, daemons and plugins are
    removed however the test ends (dockerd first: its deletes go through the plugin)."""
    made: list[Dockerd] = []

    def make(cloud: Cloud, server: str) -> Dockerd:
        dockerd = Dockerd(private_dir("dk"))
        plugin = DockerPlugin(dockerd.root, cloud.servers[server].hv, cloud.api.client.url, "vx")
        made.append(dockerd)
        plugin.start()
        plugin.ready()
        dockerd.start(plugin)
        return dockerd

    yield make
    for dockerd in made:
        try:
            await asyncio.to_thread(dockerd.close)
        finally:
            if dockerd.plugin is not None:
                dockerd.plugin.stop()


def create_network(docker: Dockerd, name: str, *options: str, check: bool = True):
    return docker(
        "network", "create", "-d", "vlcp", "--ipam-driver", "vlcp", "--subnet", SUBNET,
        "--ipam-opt", f"vlcp.network=net-{name}", "-o", f"vlcp.network=net-{name}",
        *options, name, check=check,
    )  # fmt: skip


def address(docker: Dockerd, container: str) -> str:
    template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    return docker("inspect", "-f", template, container).stdout.strip()


async def test_docker_networks_on_two_servers(cloud_factory: CloudFactory, dockers):
    cloud = await cloud_factory(["hv0", "hv1"])
    await cloud.api.create(
        "physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[7100, 7199]]}
    )
    hv0, hv1 = await asyncio.gather(
        asyncio.to_thread(dockers, cloud, "hv0"), asyncio.to_thread(dockers, cloud, "hv1")
    )
    bad = create_network(hv0, "bad", "-o", "vlcp.netwrok=x", check=False)
    assert bad.returncode != 0 and "unknown option vlcp.netwrok" in bad.stderr, bad.stderr

    # both hosts at once: one creates the vlcp network, the other adopts it
    await asyncio.gather(*(asyncio.to_thread(create_network, d, "a") for d in (hv0, hv1)))
    create_network(hv1, "b")
    network = await cloud.api.get("logical-networks", "net-a")
    assert len([k for k in network if k.startswith("docker_") and k != "docker_created"]) == 2

    await asyncio.gather(
        asyncio.to_thread(hv0.start_container, "a0", "a", "--ip", "10.0.0.9"),
        asyncio.to_thread(hv1.start_container, "a1", "a"),
        asyncio.to_thread(hv1.start_container, "b1", "b"),
    )
    a0_ip, a1_ip = address(hv0, "a0"), address(hv1, "a1")
    # .1 is the gateway Docker asked for; a0's is the one `docker run --ip` asked for
    assert (a0_ip, a1_ip, address(hv1, "b1")) == ("10.0.0.9", "10.0.0.2", "10.0.0.2")
    port = next(
        cloud.api.client.list("logical-ports", {"ip_address": a0_ip, "logicalnetwork": "net-a"})
    )
    assert port["mac_address"] in hv0.exec("a0", "ip", "-o", "link", "show", "eth0")

    await eventually(lambda: asyncio.to_thread(pings, hv0, "a0", a1_ip), 15, what="a0 -> a1")
    assert await asyncio.to_thread(pings, hv1, "a1", a0_ip)
    assert await asyncio.to_thread(pings, hv0, "a0", "10.0.0.1")  # the gateway, on the switch
    # a0's address exists only in net-a (b1 has a1's: each network's pool starts at .2)
    assert not await asyncio.to_thread(pings, hv1, "b1", a0_ip, 3)

    # the plugin keeps nothing in memory: restarted, it still unplugs and deletes
    assert hv1.plugin is not None
    hv1.plugin.stop()
    hv1.plugin.start()
    hv1.plugin.ready()
    assert await asyncio.to_thread(pings, hv0, "a0", a1_ip)
    assert len(vlcp_ports(cloud, "hv1")) == 2
    hv1("rm", "-f", "a1")
    assert len(vlcp_ports(cloud, "hv1")) == len(host_ends(cloud, "hv1")) == 1  # b1's
    assert (
        list(
            cloud.api.client.list("logical-ports", {"ip_address": a1_ip, "logicalnetwork": "net-a"})
        )
        == []
    )
    hv1("network", "rm", "a")
    assert (await cloud.api.get("logical-networks", "net-a"))["id"] == "net-a"  # hv0 uses it
    hv0("rm", "-f", "a0")
    hv0("network", "rm", "a")
    with pytest.raises(ApiError) as gone:
        await cloud.api.get("logical-networks", "net-a")
    assert gone.value.status == 404
