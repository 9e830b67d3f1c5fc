"""An asyncio OVSDB client: one logical connection that survives server restarts.

The client keeps reconnecting (with backoff) until it is closed. Requests wait for a
connection; a request whose connection dies before the reply fails with
:class:`ConnectionLost`, since only the caller knows whether re-sending is safe. State the
server keeps per connection (monitors, locks) is rebuilt by *session hooks* that run on
every new connection: :class:`~vlcp.southbound.ovsdb.monitor.Monitor` uses one to resync
its cache, and the client uses one to re-request the locks it wants.

A malformed message from the server never reaches the caller as a crash: it is logged,
the connection is dropped and a new one is made (which resyncs every monitor).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from ...tasks import stop_tasks
from .connection import Session, Target
from .errors import (
    ClientClosed,
    ConnectionLost,
    OvsdbError,
    ProtocolError,
    RpcError,
    TransactError,
)
from .protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    JsonRpcProtocol,
    Liveness,
    Message,
    Notification,
    ProbeAction,
    Request,
    Response,
)
from .schema import DatabaseSchema

log = logging.getLogger(__name__)

SessionHook = Callable[[Session], Awaitable[None]]
"""Runs on every new connection (hooks run concurrently; each is cancelled if it ends)."""
NotificationHandler = Callable[[Session, list[Any]], None]
"""Handles a notification synchronously, in arrival order; raising drops the connection."""
LockListener = Callable[[str, bool], None]
"""Called with (lock name, owned) whenever ownership of a wanted lock changes."""

READ_SIZE = 256 * 1024


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: exponential from ``initial`` to ``maximum``, with jitter.

    The first retry is quick because the common case is an ovsdb-server restart that takes
    tens of milliseconds; the cap bounds how stale the cache may get after a long outage;
    jitter keeps many agents from reconnecting to one server in lockstep.
    """

    initial: float = 0.05
    maximum: float = 4.0
    factor: float = 2.0
    jitter: float = 0.2

    def delays(self) -> Iterator[float]:
        """An endless iterator of delays for consecutive failed attempts."""
        delay = self.initial
        while True:
            yield delay * (1 + self.jitter * random.random())
            delay = min(self.maximum, delay * self.factor)


_LOCK_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_lock_id(name: str) -> str:
    """RFC 7047 <id>: ovsdb-server refuses anything else with a terse syntax error."""
    if not _LOCK_ID.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid lock id (letters, digits, underscores)")
    return name


def _locked(result: Any) -> bool:
    """The "locked" member of a lock/steal reply."""
    if not isinstance(result, Mapping) or not isinstance(result.get("locked"), bool):
        raise ProtocolError(f"bad lock reply {result!r}")
    return bool(result["locked"])


class _LockState:
    """A lock this client wants, and whether the server says we own it right now."""

    def __init__(self) -> None:
        self.owned = asyncio.Event()
        self.session: Session | None = None
        """The connection on which we last asked for the lock."""


