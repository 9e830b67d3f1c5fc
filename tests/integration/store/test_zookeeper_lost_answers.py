"""ZooKeeper calls whose connection drops mid-request: reads are made again, and a commit
whose answer was lost is settled from the change log, never lost and never applied twice.

The connection is cut for real at the exact request (`ZooKeeperCutter`), so kazoo reports
its own ConnectionLoss and reconnects to the same session.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.lab.services import ZooKeeperServer
from vlcp.store import StoreUnavailable
from vlcp.store.zookeeper import ZooKeeperBackend, open_zookeeper

from .helpers import next_change, until_available
from .zk_cutter import GET_DATA, MULTI, ZooKeeperCutter

TIMEOUT = 1.0
pytestmark = pytest.mark.slow


@pytest.fixture
async def cutter(zookeeper: ZooKeeperServer) -> AsyncIterator[ZooKeeperCutter]:
    async with ZooKeeperCutter(zookeeper.port) as proxy:
        yield proxy


@pytest.fixture
async def pair(
    zookeeper: ZooKeeperServer, cutter: ZooKeeperCutter
) -> AsyncIterator[tuple[ZooKeeperBackend, ZooKeeperBackend]]:
    """One store reached through the cutter, and an observer of the same store reached directly."""
    root = f"/t{uuid.uuid4().hex[:12]}"
    query = f"timeout={TIMEOUT}&session_timeout=4"
    cut = await open_zookeeper(f"zookeeper://{cutter.hosts}{root}?{query}")
    observer = await open_zookeeper(f"zookeeper://{zookeeper.hosts}{root}?{query}")
    yield cut, observer
    await cut.close()
    await observer.close()


@pytest.mark.parametrize("applied", [True, False], ids=["answer-lost", "request-lost"])
async def test_a_commit_whose_answer_was_lost_is_settled_from_the_log(
    cutter: ZooKeeperCutter,
    pair: tuple[ZooKeeperBackend, ZooKeeperBackend],
    applied: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend, observer = pair
    await backend.commit({}, {"c/a": b"0"})
    start, _ = await observer.snapshot("")
    read = (await backend.fetch(["c/a"]))["c/a"].version
    cutter.cut_at_next({MULTI}, after_sending=applied)
    with caplog.at_level(logging.INFO, logger="vlcp.store.zookeeper"):
        revision = await backend.commit({"c/a": read}, {"c/a": b"1", "c/b": b"new"})
    assert cutter.cuts == 1
    verdict = "applied" if applied else "not applied: sending it again"
    assert f"the log says {verdict}" in caplog.text
    assert (await observer.fetch(["c/a"]))["c/a"].version == read + 1  # written once
    await observer.commit({}, {"c/z": b"end"})
    changes = observer.changes(start)
    entry = await next_change(changes)
    assert (entry.revision, entry.changes) == (revision, (("c/a", b"1"), ("c/b", b"new")))
    assert (await next_change(changes)).changes == (("c/z", b"end"),)  # and only once
    await changes.aclose()
    # the backend's hints survived the settlement: it commits on as usual
    current = (await backend.fetch(["c/a"]))["c/a"].version
    await backend.commit({"c/a": current}, {"c/a": b"2", "c/b": None})
    assert (await observer.fetch(["c/a"]))["c/a"].data == b"2"


async def test_reads_cut_off_by_a_lost_connection_are_made_again(
    cutter: ZooKeeperCutter, pair: tuple[ZooKeeperBackend, ZooKeeperBackend]
) -> None:
    backend, _observer = pair
    await backend.commit({}, {"r/a": b"0"})
    cutter.cut_at_next({GET_DATA}, after_sending=True)
    assert (await backend.fetch(["r/a"]))["r/a"].data == b"0"
    cutter.cut_at_next({GET_DATA}, after_sending=False)
    _revision, values = await backend.snapshot("r/")
    assert values == {"r/a": b"0"}
    assert cutter.cuts == 2


async def test_a_commit_cut_off_past_its_deadline_says_whether_it_may_have_applied(
    cutter: ZooKeeperCutter, pair: tuple[ZooKeeperBackend, ZooKeeperBackend]
) -> None:
    backend, observer = pair
    await backend.commit({}, {"d/a": b"0"})
    # sent, answer lost, and the store unreachable until the deadline: nobody can tell
    cutter.cut_at_next({MULTI}, after_sending=True)
    cutter.refusing = True
    began = time.monotonic()
    with pytest.raises(StoreUnavailable, match="may or may not have been applied") as lost:
        await backend.commit({}, {"d/a": b"1"})
    assert lost.value.maybe_applied
    assert time.monotonic() - began < TIMEOUT + 1
    assert (await observer.fetch(["d/a"]))["d/a"].data == b"1"  # it was, as it happens
    # unreachable before anything was sent: certainly not applied
    cutter.drop()
    with pytest.raises(StoreUnavailable, match="the commit was not applied") as refused:
        await backend.commit({}, {"d/a": b"2"})
    assert not refused.value.maybe_applied
    assert (await observer.fetch(["d/a"]))["d/a"].data == b"1"
    cutter.refusing = False
    await until_available(lambda: backend.commit({}, {"d/a": b"3"}), timeout=10)
    assert (await observer.fetch(["d/a"]))["d/a"].data == b"3"
