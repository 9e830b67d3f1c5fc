"""Real, private, disposable ZooKeeper, etcd and Redis servers for tests.

Why real servers: vlcp's storage backends rely on session expiry, leader elections, watches and
persistence, which fakes get subtly wrong. These servers start in well under a second each.

Rules every server here follows (see /work/shared/lab/feasibility.md, sections 4 and 6):

* The machine is shared: only loopback, never the default ports (2181, 2379/2380, 6379), only
  ports from :func:`vlcp.lab.naming.free_tcp_ports` and directories from
  :func:`vlcp.lab.naming.private_dir`. The packaged system configs and services are not used.
* We only ever signal the exact child we spawned (no pkill): SIGTERM, a bounded wait, SIGKILL.
* Every wait is bounded; a timeout raises :class:`ServiceError` that carries the server log tail.
* Every started process is kept in a registry; an ``atexit`` hook, the pytest fixtures and
  ``pytest_unconfigure`` stop whatever is left, also after a failure or Ctrl-C. If the test
  process dies hard (SIGKILL), the parent-death signal set via ``setpriv`` kills the servers.

The package, one purpose a module: :mod:`~tests.lab.services.process` (spawning, signalling
and the registry of children), :mod:`~tests.lab.services.server` (the shared server life
cycle and port rules), :mod:`~tests.lab.services.cluster` (killable cluster members),
:mod:`~tests.lab.services.zookeeper`, :mod:`~tests.lab.services.etcd` and
:mod:`~tests.lab.services.redis`. Import the public names from here.
"""

from __future__ import annotations

from tests.lab.services.etcd import (
    ETCD_CLUSTER_TIMING,
    ETCD_SOLO_TIMING,
    EtcdCluster,
    EtcdPorts,
    EtcdServer,
    http_json,
)
from tests.lab.services.process import (
    POLL_INTERVAL,
    STOP_TIMEOUT,
    ManagedProcess,
    ServiceError,
    running_processes,
    stop_all_services,
    wait_until,
)
from tests.lab.services.redis import RedisServer
from tests.lab.services.server import (
    DEFAULT_PORTS,
    KEEP_ENV,
    LOOPBACK,
    START_TIMEOUT,
    close_servers,
    stop_servers,
)
from tests.lab.services.zookeeper import (
    ZK_CLASSPATH,
    ZK_JVM_OPTIONS,
    ZK_TICK_MS,
    ZooKeeperEnsemble,
    ZooKeeperPeer,
    ZooKeeperServer,
    zk_four_letter_word,
)

__all__ = [
    "DEFAULT_PORTS",
    "ETCD_CLUSTER_TIMING",
    "ETCD_SOLO_TIMING",
    "KEEP_ENV",
    "LOOPBACK",
    "POLL_INTERVAL",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "ZK_CLASSPATH",
    "ZK_JVM_OPTIONS",
    "ZK_TICK_MS",
    "EtcdCluster",
    "EtcdPorts",
    "EtcdServer",
    "ManagedProcess",
    "RedisServer",
    "ServiceError",
    "ZooKeeperEnsemble",
    "ZooKeeperPeer",
    "ZooKeeperServer",
    "close_servers",
    "http_json",
    "running_processes",
    "stop_all_services",
    "stop_servers",
    "wait_until",
    "zk_four_letter_word",
]