class OvsdbClient:
    """An RFC 7047 client for one server, reconnecting until :meth:`close`.

    Use as ``async with OvsdbClient("unix:/run/openvswitch/db.sock") as client:``, or call
    :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        target: str,
        *,
        probe_interval: float | None = 5.0,
        backoff: Backoff | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_in_flight: int = 1024,
        connect_timeout: float = 5.0,
    ) -> None:
        self.target = Target.parse(target)
        self.probe_interval = probe_interval
        self.backoff = backoff or Backoff()
        self.max_message_size = max_message_size
        self.connect_timeout = connect_timeout
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._session: Session | None = None
        self._session_changed = asyncio.Event()
        self._closed = False
        self._runner: asyncio.Task[None] | None = None
        self._hooks: list[SessionHook] = [self._relock]
        self._handlers: dict[str, list[NotificationHandler]] = {}
        self._locks: dict[str, _LockState] = {}
        self._lock_listeners: list[LockListener] = []
        self._sessions_started = 0

    def __repr__(self) -> str:
        return f"OvsdbClient({str(self.target)!r})"

    # ------------------------------------------------------------ lifecycle

    async def start(self, *, wait: bool = True, timeout: float | None = None) -> Self:
        """Begin connecting in the background; with ``wait``, until the first connection."""
        if self._closed:
            raise ClientClosed("client is closed")
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(
                self._run(), name=f"ovsdb {self.target}"
            )
        if wait:
            await self.wait_connected(timeout)
        return self

    async def close(self) -> None:
        """Stop reconnecting, drop the connection, fail what waits with ClientClosed.

        The session's hooks are stopped by the runner as its session ends (see `_serve`).
        """
        if self._closed:
            return
        self._closed = True
        if self._session is not None:
            self._session.close(ClientClosed("client closed"))
        try:
            if self._runner is not None:
                await stop_tasks([self._runner])
        finally:
            self._pulse()  # wake wait_connected() so it can raise ClientClosed

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """Whether a connection is up right now."""
        return self._session is not None and not self._session.closed

    @property
    def session(self) -> Session | None:
        """The current connection, if any."""
        return self._session if self.connected else None

    @property
    def sessions_started(self) -> int:
        """How many connections have been made (reconnects = this minus one)."""
        return self._sessions_started

    async def wait_connected(
        self, timeout: float | None = None, *, after: Session | None = None
    ) -> Session:
        """The current session, waiting (at most ``timeout`` s) for one if needed.

        With ``after``, wait for a session other than that one: "until we have
        reconnected", which a caller that just saw a connection fail needs.
        """
        async with asyncio.timeout(timeout):
            while True:
                if self._closed:
                    raise ClientClosed("client is closed")
                changed = self._session_changed
                session = self.session
                if session is not None and session is not after:
                    return session
                await changed.wait()

    def _pulse(self) -> None:
        """Wake wait_connected(): a session started or ended."""
        self._session_changed.set()
        self._session_changed = asyncio.Event()

    def reconnect(self) -> None:
        """Drop the current connection; the client connects again (monitors resync)."""
        if self._session is not None:
            self._session.close(ConnectionLost("reconnect requested"))

    # ------------------------------------------------------------ extension points

    def add_session_hook(self, hook: SessionHook) -> Callable[[], None]:
        """Run ``hook(session)`` on every new connection (now too, if connected).

        Returns a function that removes the hook.
        """
        self._hooks.append(hook)
        session = self.session
        if session is not None:
            self._spawn(session, self._run_hook(hook, session))
        return lambda: self._hooks.remove(hook) if hook in self._hooks else None

    def on_notification(self, method: str, handler: NotificationHandler) -> Callable[[], None]:
        """Call ``handler(session, params)`` for each ``method`` notification; returns a remover."""
        handlers = self._handlers.setdefault(method, [])
        handlers.append(handler)
        return lambda: handlers.remove(handler) if handler in handlers else None

    # ------------------------------------------------------------ requests

    async def call(self, method: str, params: list[Any], *, session: Session | None = None) -> Any:
        """Send a request and return its result; a JSON-RPC error raises :class:`RpcError`.

        With ``session``, the request goes on that connection or fails with
        :class:`ConnectionLost` if it has ended: state tied to one connection (a monitor
        being set up) must not leak onto the next one.
        """
        if session is None:
            session = await self.wait_connected()
        async with self._in_flight:
            future = session.send_request(method, params)
            await session.drain()
            response = await future
        if response.error is not None:
            raise RpcError(method, response.error)
        return response.result

    async def list_dbs(self) -> list[str]:
        """The databases the server holds."""
        return list(await self.call("list_dbs", []))

    async def get_schema(self, db: str, *, session: Session | None = None) -> DatabaseSchema:
        """The schema of ``db`` as the server has it now."""
        return DatabaseSchema.from_json(await self.call("get_schema", [db], session=session))

    async def echo(self, *payload: Any) -> list[Any]:
        """Round-trip ``payload`` through the server (a liveness check you can await)."""
        return list(await self.call("echo", list(payload)))

    async def transact(self, db: str, ops: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Run operations atomically; return one result per operation.

        If an operation fails, nothing is committed and :class:`TransactError` names the
        operation (its index and kind) with the server's error and details.
        """
        result = await self.call("transact", [db, *ops])
        if not isinstance(result, list):
            raise ProtocolError(f"transact result is not an array: {result!r}")
        for index, item in enumerate(result):
            if isinstance(item, Mapping) and "error" in item:
                failing = index if index < len(ops) else None
                raise TransactError(
                    db,
                    failing,
                    ops[failing] if failing is not None else None,
                    str(item["error"]),
                    item.get("details"),
                    result,
                )
        return result

    # ------------------------------------------------------------ locks

    async def lock(self, name: str) -> bool:
        """Ask for lock ``name``; True if owned now, else it comes later ("locked").

        The client keeps wanting the lock until :meth:`unlock`, and asks again after a
        reconnect (the server forgets locks with the connection). Asking again on the same
        connection is harmless (ovsdb-server would refuse a second "lock").
        """
        state = self._locks.setdefault(_check_lock_id(name), _LockState())
        session = await self.wait_connected()
        if state.session is session:
            return state.owned.is_set()
        state.session = session
        locked = _locked(await self.call("lock", [name], session=session))
        if locked:
            self._set_owned(name, state, True)
        return locked

    async def steal(self, name: str) -> bool:
        """Take lock ``name`` from its owner, who is told "stolen" and queues again."""
        state = self._locks.setdefault(_check_lock_id(name), _LockState())
        session = await self.wait_connected()
        if state.session is session:
            if state.owned.is_set():
                return True
            await self.call("unlock", [name], session=session)  # a waiter cannot steal
        state.session = session
        locked = _locked(await self.call("steal", [name], session=session))
        if locked:
            self._set_owned(name, state, True)
        return locked

    async def unlock(self, name: str) -> None:
        """Give up lock ``name`` (owned or still waited for)."""
        state = self._locks.pop(name, None)
        if state is None:
            return
        self._set_owned(name, state, False)
        session = state.session
        if session is not None and not session.closed:
            with contextlib.suppress(ConnectionLost):
                await self.call("unlock", [name], session=session)

    def has_lock(self, name: str) -> bool:
        """Whether the server says we own ``name`` right now."""
        state = self._locks.get(name)
        return state is not None and state.owned.is_set()

    async def wait_lock(self, name: str, timeout: float | None = None) -> None:
        """Wait until we own ``name`` (which must have been requested with lock/steal)."""
        async with asyncio.timeout(timeout):
            await self._locks[name].owned.wait()

    def on_lock_change(self, listener: LockListener) -> Callable[[], None]:
        """Call ``listener(name, owned)`` on every ownership change; returns a remover."""
        self._lock_listeners.append(listener)
        return lambda: self._lock_listeners.remove(listener)

    def _set_owned(self, name: str, state: _LockState, owned: bool) -> None:
        if state.owned.is_set() == owned:
            return
        if owned:
            state.owned.set()
        else:
            state.owned.clear()
        for listener in list(self._lock_listeners):
            try:
                listener(name, owned)
            except Exception:
                log.exception("lock listener %r failed", listener)

    def _on_lock_notification(self, method: str, params: list[Any]) -> None:
        if not params or not isinstance(params[0], str):
            raise ProtocolError(f"{method} notification without a lock name: {params!r}")
        state = self._locks.get(params[0])
        if state is not None:
            self._set_owned(params[0], state, method == "locked")

    async def _relock(self, session: Session) -> None:
        """Session hook: ask again for every lock we still want."""
        for name, state in list(self._locks.items()):
            if state.session is session:
                continue  # lock() got there first on this connection
            state.session = session
            locked = _locked(await self.call("lock", [name], session=session))
            if locked and self._locks.get(name) is state:
                self._set_owned(name, state, True)

    # ------------------------------------------------------------ connection loop

    async def _run(self) -> None:
        """Connect, serve, and reconnect with backoff until closed."""
        delays = self.backoff.delays()
        failures = 0
        while not self._closed:
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(self.connect_timeout):
                    reader, writer = await self.target.open(limit=READ_SIZE)
            except (OSError, TimeoutError) as exc:
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "cannot connect to %s: %s (retrying)", self.target, exc)
                await asyncio.sleep(next(delays))
                continue
            failures = 0
            started = loop.time()
            await self._serve(reader, writer)
            if loop.time() - started >= self.backoff.maximum:
                delays = self.backoff.delays()  # it was healthy for a while: retry fast
            if not self._closed:
                await asyncio.sleep(next(delays))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Run one session until it ends, then clean up after it (also when cancelled)."""
        self._sessions_started += 1
        session = Session(self._sessions_started, writer, JsonRpcProtocol(self.max_message_size))
        self._session = session
        self._pulse()
        log.info("connected to %s (%r)", self.target, session)
        for hook in list(self._hooks):
            self._spawn(session, self._run_hook(hook, session))
        reason: BaseException = ClientClosed("client closed")
        try:
            await self._read_loop(session, reader)
            reason = ConnectionLost("closed by the server")
        except ProtocolError as exc:
            log.error("malformed message from %s: %s; reconnecting", self.target, exc)
            reason = exc
        except (OSError, OvsdbError, TimeoutError) as exc:
            reason = exc
        except Exception as exc:  # a bug of ours: reconnect rather than die silently
            log.exception("OVSDB session with %s failed", self.target)
            reason = exc
        finally:
            if not self._closed and not isinstance(reason, ProtocolError):
                log.warning("connection to %s lost: %s", self.target, reason)
            session.close(reason)
            self._session = None
            self._pulse()
            for name, state in list(self._locks.items()):
                self._set_owned(name, state, False)
            # Last, as it awaits: the hooks of a session that ended are over before the
            # next session's start, and their errors are logged.
            await stop_tasks(session.tasks)

    async def _read_loop(self, session: Session, reader: asyncio.StreamReader) -> None:
        """Read and dispatch until EOF; probe a silent peer; return on EOF."""
        loop = asyncio.get_running_loop()
        liveness = Liveness(self.probe_interval, loop.time())
        ended = asyncio.ensure_future(session.ended.wait())
        try:
            while True:
                session.check_open()
                deadline = liveness.deadline()
                read = asyncio.ensure_future(reader.read(READ_SIZE))
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                done, _ = await asyncio.wait(
                    {read, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if read not in done:
                    read.cancel()
                    session.check_open()  # closed by reconnect() or a hook: say why
                    action = liveness.poll(loop.time())
                    if action is ProbeAction.SEND_ECHO:
                        session.send_request("echo", ["vlcp-probe"])
                    elif action is ProbeAction.DEAD:
                        raise ConnectionLost(f"no reply to an echo within {self.probe_interval}s")
                    continue
                data = read.result()
                if not data:
                    return
                liveness.received(loop.time())
                for message in session.protocol.receive(data):
                    self._dispatch(session, message)
        finally:
            ended.cancel()

    def _dispatch(self, session: Session, message: Message) -> None:
        """Route one message; handler failures count as a malformed server message."""
        if isinstance(message, Response):
            session.resolve(message)
        elif isinstance(message, Request):
            if message.method == "echo":
                session.write(session.protocol.response(message.id, message.params))
            else:
                session.write(session.protocol.error_response(message.id, "unknown method"))
        elif isinstance(message, Notification):
            if message.method in ("locked", "stolen"):
                self._on_lock_notification(message.method, message.params)
                return
            for handler in list(self._handlers.get(message.method, ())):
                try:
                    handler(session, message.params)
                except ProtocolError:
                    raise
                except Exception as exc:
                    log.exception("handling %s failed", message.method)
                    raise ProtocolError(f"bad {message.method} notification: {exc}") from exc

    def _spawn(self, session: Session, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine tied to ``session`` (cancelled when the session ends)."""
        task = asyncio.get_running_loop().create_task(coro, name=f"ovsdb {session!r} hook")
        session.tasks.add(task)
        task.add_done_callback(session.tasks.discard)

    async def _run_hook(self, hook: SessionHook, session: Session) -> None:
        """Run one hook; a lost connection just ends it, other errors are logged."""
        try:
            await hook(session)
        except (ConnectionLost, ClientClosed):
            pass
        except Exception:
            log.exception("session hook %r failed on %s", hook, self.target)
