"""Restart benchmark: a controller SIGKILLed and started again over N ports, seen from outside.

    make bench-restart                   # 1,000 and 10,000 ports; needs root
    .venv/bin/python bench/restart.py --sizes 1000

Two lab servers joined by an underlay (the lab's `Hypervisor`s, a private lab prefixed
`rsNNNNN`, removed at the end), each with its `vlcp run` process as users run it (the
e2e lab's `Controller`: a TOML file, the controller alone, killed and started again by
PID), on one sqlite store. hv0 gets N ports of one VXLAN network (bench/portup.py's
`Vlcp` creates them in batches; N-1 OVS internal ports and one host), hv1 one host in
the same network. Once every port is up and every binding dated, with:

- a continuous ping (tests/lab: 20 echo requests a second, every loss counted) from the
  host on hv1 to the host on hv0, across the tunnel;
- `ovs-ofctl monitor watch:` on both switches (tests/lab: every flow added, deleted or
  modified, so a flush between two dumps cannot hide);
- two store watches on the ports' announcements (`lport-status/`, `netports/`);

hv0's controller is SIGKILLed and started again at once (`--restarts` times, one after
the other, over the same ports). Converged: the restarted process
logged its reconcile, every port's status is up on hv0, and both switches hold exactly the
flows (by cookie) they held before the kill. The observation goes on until `OBSERVE`
seconds after the kill (past the dead process's liveness session) and `QUIET` seconds after
convergence. The switch side counts the flow-mods (the process's own counters die with
it): the monitor's events, and the flows whose age (`dump-flows` duration) is younger than
the kill. Nothing changed, so all must be 0, and no ping may be lost.

Prints a table (a column per N and restart) and writes bench/results/restart.json; a
failed check (a port not up, no convergence, a flow changed or re-sent, an announcement
rewritten, a ping lost) makes it exit non-zero. The controllers run the `vlcp` package
that `PYTHONPATH` finds first (the JSON says which): pointed at an older tree, the same
benchmark measures the old controller (bench/README.md, "before").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.batch import up_timeout
from bench.common import Checks
from bench.portup import (
    PEER_IP,
    PEER_MAC,
    Vlcp,
    cpu_seconds,
    finish,
    int_list,
    lport,
    peak_rss_mib,
    port_ip,
    port_mac,
    run_in_labs,
)
from tests.lab.continuous_ping import ContinuousPing, PingReport
from tests.lab.flow_watch import FlowWatcher
from tests.lab.vlcp_processes import Controller
from tests.lab.waiting import eventually
from vlcp.lab.ovs import VSCTL_TIMEOUT, Host, Hypervisor, OvsLab
from vlcp.lab.servers import BRIDGE
from vlcp.layout import NETPORTS, port_status
from vlcp.store import Resync, Store, open_store

RESULTS = Path(__file__).parent / "results" / "restart.json"
SESSION_TTL = 5.0
"""The controllers' liveness session (`[store] session_ttl`): a killed controller's session
expires this long after its last refresh, and whatever depended on it would go then."""
OBSERVE = 3 * SESSION_TTL
"""Seconds after the kill that the pings, flow monitors and store watches run at least."""
QUIET = 2.0
"""Seconds after convergence that they run at least (a late change would show there)."""
FLOW = re.compile(r"cookie=(0x[0-9a-f]+), duration=([0-9.]+)s")
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ \S+: (.*)$", re.M)
MILESTONES = {
    "store_s": re.compile(r"^vlcp \S+ on .*; announced as "),
    "ovsdb_s": re.compile(r"^agent \S+ on bridge "),
    "openflow_s": re.compile(r"switch connected; reconciling once the desired state is known"),
}
"""What `vlcp run` logs on its way up: the store reached and its presence written; OVSDB
read and the bridge ensured; the switch connected before the desired state was complete
(logged only then)."""
RECONCILED = re.compile(r"reconciled: \+(\d+) -(\d+) flows")
ZERO = {"added": 0, "deleted": 0, "modified": 0}


def converge_timeout(n: int) -> float:
    """For the restarted controller to converge: a minute, plus 10 ms a port."""
    return 60 + n / 100


class RestartableVlcp(Vlcp):
    """bench/portup.py's vlcp, run by the e2e lab's `Controller`s: `vlcp run` processes
    configured by a TOML file (`[api] enabled = false`: the controller alone, as on a
    hypervisor), killed and started again by PID."""

    def __init__(self, lab: OvsLab, workdir: Path, servers: int) -> None:
        super().__init__(lab, workdir, servers)
        self.controllers: list[Controller] = []

    async def start(self) -> None:
        """Create the sqlite store before the controllers open it: two processes turning a
        new database to WAL mode at the same moment can fail with "database is locked"."""
        await (await open_store(self.url)).close()
        await super().start()

    def _spawn(self, k: int, hv: Hypervisor) -> None:
        controller = Controller(hv, f"hv{k}", self.workdir, self.url, session_ttl=SESSION_TTL)
        self.controllers.append(controller)
        controller.start()

    def _alive(self) -> None:
        for controller in self.controllers:
            controller.assert_running()

    def controller_pids(self) -> list[int]:
        self._alive()
        return [c.pid for c in self.controllers if c.pid is not None]

    async def stop(self) -> None:
        await super().stop()
        for controller in self.controllers:  # in parallel, then each waited for
            controller.terminate()
        for controller in self.controllers:
            await asyncio.to_thread(controller.stop)


class Announcements:
    """Every change to the ports' announcements while it runs, and when it was seen: a
    restart that changes nothing writes none."""

    def __init__(self, store: Store) -> None:
        self.changes: list[tuple[float, str, bool]] = []
        """(wall time seen, key, deleted)"""
        self._ready = [asyncio.Event(), asyncio.Event()]
        self._tasks = [
            asyncio.create_task(self._follow(store, prefix, ready))
            for prefix, ready in zip((port_status(""), NETPORTS), self._ready, strict=True)
        ]

    async def ready(self) -> None:
        """Once both watches have their first state (changes from then on are seen)."""
        for event in self._ready:
            await event.wait()

    async def _follow(self, store: Store, prefix: str, ready: asyncio.Event) -> None:
        watch = store.watch(prefix=prefix)
        try:
            async for item in watch:
                now = time.time()
                if isinstance(item, Resync):
                    if ready.is_set():  # the change log was compacted: a change unseen
                        self.changes.append((now, f"{prefix}(resync)", False))
                    ready.set()
                    continue
                self.changes += [(now, c.key, c.value is None) for c in item.changes]
        finally:
            await watch.aclose()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def flow_ages(hv: Hypervisor) -> dict[int, float]:
    """Each flow's age in seconds (its `duration`), by cookie, on `hv`'s integration bridge."""
    lines = hv.dump_flows(BRIDGE, stats=True)
    ages = {int(m[1], 16): float(m[2]) for line in lines if (m := FLOW.search(line))}
    if len(ages) != len(lines):
        raise RuntimeError(f"{hv.name}: {len(lines)} flows but {len(ages)} distinct cookies")
    return ages


def dated_bindings(hv: Hypervisor, timeout: int) -> int:
    """Interfaces whose binding the controller has dated in OVSDB (`vlcp-bound-at`): once
    all are, a restart finds every date where it left it and has nothing to write.
    `timeout`: for ovsdb-server to answer while it writes thousands of dates."""
    args = ("--format=json", "--columns=external_ids", "list", "Interface")
    listing = json.loads(hv.vsctl(*args, timeout=timeout))
    count = 0
    for (column,) in listing["data"]:
        keys = {key for key, _ in column[1]}
        count += {"iface-id", "vlcp-bound-at"} <= keys
    return count


def timeline(log: str, since: float) -> dict[str, Any]:
    """Seconds from `since` (wall time) to each milestone `vlcp run` logged in `log`."""
    found: dict[str, Any] = dict.fromkeys(MILESTONES)
    reconciles: list[tuple[float, int, int]] = []
    for stamp, message in LOG_LINE.findall(log):
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp() - since
        for name, pattern in MILESTONES.items():
            if found[name] is None and pattern.search(message):
                found[name] = at
        if m := RECONCILED.search(message):
            reconciles.append((at, int(m[1]), int(m[2])))
    return {
        **found,
        "reconciles": len(reconciles),
        "first_reconciled_s": reconciles[0][0] if reconciles else None,
        "reconciled_s": reconciles[-1][0] if reconciles else None,
        "reconciled_adds": sum(r[1] for r in reconciles),
        "reconciled_deletes": sum(r[2] for r in reconciles),
    }


def flow_events(watcher: FlowWatcher) -> dict[str, int]:
    counts = {"ADDED": 0, "DELETED": 0, "MODIFIED": 0}
    for event in watcher.events():
        counts[event.event] = counts.get(event.event, 0) + 1
    return {name.lower(): count for name, count in counts.items()}


def ping_summary(report: PingReport, since: float) -> dict[str, Any]:
    return {
        "sent": report.sent,
        "received": report.received,
        "lost": report.lost,
        "lost_at_s": [at - since for at in report.lost_at],
        "report": str(report),
    }


def controller_code(workdir: Path) -> str:
    """Where the controllers' `vlcp` package comes from (PYTHONPATH can point them at
    another tree, to measure an older version with this benchmark)."""
    probe = "import os, vlcp; print(os.path.dirname(vlcp.__file__))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=workdir, check=True
    )
    return done.stdout.strip()


async def set_up(system: RestartableVlcp, n: int, checks: Checks) -> Host:
    """N ports on hv0 (a host as port 0, internal ports for the others) and a host on hv1,
    all up and dated; returns hv1's host, which pings hv0's."""
    lab, (hv, other) = system.lab, system.hvs
    await system.start()
    names = [lport(i) for i in range(n)]
    watching = asyncio.create_task(system.wait_all_up([*names, "peer"], up_timeout(n)))
    await system.create_many(range(n))
    peer = await asyncio.to_thread(
        lab.host, other, BRIDGE, f"{PEER_IP}/16", mac=PEER_MAC, iface_id="peer", name="peer"
    )
    await asyncio.to_thread(
        lab.host, hv, BRIDGE, f"{port_ip(0)}/16", mac=port_mac(0), iface_id=lport(0)
    )
    ports = [(f"lp{i}", lport(i)) for i in range(1, n)]
    vsctl_timeout = VSCTL_TIMEOUT + n // 20
    await asyncio.to_thread(hv.plug_internal_many, BRIDGE, ports, vsctl_timeout)
    up = await watching
    checks.equal(f"N={n}: every port up before the restart", len(up), n + 1)

    async def dated() -> bool:
        return await asyncio.to_thread(dated_bindings, hv, vsctl_timeout) >= n

    await eventually(dated, up_timeout(n), what=f"the {n} bindings on hv0 dated in OVSDB")
    checks.check(
        f"N={n}: hv1's host reaches hv0's before the restart",
        await asyncio.to_thread(peer.ping_ok, port_ip(0), deadline=10),
    )
    return peer


def ages_now(hv: Hypervisor) -> tuple[dict[int, float], float]:
    """`flow_ages`, and the wall time once the dump was done: a flow younger than
    (that time - t) was (re)installed after t."""
    ages = flow_ages(hv)
    return ages, time.time()


async def all_up_on(store: Store, host: str, n: int) -> bool:
    """At least `n` ports' statuses say up on `host`."""
    statuses = (await store.read_prefix(port_status(""))).values.values()
    return sum(s.get("state") == "up" and s.get("host") == host for s in statuses) >= n


