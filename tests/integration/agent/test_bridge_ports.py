"""`BridgePorts`, kept from the monitor's change sets, equals `bridge_ports` from scratch.

Against a real ovsdb-server and vswitchd (which numbers the ports): seeded random
sequences of what operators and plugins do with ovs-vsctl (plug, unplug, move a port to
another bridge, rename its iface-id, several ports in one transaction) on two bridges.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Hypervisor
from vlcp.agent.binding import BridgePorts, bridge_ports, date_bindings
from vlcp.southbound.ovsdb.cache import ChangeSet
from vlcp.southbound.ovsdb.client import OvsdbClient
from vlcp.southbound.ovsdb.monitor import Monitor
from vlcp.southbound.ovsdb.vswitch import BINDING_TABLES, DB

pytestmark = [
    pytest.mark.root,
    needs_ovs_lab,
]

BRIDGES = ("br-int", "br-other")
NAMES = [f"p{i}" for i in range(6)]


def move_row(hv: Hypervisor, rng: random.Random) -> list[str]:
    """Move an existing Port row (same rows, same ofport) to the other bridge, if any."""
    listed = {b: hv.vsctl("list-ports", b).split() for b in BRIDGES}
    candidates = [(b, p) for b, ports in listed.items() for p in ports]
    if not candidates:
        return ["show"]
    bridge, port = rng.choice(candidates)
    row = hv.vsctl("get", "Port", port, "_uuid").strip()
    (other,) = set(BRIDGES) - {bridge}
    return ["remove", "Bridge", bridge, "ports", row, "--", "add", "Bridge", other, "ports", row]


def random_command(hv: Hypervisor, rng: random.Random) -> list[str]:
    """One ovs-vsctl transaction (--if-exists keeps every one valid)."""
    name, other, bridge = rng.choice(NAMES), rng.choice(NAMES), rng.choice(BRIDGES)

    def plug(port: str, iface_id: str | None) -> list[str]:
        """(Re)plug `port` into `bridge`: out of wherever it was, in one transaction."""
        ids = [f"external_ids:iface-id={iface_id}"] if iface_id else []
        return [
            "--if-exists", "del-port", port, "--", "add-port", bridge, port,
            "--", "set", "interface", port, "type=internal", *ids,
        ]  # fmt: skip

    match rng.randrange(5):
        case 0 | 1:
            return plug(name, f"lp{rng.randrange(4)}")
        case 2:
            return ["--if-exists", "del-port", name]
        case 3:
            return move_row(hv, rng)
        case _:  # two ports at once, one of them without an iface-id
            return (
                [*plug(name, "lp0"), "--", *plug(other, None)]
                if other != name
                else plug(name, None)
            )


@pytest.mark.parametrize("seed", [1, 2])
async def test_tracked_ports_equal_the_ports_computed_from_scratch(
    hypervisor: Hypervisor, seed: int
) -> None:
    hv = hypervisor
    for bridge in BRIDGES:
        hv.vsctl("add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev")
    hv.vsctl("add-port", "br-int", "p0", "--", "set", "interface", "p0", "type=internal")
    async with OvsdbClient(hv.db_target) as client:
        monitor = await Monitor(client, DB, BINDING_TABLES).start(timeout=10)
        tracked = BridgePorts(monitor, "br-int")
        changed: set[str] = set()
        mismatches: list[str] = []

        def follow(changes: ChangeSet) -> None:  # checked after every single change set
            changed.update(tracked.update(changes))
            if tracked.ports != bridge_ports(monitor, "br-int"):
                mismatches.append(f"after {changes}")

        monitor.add_listener(follow)
        rng = random.Random(seed)
        previous = dict(tracked.ports)
        for _ in range(25):
            await asyncio.to_thread(hv.vsctl, *random_command(hv, rng))
            expected = (
                await monitor.wait_for(
                    lambda: (p := bridge_ports(monitor, "br-int")) == tracked.ports and p,
                    timeout=10,
                )
                or {}
            )
            differ = {
                n for n in previous.keys() | expected.keys() if previous.get(n) != expected.get(n)
            }
            assert differ <= changed  # every port that changed was reported
            changed.clear()
            previous = dict(expected)
        assert not mismatches, mismatches[0]
        assert previous, "the sequence should leave some ports on br-int"
        await monitor.stop()


async def test_a_binding_dated_in_memory_keeps_its_date_once_written(
    hypervisor: Hypervisor,
) -> None:
    hv = hypervisor
    hv.vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev")
    hv.plug_internal("br-int", "p0", "lp0")
    async with OvsdbClient(hv.db_target) as client:
        monitor = await Monitor(client, DB, BINDING_TABLES).start(timeout=10)
        tracked = BridgePorts(monitor, "br-int")
        monitor.add_listener(tracked.update)
        await monitor.wait_for(lambda: "p0" in tracked.ports, timeout=10)
        assert tracked.ports["p0"].bound_at is None
        (dated,) = tracked.date({"p0"}, 1234.5)
        assert dated.bound_at == tracked.ports["p0"].bound_at == 1234.5
        assert tracked.date({"p0"}, 9999.0) == []  # dated once

        await date_bindings(client, [dated])
        await monitor.wait_for(lambda: bridge_ports(monitor, "br-int") == tracked.ports, timeout=10)
        assert tracked.ports["p0"].bound_at == 1234.5  # now from OVSDB, surviving restarts

        await asyncio.to_thread(hv.vsctl, "del-port", "p0")
        await monitor.wait_for(lambda: "p0" not in tracked.ports, timeout=10)
        await asyncio.to_thread(hv.plug_internal, "br-int", "p0", "lp0")  # a new binding
        await monitor.wait_for(lambda: "p0" in tracked.ports, timeout=10)
        assert tracked.ports["p0"].bound_at is None
        await monitor.stop()
