"""Small tools shared by the store contract tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from vlcp.store import Resync, Store, StoreUnavailable, Transaction, WatchEvent
from vlcp.store.backend import LogEntry

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[3]


def start_worker(*args: str) -> subprocess.Popen[str]:
    """A store client in another OS process (see worker.py), printing one line per step."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.store.worker", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def read_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The worker's next output line; fails (with its stderr) if it ends or stays silent."""
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)  # type: ignore[union-attr]
    if not line:
        proc.wait(5)
        raise AssertionError(f"worker exited {proc.returncode}: {proc.stderr.read()}")  # type: ignore[union-attr]
    return line.strip()


async def put(store: Store, key: str, value: Any) -> None:
    async def write(txn: Transaction) -> None:
        txn.put(key, value)

    await store.transact(write)


async def until_available(call: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
    """Retry `call` while the store is unreachable (a server is coming back), up to `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await call()
        except StoreUnavailable:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def next_event(
    watch: AsyncIterator[WatchEvent | Resync], timeout: float = 20.0
) -> WatchEvent | Resync:
    return await asyncio.wait_for(anext(watch), timeout)


async def collect_values(
    watch: AsyncIterator[WatchEvent | Resync], key: str, last: int, timeout: float = 60.0
) -> list[Any]:
    """Every value `key` takes in the watch, in order, until it reaches `last`."""
    seen: list[Any] = []
    revisions: list[int] = []

    async def run() -> None:
        async for item in watch:
            assert isinstance(item, WatchEvent), f"unexpected resync at {item.revision}"
            revisions.append(item.revision)
            for change in item.changes:
                if change.key == key:
                    seen.append(change.value)
                    if change.value == last:
                        return

    await asyncio.wait_for(run(), timeout)
    assert revisions == sorted(set(revisions)), "revisions must strictly increase"
    return seen


@contextlib.contextmanager
def private_server(server: T) -> Iterator[T]:
    """A server of one test alone, which it may kill, freeze (SIGSTOP) and restart."""
    try:
        yield server.start()  # type: ignore[attr-defined]
    finally:
        if server.pid is not None:  # type: ignore[attr-defined]
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGCONT)  # type: ignore[attr-defined]
        server.close()  # type: ignore[attr-defined]


async def next_change(changes: AsyncIterator[LogEntry], timeout: float = 10.0) -> LogEntry:
    """The next entry of a backend's change stream, or a timeout failure."""
    return await asyncio.wait_for(anext(changes), timeout)
