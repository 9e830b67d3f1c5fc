"""Issue 9's failure guarantees 3, 4 and 5, proven where users feel them: on packets.

Three servers (hv0 - hv1 - hv2 on the underlay), each a private OVS with its own `vlcp run`
process, one `vlcp api`, and both tenants with a host on every server. While one server
fails, continuous pings (20 a second) run between hosts on different servers and a flow
monitor on every switch records each deletion, so "0 lost" and "no flow deleted" hold at
every moment, not only in the end state. hv2 is the one that fails: it is the end of the
underlay chain, so its loss cuts no path between the others.

3. Its controller killed (SIGKILL) or stopped (SIGTERM), and kept down well past its store
   session's life: not one ping lost to or from its hosts, no flow deleted on any switch;
   restarted, it serves a new port.
4. Its vswitchd killed: only its own hosts are cut, the others' traffic never stops, and
   when vswitchd is back the same controller process reinstalls the flows. Its whole server
   lost: the others keep delivering to its ports (a dead server is no reason to withdraw)
   until the operator runs `vlcp server forget`, after which they withdraw them.
5. After each: the store passes the model's invariant checker, and every live switch holds
   exactly the flows a fresh controller would install.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.lab.continuous_ping import ContinuousPing, PingReport
from tests.lab.flow_watch import FlowEvent, FlowWatcher
from tests.lab.ovs import Host, missing_tools
from tests.lab.vlcp_processes import VLCP
from tests.lab.waiting import eventually
from vlcp.model.keys import chassis_key, netports_key, port_status

from .conftest import BRIDGE, Cloud, Server
from .converged import check_invariants, installed_cookies, wait_like_fresh_controllers

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or bool(missing_tools()), reason="needs root and the OVS tools"
    ),
]

SESSION_TTL = 2.0
DOWN = 2.5 * SESSION_TTL
"""How long a failed controller stays down: past the moment its session is reaped."""
FAILED = "hv2"
OTHERS = ("hv0", "hv1")
ACROSS = (("a3", "a1"), ("b3", "b2"))
"""Pings between the failing server's hosts and the others' (VXLAN, VLAN)."""
AMONG_OTHERS = (("a1", "a2"), ("b1", "b2"))
"""Pings that never touch the failing server."""


@pytest.fixture
def session_ttl() -> float:
    """Short, so that outages "longer than the session" stay short too."""
    return SESSION_TTL


@dataclass
class Observation:
    """What the pings and the flow monitors saw over one failure."""

    watchers: dict[str, FlowWatcher]
    pings: dict[str, PingReport] = field(default_factory=dict)
    ended_early: list[str] = field(default_factory=list)
    """Switches whose monitor stopped before the end (so it did not see everything)."""
    marks: dict[str, int] = field(default_factory=dict)

    def lost(self, pairs: Iterable[tuple[str, str]]) -> list[str]:
        """The reports of `pairs` that lost anything."""
        return [str(self.pings[label(p)]) for p in pairs if self.pings[label(p)].lost]

    def mark(self) -> None:
        """A change is made from now on: it may delete flows that are no longer wanted."""
        self.marks = {s: len(w.events()) for s, w in self.watchers.items()}

    def unexpected_deletions(self, holds: dict[str, set[int]]) -> dict[str, list[FlowEvent]]:
        """Deletions before the mark, and after it those of a flow the switch holds again
        in the end (`holds`: its cookies): a flush, even a brief one, shows up here."""
        found = {}
        for server, watcher in self.watchers.items():
            events = watcher.events()
            mark = self.marks.get(server, len(events))
            bad = [e for e in events[:mark] if e.event == "DELETED"]
            bad += [e for e in events[mark:] if e.event == "DELETED" and e.cookie in holds[server]]
            if bad:
                found[server] = bad
        return found


def label(pair: tuple[str, str]) -> str:
    return f"{pair[0]}-{pair[1]}"


@asynccontextmanager
async def observe(
    cloud: Cloud,
    hosts: dict[str, Host],
    pairs: Iterable[tuple[str, str]],
    switches: Iterable[str],
    directory: Path,
) -> AsyncIterator[Observation]:
    """Continuous pings over `pairs` and flow monitors on `switches` for the block's span."""
    watchers: dict[str, FlowWatcher] = {}
    observation = Observation(watchers)
    pings: dict[str, ContinuousPing] = {}
    try:
        for server in switches:
            watchers[server] = FlowWatcher(
                cloud.servers[server].hv, BRIDGE, directory, label=server
            )
            watchers[server].start()
        for pair in pairs:
            src, dst = (hosts[name] for name in pair)
            works = await asyncio.to_thread(src.ping_ok, dst.ip, deadline=10)
            assert works, f"{label(pair)} does not work to begin with"
            pings[label(pair)] = ContinuousPing(src, dst.ip, directory, label=label(pair))
            pings[label(pair)].start()
        yield observation
    finally:
        observation.ended_early = [s for s, w in watchers.items() if not w.running]
        for ping in pings.values():  # all stop sending at once, then each drains
            ping.terminate()
        for watcher in watchers.values():
            watcher.stop()
        for name, ping in pings.items():
            observation.pings[name] = await asyncio.to_thread(ping.stop)


async def holdings(cloud: Cloud, servers: Iterable[str]) -> dict[str, set[int]]:
    """The cookies each of `servers`' switches holds now."""
    return {s: await installed_cookies(cloud.servers[s]) for s in servers}


