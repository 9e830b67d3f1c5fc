"""A private etcd 3.4: a single-node server or a cluster whose members tests kill.

Every member gets three loopback ports (client, peer, metrics) from
:func:`vlcp.lab.naming.free_tcp_ports`; :func:`http_json` talks to the /v3 JSON gateway
without a client library, for probes and leader lookups.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from tests.lab.services.cluster import _Cluster
from tests.lab.services.process import wait_until
from tests.lab.services.server import LOOPBACK, START_TIMEOUT, _check_ports, _Server
from vlcp.lab.naming import free_tcp_ports, private_dir, unique_name


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
    log_name = "etcd.log"
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
    def port(self) -> int:
        """Client port (gRPC and the /v3 JSON gateway)."""
        return self.ports.client

    @property
    def endpoint(self) -> str:
        return self.ports.client_url

    @property
    def endpoints(self) -> list[str]:
        return [self.endpoint]

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
            f"--log-outputs={self.server_log}",
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


class EtcdCluster(_Cluster[EtcdServer]):
    """``size`` etcd members on loopback that tests kill and restart one by one (0-based)."""

    label = "etcd"

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
        self._raise_if_all_dead()
        running = [m for m in self.members if m.running]
        if len(running) < self.quorum or not all(m.healthy() for m in running):
            return None
        return self.leader()

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


def _chunks(items: Sequence[int], size: int) -> list[Sequence[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
