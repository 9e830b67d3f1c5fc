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
3. The example third-party module `macdrop` (examples/vlcp-macdrop), installed beside
   vlcp (its `.dist-info` on the controllers' path) but not loaded: loaded on the running
   cluster (`vlcp module load`), it sends a VIF's LLDP frames to its packet-in handler,
   which counts them; configured (`vlcp module configure`) to drop a3's MAC, a3's frames
   meet its drop flow and reach no one, while a1's pass; unloaded, a3's frames pass again
   and the switches hold exactly the flows they held before it came. Pings unaffected, no
   other flow deleted at any moment.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from tests.examples import import_example, installed_example
from tests.lab.frames import lldp
from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Host
from tests.lab.vlcp_processes import VLCP
from tests.lab.waiting import eventually
from vlcp.pipeline import Catalog
from vlcp.pipeline.builtin import BUILTIN, PIPELINE

from .conftest import BRIDGE, Cloud
from .converged import installed_flows, wait_like_fresh_controllers
from .failures import assert_undisturbed, holdings, observe
from .modules import applied
from .tenants import IP3, MAC3, plug_tenants

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
COUNTED_TWICE = re.compile(r"vlcp_macdrop: LLDP from port a1 \(.*; 2 from this port$", re.MULTILINE)
"""macdrop's handler logging the second LLDP frame it counted from a1."""


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


@pytest.fixture
async def with_macdrop(cloud_factory, tmp_path: Path) -> tuple[Cloud, dict[str, Host]]:
    """`cluster`, with the example package `vlcp-macdrop` installed on every server (as
    pip would leave it, on the controllers' path) and a3 on hv0 too (the MAC to drop)."""
    site = installed_example("vlcp-macdrop", tmp_path / "site")
    cloud = await cloud_factory(SERVERS, pythonpath=site)
    hosts = await plug_tenants(cloud, SERVERS)
    hosts["a3"] = cloud.host("hv0", f"{IP3}/24", mac=MAC3, port="a3")
    await cloud.api.wait_port_up("a3", timeout=30)
    assert await asyncio.to_thread(hosts["a3"].ping_ok, hosts["a2"].ip, deadline=10)
    await applied(cloud, lambda r: "macdrop" in r["known"] and "macdrop" not in r["loaded"])
    return cloud, hosts


def marked(src: str) -> tuple[Packet, bytes]:
    """A broadcast from `src` carrying a random marker, and the marker."""
    marker = os.urandom(8)
    return Ether(src=src, dst=BROADCAST, type=EXPERIMENTAL) / Raw(marker), marker


async def arrives(sender: Host, receiver: Host) -> None:
    """A broadcast from `sender` reaches `receiver` (hv0 -> hv1)."""
    capture = receiver.capture(f"ether proto {EXPERIMENTAL:#x}")
    frame, marker = marked(sender.mac)
    try:
        await asyncio.to_thread(sender.send, frame)
        await asyncio.to_thread(capture.wait_for, lambda p: marker in bytes(p), timeout=10)
    finally:
        capture.stop()


def macdrop_drop() -> tuple[int, int]:
    """The table id and priority of macdrop's drops where the example is installed (the
    catalog numbers every known module's tables, loaded or not)."""
    macdrop = import_example("vlcp-macdrop", "vlcp_macdrop")
    table = Catalog([*BUILTIN, macdrop.MODULE]).pipeline[macdrop.MACDROP.name].id
    return table, macdrop.PRIO_DROP


async def dropped(cloud: Cloud, hosts: dict[str, Host], sender: str, control: str) -> None:
    """A broadcast from `sender` (on hv0) meets macdrop's drop flow for its MAC and reaches
    no one at a2 (hv1), while one from `control` sent after it does."""
    hv, a2 = cloud.servers["hv0"].hv, hosts["a2"]
    table, priority = macdrop_drop()
    drop = re.compile(rf"n_packets=(\d+),.* priority={priority},dl_src={hosts[sender].mac} ")
    capture = a2.capture(f"ether proto {EXPERIMENTAL:#x}")
    (frame, marker), (after, control_marker) = marked(hosts[sender].mac), marked(hosts[control].mac)

    async def drops() -> int | None:
        lines = await asyncio.to_thread(hv.dump_flows, BRIDGE, table=table, stats=True)
        counts = [int(m[1]) for line in lines if (m := drop.search(line))]
        return counts[0] if counts else None

    counted = await drops()
    assert counted is not None, f"no drop flow for {sender} in macdrop's table {table}"
    try:
        await asyncio.to_thread(hosts[sender].send, frame)
        await asyncio.to_thread(hosts[control].send, after)

        async def met() -> bool:
            return (await drops() or 0) > counted

        await eventually(met, 10, what=f"{sender}'s frame to meet macdrop's drop flow")
        await asyncio.to_thread(capture.wait_for, lambda p: control_marker in bytes(p))
    finally:
        leaked = [p for p in capture.stop() if marker in bytes(p)]
    assert leaked == [], f"{sender}'s frame reached a2"


async def test_a_third_party_module_is_loaded_used_and_unloaded_on_a_live_cluster(
    with_macdrop, tmp_path: Path
) -> None:
    cloud, hosts = with_macdrop
    a1, a2, a3 = hosts["a1"], hosts["a2"], hosts["a3"]
    log = cloud.servers["hv0"].controller.log
    await arrives(a3, a2)
    async with observe(cloud, hosts, PAIRS, SERVERS, tmp_path, interval=FAST) as seen:
        before = {s: await installed_flows(cloud.servers[s]) for s in SERVERS}

        await vlcp_module(cloud, "load", "macdrop")
        await applied(cloud, lambda r: "macdrop" in r["loaded"])
        for s in SERVERS:  # its flows come, every other one stays
            assert (await installed_flows(cloud.servers[s])).items() > before[s].items(), s
        await asyncio.to_thread(a1.send, lldp(a1.mac), lldp(a1.mac))

        async def counted() -> bool:  # the handler logs each frame with its port's count
            return COUNTED_TWICE.search(log.read_text()) is not None

        await eventually(counted, 10, what="a1's LLDP frames counted by macdrop's handler")
        await arrives(a3, a2)  # nothing dropped by default

        settings = {"macs": [a3.mac.upper()]}
        await vlcp_module(cloud, "configure", "macdrop", "--settings", json.dumps(settings))
        await applied(cloud, lambda r: r["settings"].get("macdrop") == {"macs": [a3.mac]})
        await dropped(cloud, hosts, "a3", "a1")

        seen.mark()  # from now on its flows may go
        await cloud.api.change_modules("unload", ["macdrop"])
        await applied(cloud, lambda r: "macdrop" not in r["loaded"])
        for s in SERVERS:
            assert await installed_flows(cloud.servers[s]) == before[s], s
        await arrives(a3, a2)
    assert_undisturbed(seen, PAIRS, await holdings(cloud, SERVERS))
