"""Scale benchmark, first slice (issue 16): what one server's agent pays for other servers'
ports, which concern it not at all.

    make bench-scale                                   # needs root
    make bench-scale-servers                           # --servers 100
    .venv/bin/python bench/scale.py --sizes 1000 --backends zookeeper

One lab server (a private OVS in a namespace, names prefixed `scNNNNN`, removed at the
end) runs `vlcp run` (the e2e lab's `Controller`, as on a hypervisor) with no port of its
own, on a private ZooKeeper or etcd server. N ports in `NETWORKS` networks are then bound
on simulated other servers: the model creates them (`Model.batch`) and one `Announcer`
per simulated server announces them as that server's controller would (`netports/`,
`lport-status/`). Measured for the agent:

- `CPU ms / foreign commit`: `--commits` more ports, each created and announced by a
  simulated server (two commits each), one after the other; the agent's utime+stime over
  them, per commit;
- `RSS MiB`: the agent's resident set after them, and its peak;
- `restart`: the agent SIGKILLed and started again; the CPU its new process spent, and
  the time it took, until it reconciled its switch (logged once its view is complete);
  its RSS then.

Targets (issue 16): no CPU for a change that concerns no port of the server, an RSS that
does not grow with the ports elsewhere, a restart at 100,000 cluster ports under 1 s of
CPU. With scoped watches (bench/README.md) the RSS and the restart no longer grow with
the ports elsewhere, and etcd sends an agent nothing of them.

`--servers N` measures the cluster instead (`bench/simscale.py`): N real agents, each
with its own ovsdb-server and a lightweight switch (`bench/ofswitch.py`), the time one
change takes to reach every server it concerns, and the work it costs the others.

Prints a table, writes bench/results/scale.json (each mode keeps the other's results).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import simscale
from bench.common import (
    SCALE_ZOOKEEPER_HEAP_MB,
    Checks,
    start_counted_server,
    write_results,
)
from bench.portup import PORTS_PER_TXN, cpu_seconds, int_list, interrupt, peak_rss_mib, rss_mib
from tests.lab.vlcp_processes import Controller
from tests.lab.waiting import eventually
from vlcp.agent.announcer import Announcer, Location
from vlcp.lab import naming
from vlcp.lab.netns import cleanup_all
from vlcp.lab.ovs import OvsLab, missing_tools
from vlcp.model.ops import Op
from vlcp.model.service import Model
from vlcp.store import Store, open_store

RESULTS = Path(__file__).parent / "results" / "scale.json"
NETWORKS = 100
SERVERS = 50
"""Simulated servers the foreign ports are bound on."""
SESSION_TTL = 5.0

RECONCILED = re.compile(r"reconciled: \+(\d+) -(\d+) flows")


def port_body(i: int) -> dict[str, Any]:
    return {
        "id": f"f{i}",
        "logicalnetwork": f"net{i % NETWORKS}",
        "mac_address": "02:01:" + ":".join(f"{b:02x}" for b in i.to_bytes(4, "big")),
    }


def location(i: int) -> tuple[int, dict[str, Location]]:
    """Who announces port i, and where: server i % SERVERS, its own VTEP address."""
    server = i % SERVERS
    body = port_body(i)
    entry = {
        "host": f"sim{server}",
        "vtep": f"198.51.100.{server + 1}",
        "mac": body["mac_address"],
        "bound_at": time.time(),
    }
    return server, {body["id"]: Location(body["logicalnetwork"], entry)}


async def populate(model: Model, announcers: list[Announcer], start: int, stop: int) -> None:
    """Ports start..stop-1, created in batches and announced by their servers."""
    ops = [Op("create", "logical-ports", body=port_body(i)) for i in range(start, stop)]
    for first in range(0, len(ops), PORTS_PER_TXN):
        await model.batch(ops[first : first + PORTS_PER_TXN])
    by_server: dict[int, dict[str, Location]] = {}
    for i in range(start, stop):
        server, where = location(i)
        by_server.setdefault(server, {}).update(where)
    now = time.time()
    for server, ports in by_server.items():
        await announcers[server].announce(ports, now)


async def reconciled(controller: Controller, since: int) -> bool:
    """Whether the controller logged a reconcile after byte `since` of its log."""
    controller.assert_running()
    return (
        RECONCILED.search(controller.log.read_bytes()[since:].decode(errors="replace")) is not None
    )


async def measure(backend: str, n: int, commits: int, workdir: Path, checks: Checks) -> dict:
    with ExitStack() as stack:
        url = start_counted_server(backend, stack, zookeeper_heap_mb=SCALE_ZOOKEEPER_HEAP_MB)[0]
        lab = stack.enter_context(OvsLab())
        hv = await asyncio.to_thread(lab.hypervisor, "hv0")
        store: Store = await open_store(url)
        try:
            model = Model(store)
            await model.create(
                "physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[1, 9999]]}
            )
            for k in range(NETWORKS):
                await model.create("logical-networks", {"id": f"net{k}", "physicalnetwork": "vx"})
            announcers = [Announcer(store, f"sim{s}") for s in range(SERVERS)]
            controller = Controller(hv, "hv0", workdir, url, session_ttl=SESSION_TTL)
            controller.start()
            await controller.ready(store)
            began = time.perf_counter()
            await populate(model, announcers, 0, n)
            populate_s = time.perf_counter() - began
            pid = controller.pid
            assert pid is not None
            cpu0 = cpu_seconds(pid)
            for i in range(n, n + commits):
                await populate(model, announcers, i, i + 1)
            await asyncio.sleep(1.0)  # let the agent drain the last commits
            cpu = cpu_seconds(pid) - cpu0
            result: dict[str, Any] = {
                "backend": backend,
                "foreign_ports": n + commits,
                "populate_s": round(populate_s, 1),
                "cpu_ms_per_foreign_commit": round(cpu * 1000 / (2 * commits), 3),
                "rss_mib": round(rss_mib(pid), 1),
                "peak_rss_mib": round(peak_rss_mib(pid), 1),
            }
            controller.kill()
            since = controller.log.stat().st_size
            began = time.perf_counter()
            controller.start()
            await eventually(lambda: reconciled(controller, since), 120, what="the restart")
            restart_s = time.perf_counter() - began
            pid = controller.pid
            assert pid is not None
            result |= {
                "restart_s": round(restart_s, 2),
                "restart_cpu_s": round(cpu_seconds(pid), 2),
                "restart_rss_mib": round(rss_mib(pid), 1),
            }
            checks.check(f"{backend} {n}: the agent ran throughout", controller.running)
            controller.stop()
            return result
        finally:
            await store.close()


def print_table(results: list[dict[str, Any]]) -> None:
    rows = [
        ("foreign ports", "foreign_ports"),
        ("CPU ms / foreign commit", "cpu_ms_per_foreign_commit"),
        ("RSS MiB", "rss_mib"),
        ("peak RSS MiB", "peak_rss_mib"),
        ("restart s", "restart_s"),
        ("restart CPU s", "restart_cpu_s"),
        ("restart RSS MiB", "restart_rss_mib"),
    ]
    header = f"{'':<26}" + "".join(
        f"{r['backend'][:4] + ' ' + str(r['foreign_ports']):>14}" for r in results
    )
    print("\n" + header)
    print("-" * len(header))
    for label, key in rows:
        print(f"{label:<26}" + "".join(f"{r[key]:>14}" for r in results))


async def run_all(args: argparse.Namespace, checks: Checks) -> list[dict[str, Any]]:
    results = []
    if args.servers:
        for backend in args.backends:
            print(f"{backend}: {args.servers} simulated servers ...", flush=True)
            with tempfile.TemporaryDirectory(prefix=f"{naming.RUN_PREFIX}-") as tmp:
                results.append(await simscale.measure(backend, args, Path(tmp), checks))
        return results
    for backend in args.backends:
        for n in args.sizes:
            print(f"{backend}: {n} foreign ports ...", flush=True)
            with tempfile.TemporaryDirectory(prefix=f"{naming.RUN_PREFIX}-") as tmp:
                results.append(await measure(backend, n, args.commits, Path(tmp), checks))
    return results


def previous_results(output: Path) -> dict[str, Any]:
    """The results already in `output`: one mode's run keeps the other's."""
    try:
        return dict(json.loads(output.read_text()).get("results", {}))
    except (OSError, ValueError, AttributeError):
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int_list, default=[1000, 10000])
    parser.add_argument("--backends", type=lambda t: t.split(","), default=["zookeeper", "etcd"])
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--output", type=Path, default=RESULTS)
    simscale.add_arguments(parser)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/scale.py needs root: it starts a private Open vSwitch in a namespace")
    if missing_tools():
        sys.exit(f"bench/scale.py needs the Open vSwitch tools; missing: {missing_tools()}")
    naming.set_run_prefix(f"sc{os.getpid() % 100000:05d}")
    checks = Checks()
    signal.signal(signal.SIGTERM, interrupt)
    try:
        results = asyncio.run(run_all(args, checks))
    finally:
        for error in cleanup_all():
            print(f"cleanup: {error}", file=sys.stderr)
    if args.servers:
        simscale.print_table(results)
        merged = {**previous_results(args.output), "simulated": results}
        write_results(args.output, merged, checks=checks.results)
    else:
        print_table(results)
        merged = {**previous_results(args.output), "runs": results}
        write_results(args.output, merged, commits=args.commits, checks=checks.results)
    if checks.failed:
        sys.exit("checks failed:\n  " + "\n  ".join(checks.failed))


if __name__ == "__main__":
    main()
