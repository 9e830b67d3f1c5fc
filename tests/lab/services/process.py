"""The one place that spawns and signals the service lab's children, and their registry.

Every child is started in its own session with its output in a file, is signalled only through
its own ``Popen`` (never by name, never a recycled pid), and stays in a registry until it was
stopped; an ``atexit`` hook and ``pytest_unconfigure`` stop whatever is left. If the test
process dies hard (SIGKILL), the parent-death signal set via ``setpriv`` kills the servers.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from vlcp.lab.polling import poll
from vlcp.lab.processes import wait_or_kill

STOP_TIMEOUT = 10.0
"""Seconds a server gets after SIGTERM before it is SIGKILLed."""

POLL_INTERVAL = 0.05

T = TypeVar("T")


class ServiceError(RuntimeError):
    """A lab server did not start, become ready or stop in time (message has the log tail)."""


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = POLL_INTERVAL,
    details: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns anything but None or False, and return that value.

    0 counts as a result, so "the leader is member 0" can be waited for. Exceptions from
    ``condition`` count as "not yet" (clients raise during elections), except
    :class:`ServiceError`, which means a server died and waiting longer is pointless. On timeout
    the error names ``what``, the last exception and ``details()`` (typically a log tail).
    """

    def timeout_error(last_error: Exception | None) -> ServiceError:
        message = f"timed out after {timeout:.1f}s waiting for {what}"
        if last_error is not None:
            message += f" (last error: {last_error!r})"
        if details is not None:
            message += "\n" + details()
        return ServiceError(message)

    return poll(
        condition,
        timeout=timeout,
        interval=interval,
        done=lambda result: result is not None and result is not False,
        timeout_error=timeout_error,
        ignore=(Exception,),
        fatal=(ServiceError,),
    )


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

_LIVE: set[ManagedProcess] = set()
_LIVE_LOCK = threading.Lock()


def running_processes() -> list[ManagedProcess]:
    """Children started by this module that were not stopped yet (for leak checks)."""
    with _LIVE_LOCK:
        return [p for p in _LIVE if p.running]


def stop_all_services() -> None:
    """Stop every child this module started; safe to call repeatedly (atexit, pytest hooks).

    One at a time (see :func:`~tests.lab.services.server.stop_servers` for why etcd needs
    that); this is only a backstop.
    """
    with _LIVE_LOCK:
        processes = list(_LIVE)
    for process in processes:
        with contextlib.suppress(Exception):
            process.stop()


atexit.register(stop_all_services)


# --------------------------------------------------------------------------------------------
# One child process
# --------------------------------------------------------------------------------------------


def _scrubbed_env(drop_prefixes: Sequence[str]) -> dict[str, str]:
    """The test environment minus variables a server would read as configuration."""
    return {k: v for k, v in os.environ.items() if not k.startswith(tuple(drop_prefixes))}


def _pdeathsig_prefix() -> list[str]:
    """``setpriv --pdeathsig KILL``: the kernel kills the server if the test process dies hard.

    The parent-death signal fires when the *thread* that forked exits, so it is only used for
    children spawned from the main thread, which lives as long as the test process.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return []
    return [setpriv, "--pdeathsig", "KILL", "--"]


class ManagedProcess:
    """One child process: started in its own session, output to a file, signalled only by pid.

    ``Popen.send_signal`` does nothing once the child was reaped, so a recycled pid can never
    be hit by mistake.
    """

    def __init__(self, argv: Sequence[str], *, cwd: Path, output: Path, env: dict[str, str]):
        self.argv = list(argv)
        self.cwd = cwd
        self.output = output
        self.env = env
        self._popen: subprocess.Popen[bytes] | None = None
        self._terminated = False

    def start(self) -> None:
        """Spawn the child; its own session keeps a terminal Ctrl-C from killing it mid-test.

        May be called again once the child exited (a restart); never while it runs.
        """
        if self.running:
            raise ServiceError(f"{self.argv} is already running (pid {self.pid})")
        if shutil.which(self.argv[0]) is None:
            raise ServiceError(
                f"{self.argv[0]!r} not found; run scripts/install-debian-packages.sh"
            )
        with self.output.open("ab") as out:
            self._popen = subprocess.Popen(
                [*_pdeathsig_prefix(), *self.argv],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._terminated = False  # a restarted child gets its own SIGTERM
        with _LIVE_LOCK:
            _LIVE.add(self)

    def read_output(self) -> str:
        """What the child wrote so far (stdout and stderr; "" before it wrote anything)."""
        try:
            return self.output.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs (setpriv execs the server, so this is the server)."""
        return self._popen.pid if self.running and self._popen else None

    @property
    def running(self) -> bool:
        """True until the child exited (and got reaped)."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status once the child exited (negative: killed by that signal)."""
        return None if self._popen is None else self._popen.poll()

    def terminate(self) -> None:
        """Send SIGTERM once, without waiting: lets several JVMs (0.4 s each) stop in parallel."""
        popen = self._popen
        if popen is not None and not self._terminated:
            popen.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL: graceful but never hanging."""
        self.terminate()
        self._wait_or_kill(timeout)

    def kill(self) -> None:
        """SIGKILL, the way a crashed machine looks to the server's peers."""
        if self._popen is not None:
            self._popen.kill()
        self._wait_or_kill(STOP_TIMEOUT)

    def _wait_or_kill(self, timeout: float) -> None:
        popen = self._popen
        if popen is not None:
            try:
                wait_or_kill(popen, timeout, STOP_TIMEOUT)
            except subprocess.TimeoutExpired as exc:
                raise ServiceError(f"pid {popen.pid} survived SIGKILL: {self.argv}") from exc
        with _LIVE_LOCK:
            _LIVE.discard(self)