async def measure_restarts(
    system: RestartableVlcp, n: int, checks: Checks, restarts: int
) -> dict[str, Any]:
    """Set up N ports on hv0, then restart its controller `restarts` times, one by one."""
    peer = await set_up(system, n, checks)
    runs = []
    for k in range(1, restarts + 1):
        runs.append(await restart_once(system, peer, n, k, checks))
    return {
        "ports": n,
        "servers": 2,
        "controller_code": controller_code(system.workdir),
        "restarts": runs,
    }


async def restart_once(
    system: RestartableVlcp, peer: Host, n: int, k: int, checks: Checks
) -> dict[str, Any]:
    """Kill hv0's controller, start it again at once, and watch until it has converged and
    the observation time is over."""
    (hv, other), workdir = system.hvs, system.workdir
    assert system.store is not None
    store, controller = system.store, system.controllers[0]
    switches = (hv, other)
    rss_before = peak_rss_mib(system.controller_pids()[0])
    before = {s.name: await asyncio.to_thread(flow_ages, s) for s in switches}
    announcements = Announcements(store)
    await announcements.ready()
    watchers = {s.name: FlowWatcher(s, BRIDGE, workdir, label=f"{s.name}-{k}") for s in switches}
    ping = ContinuousPing(peer, port_ip(0), workdir, label=f"hv1-to-hv0-{k}")
    try:
        for watcher in watchers.values():
            await asyncio.to_thread(watcher.start)
        await asyncio.to_thread(ping.start)
        log_start = controller.log.stat().st_size
        killed_at = time.time()
        await asyncio.to_thread(controller.kill)
        started_at = time.time()
        controller.start()
        pid = controller.pid
        assert pid is not None

        def log() -> str:
            return controller.log.read_bytes()[log_start:].decode(errors="replace")

        async def converged() -> bool:
            controller.assert_running()
            if timeline(log(), started_at)["reconciled_s"] is None:
                return False
            if not await all_up_on(store, hv.name, n):
                return False
            for s in switches:
                if (await asyncio.to_thread(flow_ages, s)).keys() != before[s.name].keys():
                    return False
            return True

        await eventually(
            converged,
            converge_timeout(n),
            what=f"hv0's restarted controller to converge over {n} ports",
            details=controller.details,
        )
        seen_at = time.time()
        cpu = cpu_seconds(pid)
        # the observation: past the dead process's session, and quiet after convergence
        await asyncio.sleep(max(killed_at + OBSERVE, seen_at + QUIET) - time.time())
        cpu_end, rss = cpu_seconds(pid), peak_rss_mib(pid)
        report = await asyncio.to_thread(ping.stop)
    except BaseException:
        with contextlib.suppress(Exception):  # the error that got us here matters more
            await asyncio.to_thread(ping.stop)
        raise
    finally:
        for watcher in watchers.values():
            watcher.stop()
        await announcements.close()
    after = {s.name: await asyncio.to_thread(ages_now, s) for s in switches}
    steps = timeline(log(), started_at)
    writes = [(at - started_at, key, gone) for at, key, gone in announcements.changes]
    events = {name: flow_events(watcher) for name, watcher in watchers.items()}
    rewritten = {
        name: sum(age < dumped - killed_at for age in ages.values())
        for name, (ages, dumped) in after.items()
    }
    same = {name: ages.keys() == before[name].keys() for name, (ages, _) in after.items()}
    label = f"N={n} restart {k}"
    for name in same:
        checks.check(f"{label}: {name} holds the flows it held before", same[name])
        checks.equal(f"{label}: {name}: no flow added, deleted or modified", events[name], ZERO)
        checks.equal(f"{label}: {name}: no flow re-installed", rewritten[name], 0)
    sent = steps["reconciled_adds"] + steps["reconciled_deletes"]
    checks.equal(f"{label}: the reconcile sent no flow-mod (its log)", sent, 0)
    checks.equal(f"{label}: no announcement rewritten", len(writes), 0)
    checks.equal(f"{label}: no ping lost", report.lost, 0)
    return {
        "restart": k,
        "down_s": started_at - killed_at,
        **steps,
        "converged_s": max([steps["reconciled_s"], *(at for at, _, _ in writes)]),
        "converged_seen_s": seen_at - started_at,
        "observed_s": time.time() - killed_at,
        "flows_before": {name: len(ages) for name, ages in before.items()},
        "flows_after": {name: len(ages) for name, (ages, _) in after.items()},
        "flow_events": events,
        "flows_reinstalled": rewritten,
        "announcement_writes": len(writes),
        "announcement_deletes": sum(gone for _, _, gone in writes),
        "announcement_sample": [list(w) for w in writes[:10]],
        "ping": ping_summary(report, killed_at),
        "cpu_to_converged_s": cpu,
        "cpu_observed_s": cpu_end,
        "peak_rss_mib": rss,
        "peak_rss_before_kill_mib": rss_before,
    }


