"""Port-up benchmark: vlcp and OVN side by side, from creating a port to status up and ping.

    make bench-portup                    # 10 and 100 ports on one server; needs root
    .venv/bin/python bench/portup.py --sizes 10,100,1000 --servers 1,2

For each size N and layout (1 server, or 2 servers with the ports alternating between
them), both systems get a fresh private lab (the lab's `Hypervisor`s: their own
ovsdb-server and userspace vswitchd in network namespaces, removed at the end) and, in
the same run:

- vlcp: one `vlcp run` process per server (controller enabled, its API on a free loopback
  port) on a sqlite store in a private directory; this process creates the logical ports
  through the `Model` on the same store and waits with `Model.wait_port_up`;
- OVN: private NB and SB ovsdb-servers (unix sockets), ovn-northd, and an ovn-controller
  per server (`ovn-bridge-datapath-type=netdev`, Geneve between servers); a port is
  `ovn-nbctl lsp-add` + `lsp-set-addresses`, and "up" is the NB Logical_Switch_Port `up`
  column turning true, seen by an `ovsdb-client monitor` (a watch, no polling).

Ports are created one at a time: the create call, then the plug (one ovs-vsctl call that
sets `external_ids:iface-id`; an OVS internal port, or for the ping sample a lab `Host`'s
veth added beforehand without iface-id), then up and, for the sample (20 ports spread
over the N), the first reply to `ping` from a fixed peer host, both timed from the start
of the create call. Controller CPU is utime+stime from /proc of the controller processes
over the ports' creation, peak RSS their VmHWM; flows per port is `dump-flows` on br-int
(all servers) divided by N. Prints one table and writes bench/results/portup.json; any
failed check (a port not up, a sample not answering) makes it exit non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Checks, percentile, write_results
from tests.lab.ovn import OvnLab, UpWatcher, ovn_tools_missing
from vlcp.lab import naming
from vlcp.lab.netns import (
    ProcessRef,
    cleanup_all,
    register_dir,
    register_process,
    release_dir,
    stop_process,
    wait_until,
)
from vlcp.lab.ovs import Host, Hypervisor, OvsLab, connect_underlay, missing_tools
from vlcp.lab.processes import wait_or_kill
from vlcp.lab.servers import BRIDGE, agent_config
from vlcp.layout import port_status
from vlcp.model.ops import Op
from vlcp.model.service import Model
from vlcp.store import Resync, Store, limits, open_store

RESULTS = Path(__file__).parent / "results" / "portup.json"
SUBNET = ipaddress.ip_network("10.0.0.0/16")
PEER_IP = "10.0.0.1"
SAMPLE = 20
"""Ports per run that are real hosts and get pinged (all of them when N is smaller)."""
UP_TIMEOUT = 30.0
PING_DEADLINE = 20
PING_INTERVAL = 0.01
ARP_RETRANS_MS = 10
ARP_PROBES = 255
"""The peer sends an echo request every 10 ms until the first reply, and repeats an
unanswered ARP request after 10 ms (Linux: 1 s), up to 255 times (Linux: 3, then the
address is unreachable and ping gives up): the ping time's resolution. A first ARP
request sent before the new port is reachable is lost, so with the defaults the ping
time would mostly measure the kernel's ARP retry timer."""
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- ports and processes


def port_ip(i: int) -> str:
    return str(SUBNET.network_address + 10 + i)


def port_mac(i: int) -> str:
    return "02:00:{:02x}:{:02x}:{:02x}:{:02x}".format(*(10 + i).to_bytes(4, "big"))


PEER_MAC = "02:00:00:00:00:01"
WARM = -5  # the warm-up port's index: 10.0.0.5


