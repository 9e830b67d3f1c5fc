"""Scale benchmark, simulated servers (issue 16): many real agents, one store, one change.

`bench/scale.py --servers 100` runs this. Each of S simulated servers (`bench.simserver`)
runs a real `vlcp run` agent with a real ovsdb-server, its switch a lightweight OpenFlow
endpoint (`bench.ofswitch`) served, for all of them, by this process; every agent uses
one private ZooKeeper or etcd server. The spread: each server binds `--ports` ports
(10), each in a network drawn at random among `--networks` (300), so that a network
spans about three servers, as tenants' networks are spread over a cloud.

Before any agent starts, the model creates the networks and the S x 10 ports (big
transactions) and each server's OVSDB holds its ports' interfaces. The agents then start
in waves of `--wave` (10), each wave waited for (every local port's flow on its switch)
before the next, and finally every server must hold a flow for every port, local or
remote, of each of its networks: the cluster has converged. Then:

- idle: `--idle` (5) windows of `--window` seconds (1.0) with no change at all: each
  agent's own CPU while nothing happens (timers, keep-alives), its baseline;
- `--changes` (20) times, one after the other: a new port in a network in use, bound on
  a random server (its VIF plugged first, then a pause so the plug is absorbed), then
  created through the model at t0. The *concerned* servers are the one binding it (its
  local flow) and every server with a port in that network (their flow towards it through
  the tunnel, once the binding server announced it). Measured per change, over a window
  of the same length from t0: the time from t0 to each concerned switch receiving the
  flow to the port's MAC (the switch notes the time of the flow-mod, or of the commit of
  the bundle carrying it, on the same clock as t0); every agent's CPU (the sum over its
  threads of `/proc/<pid>/task/*/schedstat`, in nanoseconds, so a 100 microsecond burst
  shows); the flow-mods each switch received; the store's request counter (the idle
windows count it too).

Reported: `change -> all concerned p50/p99 ms` (the last concerned server of each change)
and `per server` (every concerned server of every change); `unconcerned agents that
worked`: per change, agents neither binding the port nor with a port in its network whose
CPU in the window exceeded the most they spent in any idle window; `unconcerned CPU ms`:
their CPU in the window minus their idle mean, per agent and per change; the flow-mods
sent to unconcerned switches (0 means no flow changed there, not that no work was done);
store requests per change (over the window, minus an idle window's); each agent's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import SCALE_ZOOKEEPER_HEAP_MB, Checks, percentile, start_counted_server
from bench.ofswitch import FakeSwitches, to_mac
from bench.portup import rss_mib
from bench.simserver import SimPort, SimServer
from vlcp.model.ops import Op
from vlcp.model.service import Model
from vlcp.store import open_store

CREATES_PER_TXN = 100
"""Creates per store transaction: `bench.portup.PORTS_PER_TXN` (332) is for ports of one
network; spread over many, each port also reads its own network's keys (at most 7 reads
a port, within the 1,000 a transaction may read)."""
SESSION_TTL = 10.0
CONVERGE_TIMEOUT = 600.0
CHANGE_TIMEOUT = 30.0
PLUG_SETTLE = 0.3
"""Seconds between plugging a VIF and creating its port, so that t0 starts the store's
change alone (the binding server saw the iface-id of a port it did not know yet)."""


@dataclass(frozen=True)
class Layout:
    """Which server binds which port in which network."""

    servers: int
    networks: int
    ports: dict[int, list[SimPort]]

    @classmethod
    def draw(cls, servers: int, per_server: int, networks: int, seed: int) -> Layout:
        rng = random.Random(seed)
        ports = {
            s: [
                SimPort(f"s{s}p{j}", f"n{rng.randrange(networks)}", _mac(s, j))
                for j in range(per_server)
            ]
            for s in range(servers)
        }
        return cls(servers, networks, ports)

    def servers_in(self, network: str) -> set[int]:
        return {s for s, ports in self.ports.items() if any(p.network == network for p in ports)}

    def used_networks(self) -> list[str]:
        return sorted({p.network for ports in self.ports.values() for p in ports})

    def expected(self, server: int) -> list[str]:
        """The MACs whose flow the server's switch must hold: every port of its networks."""
        mine = {p.network for p in self.ports[server]}
        return [p.mac for ports in self.ports.values() for p in ports if p.network in mine]


