"""Real, private, disposable ZooKeeper, etcd and Redis servers for tests.

Why real servers: vlcp's storage backends rely on session expiry, leader elections, watches and
persistence, which fakes get subtly wrong. These servers start in well under a second each.

Rules every server here follows (see /work/shared/lab/feasibility.md, sections 4 and 6):

* The machine is shared: only loopback, never the default ports (2181, 2379/2380, 6379), only
  ports from :func:`tests.lab.naming.free_tcp_ports` and directories from
  :func:`tests.lab.naming.private_dir`. The packaged system configs and services are not used.
* We only ever signal the exact child we spawned (no pkill): SIGTERM, a bounded wait, SIGKILL.
* Every wait is bounded; a timeout raises :class:`ServiceError` that carries the server log tail.
* Every started process is kept in a registry; an ``atexit`` hook, the pytest fixtures and
  ``pytest_unconfigure`` stop whatever is left, also after a failure or Ctrl-C. If the test
  process dies hard (SIGKILL), the parent-death signal set via ``setpriv`` kills the servers.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from tests.lab.naming import free_tcp_ports, private_dir, unique_name

LOOPBACK = "127.0.0.1"
DEFAULT_PORTS = frozenset({2181, 2888, 3888, 2379, 2380, 6379, 8080})
"""Ports the packaged daemons (or other users of this shared machine) may hold."""

KEEP_ENV = "VLCP_LAB_KEEP"
"""Set this environment variable to keep the private directories (logs, data) after close()."""

START_TIMEOUT = 30.0
"""Seconds until a server must be ready; generous because 2 vCPUs may run several JVMs."""

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
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        result: T | None = None
        try:
            result = condition()
        except ServiceError:
            raise
        except Exception as exc:
            last_error = exc
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            message = f"timed out after {timeout:.1f}s waiting for {what}"
            if last_error is not None:
                message += f" (last error: {last_error!r})"
            if details is not None:
                message += "\n" + details()
            raise ServiceError(message)
        time.sleep(interval)


def _check_ports(ports: Sequence[int]) -> list[int]:
    """Refuse default ports: using them could hit a real server someone else runs here."""
    clash = sorted(set(ports) & DEFAULT_PORTS)
    if clash:
        raise ServiceError(f"refusing default service ports {clash}")
    return list(ports)


def _tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a (possibly large or missing) log file."""
    try:
        with path.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - 64 * 1024))
            data = stream.read().decode(errors="replace")
    except OSError as exc:
        return f"({path}: {exc.strerror})"
    return "\n".join(data.splitlines()[-lines:]) or "(empty)"


# --------------------------------------------------------------------------------------------
# Process registry and the one place that spawns and signals children
# --------------------------------------------------------------------------------------------

_LIVE: set[ManagedProcess] = set()
_LIVE_LOCK = threading.Lock()


def running_processes() -> list[ManagedProcess]:
    """Children started by this module that were not stopped yet (for leak checks)."""
    with _LIVE_LOCK:
        return [p for p in _LIVE if p.running]


def stop_all_services() -> None:
    """Stop every child this module started; safe to call repeatedly (atexit, pytest hooks).

    One at a time (see :func:`stop_servers` for why etcd needs that); this is only a backstop.
    """
    with _LIVE_LOCK:
        processes = list(_LIVE)
    for process in processes:
        with contextlib.suppress(Exception):
            process.stop()


atexit.register(stop_all_services)


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
        """Spawn the child; its own session keeps a terminal Ctrl-C from killing it mid-test."""
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
        with _LIVE_LOCK:
            _LIVE.add(self)

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
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                try:
                    popen.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired as exc:
                    raise ServiceError(f"pid {popen.pid} survived SIGKILL: {self.argv}") from exc
        with _LIVE_LOCK:
            _LIVE.discard(self)


# --------------------------------------------------------------------------------------------
# Common server life cycle
# --------------------------------------------------------------------------------------------


