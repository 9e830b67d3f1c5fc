"""Issue 9's failure guarantees 1 and 2, proven on packets, on a replicated store.

The world of `test_failure_guarantees` (three servers, each with its `vlcp run`, one
`vlcp api`, both tenants on every server), on a private 3-member ZooKeeper ensemble or etcd
cluster that the test takes down, while continuous pings run across servers and a flow
monitor on every switch records each deletion.

1. A minority of the store lost (its leader, then a follower): nothing changes for users.
   Every API call succeeds, ports created meanwhile come up and answer, ports deleted are
   cut off, and not one ping is lost.
2. The whole store lost for three session lifetimes: changes freeze and existing endpoints
   keep talking. Writes are refused with a 503 that says the store is unavailable and
   nothing was written; no vlcp process exits or deletes a flow; when the store is back,
   every controller rejoins by itself (same process) and a new port comes up with no
   restart.

After both, the store passes the invariant checker and every switch holds what a fresh
controller would install (guarantee 5).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.lab.marks import needs_ovs_lab
from tests.lab.naming import unique_name
from tests.lab.ovs import Host
from tests.lab.services import EtcdCluster, ZooKeeperEnsemble
from tests.lab.waiting import eventually
from vlcp.client import ApiError

from .conftest import Cloud
from .failures import (
    ACROSS,
    AMONG_OTHERS,
    FAILED,
    SESSION_TTL,
    assert_undisturbed,
    holdings,
    observe,
    recovered,
    serves_a_new_port,
)
from .failures import session_ttl as session_ttl  # the short ttl these tests need

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
]

Cluster = ZooKeeperEnsemble | EtcdCluster
PAIRS = (*ACROSS, *AMONG_OTHERS)
OUTAGE = 3 * SESSION_TTL
"""How long the whole store stays down: well past every session's life."""
STORE_TIMEOUT = 5.0
"""The store calls' timeout: longer than an election, so a minority loss fails no call."""


@pytest.fixture(params=["zookeeper", "etcd"])
def store_cluster(request: pytest.FixtureRequest) -> Cluster:
    """A private cluster: these tests take its members down."""
    fixture = "zookeeper_ensemble" if request.param == "zookeeper" else "etcd_cluster"
    return request.getfixturevalue(fixture)


@pytest.fixture
def store_url(store_cluster: Cluster, session_ttl: float) -> str:
    """Overrides the end-to-end store: every vlcp process and the test use this cluster."""
    namespace = unique_name("e2e")
    if isinstance(store_cluster, ZooKeeperEnsemble):
        query = f"timeout={STORE_TIMEOUT:g}&session_timeout={session_ttl:g}"
        return f"zookeeper://{store_cluster.hosts}/{namespace}?{query}"
    hosts = ",".join(e.removeprefix("http://") for e in store_cluster.endpoints)
    return f"etcd://{hosts}/{namespace}?timeout={STORE_TIMEOUT:g}"


def pids(cloud: Cloud) -> dict[str, int | None]:
    """Every vlcp process of the cloud, by name: the same PIDs later mean no restart."""
    processes = [cloud.api_process, *(s.controller for s in cloud.servers.values())]
    return {p.name: p.pid for p in processes}


def assert_all_running(cloud: Cloud) -> None:
    cloud.api_process.assert_running()
    for server in cloud.servers.values():
        server.controller.assert_running()


async def comes_and_goes(cloud: Cloud, hosts: dict[str, Host], n: int) -> None:
    """Port a<n> created on the failing server answers; deleted, it is cut off."""
    await serves_a_new_port(cloud, FAILED, hosts, n)
    await cloud.api.delete("logical-ports", f"a{n}")
    ip = f"10.0.0.{n}"

    async def cut_off() -> bool:
        return not await asyncio.to_thread(hosts["a1"].ping_ok, ip, deadline=1)

    await eventually(cut_off, 30, what=f"a{n} to be cut off once deleted")


async def test_a_store_minority_loss_changes_nothing(
    tenants, store_cluster: Cluster, tmp_path: Path
) -> None:
    cloud, hosts = tenants
    before = pids(cloud)
    async with observe(cloud, hosts, PAIRS, cloud.servers, tmp_path) as seen:
        seen.mark()  # ports come and go throughout: their own flows are deleted with them
        leader = await asyncio.to_thread(store_cluster.wait_ready)
        await asyncio.to_thread(store_cluster.kill_member, leader)
        await comes_and_goes(cloud, hosts, 4)
        await asyncio.to_thread(store_cluster.start_member, leader)
        leader = await asyncio.to_thread(store_cluster.wait_ready)
        follower = next(i for i in range(store_cluster.size) if i != leader)
        await asyncio.to_thread(store_cluster.kill_member, follower)
        await comes_and_goes(cloud, hosts, 5)
        await asyncio.to_thread(store_cluster.start_member, follower)
    assert_undisturbed(seen, PAIRS, await holdings(cloud, cloud.servers))
    assert pids(cloud) == before
    await recovered(cloud, cloud.servers.values())


async def test_a_whole_store_outage_freezes_changes_and_loses_no_packet(
    tenants, store_cluster: Cluster, tmp_path: Path
) -> None:
    cloud, hosts = tenants
    before = pids(cloud)
    loop = asyncio.get_running_loop()
    async with observe(cloud, hosts, PAIRS, cloud.servers, tmp_path) as seen:
        for member in range(store_cluster.size):
            await asyncio.to_thread(store_cluster.kill_member, member)
        back = loop.time() + OUTAGE
        with pytest.raises(ApiError) as refused:
            body = {"id": "a5", "logicalnetwork": "net-a", "mac_address": "02:00:00:00:00:05"}
            await cloud.api.create("logical-ports", body)
        assert refused.value.status == 503, refused.value
        assert "the store is unavailable" in refused.value.message
        assert "nothing was written" in refused.value.message
        await asyncio.sleep(max(0.0, back - loop.time()))  # the outage under test
        assert_all_running(cloud)
        await asyncio.to_thread(store_cluster.start_all)
        await cloud.api_process.ready()
        for server in cloud.servers.values():  # the same run rejoined: its PID is back
            await server.controller.ready(cloud.store)
        seen.mark()
        await serves_a_new_port(cloud, FAILED, hosts, 5)  # a5 again: the refused one is not
    assert_undisturbed(seen, PAIRS, await holdings(cloud, cloud.servers))
    assert pids(cloud) == before
    await recovered(cloud, cloud.servers.values())
