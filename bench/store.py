"""Store benchmark: transaction rate, concurrent throughput and watch latency per backend.

    make bench-store                     # every backend, default sizes
    .venv/bin/python bench/store.py --backends sqlite,redis --seconds 2

Each server backend runs on a private, freshly started server (the test lab's classes),
on this machine, in the same run, so the numbers compare like with like. Prints a table
and writes bench/results/store.json.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, start_server, write_results
from vlcp.store import Store, Transaction, WatchEvent, open_store

RESULTS = Path(__file__).parent / "results" / "store.json"
BACKENDS = ("sqlite", "zookeeper", "etcd", "redis")


async def sequential(store: Store, keys: int, seconds: float) -> dict[str, float]:
    """One client committing transactions of `keys` writes back to back."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:

        async def write(txn: Transaction, n: int = n) -> None:
            for i in range(keys):
                txn.put(f"seq{keys}/{i}", {"n": n, "port": f"p{i}", "mac": "02:00:00:00:00:01"})

        t0 = time.perf_counter()
        await store.transact(write)
        latencies.append(time.perf_counter() - t0)
        n += 1
    return {
        "txn_per_s": len(latencies) / sum(latencies),
        "p50_ms": percentile(latencies, 0.5) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
    }


def _concurrent_worker(url: str, worker: int, tasks: int, seconds: float, out: Any) -> None:
    async def run() -> int:
        store = await open_store(url)
        deadline = time.perf_counter() + seconds
        count = 0

        async def client(c: int) -> None:
            nonlocal count
            while time.perf_counter() < deadline:

                async def bump(txn: Transaction) -> None:
                    key = f"conc/{worker}-{c}"
                    txn.put(key, (await txn.get(key) or 0) + 1)

                await store.transact(bump)
                count += 1

        await asyncio.gather(*(client(c) for c in range(tasks)))
        await store.close()
        return count

    out.put(asyncio.run(run()))


def concurrent(url: str, processes: int, tasks: int, seconds: float) -> dict[str, float]:
    """`processes` OS processes x `tasks` clients, each incrementing its own key."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_concurrent_worker, args=(url, w, tasks, seconds, out))
        for w in range(processes)
    ]
    for proc in procs:
        proc.start()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for proc in procs:
        proc.join(30)
    return {"txn_per_s": total / seconds, "clients": processes * tasks}


async def watch_latency(url: str, samples: int) -> dict[str, float]:
    """Time from the start of a commit to the watcher (another connection) seeing it."""
    writer, watcher = await open_store(url), await open_store(url)
    started: dict[int, float] = {}
    latencies: list[float] = []
    watch = watcher.watch(prefix="lat/")
    await anext(watch)

    async def consume() -> None:
        async for item in watch:
            if isinstance(item, WatchEvent):
                for change in item.changes:
                    latencies.append(time.perf_counter() - started[change.value])
                if len(latencies) >= samples:
                    return

    consumer = asyncio.create_task(consume())
    for n in range(samples):

        async def write(txn: Transaction, n: int = n) -> None:
            txn.put("lat/x", n)

        started[n] = time.perf_counter()
        await writer.transact(write)
        await asyncio.sleep(0.002)
    await asyncio.wait_for(consumer, 30)
    await writer.close()
    await watcher.close()
    return {"p50_ms": percentile(latencies, 0.5) * 1e3, "p99_ms": percentile(latencies, 0.99) * 1e3}


async def bench_backend(url: str, seconds: float, samples: int) -> dict[str, Any]:
    store = await open_store(url)
    try:
        result = {f"seq_{k}_keys": await sequential(store, k, seconds) for k in (1, 10, 100)}
    finally:
        await store.close()
    result["concurrent"] = await asyncio.to_thread(concurrent, url, 2, 8, seconds)
    result["watch"] = await watch_latency(url, samples)
    return result


def print_table(results: dict[str, dict[str, Any]]) -> None:
    header = (
        f"{'backend':<10} {'1 key txn/s':>11} {'p99 ms':>7} {'10 keys':>8} {'100 keys':>9} "
        f"{'16 clients txn/s':>17} {'watch p50 ms':>13} {'p99 ms':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        print(
            f"{name:<10} {r['seq_1_keys']['txn_per_s']:>11.0f} {r['seq_1_keys']['p99_ms']:>7.1f} "
            f"{r['seq_10_keys']['txn_per_s']:>8.0f} {r['seq_100_keys']['txn_per_s']:>9.0f} "
            f"{r['concurrent']['txn_per_s']:>17.0f} {r['watch']['p50_ms']:>13.2f} "
            f"{r['watch']['p99_ms']:>7.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--samples", type=int, default=300, help="watch latency samples")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    for backend in args.backends.split(","):
        with ExitStack() as stack:
            url = start_server(backend, stack)
            results[backend] = asyncio.run(bench_backend(url, args.seconds, args.samples))
    print_table(results)
    write_results(args.output, results)


if __name__ == "__main__":
    main()
