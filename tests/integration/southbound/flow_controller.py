"""A minimal controller process for restart tests: it owns one bridge's flows.

    python -m tests.integration.southbound.flow_controller TARGET DPID PORT1 PORT2 \
        [--filler N] [--variant V]

TARGET is the bridge's listening socket (``unix:<rundir>/<bridge>.mgmt``), dialled by the
controller and dialled again at once whenever the connection drops.

Desired flows: table 0 forwards between PORT1 and PORT2 (ARP and IP), and N filler flows in
table 1 (reg0=i -> output i), of which the first V point elsewhere, so a different
--variant changes exactly V flows. Each time the switch is reconciled it prints
``synced added=A deleted=D`` (what that reconnection cost in flow-mods).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from vlcp.southbound.flow_manager import FlowManager
from vlcp.southbound.openflow.flow import Flow, output
from vlcp.southbound.openflow.server import OpenFlowServer, Switch
from vlcp.southbound.reconciler import Plan, Reconciler


def desired_flows(port1: int, port2: int, filler: int, variant: int) -> list[Flow]:
    flows = [
        Flow.make(0, 100, {"in_port": port1}, [output(port2)]),
        Flow.make(0, 100, {"in_port": port2}, [output(port1)]),
    ]
    flows += [
        Flow.make(1, 10, {"reg0": i}, [output(1000 + i + (1 if i < variant else 0))])
        for i in range(filler)
    ]
    return flows


async def main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    flows = desired_flows(args.port1, args.port2, args.filler, args.variant)

    def synced(switch: Switch, reconciler: Reconciler, plan: Plan) -> None:
        print(f"synced added={len(plan.adds)} deleted={len(plan.deletes)}", flush=True)

    async with OpenFlowServer() as server:
        manager = FlowManager(server, on_synced=synced)
        manager.reconciler(args.dpid).set_flows("test", flows)
        manager.reconciler(args.dpid).desired_complete()
        tasks = [asyncio.create_task(manager.run()), asyncio.create_task(manager.dial(args.target))]
        print("started", flush=True)
        await stop.wait()
        for task in tasks:
            task.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("dpid", type=lambda v: int(v, 16))
    parser.add_argument("port1", type=int)
    parser.add_argument("port2", type=int)
    parser.add_argument("--filler", type=int, default=0)
    parser.add_argument("--variant", type=int, default=0)
    asyncio.run(main(parser.parse_args()))
