"""Batch port-up benchmark: N ports created in one batch, vlcp and OVN side by side.

    make bench-batch                     # 100 and 1000 ports on one server; needs root
    .venv/bin/python bench/batch.py --sizes 10,100 --servers 1,2

The product target: OVN takes about 8 s to bring up 1,000 ports created in one batch;
vlcp should take 2 s. Each system starts exactly as in bench/portup.py (same classes, a
fresh private lab per size, layout and system, the same warm-up port, not counted); then,
from t0:

1. create: OVN one `ovn-nbctl` call with every port's `lsp-add` + `lsp-set-addresses`
   (one NB transaction); vlcp `Model.batch` on the store, `PORTS_PER_TXN` (332) creates
   per store transaction (the store's read and write limits), one chunk after the other;
2. plug: one `ovs-vsctl` call per server adding every port of that server as an OVS
   internal port with its `external_ids:iface-id` (ports alternate between servers);
3. wait until every port is up: vlcp one store watch on `lport-status/`, OVN the NB
   `Logical_Switch_Port` `up` column through `ovsdb-client monitor` (watches, no polling).

Records the create-done, plug-done, first, median and last port up times (from t0), the
controllers' CPU (utime+stime over t0 -> all up) and peak RSS (VmHWM), and flows per port
(`dump-flows` on every br-int). Prints a table and writes bench/results/batch.json; a port
not up in time or no flows for the ports makes it exit non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Checks, percentile
from bench.portup import (
    PORTS_PER_TXN,
    RESOURCE_ROWS,
    UP_TIMEOUT,
    WARM,
    Row,
    System,
    count_flows,
    cpu_seconds,
    finish,
    flow_counts,
    lab_arguments,
    lport,
    print_table,
    resources,
    run_in_labs,
)
from vlcp.lab.ovs import VSCTL_TIMEOUT
from vlcp.lab.servers import BRIDGE

RESULTS = Path(__file__).parent / "results" / "batch.json"


def up_timeout(n: int) -> float:
    """For all N ports to come up: portup's 30 s for one port, plus 0.1 s a port."""
    return UP_TIMEOUT + n / 10


async def measure_batch(system: System, n: int, checks: Checks) -> dict[str, Any]:
    """Start `system` on its servers, then create, plug and wait for N ports as one batch."""
    hvs = system.hvs
    await system.start()
    # warm-up as in portup (first flows, caches), an internal port on the last server
    await system.create(WARM)
    await asyncio.to_thread(hvs[-1].plug_internal, BRIDGE, "lpwarm", lport(WARM))
    await system.wait_up(lport(WARM))
    label = f"{system.name} N={n} servers={len(hvs)}"

    flows_before = await asyncio.to_thread(count_flows, hvs)
    pids, central = system.controller_pids(), system.central_pids()
    cpu0 = [cpu_seconds(p) for p in pids]
    central0 = [cpu_seconds(p) for p in central]
    names = [lport(i) for i in range(n)]
    per_server = [[(f"lp{i}", lport(i)) for i in range(k, n, len(hvs))] for k in range(len(hvs))]
    vsctl_timeout = VSCTL_TIMEOUT + n // 20

    t0 = time.perf_counter()
    watching = asyncio.create_task(system.wait_all_up(names, up_timeout(n)))
    try:
        transactions = await system.create_many(range(n))
        created = time.perf_counter()
        await asyncio.gather(
            *(
                asyncio.to_thread(hv.plug_internal_many, BRIDGE, ports, vsctl_timeout)
                for hv, ports in zip(hvs, per_server, strict=True)
            )
        )
        plugged = time.perf_counter()
        up = await watching
    finally:
        if not watching.done():
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
    cpu = sum(cpu_seconds(p) for p in pids) - sum(cpu0)
    central_cpu = sum(cpu_seconds(p) for p in central) - sum(central0)
    times = sorted(t - t0 for t in up.values())

    missing = [name for name in names if name not in up]
    checks.equal(f"{label}: every port up within {up_timeout(n):g} s", len(up), n)
    flows = await asyncio.to_thread(count_flows, hvs)
    checks.check(
        f"{label}: flows installed for the ports",
        flows - flows_before >= n,
        f"{flows - flows_before} flows added for {n} ports",
    )
    return {
        "system": system.name,
        "ports": n,
        "servers": len(hvs),
        "transactions": transactions,
        "created_s": created - t0,
        "plugged_s": plugged - t0,
        "first_up_s": times[0] if times else None,
        "median_up_s": percentile(times, 0.5) if times else None,
        "all_up_s": times[-1] if len(times) == n else None,
        "up": len(up),
        **resources(pids, central, cpu, central_cpu),
        **flow_counts(flows, flows_before, n),
        "missing": missing[:20],
    }


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


ROWS: list[Row] = [
    ("create transactions", lambda r: str(r["transactions"])),
    ("created s", lambda r: seconds(r["created_s"])),
    ("created+plugged s", lambda r: seconds(r["plugged_s"])),
    ("first port up s", lambda r: seconds(r["first_up_s"])),
    ("half the ports up s", lambda r: seconds(r["median_up_s"])),
    ("all ports up s", lambda r: seconds(r["all_up_s"])),
    ("ports up", lambda r: f"{r['up']}/{r['ports']}"),
    *RESOURCE_ROWS,
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lab_arguments(parser, [100, 1000], RESULTS)
    args = parser.parse_args()
    results, checks = run_in_labs(parser, args, "batch", "pb", measure_batch)
    print_table(results, ROWS)
    finish(args, results, checks, vlcp_ports_per_transaction=PORTS_PER_TXN)


if __name__ == "__main__":
    main()