def _mac(server: int, index: int) -> str:
    """Unique per (server, port): up to 65,536 of each (one server with 1,000 ports too)."""
    octets = (server >> 8, server & 0xFF, index >> 8, index & 0xFF)
    return "02:5e:" + ":".join(f"{b:02x}" for b in octets)


def cpu_ns(pid: int) -> int:
    """The process's CPU time so far, every thread, in nanoseconds (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            continue
    return total


async def populate(model: Model, layout: Layout) -> None:
    """The networks and every port, in transactions as big as the store allows."""
    await model.create("physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[1, 99999]]})
    networks = [
        Op("create", "logical-networks", body={"id": f"n{k}", "physicalnetwork": "vx"})
        for k in range(layout.networks)
    ]
    ports = [
        Op("create", "logical-ports", body=_port_body(p))
        for server_ports in layout.ports.values()
        for p in server_ports
    ]
    for ops in (networks, ports):
        for first in range(0, len(ops), CREATES_PER_TXN):
            await model.batch(ops[first : first + CREATES_PER_TXN])


def _port_body(port: SimPort) -> dict[str, Any]:
    return {"id": port.id, "logicalnetwork": port.network, "mac_address": port.mac}


class Cluster:
    """The simulated servers, their switches, and what they were measured doing."""

    def __init__(self, layout: Layout, workdir: Path, url: str) -> None:
        self.layout = layout
        self.switches = FakeSwitches()
        self.servers = [SimServer(s, workdir, url, SESSION_TTL) for s in range(layout.servers)]

    def pids(self) -> list[int]:
        pids = [s.agent.pid if s.agent else None for s in self.servers]
        assert all(pids), "an agent is not running"
        return [p for p in pids if p is not None]

    def cpu(self) -> list[int]:
        return [cpu_ns(pid) for pid in self.pids()]

    def flow_mods(self) -> list[int]:
        return [s.bridge.flow_mods if s.bridge else 0 for s in self.servers]

    async def start(self, wave: int) -> float:
        """Every OVSDB and switch, then every agent, `wave` at a time; the seconds from
        the first agent's start until the cluster converged."""
        for server in self.servers:
            await server.start(self.switches, self.layout.ports[server.index])
        began = time.perf_counter()
        every: list[asyncio.Future[float]] = []
        for server in self.servers:
            assert server.bridge is not None
            every += [
                server.bridge.installed(to_mac(m)) for m in self.layout.expected(server.index)
            ]
        for first in range(0, len(self.servers), wave):
            local = []
            for server in self.servers[first : first + wave]:
                assert server.bridge is not None and server.agent is not None
                local += [
                    server.bridge.installed(to_mac(p.mac)) for p in self.layout.ports[server.index]
                ]
                server.agent.start()
            async with asyncio.timeout(CONVERGE_TIMEOUT):
                await asyncio.gather(*local)
            started = min(first + wave, len(self.servers))
            print(f"  {started} agents up ({time.perf_counter() - began:.0f} s)", flush=True)
        async with asyncio.timeout(CONVERGE_TIMEOUT):
            await asyncio.gather(*every)
        return time.perf_counter() - began

    def stop(self) -> None:
        for server in self.servers:
            if server.agent is not None:
                server.agent.terminate()
        for server in self.servers:
            server.stop()


@dataclass
class Idle:
    """The baseline: each agent's CPU (ns) per window where nothing changes [window][agent]
    (timers, keep-alives), and the store requests the cluster made per window meanwhile."""

    cpu_ns: list[list[int]]
    requests: list[int]


