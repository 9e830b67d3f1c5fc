"""What `Model` adds around a transaction: locks, confirmed errors, store failures mapped."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from vlcp.model import Busy, Conflict, Invalid, Model
from vlcp.store import Store, StoreUnavailable, Transaction
from vlcp.store.errors import ConflictRetriesExhausted


class Counting:
    """Wraps a backend's commit to count the attempts (and optionally fail them)."""

    def __init__(self, store: Store, fail: Exception | None = None) -> None:
        self.commits = 0
        self.fail = fail
        self.inner = store.backend.commit
        store.backend.commit = self.commit  # type: ignore[method-assign]

    async def commit(self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]) -> int:
        self.commits += 1
        if self.fail is not None:
            raise self.fail
        return await self.inner(reads, writes)


async def test_one_process_queues_instead_of_retrying(net: Model) -> None:
    """50 concurrent creations in one network: about one commit each, not a retry storm."""
    counter = Counting(net.store)
    ports = await asyncio.gather(
        *(net.create("logical-ports", {"logicalnetwork": "n1"}) for _ in range(50))
    )
    assert len(ports) == 50
    assert counter.commits <= 55, counter.commits


async def test_locks_learned_on_update_and_delete(net: Model) -> None:
    """Updates name no parent up front; the first run reveals the contended keys."""
    ports = [
        await net.create("logical-ports", {"logicalnetwork": "n1", "subnet": "s1"})
        for _ in range(8)
    ]
    counter = Counting(net.store)
    await asyncio.gather(*(net.delete("logical-ports", p["id"]) for p in ports))
    assert counter.commits <= 12, counter.commits
    assert await net.list("logical-ports") == []


async def test_an_error_is_confirmed_before_it_is_answered(model: Model) -> None:
    """A failure read from data that changed meanwhile is retried, not reported."""
    await model.store.transact(_put("flag", "busy"))
    runs = 0

    async def fn(txn: Transaction) -> str:
        nonlocal runs
        runs += 1
        if await txn.get("flag") == "busy":
            if runs == 1:  # a concurrent writer frees the flag right after we read it
                await model.store.transact(_put("flag", "free"))
            raise Conflict("the flag is busy")
        return "done"

    assert await model.transact(fn) == "done"
    assert runs == 2
    await model.store.transact(_delete("flag"))


async def test_unreachable_store_is_busy_and_writes_nothing(net: Model) -> None:
    Counting(net.store, StoreUnavailable("connection refused"))
    with pytest.raises(
        Busy, match=r"the store is unavailable \(connection refused\); nothing was written"
    ):
        await net.create("logical-ports", {"logicalnetwork": "n1"})


async def test_a_commit_whose_answer_was_lost_is_busy_and_says_it_may_be_made(
    net: Model,
) -> None:
    Counting(net.store, StoreUnavailable("answer lost", maybe_applied=True))
    with pytest.raises(Busy, match=r"\(answer lost\); the change may or may not have been made"):
        await net.create("logical-ports", {"logicalnetwork": "n1"})


async def test_exhausted_retries_are_busy(net: Model) -> None:
    async def contended(txn: Transaction) -> None:
        raise ConflictRetriesExhausted("conflicted 64 times")

    with pytest.raises(Busy, match="too contended"):
        await net.transact(contended)


async def test_oversized_value_is_invalid(net: Model) -> None:
    with pytest.raises(Invalid, match="limit"):
        await net.create("logical-ports", {"logicalnetwork": "n1", "blob": "x" * 300_000})


def _put(key: str, value: object):  # type: ignore[no-untyped-def]
    async def write(txn: Transaction) -> None:
        txn.put(key, value)

    return write


def _delete(key: str):  # type: ignore[no-untyped-def]
    async def write(txn: Transaction) -> None:
        txn.delete(key)

    return write