class _Server:
    """Life cycle shared by all servers: write config, spawn, poll readiness, stop, clean up.

    Subclasses provide the command line, the config files, the log files and a cheap
    readiness probe. ``spawn`` and ``wait_ready`` are separate because cluster members only
    become ready once a quorum of them runs.
    """

    kind = "server"
    env_prefixes: tuple[str, ...] = ()

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

    @property
    def log_files(self) -> list[Path]:
        """The server's own log plus the captured stdout/stderr (startup errors land there)."""
        return [self.console_log]

    # -- life cycle ------------------------------------------------------------------------
    @property
    def console_log(self) -> Path:
        return self.directory / "console.log"

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

    Not for etcd, see :meth:`EtcdCluster.stop_all`.
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


# --------------------------------------------------------------------------------------------
# ZooKeeper
# --------------------------------------------------------------------------------------------

ZK_CLASSPATH = ":".join(
    [
        "/usr/share/java/zookeeper.jar",
        # Debian's classpath has no slf4j binding: without these two jars nothing is logged.
        "/usr/share/java/slf4j-log4j12.jar",
        "/usr/share/java/log4j-1.2.jar",
    ]
)
ZK_JVM_OPTIONS = [
    "-Xmx192m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    # No /tmp/hsperfdata_<user>/<pid> file, which SIGKILLed members would leave behind.
    "-XX:-UsePerfData",
]
ZK_TICK_MS = 500
"""Low tick: elections, sync and session expiry (min 2 ticks = 1 s) are fast in tests."""

_ZK_MODE = re.compile(r"^Mode: (\w+)", re.MULTILINE)


def zk_four_letter_word(port: int, word: str, timeout: float = 1.0) -> str:
    """Send a ZooKeeper four-letter word to 127.0.0.1:port and return the whole answer."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(word.encode())
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@dataclass(frozen=True)
class ZooKeeperPeer:
    """One ensemble member's identity and ports (all on 127.0.0.1)."""

    my_id: int
    client_port: int
    quorum_port: int
    election_port: int

    @property
    def server_line(self) -> str:
        return f"server.{self.my_id}={LOOPBACK}:{self.quorum_port}:{self.election_port}"


