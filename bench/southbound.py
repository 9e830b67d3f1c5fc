"""Southbound benchmark: flow-mods/s into a real OVS, reconcile after a restart, codec rates.

    make bench-southbound                # 10,000 flows; needs root (a private OVS)
    .venv/bin/python bench/southbound.py --flows 2000

One private Open vSwitch (the test lab's `Hypervisor`: its own ovsdb-server and a
userspace-datapath vswitchd in a network namespace, removed at the end) and, in one run:

1. install N flows into an empty `fail_mode=secure` bridge, as one bundle and (on a second
   bridge) as plain flow-mods closed by a barrier, timed until the commit/barrier reply;
2. controller restarts against the bundle bridge: a fresh connection and `Reconciler`
   with the same N flows (must send nothing), then with 1% of them different (must send
   exactly that 1% as adds plus the old cookies' deletes);
3. codec rates in this process: Flow -> flow-mod bytes with new and with cached parts,
   and decoding the flow-stats reply captured from the switch in step 1.

After each switch step `ovs-ofctl dump-flows` must show exactly the desired cookies;
any failed check makes the command exit non-zero. Prints a table and writes
bench/results/southbound.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Checks, write_results
from tests.lab.ovs import Hypervisor, missing_tools
from vlcp.southbound.openflow.codec import codec_for
from vlcp.southbound.openflow.flow import Flow, output
from vlcp.southbound.openflow.messages import FlowMod, InstalledFlow
from vlcp.southbound.openflow.server import OpenFlowServer, Switch
from vlcp.southbound.openflow.wire import OFP13, OFP14
from vlcp.southbound.reconciler import Reconciler

RESULTS = Path(__file__).parent / "results" / "southbound.json"
TIMEOUT = 120.0
"""Seconds any one switch request may take: generous, so a slow machine measures slowly
instead of failing, yet a wedged switch still ends the run well inside the hour."""
CACHED_PASSES = 5
DECODE_PASSES = 3
"""Repeats of the cheap in-process measurements, so each runs long enough to time."""


# ---------------------------------------------------------------- the flows


def bench_flow(i: int, changed: bool = False) -> Flow:
    """Flow `i`: an L2 forwarding entry (network register + destination MAC -> port),
    the most numerous kind a vlcp bridge holds. `changed` moves it to another port: a new
    cookie for the same match and priority, as when a logical port migrates."""
    mac = "02:00:{:02x}:{:02x}:{:02x}:{:02x}".format(*i.to_bytes(4, "big"))
    port = 1 + i % 1000 + (1000 if changed else 0)
    return Flow.make(10, 100, {"reg4": 1 + i // 1000, "eth_dst": mac}, [output(port)])


def flow_table(n: int, *, changed: int = 0, first: int = 0) -> list[Flow]:
    """Flows `first` .. `first + n - 1`, of which the first `changed` are changed."""
    return [bench_flow(first + i, i < changed) for i in range(n)]


# ---------------------------------------------------------------- the switch side


def ovs_cookies(hv: Hypervisor, bridge: str) -> Counter[int]:
    """The cookies OVS itself reports (ovs-ofctl, not our codec): the independent check."""
    cookies: Counter[int] = Counter()
    for line in hv.dump_flows(bridge):
        found = re.search(r"cookie=0x([0-9a-f]+)", line)
        cookies[int(found[1], 16) if found else 0] += 1
    return cookies


def check_table(checks: Checks, step: str, hv: Hypervisor, bridge: str, flows: list[Flow]) -> int:
    """OVS holds exactly `flows` (each cookie once, nothing else); returns its flow count."""
    cookies = ovs_cookies(hv, bridge)
    total = sum(cookies.values())
    checks.equal(f"{step}: OVS flow count", total, len(flows))
    wrong = cookies.keys() ^ {f.cookie for f in flows}
    checks.check(
        f"{step}: OVS holds exactly the desired cookies",
        not wrong and max(cookies.values(), default=1) == 1,
        f"{len(wrong)} cookies missing or extra",
    )
    return total


async def connect(hv: Hypervisor, bridge: str, server: OpenFlowServer) -> Switch:
    """Dial the bridge's management socket, as `FlowManager.dial` does."""
    return await asyncio.wait_for(server.connect(hv.mgmt_target(bridge)), TIMEOUT)


