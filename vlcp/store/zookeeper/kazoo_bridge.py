"""kazoo to asyncio: run kazoo's requests from the event loop without ever blocking it.

kazoo runs its own threads and answers each ``*_async`` call with an IAsyncResult; the
bridge links those results to asyncio futures, so only the loop touches store state.

A backend call is one *operation* with one deadline, `timeout` after it began: every
request made inside it waits for a connection until then, and requests that are safe to
repeat are sent again after a lost connection until then (`retrying`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    KazooException,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
    SessionExpiredError,
)
from kazoo.protocol.states import KazooState

from ..errors import StoreUnavailable
from .url import ZooKeeperConfig

T = TypeVar("T")

Call = Callable[[], Any]
"""A thunk that starts one kazoo request and returns its IAsyncResult."""

_NODE_ERRORS = (NoNodeError, NodeExistsError, BadVersionError, NotEmptyError)
"""Answers about znodes, returned to the caller; every other failure means unavailable."""
_LOST = (ConnectionLoss, SessionExpiredError)
"""kazoo's answer to every request still out when the connection (or session) ended."""
_ROLLED_BACK = (RolledBackError, RuntimeInconsistency)
_BATCH = 4096
"""Requests pipelined at once (bounds memory for very large reads)."""
_DEADLINE: ContextVar[float | None] = ContextVar("zookeeper_deadline", default=None)
"""When the running operation gives up (loop time); None outside an operation."""


class ConnectionLost(StoreUnavailable):
    """Requests were handed to kazoo, and the connection failed before all were answered.

    Each of them may or may not have reached the ensemble: a read can simply be sent again
    (`KazooBridge.retrying`), a write has to be settled first (see `settle`).
    """


class KazooBridge:
    """Runs batches of kazoo requests from the event loop without ever blocking it.

    Requests are pipelined in the order given, and ZooKeeper answers a session's requests
    in order, so a batch reads one session-consistent view. Connection failures become
    StoreUnavailable within `timeout`; answers about znodes (NoNode, BadVersion...) are
    returned as exception objects for the caller to interpret.
    """

    def __init__(
        self, client: KazooClient, loop: asyncio.AbstractEventLoop, config: ZooKeeperConfig
    ):
        self.client = client
        self.loop = loop
        self.config = config
        self.state_changed = asyncio.Event()
        self.closed = False
        client.add_listener(self._on_state)

    def _on_state(self, _state: KazooState) -> None:
        """kazoo's connection thread reports a transition; wake the loop (never block here)."""
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self.loop.call_soon_threadsafe(self.state_changed.set)

    def unavailable(self, what: str, *, maybe_applied: bool = False) -> StoreUnavailable:
        return StoreUnavailable(
            f"ZooKeeper {self.config.hosts}: {what}", maybe_applied=maybe_applied
        )

    @contextlib.contextmanager
    def operation(self) -> Iterator[None]:
        """One backend call: every request made inside (in this task) shares one deadline,
        `timeout` from now."""
        token = _DEADLINE.set(self.loop.time() + self.config.timeout)
        try:
            yield
        finally:
            _DEADLINE.reset(token)

    def deadline(self) -> float:
        """The running operation's deadline, or `timeout` from now outside one."""
        deadline = _DEADLINE.get()
        return self.loop.time() + self.config.timeout if deadline is None else deadline

    def expired(self) -> bool:
        """Whether the running operation's deadline has passed."""
        return self.loop.time() >= self.deadline()

    async def retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()`, run again after each lost connection until the operation's deadline.

        For attempts that are safe to repeat (reads): kazoo reconnects to the same session
        on the members left, and the next attempt waits for that (`wait_connected`).
        """
        if _DEADLINE.get() is None:
            raise RuntimeError("KazooBridge.retrying runs only inside an operation()")
        while True:
            try:
                return await attempt()
            except ConnectionLost:
                if self.expired():
                    raise

    async def wait_connected(self) -> None:
        """Return once connected; StoreUnavailable if not connected by the deadline."""
        deadline = self.deadline()
        while not self.client.connected:
            if self.closed:
                raise StoreUnavailable("the ZooKeeper store is closed")
            self.state_changed.clear()
            if self.client.connected:
                break
            remaining = deadline - self.loop.time()
            try:  # not asyncio.wait_for: on Python 3.11 it can lose a cancellation
                async with asyncio.timeout(max(remaining, 0)):
                    await self.state_changed.wait()
            except TimeoutError:
                state = self.client.state
                raise self.unavailable(
                    f"not connected within {self.config.timeout:g} s (state {state})"
                ) from None

    async def run(self, calls: Sequence[Call]) -> list[Any]:
        """Send `calls` in order once connected; each result or its znode error."""
        await self.wait_connected()
        results: list[Any] = []
        for start in range(0, len(calls), _BATCH):
            pending = [call() for call in calls[start : start + _BATCH]]
            await self._wait_all(pending)
            results.extend(self._outcome(item) for item in pending)
        return results

    async def run_one(self, call: Call) -> Any:
        return (await self.run([call]))[0]

    async def _wait_all(self, pending: list[Any]) -> None:
        """Wait for every request; give up when none answered for `timeout` seconds."""
        if not pending:
            return
        done = self.loop.create_future()
        lock = threading.Lock()
        counts = [len(pending), 0]  # remaining, answered

        def answered(_result: Any) -> None:  # runs on a kazoo thread
            with lock:
                counts[0] -= 1
                counts[1] += 1
                last = counts[0] == 0
            if last:
                with contextlib.suppress(RuntimeError):
                    self.loop.call_soon_threadsafe(_resolve, done)

        for item in pending:
            item.rawlink(answered)
        seen = 0
        while not done.done():
            await asyncio.wait([done], timeout=self.config.timeout)
            if done.done():
                break
            if counts[1] == seen:
                where = f"ZooKeeper {self.config.hosts}"
                raise ConnectionLost(f"{where}: no answer within {self.config.timeout:g} s")
            seen = counts[1]

    def _outcome(self, item: Any) -> Any:
        if item.successful():
            return item.value
        exc = item.exception
        if isinstance(exc, _NODE_ERRORS):
            return exc
        what = f"ZooKeeper {self.config.hosts}: request failed: {type(exc).__name__} {exc}"
        if isinstance(exc, _LOST):
            raise ConnectionLost(what.rstrip())
        raise StoreUnavailable(what.rstrip())

    def waker(self, event: asyncio.Event) -> Callable[[Any], None]:
        """A kazoo watch callback that sets `event` on the loop (from kazoo's thread)."""
        loop = self.loop

        def wake(_event: Any = None) -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

        return wake


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def failed_op(results: list[Any]) -> int | None:
    """Index of the operation that made a multi fail (None if it succeeded)."""
    for index, result in enumerate(results):
        if isinstance(result, KazooException) and not isinstance(result, _ROLLED_BACK):
            return index
    return None
