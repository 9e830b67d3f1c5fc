"""What the benchmarks share: private servers per backend, percentiles, checks, results.

Every server is started fresh for the benchmark with the test lab's classes (private
ports and directories, stopped by PID), so benchmarks never touch a server someone else
runs on this machine, and numbers from one run compare like with like.
"""

from __future__ import annotations

import json
import multiprocessing
import platform
import tempfile
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from redis import Redis

from tests.lab.services import EtcdServer, RedisServer, ZooKeeperServer
from tests.lab.services.zookeeper import ZK_HEAP_MB, zk_four_letter_word

SCALE_ZOOKEEPER_HEAP_MB = 2048
"""ZooKeeper's heap for bench/scale.py: the lab's default (192 MiB) runs out at 100,000
ports (three keys each, and the change log)."""


def percentile(samples: list[float], q: float) -> float:
    """The sample at quantile `q` (nearest rank): no interpolation, so a value seen."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_server(backend: str, stack: ExitStack) -> str:
    """A private server for `backend` (closed with the stack) and the store URL for it."""
    return start_counted_server(backend, stack)[0]


def start_counted_server(
    backend: str, stack: ExitStack, *, zookeeper_heap_mb: int = ZK_HEAP_MB
) -> tuple[str, Callable[[], int]]:
    """`start_server`, and a function reading how many requests the server has received
    so far (ZooKeeper: `mntr`'s packets received; etcd: its gRPC messages received, which
    counts each request of a stream; Redis: the commands clients sent, not those their
    scripts ran, the benchmark's own reads of that included; sqlite: 0, not counted).
    The lab's ZooKeeper heap suits tests; 100,000 ports need more."""
    if backend == "sqlite":
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="vlcp-bench-"))
        return f"sqlite://{tmp}/state.db", lambda: 0
    if backend == "zookeeper":
        zk = stack.enter_context(ZooKeeperServer(heap_mb=zookeeper_heap_mb).start())
        return f"zookeeper://{zk.hosts}/bench", lambda: _zookeeper_packets(zk.port)
    if backend == "etcd":
        etcd = stack.enter_context(EtcdServer().start())
        url = f"etcd://{etcd.endpoint.removeprefix('http://')}/bench"
        return url, lambda: _etcd_messages(etcd.ports.metrics_url)
    redis = stack.enter_context(RedisServer().start())
    return f"{redis.url}?prefix=bench", lambda: _redis_requests(redis.url)


_REDIS_SCRIPTED = frozenset(
    [
        "hget",
        "hset",
        "hdel",
        "hgetall",
        "get",
        "set",
        "time",
        "xadd",
        "zadd",
        "zrem",
        "zscore",
        "zrangebylex",
        "zrangebyscore",
        "zremrangebyscore",
        "publish",
    ]
)
"""Commands vlcp runs only inside its Lua scripts (one EVALSHA request each time);
Redis's statistics count them beside the requests themselves. (ZREM is also sent alone
when a session ends: rare enough to leave out.)"""


def _redis_requests(url: str) -> int:
    with Redis.from_url(url, socket_timeout=5) as client:
        stats = client.info("commandstats")
    return sum(
        int(entry["calls"])
        for name, entry in stats.items()
        if name.removeprefix("cmdstat_") not in _REDIS_SCRIPTED
    )


def _zookeeper_packets(port: int) -> int:
    for line in zk_four_letter_word(port, "mntr").splitlines():
        name, _, value = line.partition("\t")
        if name == "zk_packets_received":
            return int(value)
    raise RuntimeError("ZooKeeper's mntr reported no zk_packets_received")


def _etcd_messages(metrics_url: str) -> int:
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("grpc_server_msg_received_total")
    )


class Checks:
    """Conditions the numbers depend on (everything installed, nothing re-sent, ...).

    Recorded, not raised: one run reports every broken check and still writes its numbers
    for inspection; the benchmark then exits non-zero if `failed` is not empty, so a fast
    but wrong run can never pass for a result.
    """

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append({"check": name, "ok": ok, "detail": detail})
        return ok

    def equal(self, name: str, actual: object, expected: object) -> bool:
        """`actual == expected`, with both values in the detail (what a failure needs)."""
        return self.check(name, actual == expected, f"{actual!r}, expected {expected!r}")

    @property
    def failed(self) -> list[str]:
        return [f"{r['check']}: {r['detail']}" for r in self.results if not r["ok"]]


def write_results(output: Path, results: dict[str, Any], **extra: Any) -> None:
    """The JSON every benchmark writes: the machine, anything in `extra`, the results."""
    output.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "cpus": multiprocessing.cpu_count()}
    output.write_text(json.dumps({"machine": machine, **extra, "results": results}, indent=2))
    print(f"\nwritten to {output}")