async def idle_windows(cluster: Cluster, requests: Any, count: int, window: float) -> Idle:
    cpu, asked = [], []
    for _ in range(count):
        before, req0 = cluster.cpu(), await asyncio.to_thread(requests)
        await asyncio.sleep(window)
        cpu.append([b - a for a, b in zip(before, cluster.cpu(), strict=True)])
        asked.append(await asyncio.to_thread(requests) - req0)
    return Idle(cpu, asked)


@dataclass
class ChangeResult:
    binder: int
    network: str
    concerned: list[int]
    latencies_ms: dict[int, float]
    cpu_ns: list[int]
    flow_mods: list[int]
    requests: int


async def one_change(
    cluster: Cluster, model: Model, requests: Any, index: int, rng: random.Random, window: float
) -> ChangeResult:
    layout = cluster.layout
    network = rng.choice(layout.used_networks())
    binder = rng.randrange(layout.servers)
    port = SimPort(
        f"c{index}", network, "02:5f:" + ":".join(f"{b:02x}" for b in index.to_bytes(4, "big"))
    )
    server = cluster.servers[binder]
    await server.plug(port)
    await asyncio.sleep(PLUG_SETTLE)
    concerned = sorted(layout.servers_in(network) | {binder})
    waiting = {}
    for s in concerned:
        bridge = cluster.servers[s].bridge
        assert bridge is not None
        waiting[s] = bridge.installed(to_mac(port.mac))
    cpu0, mods0, req0 = cluster.cpu(), cluster.flow_mods(), await asyncio.to_thread(requests)
    t0 = time.time()
    await model.create("logical-ports", _port_body(port))
    async with asyncio.timeout(CHANGE_TIMEOUT):
        times = dict(zip(waiting, await asyncio.gather(*waiting.values()), strict=True))
    await asyncio.sleep(max(0.0, t0 + window - time.time()))
    cpu1, mods1, req1 = cluster.cpu(), cluster.flow_mods(), await asyncio.to_thread(requests)
    # the binder joins the network: later changes in it concern it too
    layout.ports[binder].append(port)
    return ChangeResult(
        binder,
        network,
        concerned,
        {s: (t - t0) * 1000 for s, t in times.items()},
        [b - a for a, b in zip(cpu0, cpu1, strict=True)],
        [b - a for a, b in zip(mods0, mods1, strict=True)],
        req1 - req0,
    )


def summarize(
    layout: Layout, idle: Idle, changes: list[ChangeResult], rss: list[float]
) -> dict[str, Any]:
    agents = layout.servers
    idle_max = [max(w[a] for w in idle.cpu_ns) for a in range(agents)]
    idle_mean = [statistics.mean(w[a] for w in idle.cpu_ns) for a in range(agents)]
    idle_requests = statistics.mean(idle.requests)
    last = [max(c.latencies_ms.values()) for c in changes]
    every = [ms for c in changes for ms in c.latencies_ms.values()]
    worked, excess, unconcerned_mods, concerned_count = [], [], 0, []
    for c in changes:
        others = [a for a in range(agents) if a not in c.concerned]
        worked.append(sum(1 for a in others if c.cpu_ns[a] > idle_max[a]))
        excess += [(c.cpu_ns[a] - idle_mean[a]) / 1e6 for a in others]
        unconcerned_mods += sum(c.flow_mods[a] for a in others)
        concerned_count.append(len(c.concerned))
    return {
        "servers": agents,
        "changes": len(changes),
        "concerned_servers_mean": round(statistics.mean(concerned_count), 1),
        "all_concerned_p50_ms": round(percentile(last, 0.5), 1),
        "all_concerned_p99_ms": round(percentile(last, 0.99), 1),
        "per_server_p50_ms": round(percentile(every, 0.5), 1),
        "per_server_p99_ms": round(percentile(every, 0.99), 1),
        "unconcerned_agents_mean": round(statistics.mean(agents - n for n in concerned_count), 1),
        "unconcerned_worked_mean": round(statistics.mean(worked), 1),
        "unconcerned_worked_min": min(worked),
        # None with a single server, which every change concerns (--servers 1: an agent's
        # RSS with many local ports)
        "unconcerned_cpu_ms_per_change": round(statistics.mean(excess), 3) if excess else None,
        "unconcerned_flow_mods": unconcerned_mods,
        "idle_cpu_ms_per_window_mean": round(statistics.mean(idle_mean) / 1e6, 3),
        "store_requests_per_change": round(
            statistics.mean(c.requests for c in changes) - idle_requests, 1
        ),
        "store_requests_per_idle_window": round(idle_requests, 1),
        "rss_mib_p50": round(percentile(rss, 0.5), 1),
        "rss_mib_max": round(max(rss), 1),
    }


