"""API benchmark: logical port creations per second and their latency through REST v1.

    make bench-api                       # sqlite and ZooKeeper, 500 ports per run
    .venv/bin/python bench/api.py --backends zookeeper --ports 2000 --clients 32

What a user of the API sees: each run starts a fresh store (a private ZooKeeper server
or a new sqlite file) and a real `vlcp api` process on it, then POSTs N logical ports with
automatic MAC and IP addresses into one subnet, from one client (sequential) or from
several at once (concurrent), each client on its own keep-alive HTTP connection. Prints a
table and writes bench/results/api.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, start_server, write_results
from tests.integration.api.server import ApiServer, start_api, stop_api

RESULTS = Path(__file__).parent / "results" / "api.json"
BACKENDS = ("sqlite", "zookeeper")
CIDR, MAX_PORTS = "10.0.0.0/16", 65000
WARMUP = 20
"""Ports created before measuring (in another network), so imports, connection set-up and
first-touch caches on the server are not counted."""
PORT = json.dumps({"logicalnetwork": "n", "subnet": "s"})


class Poster:
    """One client: a keep-alive HTTP connection that POSTs logical ports and times them."""

    def __init__(self, url: str) -> None:
        address = urlsplit(url)
        self.connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        self.connection.connect()

    def post(self, body: str = PORT) -> tuple[int, float]:
        """The status (0 when the connection failed) and the seconds the request took."""
        started = time.perf_counter()
        try:
            self.connection.request(
                "POST", "/v1/logical-ports", body, {"Content-Type": "application/json"}
            )
            answer = self.connection.getresponse()
            answer.read()
            status = answer.status
        except (OSError, http.client.HTTPException):
            self.connection.close()  # reconnects on the next request
            status = 0
        return status, time.perf_counter() - started

    def close(self) -> None:
        self.connection.close()


def create_topology(api: ApiServer) -> None:
    """One subnet big enough for every port, and a separate network for the warm-up."""
    client = api.client()
    client.create("physical-networks", {"id": "p", "type": "vxlan", "vnirange": [[1, 100]]})
    client.create("logical-networks", {"id": "n", "physicalnetwork": "p"})
    client.create("logical-networks", {"id": "w", "physicalnetwork": "p"})
    client.create("subnets", {"id": "s", "logicalnetwork": "n", "cidr": CIDR})
    warm = Poster(api.url)
    try:
        for _ in range(WARMUP):
            warm.post(json.dumps({"logicalnetwork": "w"}))
    finally:
        warm.close()


def create_ports(url: str, ports: int, clients: int) -> dict[str, Any]:
    """`clients` threads take port numbers from one counter until `ports` were sent."""
    posters = [Poster(url) for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    lock = threading.Lock()
    remaining = ports
    statuses: Counter[int] = Counter()
    latencies: list[float] = []

    def client(poster: Poster) -> None:
        nonlocal remaining
        barrier.wait()
        while True:
            with lock:
                if remaining == 0:
                    return
                remaining -= 1
            status, seconds = poster.post()
            with lock:
                statuses[status] += 1
                latencies.append(seconds)

    threads = [threading.Thread(target=client, args=(p,)) for p in posters]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for poster in posters:
        poster.close()
    created = statuses.pop(201, 0)
    return {
        "ports": ports,
        "clients": clients,
        "created": created,
        "errors": {str(status): count for status, count in sorted(statuses.items())},
        "seconds": elapsed,
        "ports_per_s": created / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
    }


def run(backend: str, ports: int, clients: int) -> dict[str, Any]:
    """One measurement on a fresh store and a fresh `vlcp api` process."""
    with ExitStack() as stack:
        url = start_server(backend, stack)
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vlcp-bench-api-")))
        api = start_api(logs, store_url=url)
        try:
            create_topology(api)
            result = create_ports(api.url, ports, clients)
            listed = sum(1 for _ in api.client().list("logical-ports", {"logicalnetwork": "n"}))
            if listed != result["created"]:
                raise RuntimeError(f"{result['created']} ports answered 201, {listed} stored")
        finally:
            status = stop_api(api)
        if status != 0:
            raise RuntimeError(f"vlcp api exited with {status}:\n{api.log.read_text()[-3000:]}")
        return result


def print_table(results: dict[str, dict[str, dict[str, Any]]]) -> None:
    header = (
        f"{'backend':<10} {'run':<11} {'clients':>7} {'ports':>6} {'ports/s':>8} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>7}"
    )
    print(header)
    print("-" * len(header))
    for backend, runs in results.items():
        for name, r in runs.items():
            errors = sum(r["errors"].values())
            print(
                f"{backend:<10} {name:<11} {r['clients']:>7} {r['ports']:>6} "
                f"{r['ports_per_s']:>8.0f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {errors:>7}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--ports", type=int, default=500, help="ports created per run")
    parser.add_argument("--clients", type=int, default=16, help="clients of the concurrent run")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not 1 <= args.ports <= MAX_PORTS or args.clients < 1:
        parser.error(f"--ports must be in 1..{MAX_PORTS} and --clients at least 1")
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for backend in args.backends.split(","):
        results[backend] = {
            "sequential": run(backend, args.ports, 1),
            "concurrent": run(backend, args.ports, args.clients),
        }
    print_table(results)
    write_results(args.output, results)
    if any(r["errors"] for runs in results.values() for r in runs.values()):
        sys.exit("some creations failed: see the errors column and the JSON")


if __name__ == "__main__":
    main()
