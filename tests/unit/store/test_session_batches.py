"""How session writes and reaping are cut into transactions, against an in-memory backend."""

from __future__ import annotations

import pytest

from vlcp.store import InvalidValue, SessionLost, Store, limits
from vlcp.store.session import BATCH_KEYS, marker_key, owner_key, registry_key

from ..test_transaction import MemoryBackend


class LiveMemoryBackend(MemoryBackend):
    """Sessions stay alive until `live_end`, so the store's own reaper leaves them alone."""

    def __init__(self) -> None:
        super().__init__()
        self.live: set[str] = set()

    async def live_start(self, session_id: str, ttl: float) -> None:
        self.live.add(session_id)

    async def live_sessions(self) -> set[str]:
        return set(self.live)

    async def live_end(self, session_id: str) -> None:
        self.live.discard(session_id)


def _within_limits(commit: dict[str, bytes | None]) -> bool:
    size = sum(len(k) + len(v or b"") for k, v in commit.items())
    return len(commit) <= limits.MAX_TXN_WRITES and size <= limits.MAX_TXN_BYTES


def test_a_batch_is_as_many_keys_as_fit_the_write_limit() -> None:
    assert BATCH_KEYS == 333
    assert 3 * BATCH_KEYS + 1 <= limits.MAX_TXN_WRITES  # with the reaper's header deletion


async def test_put_many_is_one_transaction_when_it_fits() -> None:
    backend = LiveMemoryBackend()
    async with Store(backend) as store:
        session = await store.open_session()
        before = len(backend.commits)
        await session.put_many({f"k/{i}": i for i in range(BATCH_KEYS)})
        assert len(backend.commits) == before + 1
        written = backend.commits[-1]
        assert {k for k in written if k.startswith("k/")} == {f"k/{i}" for i in range(BATCH_KEYS)}
        assert written[owner_key("k/7")] == f'"{session.id}"'.encode()
        assert written[marker_key(session.id, "k/7")] == b'"k/7"'
        assert registry_key(session.id) not in written  # the header is only read


async def test_put_many_splits_by_key_count_and_by_bytes() -> None:
    backend = LiveMemoryBackend()
    async with Store(backend) as store:
        session = await store.open_session()
        before = len(backend.commits)
        await session.put_many({f"k/{i}": i for i in range(BATCH_KEYS * 2 + 1)})
        assert [len(c) // 3 for c in backend.commits[before:]] == [BATCH_KEYS, BATCH_KEYS, 1]
        before = len(backend.commits)
        big = "x" * (150 * 1024)
        await session.put_many({"b/1": big, "b/2": big, "b/3": big})  # 450 KiB in all
        assert [sorted(k for k in c if k.startswith("b/")) for c in backend.commits[before:]] == [
            ["b/1", "b/2"],
            ["b/3"],
        ]
        assert all(_within_limits(c) for c in backend.commits)


async def test_put_many_checks_every_value_before_writing_any() -> None:
    backend = LiveMemoryBackend()
    async with Store(backend) as store:
        session = await store.open_session()
        before = len(backend.commits)
        items: dict[str, object] = {f"k/{i}": i for i in range(BATCH_KEYS * 2)}
        items["k/last"] = float("nan")
        with pytest.raises(InvalidValue):
            await session.put_many(items)
        assert len(backend.commits) == before


async def test_delete_many_is_one_transaction_when_it_fits() -> None:
    backend = LiveMemoryBackend()
    async with Store(backend) as store:
        session = await store.open_session()
        await session.put_many({f"k/{i}": i for i in range(10)})
        before = len(backend.commits)
        await session.delete_many(f"k/{i}" for i in range(0, 10, 2))
        assert len(backend.commits) == before + 1
        assert sorted(k for k in backend.data if k.startswith("k/")) == [
            f"k/{i}" for i in range(1, 10, 2)
        ]
        assert marker_key(session.id, "k/0") not in backend.data
        assert owner_key("k/0") not in backend.data


async def test_reaping_respects_the_limits_and_deletes_the_header_last() -> None:
    backend = LiveMemoryBackend()
    async with Store(backend) as store:
        session = await store.open_session()
        await session.put_many({f"k/{i}": i for i in range(1000)})
        header = registry_key(session.id)
        size = len(backend.data[header][0])
        await session.put_many({f"more/{i}": i for i in range(1000)})
        assert len(backend.data[header][0]) == size < 200  # the header does not grow
        before = len(backend.commits)
        await session.close()
        reaping = backend.commits[before:]
        assert all(_within_limits(c) for c in reaping)
        assert [header in c for c in reaping] == [True] + [False] * 6 + [True]  # mark, ..., end
        assert backend.data == {}
        with pytest.raises(SessionLost):
            await session.put("k/again", 1)