async def measure(backend: str, args: argparse.Namespace, workdir: Path, checks: Checks) -> dict:
    layout = Layout.draw(args.servers, args.ports, args.networks, args.seed)
    with ExitStack() as stack:
        url, requests = start_counted_server(
            backend, stack, zookeeper_heap_mb=SCALE_ZOOKEEPER_HEAP_MB
        )
        store = await open_store(url)
        cluster = Cluster(layout, workdir, url)
        try:
            model = Model(store)
            began = time.perf_counter()
            await populate(model, layout)
            populate_s = time.perf_counter() - began
            converge_s = await cluster.start(args.wave)
            idle = await idle_windows(cluster, requests, args.idle, args.window)
            rng = random.Random(args.seed + 1)
            changes = []
            for i in range(args.changes):
                changes.append(await one_change(cluster, model, requests, i, rng, args.window))
            rss = [rss_mib(pid) for pid in cluster.pids()]
            result = {
                "backend": backend,
                "networks": args.networks,
                "ports_per_server": args.ports,
                "populate_s": round(populate_s, 1),
                "converge_s": round(converge_s, 1),
                **summarize(layout, idle, changes, rss),
            }
            checks.check(
                f"{backend}: every agent ran throughout",
                all(s.agent is not None and s.agent.running for s in cluster.servers),
            )
            return result
        finally:
            cluster.stop()
            await cluster.switches.close()
            await store.close()


ROWS = [
    ("servers (agents)", "servers"),
    ("changes", "changes"),
    ("concerned servers / change", "concerned_servers_mean"),
    ("cluster converged s", "converge_s"),
    ("change -> all concerned p50 ms", "all_concerned_p50_ms"),
    ("change -> all concerned p99 ms", "all_concerned_p99_ms"),
    ("change -> a server p50 ms", "per_server_p50_ms"),
    ("change -> a server p99 ms", "per_server_p99_ms"),
    ("unconcerned agents / change", "unconcerned_agents_mean"),
    ("  of which worked (mean)", "unconcerned_worked_mean"),
    ("  of which worked (min)", "unconcerned_worked_min"),
    ("  CPU ms each / change", "unconcerned_cpu_ms_per_change"),
    ("  flow-mods received", "unconcerned_flow_mods"),
    ("idle CPU ms / agent / window", "idle_cpu_ms_per_window_mean"),
    ("store requests / change", "store_requests_per_change"),
    ("store requests / idle window", "store_requests_per_idle_window"),
    ("agent RSS MiB p50", "rss_mib_p50"),
    ("agent RSS MiB max", "rss_mib_max"),
]


def print_table(results: list[dict[str, Any]]) -> None:
    header = f"{'':<32}" + "".join(f"{r['backend']:>12}" for r in results)
    print("\n" + header)
    print("-" * len(header))
    for label, key in ROWS:
        print(f"{label:<32}" + "".join(f"{r[key]!s:>12}" for r in results))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("simulated servers (with --servers N)")
    group.add_argument("--servers", type=int, default=0, help="simulated servers; 0: off")
    group.add_argument("--ports", type=int, default=10, help="ports per server")
    group.add_argument("--networks", type=int, default=300)
    group.add_argument("--changes", type=int, default=20)
    group.add_argument("--wave", type=int, default=10, help="agents started at once")
    group.add_argument("--idle", type=int, default=5, help="idle windows (the baseline)")
    group.add_argument("--window", type=float, default=1.0, help="seconds a change is watched")
    group.add_argument("--seed", type=int, default=16)
