"""Link-local control frames and frames with a group source MAC never cross a logical network.

Host A sends, on its own interface, an STP BPDU, an LLDP frame and broadcasts whose source
MAC is multicast, then an ordinary broadcast: the ordinary one reaches B (same server) and
C (the other server), the others reach neither. Over VXLAN and over VLAN.

Frames from one sender, on one socket, through one path are delivered in order: once the
ordinary broadcast, sent last, is in a capture, a forbidden frame that had been forwarded
would be there too; its absence is a drop, not a capture that was late or blind.

From a VIF, a group source MAC is never the port's MAC, so anti-spoofing drops it as well
as the group-source rule does; the same frames injected on the underlay side (VXLAN
packets addressed to the server's VTEP, tagged frames on its trunk) are classified by
port and VNI or tag alone, and only the ingress drops stop them.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import LLC, STP, Dot3, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from tests.lab.frames import lldp
from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import UNDERLAY_BRIDGE

from .tenants import ADDRESSES, describe_tenants

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
]

SERVERS = ["hv0", "hv1"]
PLACEMENT = {"A": "hv0", "B": "hv0", "C": "hv1"}
"""A and B share a server (flooded locally), C is on the other one (across the underlay)."""
TENANTS = pytest.mark.parametrize("tenant", ["a", "b"], ids=["vxlan", "vlan"])
"""describe_tenants: net-a is VXLAN (VNI from 5000), net-b is VLAN on trunk0 (VID from 100)."""
BROADCAST = "ff:ff:ff:ff:ff:ff"
STP_DST = "01:80:c2:00:00:00"
GROUP_SOURCES = ("01:00:5e:00:00:01", "03:00:00:00:00:01")
EXPERIMENTAL = 0x88B5
"""IEEE 802 local experimental ethertype: nothing in the namespaces sends it by itself."""


def link_local(packet: Packet) -> bool:
    """Destination in 01:80:c2:00:00:00/ff:ff:ff:ff:ff:f0 (STP, LLDP, 802.1X, pause...)."""
    raw = bytes(packet)
    return raw[:5] == b"\x01\x80\xc2\x00\x00" and raw[5] & 0xF0 == 0


def group_source(packet: Packet) -> bool:
    """The source MAC has its group bit set (multicast or broadcast)."""
    return bool(bytes(packet)[6] & 0x01)


def forbidden_frames(src_mac: str, marker: bytes) -> list[Packet]:
    """Control frames from `src_mac` (a VIF's own MAC, so that anti-spoofing lets them by
    and only the control-frame drop stands in their way) and group-source broadcasts."""
    stp = Dot3(src=src_mac, dst=STP_DST) / LLC() / STP()
    sourced = [
        Ether(src=group, dst=BROADCAST, type=EXPERIMENTAL) / Raw(marker) for group in GROUP_SOURCES
    ]
    return [stp, lldp(src_mac), *sourced]


def ordinary_frame(src_mac: str, marker: bytes) -> Packet:
    """The positive control: a plain broadcast, flooded to every host of the network."""
    return Ether(src=src_mac, dst=BROADCAST, type=EXPERIMENTAL) / Raw(marker)


@pytest.fixture
async def cloud(cloud_factory):
    cloud = await cloud_factory(SERVERS)
    cloud.trunks("trunk0")
    # br-phy plays the top-of-rack switch between the servers' trunks. OVS's NORMAL bridge
    # drops reserved multicast by default (forward-bpdu=false), which would hide a control
    # frame leaked onto the VLAN from C: let the "wire" carry whatever the trunk sends.
    for server in cloud.servers.values():
        server.hv.vsctl("set", "bridge", UNDERLAY_BRIDGE, "other_config:forward-bpdu=true")
    await describe_tenants(cloud.api)
    return cloud


async def plug(cloud, tenant: str) -> dict:
    """Hosts A, B, C as the tenant's ports 1..3, up, with every path from A warmed.

    OVS drops the first packet to a new tunnel peer while it resolves the peer's MAC on
    the underlay: a ping through each path first, so that only the pipeline drops frames.
    """
    hosts = {}
    for n, (role, server) in enumerate(PLACEMENT.items(), start=1):
        mac, ip = ADDRESSES[n - 1]
        hosts[role] = cloud.host(server, f"{ip}/24", mac=mac, port=f"{tenant}{n}")
    for n in range(1, len(PLACEMENT) + 1):
        await cloud.api.wait_port_up(f"{tenant}{n}", timeout=30)
    for role in ("B", "C"):
        assert await asyncio.to_thread(hosts["A"].ping_ok, hosts[role].ip, deadline=10), role
    return hosts


async def leaks(captures: dict, marker: bytes) -> dict[str, list[str]]:
    """Wait for the ordinary frame in every capture, then list what should not be there."""

    def is_ordinary(p: Packet) -> bool:
        return marker in bytes(p) and not group_source(p)

    leaked: dict[str, list[str]] = {}
    for role, capture in captures.items():
        await asyncio.to_thread(capture.wait_for, is_ordinary, timeout=10)
        for p in capture.stop():
            if link_local(p) or group_source(p):
                leaked.setdefault(role, []).append(f"{p.src} > {p.dst}")
    return leaked


@TENANTS
async def test_control_frames_and_group_sources_from_a_vif_are_dropped(cloud, tenant) -> None:
    hosts = await plug(cloud, tenant)
    a = hosts["A"]
    marker = os.urandom(8)
    captures = {role: hosts[role].capture() for role in ("B", "C")}
    # one send, one socket: the forbidden frames first, the ordinary broadcast last
    frames = [*forbidden_frames(a.mac, marker), ordinary_frame(a.mac, marker)]
    await asyncio.to_thread(a.send, *frames)
    assert await leaks(captures, marker) == {}, "forbidden frames from A crossed the network"


def bridge_mac(hv, bridge: str) -> str:
    info = json.loads(hv.exec("ip", "-j", "link", "show", "dev", bridge).stdout)
    return str(info[0]["address"])


def tagged(frame: bytes, vid: int) -> bytes:
    """`frame` with an 802.1Q tag (works for 802.3 length frames too, unlike scapy's Dot1Q)."""
    return frame[:12] + struct.pack("!HH", 0x8100, vid) + frame[12:]


def vxlan_to(hv0, hv1, vni: int, *, source: str) -> Packet:
    """The outer headers of a VXLAN packet from hv1's side of the underlay to hv0's VTEP."""
    return (
        Ether(src=bridge_mac(hv1, UNDERLAY_BRIDGE), dst=bridge_mac(hv0, UNDERLAY_BRIDGE))
        / IP(src=source, dst=hv0.vtep_ip)
        / UDP(sport=49152, dport=4789)
        / VXLAN(vni=vni)
    )


@TENANTS
async def test_control_frames_and_group_sources_from_the_underlay_are_dropped(
    cloud, tenant
) -> None:
    """The same frames arriving at hv0 from the underlay, as if C's server had sent them."""
    hosts = await plug(cloud, tenant)
    c = hosts["C"]
    network = await cloud.api.get("logical-networks", f"net-{tenant}")
    hv0, hv1 = cloud.servers["hv0"].hv, cloud.servers["hv1"].hv
    marker = os.urandom(8)
    captures = {role: hosts[role].capture() for role in ("A", "B")}
    inner = [bytes(f) for f in (*forbidden_frames(c.mac, marker), ordinary_frame(c.mac, marker))]
    if tenant == "a":  # VXLAN packets to hv0's VTEP, on hv1's end of the underlay link
        outer = vxlan_to(hv0, hv1, network["vni"], source=hv1.vtep_ip)
        sender, iface = hv1, cloud.links[0].port
        wire = [bytes(outer / Raw(frame)) for frame in inner]
    else:  # tagged frames into hv0's integration bridge, from the switch end of its trunk
        sender, iface = hv0, "trunk0-phy"
        wire = [tagged(frame, network["vlanid"]) for frame in inner]
    await asyncio.to_thread(sender.send, *wire, iface=iface)
    assert await leaks(captures, marker) == {}, "forbidden frames from the underlay got in"


async def test_only_servers_with_ports_in_the_network_may_tunnel_into_it(cloud) -> None:
    """A host on the underlay (spoofed 198.51.100.7) sends into net-a's VNI first, then
    C's server the same frame with another marker: A and B get the second, never the first."""
    hosts = await plug(cloud, "a")
    c = hosts["C"]
    network = await cloud.api.get("logical-networks", "net-a")
    hv0, hv1 = cloud.servers["hv0"].hv, cloud.servers["hv1"].hv
    stranger, peer = os.urandom(8), os.urandom(8)
    captures = {role: hosts[role].capture() for role in ("A", "B")}
    wire = [
        bytes(vxlan_to(hv0, hv1, network["vni"], source=src) / ordinary_frame(c.mac, marker))
        for src, marker in (("198.51.100.7", stranger), (hv1.vtep_ip, peer))
    ]
    await asyncio.to_thread(hv1.send, *wire, iface=cloud.links[0].port)
    for role, capture in captures.items():
        await asyncio.to_thread(capture.wait_for, lambda p: peer in bytes(p), timeout=10)
        assert not [p for p in capture.stop() if stranger in bytes(p)], role