async def liveness_gone(cloud: Cloud, server: str) -> None:
    """Wait until the store dropped `server`'s liveness keys: its session ended or expired."""
    keys = [f"servers/{server}", chassis_key(server)]

    async def gone() -> bool:
        return not (await cloud.store.read(keys)).values

    await eventually(gone, 10 * SESSION_TTL, what=f"the store to drop {keys}")


async def serves_a_new_port(cloud: Cloud, server: str, hosts: dict[str, Host]) -> None:
    """A port created now on `server` comes up and answers a host on another server."""
    mac, ip = "02:00:00:00:00:04", "10.0.0.4"
    body = {"id": "a4", "logicalnetwork": "net-a", "subnet": "sub-a", "mac_address": mac}
    await cloud.api.create("logical-ports", {**body, "ip_address": ip})
    cloud.host(server, f"{ip}/24", mac=mac, port="a4")
    await cloud.api.wait_port_up("a4")
    assert await asyncio.to_thread(hosts["a1"].ping_ok, ip, deadline=10)


async def recovered(cloud: Cloud, servers: Iterable[Server]) -> None:
    """Guarantee 5: nothing half-done in the store, every switch as a fresh start makes it."""
    await wait_like_fresh_controllers(cloud.store, list(servers))
    await check_invariants(cloud.store)


@pytest.mark.parametrize("crash", [True, False], ids=["sigkill", "sigterm"])
async def test_a_controller_down_past_its_session_loses_no_packet_and_deletes_no_flow(
    tenants, crash: bool, tmp_path: Path
) -> None:
    cloud, hosts = tenants
    failed = cloud.servers[FAILED]
    pairs = (*ACROSS, *AMONG_OTHERS)
    async with observe(cloud, hosts, pairs, cloud.servers, tmp_path) as seen:
        loop = asyncio.get_running_loop()
        back = loop.time() + DOWN
        if crash:
            failed.controller.kill()
        else:
            assert failed.controller.stop() == 0, failed.controller.log_tail()
        await liveness_gone(cloud, FAILED)
        await asyncio.sleep(max(0.0, back - loop.time()))  # the outage under test
        failed.controller.start()
        await failed.controller.ready(cloud.store)
        seen.mark()
        await serves_a_new_port(cloud, FAILED, hosts)
    assert seen.lost(pairs) == []
    assert seen.ended_early == []
    assert seen.unexpected_deletions(await holdings(cloud, cloud.servers)) == {}
    await recovered(cloud, cloud.servers.values())


async def test_an_ovs_crash_cuts_only_its_server_and_heals_without_a_restart(
    tenants, tmp_path: Path
) -> None:
    cloud, hosts = tenants
    failed = cloud.servers[FAILED]
    controller_pid = failed.controller.pid
    async with observe(cloud, hosts, AMONG_OTHERS, OTHERS, tmp_path) as seen:
        await asyncio.to_thread(failed.hv.kill_vswitchd)
        for src, dst in ACROSS:  # its hosts are cut off
            assert not await asyncio.to_thread(hosts[src].ping_ok, hosts[dst].ip, deadline=1)
        await asyncio.to_thread(failed.hv.start_vswitchd)
        for src, dst in ACROSS:  # and talk again, through the flows put back
            assert await asyncio.to_thread(hosts[src].ping_ok, hosts[dst].ip, deadline=10)
    assert seen.lost(AMONG_OTHERS) == []
    assert seen.ended_early == []
    assert seen.unexpected_deletions(await holdings(cloud, OTHERS)) == {}
    failed.controller.assert_running()
    assert failed.controller.pid == controller_pid, "the controller was restarted"
    await recovered(cloud, cloud.servers.values())


async def test_a_lost_server_keeps_its_ports_announced_until_it_is_forgotten(
    tenants, tmp_path: Path
) -> None:
    cloud, hosts = tenants
    failed = cloud.servers[FAILED]
    before = await holdings(cloud, OTHERS)
    announced = [netports_key("net-a", "a3"), port_status("a3")]
    async with observe(cloud, hosts, AMONG_OTHERS, OTHERS, tmp_path) as seen:
        failed.controller.kill()
        await asyncio.to_thread(failed.hv.kill)
        await liveness_gone(cloud, FAILED)
        await asyncio.sleep(SESSION_TTL)  # the server stays lost a while longer
        # nothing withdrawn: the others still deliver to the lost server's ports
        assert await holdings(cloud, OTHERS) == before
        assert len((await cloud.store.read(announced)).values) == 2
        seen.mark()
        forget = await asyncio.to_thread(
            subprocess.run,
            [*VLCP, "--store", cloud.store_url, "server", "forget", FAILED],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert forget.returncode == 0, forget.stderr
        await wait_like_fresh_controllers(cloud.store, [cloud.servers[s] for s in OTHERS])
    assert (await cloud.store.read(announced)).values == {}
    after = await holdings(cloud, OTHERS)
    assert all(before[s] - after[s] for s in OTHERS), f"the others kept all of {FAILED}'s flows"
    assert seen.lost(AMONG_OTHERS) == []
    assert seen.ended_early == []
    assert seen.unexpected_deletions(after) == {}
    await recovered(cloud, [cloud.servers[s] for s in OTHERS])
