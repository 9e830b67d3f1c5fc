"""Churn benchmark: endpoints created and deleted continuously on one server (vlcp).

    make bench-churn                     # 60 s at 100 changes/s over 1,000 ports; needs root
    .venv/bin/python bench/churn.py --seconds 5 --base 100 --rate 100

The product target: 6,000 endpoint changes a minute per server (100/s). The system starts
exactly as in bench/batch.py (portup's `Vlcp` class, a private lab prefixed `chNNNNN`,
removed at the end); `--base` ports are created in one batch, plugged with one
`ovs-vsctl` call and waited for (not measured). Then, for `--seconds`, a wave starts every
second (or as soon as the previous one is done, if it ran over), with K = rate / 2:

1. create K new ports (`Model.batch`, one store transaction) and plug them (ONE
   `ovs-vsctl` call adding K internal ports with their `external_ids:iface-id`);
2. unplug the K oldest ports (ONE `ovs-vsctl` call with K `del-port`s) and delete them
   (`Model.batch` of K deletes, one store transaction);

so the server keeps `--base` ports; a create+plug is one change, an unplug+delete another.
Two store watches (no polling), started before the base, see each new port's
`lport-status/` turn "up" (its up lag: from its wave's start) and each deleted port's
`netports/net/<port>` announcement withdrawn by the controller (its gone lag). When the
last wave is done, the ports created but not up yet are the backlog; they get 30 s to
come up. Controller CPU is utime+stime over the waves (as in portup), as % of one core.

Prints a table and writes bench/results/churn.json. Fails (non-zero exit) if a created
port is not up within 30 s after the last wave (or was deleted before it came up), a
deleted port's announcement or status outlives those 30 s, or the achieved rate is under
90% of `--rate`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.batch import up_timeout
from bench.common import Checks, percentile
from bench.portup import (
    UP_TIMEOUT,
    Vlcp,
    cpu_seconds,
    finish,
    lport,
    peak_rss_mib,
    run_in_labs,
    summary,
)
from vlcp.lab.ovs import VSCTL_TIMEOUT
from vlcp.lab.servers import BRIDGE
from vlcp.layout import port_status
from vlcp.model.ops import Op
from vlcp.store import Resync, Store

RESULTS = Path(__file__).parent / "results" / "churn.json"
SETTLE = UP_TIMEOUT
"""After the last wave: how long the backlog (and the withdrawals) may take."""
NETPORTS = "netports/net/"
"""Where the controller announces the ports of the benchmark's one network."""


class Tracker:
    """Two store watches: when each port first went up, and when its announcement went."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.up: dict[str, float] = {}
        self.announced: set[str] = set()
        self.gone: dict[str, float] = {}
        self.changed = asyncio.Event()
        self.tasks = [
            asyncio.create_task(self._follow(port_status(""), self._status)),
            asyncio.create_task(self._follow(NETPORTS, self._netport)),
        ]

    async def _follow(self, prefix: str, on: Callable[[str, Any, float], None]) -> None:
        watch = self.store.watch(prefix=prefix)
        try:
            async for item in watch:
                now = time.perf_counter()
                if isinstance(item, Resync):
                    if prefix == NETPORTS:  # replace: what is not there any more is gone
                        for name in self.announced - {k.removeprefix(prefix) for k in item.values}:
                            on(prefix + name, None, now)
                    changes = list(item.values.items())
                else:
                    changes = [(change.key, change.value) for change in item.changes]
                for key, value in changes:
                    on(key, value, now)
                self.changed.set()
        finally:
            await watch.aclose()

    def _status(self, key: str, value: Any, now: float) -> None:
        if isinstance(value, dict) and value.get("state") == "up":
            self.up.setdefault(key.removeprefix(port_status("")), now)

    def _netport(self, key: str, value: Any, now: float) -> None:
        name = key.removeprefix(NETPORTS)
        if value is None:
            if name in self.announced:
                self.announced.discard(name)
                self.gone.setdefault(name, now)
        else:
            self.announced.add(name)

    async def wait_for(self, done: Callable[[], bool], timeout: float) -> bool:
        """Until `done()` (checked after every watch event) or the timeout."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not done():
                    self.changed.clear()
                    await self.changed.wait()
        return done()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]