class ZooKeeperServer(_Server):
    """A ZooKeeper 3.8 JVM run by hand (zkServer.sh points at /etc and /var).

    Standalone unless ``peers`` is given, in which case it is ensemble member ``my_id``.
    """

    kind = "zk"
    env_prefixes = ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "ZOO", "JVMFLAGS")

    def __init__(
        self,
        *,
        client_port: int | None = None,
        my_id: int = 1,
        peers: Sequence[ZooKeeperPeer] = (),
        tick_ms: int = ZK_TICK_MS,
        directory: Path | None = None,
    ) -> None:
        port = _check_ports([client_port or free_tcp_ports(1)[0]])[0]  # before mkdir
        super().__init__(directory)
        self.port = port
        self.my_id = my_id
        self.peers = list(peers)
        self.tick_ms = tick_ms
        self.name = f"zookeeper#{my_id}:{self.port}" if peers else f"zookeeper:{self.port}"

    @property
    def hosts(self) -> str:
        """Connection string for kazoo: ``127.0.0.1:PORT``."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def config_path(self) -> Path:
        return self.directory / "zoo.cfg"

    @property
    def log_files(self) -> list[Path]:
        return [self.directory / "zookeeper.log", self.console_log]

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "myid").write_text(f"{self.my_id}\n")
        self.config_path.write_text(self._config())
        (self.directory / "log4j.properties").write_text(self._log4j_config())

    def _config(self) -> str:
        lines = [
            f"tickTime={self.tick_ms}",
            "initLimit=10",
            "syncLimit=5",
            f"dataDir={self.data_dir}",
            f"clientPort={self.port}",
            f"clientPortAddress={LOOPBACK}",
            # Otherwise Jetty's AdminServer listens on :8080 on all interfaces.
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,ruok,stat,mntr",
            "maxSessionTimeout=30000",
            # Throwaway data: skip fsync (a killed JVM still leaves its writes in the page cache).
            "forceSync=no",
            *(peer.server_line for peer in self.peers),
        ]
        return "\n".join(lines) + "\n"

    def _log4j_config(self) -> str:
        """Our own minimal log4j setup: everything INFO and above into zookeeper.log."""
        appender = "log4j.appender.LOGFILE"
        lines = [
            "log4j.rootLogger=${zookeeper.root.logger}",
            f"{appender}=org.apache.log4j.FileAppender",
            f"{appender}.File=${{zookeeper.log.dir}}/zookeeper.log",
            f"{appender}.layout=org.apache.log4j.PatternLayout",
            f"{appender}.layout.ConversionPattern=%d{{ISO8601}} %-5p [%t] %c{{1}} - %m%n",
        ]
        return "\n".join(lines) + "\n"

    def _argv(self) -> list[str]:
        return [
            "java",
            *ZK_JVM_OPTIONS,
            "-cp",
            ZK_CLASSPATH,
            f"-Dzookeeper.log.dir={self.directory}",
            "-Dzookeeper.root.logger=INFO,LOGFILE",
            f"-Dlog4j.configuration=file:{self.directory / 'log4j.properties'}",
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(self.config_path),
        ]

    def mode(self) -> str | None:
        """``standalone``, ``leader`` or ``follower`` from ``srvr``; None if not serving."""
        if not self.running:
            return None
        try:
            match = _ZK_MODE.search(zk_four_letter_word(self.port, "srvr"))
        except OSError:
            return None
        return match.group(1) if match else None

    def _probe(self) -> bool:
        return self.mode() is not None


class ZooKeeperEnsemble:
    """``size`` ZooKeeper members on loopback whose members tests kill and restart one by one.

    Member indexes are 0-based (``my_id`` is index + 1).
    """

    def __init__(self, size: int = 3, *, tick_ms: int = ZK_TICK_MS) -> None:
        ports = _check_ports(free_tcp_ports(3 * size))
        self.peers = [ZooKeeperPeer(i + 1, *ports[3 * i : 3 * i + 3]) for i in range(size)]
        self.members = [
            ZooKeeperServer(
                client_port=peer.client_port,
                my_id=peer.my_id,
                peers=self.peers,
                tick_ms=tick_ms,
                directory=private_dir(f"zk{peer.my_id}"),
            )
            for peer in self.peers
        ]

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def quorum(self) -> int:
        return self.size // 2 + 1

    @property
    def hosts(self) -> str:
        """kazoo connection string with every member: ``127.0.0.1:p1,127.0.0.1:p2,...``."""
        return ",".join(member.hosts for member in self.members)

    def modes(self) -> list[str | None]:
        """Each member's ``srvr`` Mode (None: stopped or not serving)."""
        return [member.mode() for member in self.members]

    def leader(self) -> int | None:
        """Index of the member that currently reports ``Mode: leader``."""
        modes = self.modes()
        return modes.index("leader") if "leader" in modes else None

    def _serving_leader(self) -> int | None:
        """Leader index once exactly one leader and a quorum of leader+followers answer.

        Right after a leader dies, survivors still say "follower" for a moment, so a quorum of
        followers alone does not count.
        """
        modes = self.modes()
        serving = sum(mode in ("leader", "follower") for mode in modes)
        if modes.count("leader") == 1 and serving >= self.quorum:
            return modes.index("leader")
        return None

    def wait_ready(self, timeout: float = START_TIMEOUT) -> int:
        """Wait until a quorum serves with one leader; returns the leader's index."""
        return wait_until(
            self._check_serving_leader,
            timeout=timeout,
            what="a ZooKeeper quorum with one leader",
            details=lambda: f"modes: {self.modes()}\n{self.log_tail()}",
        )

    def _check_serving_leader(self) -> int | None:
        self._raise_if_all_dead()
        return self._serving_leader()

    def _raise_if_all_dead(self) -> None:
        started = [m for m in self.members if m.ever_started]
        if started and not any(m.running for m in started):
            raise ServiceError("every started ZooKeeper member exited\n" + self.log_tail())

    def start_all(self, timeout: float = START_TIMEOUT) -> int:
        """Start the members that are not running; returns the leader's index."""
        for member in self.members:
            member.spawn()
        return self.wait_ready(timeout)

    def stop_all(self) -> None:
        """Stop every member (in parallel); data and ports stay for start_all()."""
        stop_servers(self.members)

    def restart(self, timeout: float = START_TIMEOUT) -> int:
        """Stop all, start all (same ports and data); returns the leader's index."""
        self.stop_all()
        return self.start_all(timeout)

    def kill_member(self, index: int) -> None:
        """SIGKILL one member (returns once it is gone)."""
        self.members[index].kill()

    def stop_member(self, index: int) -> None:
        """SIGTERM one member."""
        self.members[index].stop()

    def start_member(
        self, index: int, *, wait: bool = True, timeout: float = START_TIMEOUT
    ) -> None:
        """Start one member with its old data; by default wait until it serves (joined)."""
        member = self.members[index]
        member.spawn()
        if wait:
            member.wait_ready(timeout)

    def close(self) -> None:
        """Stop every member and remove their directories."""
        close_servers(self.members)

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(member.log_tail(lines) for member in self.members)

    def __enter__(self) -> Self:
        self.start_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# etcd
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EtcdPorts:
    """One etcd member's loopback ports."""

    client: int
    peer: int
    metrics: int

    @classmethod
    def allocate(cls) -> EtcdPorts:
        return cls(*_check_ports(free_tcp_ports(3)))

    @property
    def client_url(self) -> str:
        return f"http://{LOOPBACK}:{self.client}"

    @property
    def peer_url(self) -> str:
        return f"http://{LOOPBACK}:{self.peer}"

    @property
    def metrics_url(self) -> str:
        return f"http://{LOOPBACK}:{self.metrics}"