# ---------------------------------------------------------------- report


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def changes(counts: dict[str, int]) -> str:
    return f"+{counts['added']} -{counts['deleted']} ~{counts['modified']}"


Row = tuple[str, Callable[[dict[str, Any]], str]]
ROWS: list[Row] = [
    ("kill -> start again s", lambda r: seconds(r["down_s"])),
    ("store reached s", lambda r: seconds(r["store_s"])),
    ("OVSDB read, bridge ready s", lambda r: seconds(r["ovsdb_s"])),
    ("OpenFlow connected s", lambda r: seconds(r["openflow_s"])),
    ("reconciled s", lambda r: seconds(r["reconciled_s"])),
    ("converged s", lambda r: seconds(r["converged_s"])),
    ("reconcile flow-mods (log)", lambda r: f"+{r['reconciled_adds']} -{r['reconciled_deletes']}"),
    ("flow changes hv0 (monitor)", lambda r: changes(r["flow_events"]["hv0"])),
    ("flows re-installed hv0", lambda r: str(r["flows_reinstalled"]["hv0"])),
    ("flow changes hv1 (monitor)", lambda r: changes(r["flow_events"]["hv1"])),
    ("flows hv0 / hv1", lambda r: f"{r['flows_after']['hv0']} / {r['flows_after']['hv1']}"),
    ("announcements written", lambda r: str(r["announcement_writes"])),
    ("pings lost / sent", lambda r: f"{r['ping']['lost']} / {r['ping']['sent']}"),
    ("CPU s to converged", lambda r: f"{r['cpu_to_converged_s']:.2f}"),
    ("peak RSS MiB", lambda r: f"{r['peak_rss_mib']:.1f}"),
    ("peak RSS before the kill", lambda r: f"{r['peak_rss_before_kill_mib']:.1f}"),
]


