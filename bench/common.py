"""What the benchmarks share: private servers per backend, and percentiles.

Every server is started fresh for the benchmark with the test lab's classes (private
ports and directories, stopped by PID), so benchmarks never touch a server someone else
runs on this machine, and numbers from one run compare like with like.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack

from tests.lab.services import EtcdServer, RedisServer, ZooKeeperServer


def percentile(samples: list[float], q: float) -> float:
    """The sample at quantile `q` (nearest rank): no interpolation, so a value seen."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_server(backend: str, stack: ExitStack) -> str:
    """A private server for `backend` (closed with the stack) and the store URL for it."""
    if backend == "sqlite":
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="vlcp-bench-"))
        return f"sqlite://{tmp}/state.db"
    if backend == "zookeeper":
        zk = stack.enter_context(ZooKeeperServer().start())
        return f"zookeeper://{zk.hosts}/bench"
    if backend == "etcd":
        etcd = stack.enter_context(EtcdServer().start())
        return f"etcd://{etcd.endpoint.removeprefix('http://')}/bench"
    redis = stack.enter_context(RedisServer().start())
    return f"{redis.url}?prefix=bench"