def http_json(url: str, body: object | None = None, timeout: float = 2.0) -> dict[str, Any]:
    """GET (body None) or POST JSON and decode the JSON answer, also of HTTP error replies.

    etcd answers /health with 503 and a JSON body while it has no leader.
    """
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}")


ETCD_SOLO_TIMING = (50, 250)
"""(heartbeat, election timeout) in ms for one-member clusters: a restarted single node waits
one election timeout before it leads again, and with no peers there is nothing to destabilise."""

ETCD_CLUSTER_TIMING = (100, 1000)
"""etcd's defaults, kept for clusters: shorter timeouts cause spurious elections on 2 busy vCPUs.
With them a killed leader is replaced (writes accepted again) after about 2 s."""


class EtcdServer(_Server):
    """An etcd 3.4 member with a private data dir; a one-member cluster unless configured.

    etcd 3.4 accepts a file for ``--log-outputs`` only together with ``--logger=zap``.
    """

    kind = "etcd"
    env_prefixes = ("ETCD",)

    def __init__(
        self,
        *,
        member_name: str = "solo",
        ports: EtcdPorts | None = None,
        initial_cluster: str | None = None,
        cluster_token: str | None = None,
        timing_ms: tuple[int, int] = ETCD_SOLO_TIMING,
        directory: Path | None = None,
    ) -> None:
        self.ports = EtcdPorts(*_check_ports(astuple(ports))) if ports else EtcdPorts.allocate()
        super().__init__(directory)
        self.member_name = member_name
        self.heartbeat_ms, self.election_timeout_ms = timing_ms
        self.initial_cluster = initial_cluster or f"{member_name}={self.ports.peer_url}"
        self.cluster_token = cluster_token or unique_name("etcd")
        self.name = f"etcd {member_name}:{self.ports.client}"

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def port(self) -> int:
        """Client port (gRPC and the /v3 JSON gateway)."""
        return self.ports.client

    @property
    def endpoint(self) -> str:
        return self.ports.client_url

    @property
    def endpoints(self) -> list[str]:
        return [self.endpoint]

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_files(self) -> list[Path]:
        return [self.directory / "etcd.log", self.console_log]

    def _argv(self) -> list[str]:
        # With data from an earlier run, etcd must rejoin rather than bootstrap a new cluster.
        state = "existing" if (self.data_dir / "member").exists() else "new"
        return [
            "etcd",
            f"--name={self.member_name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.ports.client_url}",
            f"--advertise-client-urls={self.ports.client_url}",
            f"--listen-peer-urls={self.ports.peer_url}",
            f"--initial-advertise-peer-urls={self.ports.peer_url}",
            f"--listen-metrics-urls={self.ports.metrics_url}",
            f"--initial-cluster={self.initial_cluster}",
            f"--initial-cluster-state={state}",
            f"--initial-cluster-token={self.cluster_token}",
            # A restarted member with a stale log must not disrupt the cluster with new terms.
            "--pre-vote=true",
            # vlcp's store commits up to 1000 reads and 1000 writes in one etcd Txn (default 128).
            "--max-txn-ops=2048",
            f"--heartbeat-interval={self.heartbeat_ms}",
            f"--election-timeout={self.election_timeout_ms}",
            "--logger=zap",
            f"--log-outputs={self.directory / 'etcd.log'}",
        ]

    def healthy(self) -> bool:
        """GET /health says ``{"health":"true"}`` (a leader exists, no alarms)."""
        if not self.running:
            return False
        try:
            return http_json(f"{self.endpoint}/health", timeout=1.0).get("health") == "true"
        except (OSError, ValueError):
            return False

    def status(self) -> dict[str, Any]:
        """``/v3/maintenance/status`` through the JSON gateway (uint64 ids are strings)."""
        return http_json(f"{self.endpoint}/v3/maintenance/status", {}, timeout=1.0)

    def _probe(self) -> bool:
        return self.healthy()


