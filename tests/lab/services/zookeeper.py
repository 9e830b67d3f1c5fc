"""A private ZooKeeper: a standalone server or an ensemble whose members tests kill.

ZooKeeper 3.8 runs as a bare JVM (``zkServer.sh`` points at /etc and /var) on loopback ports
from :func:`vlcp.lab.naming.free_tcp_ports`, with a low tick so elections, sync and session
expiry are fast in tests.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.lab.services.cluster import _Cluster
from tests.lab.services.process import wait_until
from tests.lab.services.server import (
    LOOPBACK,
    START_TIMEOUT,
    _check_ports,
    _one_port,
    _Server,
)
from vlcp.lab.naming import free_tcp_ports, private_dir

ZK_CLASSPATH = ":".join(
    [
        "/usr/share/java/zookeeper.jar",
        # Debian's classpath has no slf4j binding: without these two jars nothing is logged.
        "/usr/share/java/slf4j-log4j12.jar",
        "/usr/share/java/log4j-1.2.jar",
    ]
)
ZK_HEAP_MB = 192
ZK_JVM_OPTIONS = [
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
    log_name = "zookeeper.log"
    env_prefixes = ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "ZOO", "JVMFLAGS")

    def __init__(
        self,
        *,
        client_port: int | None = None,
        my_id: int = 1,
        peers: Sequence[ZooKeeperPeer] = (),
        tick_ms: int = ZK_TICK_MS,
        directory: Path | None = None,
        heap_mb: int = ZK_HEAP_MB,
    ) -> None:
        """`heap_mb`: the JVM's heap; the default suits tests, not 100,000 ports
        (bench/scale.py gives more)."""
        port = _one_port(client_port)  # before mkdir
        super().__init__(directory)
        self.port = port
        self.my_id = my_id
        self.peers = list(peers)
        self.tick_ms = tick_ms
        self.heap_mb = heap_mb
        self.name = f"zookeeper#{my_id}:{self.port}" if peers else f"zookeeper:{self.port}"

    @property
    def hosts(self) -> str:
        """Connection string for kazoo: ``127.0.0.1:PORT``."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "zoo.cfg"

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
            # Every client comes from 127.0.0.1: the default of 60 connections per address
            # would refuse the 61st agent of `bench/scale.py --servers 100`.
            "maxClientCnxns=0",
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
            f"{appender}.File=${{zookeeper.log.dir}}/{self.log_name}",
            f"{appender}.layout=org.apache.log4j.PatternLayout",
            f"{appender}.layout.ConversionPattern=%d{{ISO8601}} %-5p [%t] %c{{1}} - %m%n",
        ]
        return "\n".join(lines) + "\n"

    def _argv(self) -> list[str]:
        return [
            "java",
            f"-Xmx{self.heap_mb}m",
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


class ZooKeeperEnsemble(_Cluster[ZooKeeperServer]):
    """``size`` ZooKeeper members on loopback whose members tests kill and restart one by one.

    Member indexes are 0-based (``my_id`` is index + 1).
    """

    label = "ZooKeeper"

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