async def install(
    hv: Hypervisor, bridge: str, flows: list[Flow], atomic: bool
) -> tuple[dict[str, Any], list[bytes], int]:
    """Time `send_flow_mods` of every flow, until the commit or barrier reply.

    The flows' bytes are put in the codec's cache first (so both variants pay the same,
    and cold encoding is measured on its own in step 3): this times the controller's send
    path and OVS. Returns the result, the raw flow-stats reply read back afterwards, and
    the OpenFlow version negotiated.
    """
    async with OpenFlowServer(request_timeout=TIMEOUT) as server:
        switch = await connect(hv, bridge, server)
        for flow in flows:
            switch.codec.add_flow(flow)
        mods = [FlowMod.add(flow) for flow in flows]
        started = time.perf_counter()
        await switch.send_flow_mods(mods, atomic=atomic)
        seconds = time.perf_counter() - started
        replies = await switch.multipart(switch.codec.flow_stats_request())
        result = {
            "flows": len(flows),
            "seconds": seconds,
            "flow_mods_per_s": len(flows) / seconds,
            "flow_mods_sent": len(mods),
        }
        return result, [bytes(reply.buf) for reply in replies], switch.codec.version


class TimedSwitch:
    """The reconciler's `FlowTarget` on a switch, timing read-back and apply apart, so
    what `attach` costs splits into reading the table, diffing it and sending mods."""

    def __init__(self, switch: Switch) -> None:
        self.switch = switch
        self.read_s = self.apply_s = 0.0

    async def read_flows(self) -> list[InstalledFlow]:
        started = time.perf_counter()
        try:
            return await self.switch.read_flows()
        finally:
            self.read_s += time.perf_counter() - started

    async def apply(self, adds: list[Flow], deletes: Sequence[Flow | InstalledFlow]) -> None:
        started = time.perf_counter()
        try:
            await self.switch.apply(adds, deletes)
        finally:
            self.apply_s += time.perf_counter() - started


async def restart(hv: Hypervisor, bridge: str, flows: list[Flow]) -> dict[str, Any]:
    """A controller restart: a new loop, connection and `Reconciler` wanting `flows`,
    attached to the switch that still holds what the last controller installed."""
    async with OpenFlowServer(request_timeout=TIMEOUT) as server:
        switch = await connect(hv, bridge, server)
        reconciler = Reconciler(bridge)
        reconciler.set_flows("bench", flows)
        reconciler.desired_complete()
        target = TimedSwitch(switch)
        started = time.perf_counter()
        plan = await reconciler.attach(target)
        seconds = time.perf_counter() - started
    return {
        "flows": len(flows),
        "seconds": seconds,
        "read_s": target.read_s,
        "diff_s": seconds - target.read_s - target.apply_s,
        "apply_s": target.apply_s,
        "adds": len(plan.adds),
        "deletes": len(plan.deletes),
        "flow_mods_sent": reconciler.flow_mods_sent,
    }


# ---------------------------------------------------------------- the codec


def encode_rates(checks: Checks, version: int, n: int) -> dict[str, Any]:
    """Flow -> flow-mod bytes: `n` never-encoded flows once (their match values and
    actions new to the codec's part caches), then the same flows again (parts cached, as
    when a controller re-sends flows or sends a port's flows like its neighbours')."""
    codec = codec_for(version)
    fresh = flow_table(n, first=1 << 24)  # far above any flow the switch steps used
    started = time.perf_counter()
    first = [codec.add_flow(flow) for flow in fresh]
    cold = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(CACHED_PASSES):
        again = [codec.add_flow(flow) for flow in fresh]
    cached = time.perf_counter() - started
    checks.equal("encode again: the same bytes", again == first, True)
    return {
        "cold": {"encodes": n, "seconds": cold, "per_s": n / cold},
        "cached": {
            "encodes": CACHED_PASSES * n,
            "seconds": cached,
            "per_s": CACHED_PASSES * n / cached,
        },
    }


def decode_rate(
    checks: Checks, version: int, replies: list[bytes], flows: list[Flow]
) -> dict[str, Any]:
    """The reply pieces the switch sent for a full flow-stats request: bytes -> os-ken
    messages -> `InstalledFlow`, all that `read_flows` does in-process once bytes arrive."""
    codec = codec_for(version)
    decoded: list[InstalledFlow] = []
    started = time.perf_counter()
    for _ in range(DECODE_PASSES):
        decoded = codec.decode_flow_stats([codec.parse(raw) for raw in replies])
    seconds = time.perf_counter() - started
    checks.equal(
        "decode: the captured reply holds the installed cookies",
        sorted(f.cookie for f in decoded),
        sorted(f.cookie for f in flows),
    )
    total = DECODE_PASSES * len(decoded)
    return {
        "flows": total,
        "reply_messages": len(replies),
        "reply_bytes": sum(map(len, replies)),
        "seconds": seconds,
        "per_s": total / seconds,
    }


# ---------------------------------------------------------------- the run