class EtcdCluster:
    """``size`` etcd members on loopback that tests kill and restart one by one (0-based)."""

    def __init__(self, size: int = 3, *, timing_ms: tuple[int, int] = ETCD_CLUSTER_TIMING) -> None:
        ports = [EtcdPorts(*p) for p in _chunks(_check_ports(free_tcp_ports(3 * size)), 3)]
        names = [f"e{i + 1}" for i in range(size)]
        cluster = ",".join(f"{n}={p.peer_url}" for n, p in zip(names, ports, strict=True))
        token = unique_name("etcd")
        self.members = [
            EtcdServer(
                member_name=name,
                ports=port,
                initial_cluster=cluster,
                cluster_token=token,
                timing_ms=timing_ms,
                directory=private_dir(f"etcd-{name}"),
            )
            for name, port in zip(names, ports, strict=True)
        ]

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def quorum(self) -> int:
        return self.size // 2 + 1

    @property
    def endpoints(self) -> list[str]:
        """Client URLs of all members, ``http://127.0.0.1:PORT``."""
        return [member.endpoint for member in self.members]

    def leader(self) -> int | None:
        """Index of the current leader, as reported by any running member."""
        ids: dict[str, int] = {}
        leader_id = None
        for index, member in enumerate(self.members):
            if not member.running:
                continue
            try:
                status = member.status()
            except (OSError, ValueError):
                continue
            ids[status.get("header", {}).get("member_id", "")] = index
            leader_id = status.get("leader") or leader_id
        return ids.get(leader_id) if leader_id else None

    def wait_ready(self, timeout: float = START_TIMEOUT) -> int:
        """Wait until a quorum runs, all running members are healthy and a leader is known."""
        return wait_until(
            self._ready_leader,
            timeout=timeout,
            what="a healthy etcd cluster",
            details=self.log_tail,
        )

    def _ready_leader(self) -> int | None:
        running = [m for m in self.members if m.running]
        started = [m for m in self.members if m.ever_started]
        if started and not running:
            raise ServiceError("every started etcd member exited\n" + self.log_tail())
        if len(running) < self.quorum or not all(m.healthy() for m in running):
            return None
        return self.leader()

    def start_all(self, timeout: float = START_TIMEOUT) -> int:
        """Start the members that are not running; returns the leader's index."""
        for member in self.members:
            member.spawn()
        return self.wait_ready(timeout)

    def stop_all(self) -> None:
        """Stop every member, always the current leader first; data and ports stay.

        A leader hands leadership over on SIGTERM. With live followers that takes 0.1 s; a
        leader stopped last may still see a stopped follower as connected, try to hand over to
        it and give up only after 7 s. The failed hand-over also bumps its term, which then
        disrupts elections after start_all() (pre-vote prevents the rest of that).
        """
        while running := [i for i, member in enumerate(self.members) if member.running]:
            leader = self.leader()
            self.members[leader if leader in running else running[0]].stop()

    def restart(self, timeout: float = START_TIMEOUT) -> int:
        """Stop all, start all (same ports and data); returns the leader's index."""
        self.stop_all()
        return self.start_all(timeout)

    def kill_member(self, index: int) -> None:
        """SIGKILL one member (SIGTERM would hand leadership over gracefully)."""
        self.members[index].kill()

    def stop_member(self, index: int) -> None:
        """SIGTERM one member (a leader hands over leadership first)."""
        self.members[index].stop()

    def start_member(
        self, index: int, *, wait: bool = True, timeout: float = START_TIMEOUT
    ) -> None:
        """Restart one member from its data dir (``--initial-cluster-state existing``)."""
        member = self.members[index]
        member.spawn()
        if wait:
            member.wait_ready(timeout)

    def close(self) -> None:
        """Stop every member and remove their directories."""
        self.stop_all()
        for member in self.members:
            member.close()

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(member.log_tail(lines) for member in self.members)

    def __enter__(self) -> Self:
        self.start_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _chunks(items: Sequence[int], size: int) -> list[Sequence[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


class RedisServer(_Server):
    """redis-server with a private config; AOF with fsync always so restarts keep every write."""

    kind = "redis"

    def __init__(self, *, port: int | None = None, directory: Path | None = None) -> None:
        port = _check_ports([port or free_tcp_ports(1)[0]])[0]  # before mkdir
        super().__init__(directory)
        self.port = port
        self.name = f"redis:{self.port}"

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` for ``redis.Redis.from_url``."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def config_path(self) -> Path:
        return self.directory / "redis.conf"

    @property
    def log_files(self) -> list[Path]:
        return [self.directory / "redis.log", self.console_log]

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "\n".join(
                [
                    f"bind {LOOPBACK}",
                    f"port {self.port}",
                    # Only loopback is bound, so protected mode (which only guards other interfaces)
                    # never refuses our clients.
                    "protected-mode yes",
                    "daemonize no",
                    "supervised no",
                    f"dir {self.data_dir}",
                    f"logfile {self.directory / 'redis.log'}",
                    "loglevel notice",
                    "always-show-logo no",
                    'save ""',
                    "appendonly yes",
                    "appendfsync always",
                ]
            )
            + "\n"
        )

    def _argv(self) -> list[str]:
        return ["redis-server", str(self.config_path)]

    def ping(self) -> bool:
        """Raw RESP PING: "+PONG" once the AOF is loaded ("-LOADING" before)."""
        if not self.running:
            return False
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _probe(self) -> bool:
        return self.ping()
