"""The scale benchmark's lightweight switch against a real `vlcp run` agent, so that the
benchmark's simulated servers cannot drift from what the agent needs of a switch: its
flows arrive (in bundles, decoded by the real codec), barriers are answered, the flows
it holds are read back, and a restarted agent finds them there and sends nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.ofswitch import FakeSwitches, to_mac
from bench.scale import RECONCILED
from bench.simserver import SimPort, SimServer
from tests.lab.marks import needs_ovs_lab
from tests.lab.waiting import eventually
from vlcp.lab.netns import cleanup_all
from vlcp.model.service import Model
from vlcp.store import open_store

pytestmark = [needs_ovs_lab, pytest.mark.root]

WAIT = 30.0


async def test_an_agent_installs_its_flows_on_the_lightweight_switch(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/state.db"
    store = await open_store(url)
    switches = FakeSwitches()
    first = SimPort("p1", "net1", "02:00:00:00:00:01")
    second = SimPort("p2", "net1", "02:00:00:00:00:02")
    server = SimServer(0, tmp_path, url, session_ttl=5.0)
    try:
        model = Model(store)
        await model.create(
            "physical-networks", {"id": "vx", "type": "vxlan", "vnirange": [[1, 99]]}
        )
        await model.create("logical-networks", {"id": "net1", "physicalnetwork": "vx"})
        for port in (first, second):
            body = {"id": port.id, "logicalnetwork": port.network, "mac_address": port.mac}
            await model.create("logical-ports", body)
        await server.start(switches, [first])
        bridge = server.bridge
        assert bridge is not None and server.agent is not None
        installed = bridge.installed(to_mac(first.mac))
        server.agent.start()
        async with asyncio.timeout(WAIT):
            await installed
        assert bridge.barriers > 0
        assert {"eth_dst": first.mac} in [
            {k: v for k, v in m.items() if k == "eth_dst"} for m in bridge.matches()
        ]

        plugged: asyncio.Future[float] = bridge.installed(to_mac(second.mac))
        await server.plug(second)
        async with asyncio.timeout(WAIT):
            await plugged

        async def idle() -> bool:  # the agent is done: both ports announced up
            keys = [f"lport-status/{p.id}" for p in (first, second)]
            statuses = (await store.read(keys)).values
            return all((statuses.get(k) or {}).get("state") == "up" for k in keys)

        await eventually(idle, WAIT, what="both ports up")
        held, mods = len(bridge.flows), bridge.flow_mods
        server.agent.kill()
        since = server.agent.log.stat().st_size
        server.agent.start()

        async def reconciled() -> bool:  # it read the flows back, and logged the diff
            server.agent.assert_running()
            return RECONCILED.search(server.agent.log.read_text()[since:]) is not None

        await eventually(reconciled, WAIT, what="the restarted agent to reconcile")
        assert bridge.connections == 2
        found = RECONCILED.search(server.agent.log.read_text()[since:])
        assert found is not None and found.groups() == ("0", "0")
        assert (len(bridge.flows), bridge.flow_mods) == (held, mods)
    finally:
        server.stop()
        await switches.close()
        await store.close()
        cleanup_all()