def run(hv: Hypervisor, n: int, checks: Checks) -> tuple[dict[str, Any], int]:
    """Every step on one hypervisor, with the OVS checks between them (no connection is
    open then, so the blocking ovs-ofctl calls cannot stall a switch's echo). Returns
    the results and the OpenFlow version the switch and we agreed on."""
    changed = max(1, n // 100)
    desired, variant = flow_table(n), flow_table(n, changed=changed)
    results: dict[str, Any] = {}
    replies: list[bytes] = []
    version = 0
    for name, bridge, atomic in (("bundle", "br-bundle", True), ("plain", "br-plain", False)):
        hv.add_bridge(bridge, fail_mode="secure")
        checks.equal(f"install {name}: the bridge starts empty", len(hv.dump_flows(bridge)), 0)
        result, pieces, version = asyncio.run(install(hv, bridge, desired, atomic))
        result["ovs_flows"] = check_table(checks, f"install {name}", hv, bridge, desired)
        results[f"install_{name}"] = result
        replies = replies or pieces

    same = asyncio.run(restart(hv, "br-bundle", desired))
    checks.equal("restart same: flow-mods sent", same["flow_mods_sent"], 0)
    same["ovs_flows"] = check_table(checks, "restart same", hv, "br-bundle", desired)
    results["restart_same"] = same

    diff = asyncio.run(restart(hv, "br-bundle", variant))
    checks.equal("restart 1%: adds, deletes", (diff["adds"], diff["deletes"]), (changed, changed))
    checks.equal("restart 1%: flow-mods sent", diff["flow_mods_sent"], 2 * changed)
    diff["changed"] = changed
    diff["ovs_flows"] = check_table(checks, "restart 1%", hv, "br-bundle", variant)
    results["restart_1pct"] = diff

    results["encode"] = encode_rates(checks, version, n)
    results["decode"] = decode_rate(checks, version, replies, desired)
    return results, version


def print_table(r: dict[str, Any]) -> None:
    columns = ("flows", "seconds", "flows/s", "flow-mods", "OVS flows")
    header = f"{'step':<31}" + "".join(f" {c:>9}" for c in columns)
    print(header)
    print("-" * len(header))

    def row(step: str, flows: int, seconds: float, mods: object = "-", ovs: object = "-") -> None:
        cells = (flows, f"{seconds:.3f}", f"{flows / seconds:.0f}", mods, ovs)
        print(f"{step:<31}" + "".join(f" {c!s:>9}" for c in cells))

    for name, label in (("bundle", "one bundle"), ("plain", "flow-mods + barrier")):
        i = r[f"install_{name}"]
        row(f"install: {label}", i["flows"], i["seconds"], i["flow_mods_sent"], i["ovs_flows"])
    for name, label in (("same", "same flows"), ("1pct", "1% different")):
        s = r[f"restart_{name}"]
        row(f"restart: {label}", s["flows"], s["seconds"], s["flow_mods_sent"], s["ovs_flows"])
    cold, cached, decode = r["encode"]["cold"], r["encode"]["cached"], r["decode"]
    row("encode: parts new", cold["encodes"], cold["seconds"])
    row("encode: parts cached", cached["encodes"], cached["seconds"])
    row("decode: flow-stats reply", decode["flows"], decode["seconds"])
    print()
    for name, label in (("same", "same flows"), ("1pct", "1% different")):
        s = r[f"restart_{name}"]
        print(
            f"restart, {label}: read-back {s['read_s']:.3f} s, diff {s['diff_s']:.3f} s, "
            f"apply {s['apply_s']:.3f} s (+{s['adds']} -{s['deletes']})"
        )


def ovs_version() -> str:
    out = subprocess.run(["ovs-vswitchd", "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=10_000, help="flows per bridge")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.flows < 1:
        parser.error("--flows must be at least 1")
    if os.geteuid() != 0:
        sys.exit(
            "bench/southbound.py needs root: it starts a private Open vSwitch in its own "
            "network namespace (run it as root, e.g. `sudo make bench-southbound`)"
        )
    if missing := missing_tools():
        sys.exit(f"bench/southbound.py needs the Open vSwitch tools; missing: {missing}")
    checks = Checks()
    with Hypervisor("bench") as hv:
        results, version = run(hv, args.flows, checks)
    print_table(results)
    openflow = {OFP13: "1.3", OFP14: "1.4"}.get(version, hex(version))
    extra = {"ovs": ovs_version(), "openflow": openflow, "flows": args.flows}
    extra["checks"] = checks.results
    write_results(args.output, results, **extra)
    if checks.failed:
        sys.exit("checks failed:\n  " + "\n  ".join(checks.failed))
    print(f"all {len(checks.results)} checks passed")


if __name__ == "__main__":
    main()