def print_table(results: list[dict[str, Any]]) -> None:
    """A column per N and restart; times in seconds from the restart (the new process's
    spawn)."""
    columns = [(f"{r['ports']} #{run['restart']}", run) for r in results for run in r["restarts"]]
    header = f"{'hv0 restarted (ports #restart)':<30}" + "".join(f" {c:>14}" for c, _ in columns)
    print("\n" + header)
    print("-" * len(header))
    for label, cell in ROWS:
        print(f"{label:<30}" + "".join(f" {cell(run):>14}" for _, run in columns))
    print()
    for name, run in columns:
        print(f"{name}: {run['ping']['report']}")
    for code in sorted({r["controller_code"] for r in results}):
        print(f"the controllers ran {code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int_list, default=[1000, 10000], help="ports on hv0, e.g. 1000,10000"
    )
    parser.add_argument(
        "--restarts", type=int, default=1, help="restarts per size, one after the other"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.restarts < 1:
        parser.error("--restarts: at least 1")
    # run_in_labs' options: every size, 2 servers, vlcp
    args.servers, args.systems = [2], [RestartableVlcp]

    async def measure(system: Any, n: int, checks: Checks) -> dict[str, Any]:
        return await measure_restarts(system, n, checks, args.restarts)

    results, checks = run_in_labs(parser, args, "restart", "rs", measure)
    print_table(results)
    finish(
        args, results, checks, restarts=args.restarts, session_ttl=SESSION_TTL, observe_s=OBSERVE
    )


if __name__ == "__main__":
    main()