async def measure_churn(
    system: Vlcp, base: int, checks: Checks, seconds: int, rate: int
) -> dict[str, Any]:
    assert len(system.hvs) == 1
    (hv,) = system.hvs
    await system.start()
    assert system.store is not None and system.model is not None
    model = system.model
    tracker = Tracker(system.store)
    per_wave = rate // 2
    label = f"vlcp churn {rate}/s over {base} ports"
    try:
        # the base: one batch, one plug, all up (not measured)
        await system.create_many(range(base))
        await asyncio.to_thread(
            hv.plug_internal_many,
            BRIDGE,
            [(f"lp{i}", lport(i)) for i in range(base)],
            VSCTL_TIMEOUT + base // 20,
        )
        names = {lport(i) for i in range(base)}
        base_up = await tracker.wait_for(lambda: names <= tracker.up.keys(), up_timeout(base))
        checks.check(f"{label}: the base ports up", base_up, f"{len(names & tracker.up.keys())}")

        pids = system.controller_pids()
        cpu0 = sum(cpu_seconds(p) for p in pids)
        vswitchd = int((hv.dir / "ovs-vswitchd.pid").read_text().strip())
        vswitchd0 = cpu_seconds(vswitchd)
        live = deque(range(base))
        next_index = base
        started: dict[str, float] = {}  # created port -> its wave's start
        deleted: dict[str, float] = {}  # deleted port -> its wave's start
        unplugged: dict[str, float] = {}  # deleted port -> its del-port call returned
        up_before_delete: set[str] = set()
        waves: list[dict[str, float]] = []
        t_start = time.perf_counter()
        for w in range(seconds):
            await asyncio.sleep(max(0.0, t_start + w - time.perf_counter()))
            t0 = time.perf_counter()
            new = list(range(next_index, next_index + per_wave))
            next_index += per_wave
            old = [live.popleft() for _ in range(min(per_wave, len(live)))]
            for i in new:
                started[lport(i)] = t0
            await system.create_many(new)
            t1 = time.perf_counter()
            await asyncio.to_thread(
                hv.plug_internal_many, BRIDGE, [(f"lp{i}", lport(i)) for i in new]
            )
            t2 = time.perf_counter()
            if old:  # --no-wait: committed to OVSDB, vswitchd removes the taps at its pace
                args: list[str] = ["--no-wait"]
                for i in old:
                    args += ["--", "del-port", BRIDGE, f"lp{i}"]
                await asyncio.to_thread(hv.vsctl, *args)
            t3 = time.perf_counter()
            await model.batch([Op("delete", "logical-ports", lport(i)) for i in old])
            t4 = time.perf_counter()
            for i in old:
                deleted[lport(i)] = t0
                unplugged[lport(i)] = t3
                if lport(i) in tracker.up:
                    up_before_delete.add(lport(i))
            live.extend(new)
            waves.append(
                {
                    "start_s": t0 - t_start,
                    "create_s": t1 - t0,
                    "plug_s": t2 - t1,
                    "unplug_s": t3 - t2,
                    "delete_s": t4 - t3,
                    "total_s": t4 - t0,
                }
            )
        t_end = time.perf_counter()
        cpu = sum(cpu_seconds(p) for p in pids) - cpu0
        vswitchd_cpu = cpu_seconds(vswitchd) - vswitchd0
        elapsed = max(float(seconds), t_end - t_start)
        changes = 2 * per_wave * len(waves)
        created = set(started)
        backlog = len(created - tracker.up.keys())
        pending_gone = len(deleted.keys() & tracker.announced)

        # the backlog: every surviving new port up, every deleted one withdrawn
        survivors = {lport(i) for i in live} & created
        settled = await tracker.wait_for(
            lambda: survivors <= tracker.up.keys() and not (deleted.keys() & tracker.announced),
            SETTLE,
        )
        settle_s = time.perf_counter() - t_end
        leftovers = await system.store.read_prefix(port_status(""))
        stale = {
            name: value
            for key, value in leftovers.values.items()
            if (name := key.removeprefix(port_status(""))) in deleted
        }
        rss = max(peak_rss_mib(p) for p in pids)
    finally:
        await tracker.close()

    up_lag = [tracker.up[n] - started[n] for n in created if n in tracker.up]
    for wave in waves:  # the slowest port of each wave, for the detail in the JSON
        lags = [
            tracker.up[n] - started[n]
            for n in created
            if n in tracker.up and started[n] - t_start == wave["start_s"]
        ]
        wave["max_up_lag_s"] = max(lags, default=None)
    never_up = sorted(created - tracker.up.keys())
    announced_deleted = [n for n in deleted if n in tracker.gone or n in tracker.announced]
    gone_lag = [tracker.gone[n] - deleted[n] for n in deleted if n in tracker.gone]
    gone_after_unplug = [tracker.gone[n] - unplugged[n] for n in deleted if n in tracker.gone]
    still_announced = sorted(deleted.keys() & tracker.announced)
    achieved = changes / elapsed
    checks.check(
        f"{label}: every created port up within {SETTLE:g} s after the last wave",
        not never_up and settled,
        f"{len(never_up)} of {len(created)} never up: {never_up[:10]}",
    )
    checks.check(
        f"{label}: every deleted port withdrawn (netports key gone)",
        not still_announced,
        f"still announced: {still_announced[:10]}",
    )
    checks.check(
        f"{label}: no deleted port's status left but 'down'",
        all(value.get("state") == "down" for value in stale.values()),
        f"{len(stale)} statuses left: {dict(list(stale.items())[:3])}",
    )
    checks.check(
        f"{label}: achieved rate >= 90% of {rate}/s",
        achieved >= 0.9 * rate,
        f"{achieved:.1f} changes/s ({changes} in {elapsed:.1f} s)",
    )

    def wave_stat(field: str) -> dict[str, float]:
        values = [wave[field] for wave in waves]
        return {"p50": percentile(values, 0.5), "max": max(values)}

    return {
        "system": system.name,
        "base": base,
        "seconds": seconds,
        "rate": rate,
        "per_wave": per_wave,
        "waves": len(waves),
        "changes": changes,
        "elapsed_s": elapsed,
        "achieved_per_s": achieved,
        "created": len(created),
        "deleted": len(deleted),
        "up_lag_s": summary(up_lag),
        "gone_lag_s": summary(gone_lag),
        "gone_after_unplug_s": summary(gone_after_unplug),
        "announced_deleted": len(announced_deleted),
        "deleted_before_up": len((deleted.keys() & created) - up_before_delete),
        "backlog_at_end": backlog,
        "withdrawals_pending_at_end": pending_gone,
        "settle_s": settle_s,
        "stale_status": len(stale),
        "stale_status_sample": dict(list(stale.items())[:5]),
        "never_up": never_up[:20],
        "controller_cpu_s": cpu,
        "controller_cpu_pct": 100 * cpu / elapsed,
        "controller_peak_rss_mib": rss,
        "vswitchd_cpu_s": vswitchd_cpu,
        "vswitchd_cpu_pct": 100 * vswitchd_cpu / elapsed,
        "wave": {
            f: wave_stat(f) for f in ("create_s", "plug_s", "unplug_s", "delete_s", "total_s")
        },
        "waves_detail": waves,
    }


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def print_table(r: dict[str, Any]) -> None:
    w = r["wave"]
    rows = [
        (
            "requested changes/s",
            f"{r['rate']} ({r['per_wave']} creates + {r['per_wave']} deletes a wave)",
        ),
        (
            "achieved changes/s",
            f"{r['achieved_per_s']:.1f} ({r['changes']} in {r['elapsed_s']:.1f} s)",
        ),
        ("ports created / deleted", f"{r['created']} / {r['deleted']}"),
        (
            "up lag p50 / p99 / max ms",
            " / ".join(ms(r["up_lag_s"][k]) for k in ("p50", "p99", "max")),
        ),
        (
            "gone lag p50 / p99 / max ms",
            " / ".join(ms(r["gone_lag_s"][k]) for k in ("p50", "p99", "max")),
        ),
        (
            "gone after unplug p50/p99 ms",
            " / ".join(ms(r["gone_after_unplug_s"][k]) for k in ("p50", "p99")),
        ),
        (
            "backlog at the end",
            f"{r['backlog_at_end']} not up, {r['withdrawals_pending_at_end']} not withdrawn",
        ),
        ("backlog cleared in ms", ms(r["settle_s"])),
        ("never up", str(len(r["never_up"]))),
        ("wave create ms p50 / max", f"{ms(w['create_s']['p50'])} / {ms(w['create_s']['max'])}"),
        ("wave plug ms p50 / max", f"{ms(w['plug_s']['p50'])} / {ms(w['plug_s']['max'])}"),
        ("wave unplug ms p50 / max", f"{ms(w['unplug_s']['p50'])} / {ms(w['unplug_s']['max'])}"),
        ("wave delete ms p50 / max", f"{ms(w['delete_s']['p50'])} / {ms(w['delete_s']['max'])}"),
        ("wave total ms p50 / max", f"{ms(w['total_s']['p50'])} / {ms(w['total_s']['max'])}"),
        (
            "controller CPU",
            f"{r['controller_cpu_s']:.1f} s = {r['controller_cpu_pct']:.1f}% of a core",
        ),
        ("controller peak RSS MiB", f"{r['controller_peak_rss_mib']:.1f}"),
        ("vswitchd CPU", f"{r['vswitchd_cpu_s']:.1f} s = {r['vswitchd_cpu_pct']:.1f}% of a core"),
        ("stale 'down' statuses", f"{r['stale_status']} of {r['deleted']} deleted ports"),
    ]
    print(f"\nvlcp churn: {r['base']} ports, {r['seconds']} s, 1 server")
    for label, value in rows:
        print(f"{label:<28} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=1000, help="ports kept on the server")
    parser.add_argument("--seconds", type=int, default=60, help="waves, one a second")
    parser.add_argument("--rate", type=int, default=100, help="changes/s (create+plug = 1)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.rate < 2 or args.seconds < 1 or args.base < 1:
        parser.error("--rate at least 2, --seconds and --base at least 1")
    if args.base + args.seconds * (args.rate // 2) > 60000:
        parser.error("at most 60000 ports in all (one /16 subnet)")
    # run_in_labs' options: one size (the base), one server, vlcp
    args.sizes, args.servers, args.systems = [args.base], [1], [Vlcp]

    async def measure(system: Any, n: int, checks: Checks) -> dict[str, Any]:
        return await measure_churn(system, n, checks, args.seconds, args.rate)

    results, checks = run_in_labs(parser, args, "churn", "ch", measure)
    print_table(results[0])
    finish(args, results, checks, seconds=args.seconds, rate=args.rate)


if __name__ == "__main__":
    main()