def sampled(n: int) -> list[int]:
    """`SAMPLE` port indexes spread evenly over 0 .. n-1 (all of them for small n)."""
    if n <= SAMPLE:
        return list(range(n))
    return sorted({i * n // SAMPLE for i in range(SAMPLE)})


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    """The process's resident set now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def count_flows(hvs: list[Hypervisor]) -> int:
    """OpenFlow flows on every server's integration bridge (ovs-ofctl, not our codec)."""
    return sum(len(hv.dump_flows(BRIDGE)) for hv in hvs)


def wait_for_bridge(hv: Hypervisor, alive: Callable[[], None]) -> None:
    def exists() -> bool:
        alive()
        return BRIDGE in hv.vsctl("list-br").split()

    wait_until(exists, timeout=30, interval=0.05, message=f"{BRIDGE} on {hv.name}")


def bind(hv: Hypervisor, port_name: str, iface_id: str) -> None:
    hv.vsctl("set", "interface", port_name, f"external_ids:iface-id={iface_id}")


# ---------------------------------------------------------------- the two systems


class System:
    """One controller under test on its servers: creating ports and waiting for them."""

    name = ""

    def __init__(self, lab: OvsLab, workdir: Path, servers: int) -> None:
        self.lab = lab
        self.workdir = workdir
        self.hvs = [lab.hypervisor(f"hv{k}") for k in range(servers)]
        if servers == 2:
            connect_underlay(self.hvs[0], self.hvs[1])

    async def start(self) -> None:
        raise NotImplementedError

    async def create(self, i: int) -> None:
        """The create call for port `i` (returns when the system accepted it)."""
        raise NotImplementedError

    async def wait_up(self, name: str) -> None:
        """Returns once logical port `name` is reported up."""
        raise NotImplementedError

    async def create_many(self, indexes: Iterable[int]) -> int:
        """Create ports `indexes` in as few transactions as the system allows (bench/batch.py);
        returns how many it took."""
        raise NotImplementedError

    async def wait_all_up(self, names: Collection[str], timeout: float) -> dict[str, float]:
        """perf_counter() when each of `names` was first seen up, once all are (or at the
        timeout: those seen by then). Must be started before the ports are created."""
        raise NotImplementedError

    def controller_pids(self) -> list[int]:
        raise NotImplementedError

    def central_pids(self) -> list[int]:
        """Processes besides the per-server controllers (OVN's northd)."""
        return []

    async def stop(self) -> None:
        raise NotImplementedError


def lport(i: int) -> str:
    return "warm" if i == WARM else f"p{i}"


PORTS_PER_TXN = min(limits.MAX_TXN_READS - 4, limits.MAX_TXN_WRITES - 2) // 3
"""Logical-port creates per store transaction in `Vlcp.create_many`: 332. A create reads 3
keys of its own (the port, its MAC's and its address's holders) plus 4 shared by the batch
(network, network state, subnet, subnet state) and writes 3 of its own plus 2 shared (the
two states); both limits are 1000 keys (vlcp/store/limits.py). About 240 bytes a port, so
the 400 KiB limit is far off."""


class Vlcp(System):
    name = "vlcp"

    def __init__(self, lab: OvsLab, workdir: Path, servers: int) -> None:
        super().__init__(lab, workdir, servers)
        self.url = f"sqlite://{workdir}/state.db"
        self.procs: list[tuple[subprocess.Popen[bytes], ProcessRef]] = []
        self.store: Store | None = None
        self.model: Model | None = None

    def _spawn(self, k: int, hv: Hypervisor) -> None:
        """`vlcp run` for `hv`: the lab's agent configuration, given as VLCP_* variables."""
        (port,) = naming.free_tcp_ports(1)
        config = agent_config(hv, f"hv{k}")
        env = {
            **os.environ,
            "VLCP_CONFIG": str(self.workdir / "none.toml"),  # never /etc/vlcp/vlcp.toml
            "VLCP_NODE_NAME": config.node_name,
            "VLCP_API__LISTEN": f"127.0.0.1:{port}",
            "VLCP_AGENT__ENABLED": "true",
        }
        for field in ("ovsdb", "ovs_rundir", "bridge", "datapath_type", "vtep", "system_id"):
            if (value := getattr(config, field)) is not None:
                env[f"VLCP_AGENT__{field.upper()}"] = value
        vlcp = Path(sys.executable).with_name("vlcp")
        with (self.workdir / f"vlcp-hv{k}.log").open("wb") as log:
            proc = subprocess.Popen(
                [str(vlcp), "--store", self.url, "run"], env=env, stdout=log, stderr=log
            )
        # the store URL (our private dir) is in its command line: the PID-reuse guard
        self.procs.append((proc, register_process(ProcessRef(self.url, pid=proc.pid))))

    def _alive(self) -> None:
        for k, (proc, _) in enumerate(self.procs):
            if proc.poll() is not None:
                log = (self.workdir / f"vlcp-hv{k}.log").read_text(errors="replace")
                raise RuntimeError(f"vlcp run on hv{k} exited {proc.returncode}:\n{log[-3000:]}")

    async def start(self) -> None:
        for k, hv in enumerate(self.hvs):
            self._spawn(k, hv)
        for hv in self.hvs:
            await asyncio.to_thread(wait_for_bridge, hv, self._alive)
        self.store = await open_store(self.url)
        self.model = Model(self.store)
        await self.model.create(
            "physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[5000, 5999]]}
        )
        await self.model.create("logical-networks", {"id": "net", "physicalnetwork": "vx"})
        await self.model.create("subnets", self.subnet())
        await self.model.create("logical-ports", self._body("peer", PEER_IP, PEER_MAC))

    def subnet(self) -> dict[str, Any]:
        """The one subnet's body (bench/dhcp.py adds its DHCP options)."""
        return {"id": "sub", "logicalnetwork": "net", "cidr": str(SUBNET)}

    @staticmethod
    def _body(id: str, ip: str, mac: str) -> dict[str, Any]:
        return {
            "id": id,
            "logicalnetwork": "net",
            "subnet": "sub",
            "mac_address": mac,
            "ip_address": ip,
        }

    async def create(self, i: int) -> None:
        assert self.model is not None
        await self.model.create("logical-ports", self._body(lport(i), port_ip(i), port_mac(i)))

    async def wait_up(self, name: str) -> None:
        assert self.model is not None
        await self.model.wait_port_up(name, timeout=UP_TIMEOUT)

    async def create_many(self, indexes: Iterable[int]) -> int:
        """`Model.batch` of `PORTS_PER_TXN` creates at a time, one chunk after the other."""
        assert self.model is not None
        ops = [
            Op("create", "logical-ports", body=self._body(lport(i), port_ip(i), port_mac(i)))
            for i in indexes
        ]
        for start in range(0, len(ops), PORTS_PER_TXN):
            await self.model.batch(ops[start : start + PORTS_PER_TXN])
        return -(-len(ops) // PORTS_PER_TXN)

    async def wait_all_up(self, names: Collection[str], timeout: float) -> dict[str, float]:
        """One store watch on every port status (no polling)."""
        assert self.store is not None
        prefix, wanted = port_status(""), set(names)
        seen: dict[str, float] = {}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                watch = self.store.watch(prefix=prefix)
                try:
                    async for item in watch:
                        now = time.perf_counter()
                        if isinstance(item, Resync):
                            changes = list(item.values.items())
                        else:
                            changes = [(change.key, change.value) for change in item.changes]
                        for key, status in changes:
                            up = isinstance(status, dict) and status.get("state") == "up"
                            if up and (name := key.removeprefix(prefix)) in wanted:
                                seen.setdefault(name, now)
                        if len(seen) == len(wanted):
                            break
                finally:
                    await watch.aclose()
        return seen

    def controller_pids(self) -> list[int]:
        self._alive()
        return [proc.pid for proc, _ in self.procs]

    async def stop(self) -> None:
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.close()
        for proc, ref in self.procs:
            if proc.poll() is None:
                proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                wait_or_kill(proc, 10, 5)
            stop_process(ref)  # only forgets it by now: it has exited


class Ovn(System):
    name = "OVN"

    def __init__(self, lab: OvsLab, workdir: Path, servers: int) -> None:
        super().__init__(lab, workdir, servers)
        self.ovn = OvnLab(self.hvs)

    def nbctl(self, *args: str) -> str:
        return self.ovn.nbctl(*args)

    def _start(self) -> None:
        self.ovn.start()
        self._network()

    def _network(self) -> None:
        """The logical switch and the peer's port (bench/dhcp.py adds DHCP options)."""
        self.nbctl("ls-add", "sw0")
        self.nbctl(*self._lsp("peer", PEER_IP, PEER_MAC))

    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    def _lsp(self, name: str, ip: str, mac: str) -> list[str]:
        """ovn-nbctl arguments creating logical port `name` (bench/dhcp.py adds to them)."""
        return ["lsp-add", "sw0", name, "--", "lsp-set-addresses", name, f"{mac} {ip}"]

    async def create(self, i: int) -> None:
        await asyncio.to_thread(self.nbctl, *self._lsp(lport(i), port_ip(i), port_mac(i)))

    @property
    def watcher(self) -> UpWatcher:
        assert self.ovn.watcher is not None, "OVN not started"
        return self.ovn.watcher

    async def wait_up(self, name: str) -> None:
        await asyncio.to_thread(self.watcher.wait, name, UP_TIMEOUT)

    async def create_many(self, indexes: Iterable[int]) -> int:
        """ONE ovn-nbctl call (one NB transaction) with every port's lsp-add and addresses."""
        args: list[str] = []
        for i in indexes:
            args += ["--", *self._lsp(lport(i), port_ip(i), port_mac(i))]
        await asyncio.to_thread(self.nbctl, *args[1:])
        return 1

    async def wait_all_up(self, names: Collection[str], timeout: float) -> dict[str, float]:
        return await asyncio.to_thread(self.watcher.wait_all, names, timeout)

    def controller_pids(self) -> list[int]:
        return self.ovn.controller_pids()

    def central_pids(self) -> list[int]:
        pid = self.ovn.northd_pid()
        return [pid] if pid else []

    async def stop(self) -> None:
        await asyncio.to_thread(self.ovn.stop)


# ---------------------------------------------------------------- one run


async def stamp(awaitable: Awaitable[object]) -> float:
    """perf_counter() when `awaitable` finished."""
    await awaitable
    return time.perf_counter()


async def first_reply(peer: Host, ip: str) -> float | None:
    """perf_counter() when `peer` got the first echo reply from `ip` (None: no reply)."""
    deadline = time.monotonic() + PING_DEADLINE
    while (left := deadline - time.monotonic()) > 0:
        # ping -c 1 also ends at the first error (an ARP failure: "Destination Host
        # Unreachable") before the deadline it was given: then ping again
        ok = await asyncio.to_thread(peer.ping_ok, ip, deadline=left, interval=PING_INTERVAL)
        if ok:
            return time.perf_counter()
    return None


async def measure(system: System, n: int, checks: Checks) -> dict[str, Any]:
    """Start `system` on its servers, then create, plug and time N ports one at a time."""
    lab, hvs = system.lab, system.hvs
    await system.start()
    peer = await asyncio.to_thread(
        lab.host, hvs[0], BRIDGE, f"{PEER_IP}/16", mac=PEER_MAC, iface_id="peer"
    )
    for setting in (f"retrans_time_ms={ARP_RETRANS_MS}", f"mcast_solicit={ARP_PROBES}"):
        await asyncio.to_thread(peer.exec, "sysctl", "-qw", f"net.ipv4.neigh.eth0.{setting}")
    await system.wait_up("peer")

    def where(i: int) -> Hypervisor:
        return hvs[i % len(hvs)] if i != WARM else hvs[-1]

    def host(i: int) -> Host:
        return lab.host(where(i), BRIDGE, f"{port_ip(i)}/16", mac=port_mac(i), name=lport(i))

    sample = sampled(n)
    hosts = {i: await asyncio.to_thread(host, i) for i in [WARM, *sample]}

    # warm-up: one port end to end (first tunnel use, first flows, caches), not counted
    await system.create(WARM)
    await asyncio.to_thread(bind, where(WARM), hosts[WARM].port_name, lport(WARM))
    await system.wait_up(lport(WARM))
    label = f"{system.name} N={n} servers={len(hvs)}"
    checks.check(
        f"{label}: warm-up ping",
        await asyncio.to_thread(peer.ping_ok, port_ip(WARM), deadline=PING_DEADLINE),
    )

    flows_before = await asyncio.to_thread(count_flows, hvs)
    pids, central = system.controller_pids(), system.central_pids()
    cpu0 = [cpu_seconds(p) for p in pids]
    central0 = [cpu_seconds(p) for p in central]
    up: list[float] = []
    plugged: list[float] = []
    after_plug: list[float] = []
    """From the create call to the plug done (ovs-vsctl returned): the same work for both
    systems, and part of every up time; what remains is the controller's share."""
    ping: list[float] = []
    failures: list[str] = []
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        await system.create(i)
        if i in hosts:
            await asyncio.to_thread(bind, where(i), hosts[i].port_name, lport(i))
            pinged = asyncio.create_task(first_reply(peer, port_ip(i)))
        else:
            await asyncio.to_thread(where(i).plug_internal, BRIDGE, f"lp{i}", lport(i))
            pinged = None
        plugged.append(time.perf_counter() - t0)
        try:
            up.append(await stamp(system.wait_up(lport(i))) - t0)
            after_plug.append(up[-1] - plugged[-1])
        except Exception as exc:
            failures.append(f"{lport(i)} not up: {exc}")
        if pinged is not None:
            replied = await pinged
            if replied is not None:
                ping.append(replied - t0)
            else:
                failures.append(f"{lport(i)}: no ping reply within {PING_DEADLINE} s")
    seconds = time.perf_counter() - started
    cpu = sum(cpu_seconds(p) for p in pids) - sum(cpu0)
    central_cpu = sum(cpu_seconds(p) for p in central) - sum(central0)
    checks.check(f"{label}: every port up", len(up) == n, "; ".join(failures[:5]))
    checks.equal(f"{label}: sampled pings answered", len(ping), len(sample))
    flows = await asyncio.to_thread(count_flows, hvs)
    checks.check(f"{label}: flows installed", flows > 0, f"{flows} flows")
    return {
        "system": system.name,
        "ports": n,
        "servers": len(hvs),
        "sampled": len(sample),
        "seconds": seconds,
        "up_s": summary(up),
        "plugged_s": summary(plugged),
        "up_after_plug_s": summary(after_plug),
        "ping_s": summary(ping),
        **resources(pids, central, cpu, central_cpu),
        **flow_counts(flows, flows_before, n),
        "failures": failures,
    }


def resources(
    pids: list[int], central: list[int], cpu: float, central_cpu: float
) -> dict[str, Any]:
    """CPU and peak memory of the controllers (and of OVN's northd) for one run."""
    return {
        "controller_cpu_s": cpu,
        "controller_peak_rss_mib": max(peak_rss_mib(p) for p in pids),
        "controllers": len(pids),
        "central_cpu_s": central_cpu if central else None,
        "central_peak_rss_mib": max(peak_rss_mib(p) for p in central) if central else None,
    }


def flow_counts(flows: int, flows_before: int, n: int) -> dict[str, Any]:
    """Flows on the servers after the run, per port, and those the N ports added."""
    return {
        "flows": flows,
        "flows_per_port": flows / n,
        "flows_before": flows_before,
        "added_flows_per_port": (flows - flows_before) / n,
    }


def summary(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    return {
        "count": len(samples),
        "p50": percentile(samples, 0.5),
        "p99": percentile(samples, 0.99),
        "max": max(samples),
    }


Measure = Callable[[System, int, Checks], Awaitable[dict[str, Any]]]
"""Starts a system in its lab and measures N ports: `measure` here, bench/batch.py's too."""


async def one_run(
    kind: type[System], n: int, servers: int, checks: Checks, measure_fn: Measure = measure
) -> dict[str, Any]:
    """A fresh lab for one system, measured by `measure_fn` and removed (also on errors)."""
    workdir = register_dir(Path(tempfile.mkdtemp(prefix=f"{naming.RUN_PREFIX}-portup-")))
    lab = OvsLab()
    system: System | None = None
    try:
        system = await asyncio.to_thread(kind, lab, workdir, servers)
        return await measure_fn(system, n, checks)
    finally:
        if system is not None:
            await system.stop()
        await asyncio.to_thread(lab.close)
        release_dir(workdir, remove=True)


# ---------------------------------------------------------------- report


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


Row = tuple[str, Callable[[dict[str, Any]], str]]
RESOURCE_ROWS: list[Row] = [
    ("controller CPU s", lambda r: f"{r['controller_cpu_s']:.2f}"),
    ("controller peak RSS MiB", lambda r: f"{r['controller_peak_rss_mib']:.1f}"),
    (
        "northd CPU s / RSS MiB",
        lambda r: (
            "-"
            if r["central_cpu_s"] is None
            else f"{r['central_cpu_s']:.2f} / {r['central_peak_rss_mib']:.1f}"
        ),
    ),
    ("flows / ports", lambda r: f"{r['flows_per_port']:.1f}"),
    ("added flows per port", lambda r: f"{r['added_flows_per_port']:.1f}"),
]
"""The rows portup's and bench/batch.py's tables share."""
ROWS: list[Row] = [
    ("created+plugged p50 ms", lambda r: ms(r["plugged_s"]["p50"])),
    ("created+plugged p99 ms", lambda r: ms(r["plugged_s"]["p99"])),
    ("up after plug p50 ms", lambda r: ms(r["up_after_plug_s"]["p50"])),
    ("up after plug p99 ms", lambda r: ms(r["up_after_plug_s"]["p99"])),
    ("up p50 ms", lambda r: ms(r["up_s"]["p50"])),
    ("up p99 ms", lambda r: ms(r["up_s"]["p99"])),
    ("ping p50 ms", lambda r: ms(r["ping_s"]["p50"])),
    ("ping p99 ms", lambda r: ms(r["ping_s"]["p99"])),
    ("pinged ports", lambda r: f"{r['ping_s']['count']}/{r['sampled']}"),
    *RESOURCE_ROWS,
    ("wall s (N ports)", lambda r: f"{r['seconds']:.1f}"),
]


def print_table(results: list[dict[str, Any]], rows: list[Row] = ROWS) -> None:
    """One table per size and layout, a column per system."""
    runs: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}
    for r in results:
        runs.setdefault((r["ports"], r["servers"]), {})[r["system"]] = r
    for (n, servers), pair in sorted(runs.items()):
        print(f"\n{n} ports, {servers} server{'s' if servers > 1 else ''}")
        header = f"{'':<25}" + "".join(f" {name:>13}" for name in pair)
        print(header)
        print("-" * len(header))
        for label, cell in rows:
            print(f"{label:<25}" + "".join(f" {cell(r):>13}" for r in pair.values()))


def tool_version(binary: str) -> str:
    if shutil.which(binary) is None:
        return "not installed"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a comma-separated list of positive numbers")
    return values


SYSTEMS: dict[str, type[System]] = {"vlcp": Vlcp, "ovn": Ovn}


async def run_all(
    sizes: list[int],
    layouts: list[int],
    systems: list[type[System]],
    checks: Checks,
    measure_fn: Measure = measure,
) -> list[dict[str, Any]]:
    results = []
    for servers in layouts:
        for n in sizes:
            for kind in systems:
                print(f"{kind.name}: {n} ports on {servers} server(s) ...", flush=True)
                results.append(await one_run(kind, n, servers, checks, measure_fn))
    return results


def system_list(text: str) -> list[type[System]]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SYSTEMS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"{text!r}: a comma-separated list of {list(SYSTEMS)}")
    return [SYSTEMS[name] for name in names]


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def lab_arguments(parser: argparse.ArgumentParser, sizes: list[int], output: Path) -> None:
    """--sizes, --servers, --systems and --output (portup's and bench/batch.py's)."""
    parser.add_argument(
        "--sizes", type=int_list, default=sizes, help="port counts, e.g. 10,100,1000"
    )
    parser.add_argument(
        "--servers", type=int_list, default=[1], help="layouts: 1 and/or 2 servers (e.g. 1,2)"
    )
    parser.add_argument(
        "--systems",
        type=system_list,
        default=list(SYSTEMS.values()),
        help="vlcp and/or ovn (default both: the comparison is the point)",
    )
    parser.add_argument("--output", type=Path, default=output)


def run_in_labs(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    name: str,
    prefix: str,
    measure_fn: Measure,
) -> tuple[list[dict[str, Any]], Checks]:
    """Every size, layout and system measured by `measure_fn`, each in a fresh lab whose
    names carry the run prefix `prefix`+PID; everything is removed at the end, also on
    Ctrl-C or SIGTERM (then it exits). `name`: bench/NAME.py, `make bench-NAME`."""
    if not set(args.servers) <= {1, 2}:
        parser.error("--servers takes 1 and/or 2")
    if max(args.sizes) > 60000:
        parser.error("--sizes: at most 60000 ports (one /16 subnet)")
    if os.geteuid() != 0:
        sys.exit(
            f"bench/{name}.py needs root: it starts private Open vSwitch instances and hosts "
            f"in network namespaces (run it as root, e.g. `sudo make bench-{name}`)"
        )
    ovn = any(issubclass(kind, Ovn) for kind in args.systems)
    missing = missing_tools() + (ovn_tools_missing() if ovn else [])
    if missing:
        needs = "Open vSwitch and OVN tools" if ovn else "the Open vSwitch tools"
        sys.exit(f"bench/{name}.py needs {needs}; missing: {missing}")
    naming.set_run_prefix(f"{prefix}{os.getpid() % 100000:05d}")
    checks = Checks()
    signal.signal(signal.SIGTERM, interrupt)  # like Ctrl-C: the cleanup below always runs
    try:
        results = asyncio.run(run_all(args.sizes, args.servers, args.systems, checks, measure_fn))
    except KeyboardInterrupt:
        results = None
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second one must not cut it short
            signal.signal(sig, signal.SIG_IGN)
        for error in cleanup_all():
            print(f"cleanup: {error}", file=sys.stderr)
    if results is None:
        sys.exit("interrupted: everything the run created is removed")
    return results, checks


def finish(
    args: argparse.Namespace, results: list[dict[str, Any]], checks: Checks, **extra: Any
) -> None:
    """Write the JSON (tool versions, the options, `extra`, the checks, the runs) and exit
    non-zero if a check failed."""
    extra = {
        "ovs": tool_version("ovs-vswitchd"),
        "ovn": tool_version("ovn-controller"),
        "sizes": args.sizes,
        "servers": args.servers,
        **extra,
        "checks": checks.results,
    }
    write_results(args.output, {"runs": results}, **extra)
    if checks.failed:
        sys.exit("checks failed:\n  " + "\n  ".join(checks.failed))
    print(f"all {len(checks.results)} checks passed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lab_arguments(parser, [10, 100], RESULTS)
    args = parser.parse_args()
    results, checks = run_in_labs(parser, args, "portup", "pu", measure)
    print_table(results)
    finish(args, results, checks, sample=SAMPLE)


if __name__ == "__main__":
    main()
