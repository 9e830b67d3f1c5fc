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
import subprocess
from pathlib import Path

import pytest

from tests.lab.marks import needs_ovs_lab
from tests.lab.vlcp_processes import VLCP
from tests.lab.waiting import eventually
from vlcp.layout import chassis_key, netports_key, port_status

from .conftest import Cloud
from .converged import wait_like_fresh_controllers
from .failures import (
    ACROSS,
    AMONG_OTHERS,
    DOWN,
    FAILED,
    OTHERS,
    SESSION_TTL,
    assert_undisturbed,
    holdings,
    observe,
    recovered,
    serves_a_new_port,
)
from .failures import session_ttl as session_ttl  # the short ttl these tests need

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
]


async def liveness_gone(cloud: Cloud, server: str) -> None:
    """Wait until the store dropped `server`'s liveness keys: its session ended or expired."""
    keys = [f"servers/{server}", chassis_key(server)]

    async def gone() -> bool:
        return not (await cloud.store.read(keys)).values

    await eventually(gone, 10 * SESSION_TTL, what=f"the store to drop {keys}")


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
    assert_undisturbed(seen, pairs, await holdings(cloud, cloud.servers))
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
    assert_undisturbed(seen, AMONG_OTHERS, await holdings(cloud, OTHERS))
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
    assert_undisturbed(seen, AMONG_OTHERS, after)
    await recovered(cloud, [cloud.servers[s] for s in OTHERS])
