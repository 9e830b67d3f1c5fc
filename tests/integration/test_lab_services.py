"""The lab's real ZooKeeper, etcd and Redis fixtures work with the clients vlcp uses.

These tests prove the harness, not vlcp: each fixture serves real client traffic, and the
cluster fixtures survive what later tests will do to them (killed leaders, restarts).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import aetcd
import pytest
import redis
from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError

from tests.lab.naming import unique_name
from tests.lab.services import (
    DEFAULT_PORTS,
    EtcdCluster,
    EtcdServer,
    RedisServer,
    ZooKeeperEnsemble,
    ZooKeeperServer,
    http_json,
    running_processes,
    wait_until,
)

WRITE_TIMEOUT = 15.0
"""Bound for a write to succeed again after a member was killed (measured: 0.3 s ZK, 2 s etcd)."""


# -- helpers ---------------------------------------------------------------------------------


@contextmanager
def kazoo_client(hosts: str) -> Iterator[KazooClient]:
    """A started kazoo client that is always stopped and closed."""
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=15)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def zk_write(client: KazooClient, path: str, value: bytes) -> bool:
    """Create ``path``; a retry after a lost reply finds it already there, which is success."""
    with suppress(NodeExistsError):
        client.create(path, value, makepath=True)
    return client.get(path)[0] == value


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def etcd_put(endpoint: str, key: str, value: str) -> bool:
    """Put through the v3 JSON gateway; True once etcd committed it (a header comes back)."""
    return "header" in http_json(f"{endpoint}/v3/kv/put", {"key": b64(key), "value": b64(value)})


def etcd_get(endpoint: str, key: str) -> str | None:
    """Linearizable get through the v3 JSON gateway."""
    kvs = http_json(f"{endpoint}/v3/kv/range", {"key": b64(key)}).get("kvs", [])
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


# -- ZooKeeper -------------------------------------------------------------------------------


def test_zookeeper_standalone_serves_kazoo_and_keeps_data_on_restart(
    zookeeper: ZooKeeperServer,
) -> None:
    assert zookeeper.mode() == "standalone"
    assert zookeeper.port not in DEFAULT_PORTS
    path = f"/{unique_name('zk')}/node"
    with kazoo_client(zookeeper.hosts) as client:
        client.create(path, b"hello", makepath=True)
        assert client.get(path)[0] == b"hello"

    old_pid = zookeeper.pid
    zookeeper.restart()
    assert zookeeper.pid != old_pid
    with kazoo_client(zookeeper.hosts) as client:
        assert client.get(path)[0] == b"hello"


@pytest.mark.slow
def test_zookeeper_ensemble_survives_leader_kill(zookeeper_ensemble: ZooKeeperEnsemble) -> None:
    ensemble = zookeeper_ensemble
    assert ensemble.hosts.count("127.0.0.1:") == 3
    old_leader = ensemble.wait_ready()
    base = f"/{unique_name('zk')}"
    with kazoo_client(ensemble.hosts) as client:
        assert zk_write(client, f"{base}/before", b"1")

        ensemble.kill_member(old_leader)
        new_leader = ensemble.wait_ready(timeout=WRITE_TIMEOUT)
        assert new_leader != old_leader
        wait_until(
            lambda: zk_write(client, f"{base}/after", b"2"),
            timeout=WRITE_TIMEOUT,
            what="a kazoo write after the leader was killed",
        )
        assert client.get(f"{base}/before")[0] == b"1"

    ensemble.start_member(old_leader)
    assert ensemble.members[old_leader].mode() == "follower"
    # The restarted member caught up: read through it alone.
    with kazoo_client(ensemble.members[old_leader].hosts) as client:
        client.sync(base)
        assert sorted(client.get_children(base)) == ["after", "before"]

    ensemble.restart()  # all members down at once, then up: data survives
    with kazoo_client(ensemble.hosts) as client:
        assert sorted(client.get_children(base)) == ["after", "before"]


# -- etcd ------------------------------------------------------------------------------------


async def test_etcd_serves_aetcd_and_keeps_data_on_restart(etcd: EtcdServer) -> None:
    assert etcd.port not in DEFAULT_PORTS
    key = f"/{unique_name('et')}/key".encode()
    async with aetcd.Client(host=etcd.host, port=etcd.port, timeout=5) as client:
        await client.put(key, b"hello")
        assert (await client.get(key)).value == b"hello"

    etcd.restart()
    async with aetcd.Client(host=etcd.host, port=etcd.port, timeout=5) as client:
        assert (await client.get(key)).value == b"hello"


@pytest.mark.slow
def test_etcd_cluster_accepts_writes_after_leader_kill(etcd_cluster: EtcdCluster) -> None:
    cluster = etcd_cluster
    assert len(cluster.endpoints) == 3
    leader = cluster.wait_ready()
    key = f"/{unique_name('et')}"
    assert etcd_put(cluster.endpoints[leader], f"{key}/before", "1")

    cluster.kill_member(leader)
    survivor = cluster.endpoints[(leader + 1) % cluster.size]
    wait_until(
        lambda: etcd_put(survivor, f"{key}/after", "2"),
        timeout=WRITE_TIMEOUT,
        what="an etcd put after the leader was killed",
    )

    cluster.start_member(leader)
    restarted = cluster.endpoints[leader]
    assert etcd_get(restarted, f"{key}/before") == "1"
    assert etcd_get(restarted, f"{key}/after") == "2"
    assert cluster.wait_ready() is not None

    cluster.restart()  # all members down at once, then up: data survives
    assert [etcd_get(endpoint, f"{key}/after") for endpoint in cluster.endpoints] == ["2"] * 3


# -- Redis -----------------------------------------------------------------------------------


def test_redis_keeps_data_across_restart_and_kill(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    key = unique_name("rd")
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.set(key, b"v1")
        redis_server.restart()
        assert client.get(key) == b"v1"  # redis-py reconnects by itself

        client.set(key, b"v2")
        redis_server.kill()  # appendfsync always: even SIGKILL loses nothing
        redis_server.start()
        assert client.get(key) == b"v2"
    finally:
        client.close()


# -- harness hygiene -------------------------------------------------------------------------


def test_close_ends_the_process_and_removes_its_directory() -> None:
    server = RedisServer().start()
    pid = server.pid
    assert pid is not None
    assert pid in [process.pid for process in running_processes()]
    server.close()
    with pytest.raises(ProcessLookupError):  # gone and reaped, not a zombie
        os.kill(pid, 0)
    assert not server.directory.exists()
