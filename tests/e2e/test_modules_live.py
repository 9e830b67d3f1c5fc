"""Issue 11's modules on a live cluster, proven on packets: two servers, each a private OVS
with its own `vlcp run` process, one `vlcp api`, and a 50 pps ping between hosts on
different servers over VXLAN (a1 -> a2) and over VLAN (b1 -> b2) all along.

1. The ARP responder unloaded on every server (`vlcp module unload`, as an operator would):
   once every controller reports it done, an ARP request from a1 is no longer answered on
   its switch but crosses the underlay (a capture there shows it) to its owner a2, which
   answers; no ping lost; exactly its flows left the switches, and a flow monitor saw no
   other flow change at any moment. Loaded back (`POST /v1/modules/load`): answered on the
   switch again, nothing on the underlay, the very same flows back.
2. Every module reloaded in turn (`POST /v1/modules/reload`, each until every controller
   reports the new generation applied): no ping lost, not one flow added, modified or
   deleted (the same code compiles the same flows), and every switch holds exactly what a
   fresh controller would install.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Host
from tests.lab.vlcp_processes import VLCP
from vlcp.pipeline.builtin import BUILTIN, PIPELINE

from .conftest import Cloud
from .converged import installed_flows, wait_like_fresh_controllers
from .failures import assert_undisturbed, holdings, observe
from .modules import applied
from .tenants import plug_tenants

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
]

SERVERS = ["hv0", "hv1"]
PAIRS = (("a1", "a2"), ("b1", "b2"))
"""hv0 -> hv1, over VXLAN (tenant a) and over VLAN (tenant b)."""
FAST = 0.02
"""Seconds between pings: 50 a second."""
ARP_TABLE = PIPELINE["arp_responder"].id
BROADCAST = "ff:ff:ff:ff:ff:ff"
EXPERIMENTAL = 0x88B5
"""IEEE 802 local experimental ethertype: nothing in the namespaces sends it by itself."""


@pytest.fixture
async def cluster(cloud_factory) -> tuple[Cloud, dict[str, Host]]:
    """`SERVERS` with both tenants plugged (port n on the n-th server), every path warm."""
    cloud = await cloud_factory(SERVERS)
    hosts = await plug_tenants(cloud, SERVERS)
    await applied(cloud)  # every controller reported its modules
    return cloud, hosts


async def vlcp_module(cloud: Cloud, *args: str) -> None:
    """`vlcp module ARGS...` against the cloud's API, as an operator types it."""
    done = await asyncio.to_thread(
        subprocess.run,
        [*VLCP, "module", *args, "--api", cloud.api_process.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def own_flows(flows: dict[int, tuple[int, int]], table: int) -> set[int]:
    """The cookies of a table's flows other than its miss (priority 0, the pipeline's)."""
    return {cookie for cookie, (t, priority) in flows.items() if t == table and priority > 0}


async def arp_crosses(cloud: Cloud, asker: Host, owner: Host) -> bool:
    """`asker` broadcasts an ARP request for `owner`'s address and gets its answer; returns
    whether the request crossed the underlay (hv0 - hv1) and reached `owner`.

    The request carries a random target MAC (ignored in a request) to tell it from the
    kernel's own. A broadcast with a marker follows it on the same socket: once that is on
    the underlay and at the owner, the request would be there too, had it been forwarded.
    """
    marker = os.urandom(5)
    target = "02:" + ":".join(f"{b:02x}" for b in marker)
    link = cloud.links[0]
    underlay = link.a.capture(link.port, "udp port 4789")
    at_owner, at_asker = owner.capture("arp or ether proto 0x88b5"), asker.capture("arp")

    def request(p: Packet) -> bool:
        return p.haslayer(ARP) and p[ARP].op == 1 and p[ARP].hwdst == target

    def answer(p: Packet) -> bool:
        """`owner`'s address is at `owner`'s MAC, to `asker` (from the switch or the owner)."""
        if not p.haslayer(ARP) or p[ARP].op != 2:
            return False
        return (p[ARP].psrc, p[ARP].hwsrc, p[ARP].pdst) == (owner.ip, owner.mac, asker.ip)

    def follower(p: Packet) -> bool:
        return marker in bytes(p)

    ask = Ether(src=asker.mac, dst=BROADCAST) / ARP(
        op=1, hwsrc=asker.mac, psrc=asker.ip, hwdst=target, pdst=owner.ip
    )
    after = Ether(src=asker.mac, dst=BROADCAST, type=EXPERIMENTAL) / Raw(marker)
    await asyncio.to_thread(asker.send, ask, after)
    try:
        await asyncio.to_thread(at_asker.wait_for, answer, timeout=10)
        await asyncio.to_thread(underlay.wait_for, lambda p: p.haslayer(VXLAN) and follower(p))
        await asyncio.to_thread(at_owner.wait_for, follower)
    finally:
        crossed = [p for p in underlay.stop() if request(p)]
        reached = [p for p in at_owner.stop() if request(p)]
        at_asker.stop()
    assert bool(crossed) == bool(reached), f"on the underlay: {crossed}, at the owner: {reached}"
    return bool(crossed)


def changes_outside(seen, table: int, servers: Iterable[str]) -> dict[str, list[str]]:
    """The flow events the monitors saw in any table but `table`."""
    found = {}
    for server in servers:
        if bad := [str(e) for e in seen.watchers[server].events() if e.table != table]:
            found[server] = bad
    return found


async def test_without_the_arp_responder_requests_go_to_their_owner_and_it_comes_back(
    cluster, tmp_path: Path
) -> None:
    cloud, hosts = cluster
    a1, a2 = hosts["a1"], hosts["a2"]
    assert not await arp_crosses(cloud, a1, a2), "answered on the switch to begin with"
    async with observe(cloud, hosts, PAIRS, SERVERS, tmp_path, interval=FAST) as seen:
        before = {s: await installed_flows(cloud.servers[s]) for s in SERVERS}
        answers = {s: own_flows(before[s], ARP_TABLE) for s in SERVERS}
        assert all(answers.values()), answers

        await vlcp_module(cloud, "unload", "arp_responder")
        await applied(cloud, lambda r: "arp_responder" not in r["loaded"])
        for s in SERVERS:  # exactly the responder's flows gone, every other one the same
            after = await installed_flows(cloud.servers[s])
            assert after == {c: f for c, f in before[s].items() if c not in answers[s]}, s
        assert await arp_crosses(cloud, a1, a2), "the request was answered without its owner"

        await cloud.api.change_modules("load", ["arp_responder"])
        await applied(cloud, lambda r: "arp_responder" in r["loaded"])
        for s in SERVERS:
            assert await installed_flows(cloud.servers[s]) == before[s], s
        assert not await arp_crosses(cloud, a1, a2), "the request crossed the underlay"
    assert seen.lost(PAIRS) == []
    assert seen.ended_early == []
    assert changes_outside(seen, ARP_TABLE, SERVERS) == {}
    for s in SERVERS:  # and saw the responder's flows go and come back
        events = seen.watchers[s].events()
        gone = sorted(e.cookie for e in events if e.event == "DELETED")
        back = sorted(e.cookie for e in events if e.event == "ADDED")
        assert gone == back == sorted(answers[s]), s


async def test_reloading_every_module_in_turn_changes_no_flow_and_loses_no_packet(
    cluster, tmp_path: Path
) -> None:
    cloud, hosts = cluster
    reports = await applied(cloud)
    modules = sorted(reports[SERVERS[0]]["loaded"])
    assert modules == sorted(m.name for m in BUILTIN), modules
    async with observe(cloud, hosts, PAIRS, SERVERS, tmp_path, interval=FAST) as seen:
        for module in modules:
            wanted = await cloud.api.change_modules("reload", [module])
            generation = wanted["all"]["reload"][module]

            def reloaded(report, module=module, generation=generation) -> bool:
                return report["generations"].get(module) == generation

            await applied(cloud, reloaded, what=f"{module} reloaded (generation {generation})")
    assert_undisturbed(seen, PAIRS, await holdings(cloud, SERVERS))
    events = {s: [str(e) for e in seen.watchers[s].events()] for s in SERVERS}
    assert events == {s: [] for s in SERVERS}, "a reload of the same code changed flows"
    await wait_like_fresh_controllers(cloud.store, cloud.servers.values())
