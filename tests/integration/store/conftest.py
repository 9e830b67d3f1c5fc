"""Fixtures for the store contract suite: one fresh, private namespace per test and backend.

Every contract test runs against every backend with real servers (sqlite needs none).
Tests that need a server to die take `server_store`, which only has server backends.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest

from vlcp.store import Store, open_store

ALL_BACKENDS = ["sqlite", "zookeeper", "etcd", "redis"]
SERVER_BACKENDS = ["zookeeper", "etcd", "redis"]
CLUSTER_BACKENDS = ["zookeeper", "etcd"]

TIMEOUT = 2.0
"""Seconds a store call may wait for an unreachable server before failing (URL `timeout`)."""
CLUSTER_TIMEOUT = 5.0
"""The same for clusters: the default, longer than a leader election (about 1 s for the lab's
ZooKeeper, 2 s for its etcd), so a minority loss fails no call."""


@dataclass
class StoreTarget:
    """A URL for one private namespace, and how to take its server down and back up."""

    url: str
    server: object | None = None

    def kill(self) -> None:
        self.server.kill()  # type: ignore[union-attr]

    def start(self) -> None:
        self.server.start()  # type: ignore[union-attr]


def _namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def target_for(
    backend: str, request: pytest.FixtureRequest, *, cluster: bool = False
) -> StoreTarget:
    ns = _namespace()
    query = f"timeout={CLUSTER_TIMEOUT if cluster else TIMEOUT:g}"
    if backend == "sqlite":
        tmp = request.getfixturevalue("tmp_path")
        return StoreTarget(f"sqlite://{tmp}/{ns}.db")
    if backend == "zookeeper":
        zk = request.getfixturevalue("zookeeper_ensemble" if cluster else "zookeeper")
        return StoreTarget(f"zookeeper://{zk.hosts}/{ns}?{query}&session_timeout=3", zk)
    if backend == "etcd":
        etcd = request.getfixturevalue("etcd_cluster" if cluster else "etcd")
        hosts = ",".join(e.removeprefix("http://") for e in etcd.endpoints)
        return StoreTarget(f"etcd://{hosts}/{ns}?{query}", etcd)
    if backend == "redis":
        redis = request.getfixturevalue("redis_server")
        return StoreTarget(f"{redis.url}?{query}&prefix={ns}", redis)
    raise AssertionError(backend)


_TARGET = pytest.StashKey[StoreTarget]()


def _kept(request: pytest.FixtureRequest, target: StoreTarget) -> StoreTarget:
    """`target`, remembered for the test's report (see `pytest_runtest_makereport`)."""
    request.node.stash[_TARGET] = target
    return target


@pytest.fixture(params=ALL_BACKENDS)
def target(request: pytest.FixtureRequest) -> StoreTarget:
    return _kept(request, target_for(request.param, request))


@pytest.fixture(params=SERVER_BACKENDS)
def server_target(request: pytest.FixtureRequest) -> StoreTarget:
    return _kept(request, target_for(request.param, request))


@pytest.fixture(params=CLUSTER_BACKENDS)
def cluster_target(request: pytest.FixtureRequest) -> StoreTarget:
    return _kept(request, target_for(request.param, request, cluster=True))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[pytest.TestReport]:
    """A failing test's report ends with the tail of its store servers' logs (their
    directories go with the fixture: without this, a failure seen once in a full run
    leaves nothing to read)."""
    report: pytest.TestReport = yield
    target = item.stash.get(_TARGET, None)
    tail = getattr(target.server, "log_tail", None) if target is not None else None
    if report.failed and tail is not None:
        report.sections.append(("store servers' logs", tail(40)))
    return report


StoreFactory = Callable[..., "AsyncIterator[Store]"]


@pytest.fixture
async def open_stores() -> AsyncIterator[Callable[..., object]]:
    """Opens stores (closed at teardown, even when the test fails)."""
    opened: list[Store] = []

    async def opener(url: str, **options: object) -> Store:
        store = await open_store(url, reap_interval=0.2, watch_retry=0.1, **options)
        opened.append(store)
        return store

    yield opener
    for store in reversed(opened):
        with contextlib.suppress(Exception):  # the server may be down on purpose
            await store.close()


@pytest.fixture
async def store(target: StoreTarget, open_stores) -> Store:
    return await open_stores(target.url)
