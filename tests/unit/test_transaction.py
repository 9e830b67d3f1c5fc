"""Transaction bookkeeping and the retry loop, against an in-memory backend double."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping

import pytest

from vlcp.store import ConflictRetriesExhausted, Store, Transaction, TransactionTooLarge
from vlcp.store.backend import Backend, LogEntry, Versioned
from vlcp.store.errors import Conflict


class MemoryBackend(Backend):
    """Just enough of a backend to drive `Store` without I/O."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[bytes, int]] = {}
        self.revision = 0
        self.commits: list[dict[str, bytes | None]] = []
        self.fail_next = 0

    async def fetch(self, keys: Iterable[str]) -> dict[str, Versioned]:
        return {k: Versioned(*self.data.get(k, (None, 0))) for k in keys}

    async def commit(self, reads: Mapping[str, int], writes: Mapping[str, bytes | None]) -> int:
        if self.fail_next:
            self.fail_next -= 1
            raise Conflict("simulated")
        if any(self.data.get(k, (None, 0))[1] != v for k, v in reads.items()):
            raise Conflict("changed")
        if writes:
            self.revision += 1
            for key, data in writes.items():
                if data is None:
                    self.data.pop(key, None)
                else:
                    self.data[key] = (data, self.revision)
            self.commits.append(dict(writes))
        return self.revision

    async def snapshot(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        return self.revision, {k: v for k, (v, _) in self.data.items() if k.startswith(prefix)}

    async def changes(self, since: int) -> AsyncIterator[LogEntry]:  # pragma: no cover
        raise NotImplementedError
        yield

    async def live_start(self, session_id: str, ttl: float) -> None: ...
    async def live_refresh(self, session_id: str, ttl: float) -> bool:
        return True

    async def live_sessions(self) -> set[str]:
        return set()

    async def live_end(self, session_id: str) -> None: ...
    async def close(self) -> None: ...


async def test_conflicts_are_retried_then_commit() -> None:
    backend = MemoryBackend()
    backend.fail_next = 3
    runs = 0

    async def fn(txn: Transaction) -> str:
        nonlocal runs
        runs += 1
        txn.put("a", runs)
        return "done"

    assert await Store(backend).transact(fn) == "done"
    assert runs == 4
    assert backend.commits == [{"a": b"4"}]


async def test_retries_are_bounded() -> None:
    backend = MemoryBackend()
    backend.fail_next = 10

    async def fn(txn: Transaction) -> None:
        txn.put("a", 1)

    with pytest.raises(ConflictRetriesExhausted, match="5 times"):
        await Store(backend, max_attempts=5).transact(fn)
    assert backend.commits == []


async def test_a_refused_write_leaves_the_transaction_as_it_was() -> None:
    txn = Transaction(MemoryBackend())
    for i in range(1000):
        txn.put(f"k/{i}", i)
    with pytest.raises(TransactionTooLarge, match="1000 keys"):
        txn.put("k/one-more", 1)
    txn.put("k/0", "rewriting an existing key is still fine")
    assert len(txn.writes) == 1000


async def test_byte_limit_counts_rewrites_once() -> None:
    txn = Transaction(MemoryBackend())
    for _ in range(100):
        txn.put("k", "v" * 100_000)
    with pytest.raises(TransactionTooLarge, match="bytes"):
        for i in range(4):
            txn.put(f"k{i}", "v" * 100_000)
