"""pytest fixtures for real ZooKeeper, etcd and Redis servers (registered in tests/conftest.py).

Scopes, and why:

* ``zookeeper``, ``etcd``, ``redis_server``: one server per test session (``*_shared``), because
  starting even a fast JVM per test adds up. The function-scoped fixtures restart it if an
  earlier test stopped or killed it. Tests share its data, so use unique keys and paths
  (``vlcp.lab.naming.unique_name``).
* ``zookeeper_ensemble``, ``etcd_cluster``: fresh per test, because tests kill members and
  a half-dead cluster must never leak into the next test. ``zookeeper_ensemble_shared`` is
  for tests that leave its members alone.

Finalizers always stop what they started; ``pytest_unconfigure`` and an ``atexit`` hook in
:mod:`tests.lab.services` stop anything left, also after Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab.services import (
    EtcdCluster,
    EtcdServer,
    RedisServer,
    ZooKeeperEnsemble,
    ZooKeeperServer,
    stop_all_services,
)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Backstop: no server outlives the test run, whatever happened to the fixtures."""
    stop_all_services()


@pytest.fixture(scope="session")
def zookeeper_shared() -> Iterator[ZooKeeperServer]:
    """The session's standalone ZooKeeper (for session-scoped fixtures that need one)."""
    server = ZooKeeperServer()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def zookeeper(zookeeper_shared: ZooKeeperServer) -> ZooKeeperServer:
    """A running standalone ZooKeeper; connect kazoo to ``zookeeper.hosts``."""
    return zookeeper_shared.ensure_running()


@pytest.fixture(scope="session")
def zookeeper_ensemble_shared() -> Iterator[ZooKeeperEnsemble]:
    """The session's 3-member ensemble, for tests that never stop its members (end-to-end
    tests, each in its own chroot): three JVMs start once, not once per test."""
    ensemble = ZooKeeperEnsemble(size=3)
    try:
        ensemble.start_all()
        yield ensemble
    finally:
        ensemble.close()


@pytest.fixture
def zookeeper_ensemble() -> Iterator[ZooKeeperEnsemble]:
    """A fresh 3-member ensemble with a leader; tests may kill and restart members."""
    ensemble = ZooKeeperEnsemble(size=3)
    try:
        ensemble.start_all()
        yield ensemble
    finally:
        ensemble.close()


@pytest.fixture(scope="session")
def etcd_shared() -> Iterator[EtcdServer]:
    """The session's single-node etcd (for session-scoped fixtures that need one)."""
    server = EtcdServer()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def etcd(etcd_shared: EtcdServer) -> EtcdServer:
    """A running single-node etcd; ``etcd.endpoint`` or ``etcd.host``/``etcd.port``."""
    return etcd_shared.ensure_running()


@pytest.fixture
def etcd_cluster() -> Iterator[EtcdCluster]:
    """A fresh healthy 3-member etcd cluster; tests may kill and restart members."""
    cluster = EtcdCluster(size=3)
    try:
        cluster.start_all()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def redis_shared() -> Iterator[RedisServer]:
    """The session's Redis (for session-scoped fixtures that need one)."""
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def redis_server(redis_shared: RedisServer) -> RedisServer:
    """A running Redis with durable AOF; connect with ``redis.Redis.from_url(redis_server.url)``."""
    return redis_shared.ensure_running()
