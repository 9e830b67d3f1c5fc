"""Issue 12's "MTU that works", end to end: the MTU DHCP advertises on a VXLAN network
is what a real 1500-byte underlay carries, and not a byte more.

Two servers (`vlcp run` each, one `vlcp api`), their underlay link at 1500 bytes (the lab
builds it at 1600; the `dhcp` module's `underlay_mtu` default is 1500), tenant A's VXLAN
network with its subnet (tenant B is plugged too, unused). a1 (hv0) and a2 (hv1) get
their leases with udhcpc and apply the advertised MTU, 1450 (1500 minus the 50 bytes of
VXLAN encapsulation). Then:

1. a full-size frame at the advertised MTU crosses: ``ping -M do`` (DF, no
   fragmentation) with a 1450-byte IP packet from a1 to a2 is answered, and the underlay
   carries it encapsulated as a 1500-byte outer IP packet, exactly its MTU;
2. one 50 bytes larger would have been dropped by the underlay: with both hosts' MTU
   raised to 1500 (the advertised MTU + 50), the 1500-byte ping gets no reply, no
   encapsulated frame of that size is ever on the link, and hv0's switch reports the
   send on the underlay port failing with EMSGSIZE; raising only the underlay link's MTU
   to 1550 makes the very same ping cross, so the underlay is the limit, nothing else.

The explicit `mtu` winning over the default is proven by the DHCP unit tests
(tests/pipeline/dhcp) and, with a real client, by test_dhcp.py's tenant B (1400 on VLAN).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet

from tests.lab.dhcp import DhcpResult, Udhcpc
from tests.lab.marks import needs_dhcp_clients, needs_ovs_lab
from tests.lab.naming import unique_name
from tests.lab.ovs import Host
from vlcp.lab.netns import run

from .conftest import Cloud
from .modules import applied
from .tenants import plug_tenants

pytestmark = [pytest.mark.root, pytest.mark.slow, needs_ovs_lab, needs_dhcp_clients]

SERVERS = ["hv0", "hv1"]
UNDERLAY_MTU = 1500
"""The lab underlay as a real one: the `dhcp` module's default `underlay_mtu`."""
VXLAN_OVERHEAD = 50
"""Outer IPv4 20, UDP 8, VXLAN 8 and the inner Ethernet header 14: the outer IP packet on
the underlay is the inner IP packet plus 50."""
ICMP_IP_HEADERS = 28
"""IPv4 20 + ICMP 8: `ping -s` is the payload after them."""


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The embedded store only: the MTU is the DHCP module's answer from each view, and
    the stores are proven by every other e2e file (this one keeps under ~30 s)."""
    return f"sqlite://{tmp_path}/{unique_name('s')}.db"


def set_mtu(netns: str, dev: str, mtu: int) -> None:
    run("ip", "link", "set", "dev", dev, "mtu", str(mtu), netns=netns)


def set_underlay_mtu(cloud: Cloud, mtu: int) -> None:
    """Both ends of every underlay veth between the servers."""
    for link in cloud.links:
        for hv in (link.a, link.b):
            set_mtu(hv.netns, link.port, mtu)


@pytest.fixture
async def cluster(cloud_factory) -> tuple[Cloud, dict[str, Host]]:
    """hv0 and hv1 on a 1500-byte underlay, both tenants plugged and warm."""
    cloud = await cloud_factory(SERVERS)
    set_underlay_mtu(cloud, UNDERLAY_MTU)
    hosts = await plug_tenants(cloud, SERVERS)
    await applied(cloud)
    return cloud, hosts


def ping_df(host: Host, ip: str, ip_size: int, count: int = 3) -> int:
    """Replies to `count` echo requests of `ip_size`-byte IP packets with DF set."""
    proc = host.exec(
        "ping", "-n", "-M", "do", "-s", str(ip_size - ICMP_IP_HEADERS),
        "-c", str(count), "-i", "0.2", "-W", "1", ip,
        check=False, timeout=count * 0.2 + 10,
    )  # fmt: skip
    received = [line for line in proc.stdout.splitlines() if "packets transmitted" in line]
    assert received, proc.stdout + proc.stderr
    return int(received[0].split(",")[1].split()[0])


def echoes(packets: list[Packet]) -> list[tuple[int, int]]:
    """(outer IP length, inner IP length) of every VXLAN-encapsulated ICMP echo."""
    return [
        (p[IP].len, p[VXLAN][IP].len)
        for p in packets
        if p.haslayer(VXLAN) and p[VXLAN].haslayer(ICMP) and p[VXLAN][ICMP].type in (0, 8)
    ]


async def test_advertised_mtu_crosses_the_vxlan_underlay_and_50_bytes_more_would_not(
    cluster,
) -> None:
    cloud, hosts = cluster
    a1, a2 = hosts["a1"], hosts["a2"]
    link = cloud.links[0]  # hv0 - hv1
    hv0 = cloud.servers["hv0"].hv
    vswitchd_log = hv0.dir / "ovs-vswitchd.log"

    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(Udhcpc(h.netns)) for h in (a1, a2)]
        results: list[DhcpResult] = await asyncio.gather(
            *(asyncio.to_thread(c.acquire, 20) for c in clients)
        )
        for result in results:
            assert result.lease.mtu == UNDERLAY_MTU - VXLAN_OVERHEAD
            assert result.applied.mtu == result.lease.mtu
        advertised = results[0].lease.mtu

        # 1. a full-size frame at the advertised MTU crosses, DF set: on the underlay its
        # outer IP packet is exactly the underlay's MTU
        capture = link.a.capture(link.port)
        try:
            assert await asyncio.to_thread(ping_df, a1, a2.ip, advertised) == 3
        finally:
            crossed = echoes(capture.stop())
        full = (advertised + VXLAN_OVERHEAD, advertised)
        assert full == (UNDERLAY_MTU, advertised)
        assert crossed.count(full) == 6, crossed  # 3 requests and 3 replies

        # 2. 50 bytes more: the hosts take it (their MTU raised), the underlay does not
        larger = advertised + VXLAN_OVERHEAD
        for host in (a1, a2):
            set_mtu(host.netns, "eth0", larger)
        logged = vswitchd_log.read_text().count("Message too long")
        capture = link.a.capture(link.port)
        try:
            assert await asyncio.to_thread(ping_df, a1, a2.ip, larger) == 0
        finally:
            dropped = echoes(capture.stop())
        assert [e for e in dropped if e[1] == larger] == [], dropped  # never on the wire
        tail = vswitchd_log.read_text()
        assert tail.count("Message too long") > logged, tail[-2000:]
        assert f"error sending Ethernet packet on {link.port}: Message too long" in tail

        # ... and the underlay is the only limit: the same ping crosses once it is larger
        set_underlay_mtu(cloud, larger + VXLAN_OVERHEAD)
        assert await asyncio.to_thread(ping_df, a1, a2.ip, larger) == 3
