"""The life cycle every lab server shares, and the loopback-port rules they all follow.

A server writes its config, spawns one :class:`~tests.lab.services.process.ManagedProcess`,
polls a cheap readiness probe, stops by its own pid and removes its private directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.lab.services.process import (
    STOP_TIMEOUT,
    ManagedProcess,
    ServiceError,
    _scrubbed_env,
    wait_until,
)
from vlcp.lab.naming import free_tcp_ports, private_dir
from vlcp.lab.processes import read_tail

LOOPBACK = "127.0.0.1"
DEFAULT_PORTS = frozenset({2181, 2888, 3888, 2379, 2380, 6379, 8080})
"""Ports the packaged daemons (or other users of this shared machine) may hold."""

KEEP_ENV = "VLCP_LAB_KEEP"
"""Set this environment variable to keep the private directories (logs, data) after close()."""

START_TIMEOUT = 30.0
"""Seconds until a server must be ready; generous because 2 vCPUs may run several JVMs."""


def _check_ports(ports: Sequence[int]) -> list[int]:
    """Refuse default ports: using them could hit a real server someone else runs here."""
    clash = sorted(set(ports) & DEFAULT_PORTS)
    if clash:
        raise ServiceError(f"refusing default service ports {clash}")
    return list(ports)


def _one_port(port: int | None) -> int:
    """The given port or a free one, checked (call it before the private dir is made)."""
    return _check_ports([port or free_tcp_ports(1)[0]])[0]


def _tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a (possibly large or missing) log file."""
    try:
        return read_tail(path, lines) or "(empty)"
    except OSError as exc:
        return f"({path}: {exc.strerror})"


class _Server:
    """Life cycle shared by all servers: write config, spawn, poll readiness, stop, clean up.

    Subclasses provide the command line, the config files, the log files and a cheap
    readiness probe. ``spawn`` and ``wait_ready`` are separate because cluster members only
    become ready once a quorum of them runs.
    """

    kind = "server"
    env_prefixes: tuple[str, ...] = ()
    log_name: str | None = None
    """The file name of the server's own log in its directory (None: console only)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or private_dir(self.kind)
        self.name = f"{self.kind}@{self.directory}"
        self._process: ManagedProcess | None = None

    # -- provided by subclasses --------------------------------------------------------------
    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write config files before each start (cheap, and keeps restarts consistent)."""

    def _probe(self) -> bool:
        raise NotImplementedError

    # -- files and address ---------------------------------------------------------------
    @property
    def host(self) -> str:
        """Every lab server listens on loopback only."""
        return LOOPBACK

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def console_log(self) -> Path:
        return self.directory / "console.log"

    @property
    def server_log(self) -> Path | None:
        """The server's own log file (see :attr:`log_name`)."""
        return self.directory / self.log_name if self.log_name else None

    @property
    def log_files(self) -> list[Path]:
        """The server's own log plus the captured stdout/stderr (startup errors land there)."""
        own = self.server_log
        return [own, self.console_log] if own else [self.console_log]

    # -- life cycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def ever_started(self) -> bool:
        """True once spawned, so "not running" can be told apart from "crashed"."""
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def spawn(self) -> None:
        """Start the process without waiting for it (no-op if it already runs)."""
        if self.running:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._prepare()
        self._process = ManagedProcess(
            self._argv(),
            cwd=self.directory,
            output=self.console_log,
            env=_scrubbed_env(self.env_prefixes),
        )
        self._process.start()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll the readiness probe; fail at once (with the log tail) if the process died."""
        wait_until(
            self._alive_and_ready,
            timeout=timeout,
            what=f"{self.name} to be ready",
            details=self.log_tail,
        )

    def _alive_and_ready(self) -> bool:
        if not self.running:
            code = self._process.returncode if self._process else None
            raise ServiceError(
                f"{self.name} is not running (exit status {code})\n" + self.log_tail()
            )
        return self._probe()

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """Spawn and wait until the server answers; returns self for one-line setups."""
        self.spawn()
        self.wait_ready(timeout)
        return self

    def ensure_running(self, timeout: float = START_TIMEOUT) -> Self:
        """Start again if a previous test stopped or killed this (shared) server."""
        return self.start(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Graceful stop of our own pid (SIGTERM, then SIGKILL after ``timeout``)."""
        if self._process is not None:
            self._process.stop(timeout)

    def terminate(self) -> None:
        """Send SIGTERM without waiting (see :func:`stop_servers`)."""
        if self._process is not None:
            self._process.terminate()

    def kill(self) -> None:
        """SIGKILL, to test crash recovery; data written so far stays on disk."""
        if self._process is not None:
            self._process.kill()

    def restart(self, timeout: float = START_TIMEOUT) -> Self:
        """Stop, then start on the same ports with the same data."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop and delete the private directory (kept if $VLCP_LAB_KEEP is set)."""
        self.stop()
        if not os.environ.get(KEEP_ENV):
            shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """Last lines of every log of this server, for error messages."""
        return "\n".join(f"--- tail of {path} ---\n{_tail(path, lines)}" for path in self.log_files)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} pid={self.pid}>"


def stop_servers(servers: Sequence[_Server], timeout: float = STOP_TIMEOUT) -> None:
    """Send every SIGTERM before waiting for any: each ZooKeeper JVM needs ~0.4 s to exit.

    Not for etcd, see :meth:`~tests.lab.services.etcd.EtcdCluster.stop_all`.
    """
    for server in servers:
        server.terminate()
    for server in servers:
        server.stop(timeout)


def close_servers(servers: Sequence[_Server]) -> None:
    """Stop in parallel (:func:`stop_servers`), then remove every private directory."""
    stop_servers(servers)
    for server in servers:
        server.close()
