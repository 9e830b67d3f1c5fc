"""Forwarding servers of external networks: who is elected, and what it announces.

Every controller elects, from the same store data and with no message exchanged, one
server per physical network to carry the routed traffic of its external networks
(module `external`): among the live servers (their `chassis/<id>` presence key, which
their store session holds: it vanishes when a controller dies and its session expires)
that say they may forward on it (`forwards`: the physical networks they have a port of,
when `agent.forwarding` is on) and have a tunnel endpoint, the lowest id. A dead
forwarding server's key expires with its session, and every controller then elects the
next one; the new one announces the routers' external addresses with gratuitous ARP, so
the physical switches learn its port for their MACs at once.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from vlcp.pipeline.module import PacketOut
from vlcp.pipeline.view import Network, View

BROADCAST = b"\xff" * 6
ETH_TYPE_VLAN, ETH_TYPE_ARP, ETH_TYPE_IPV4 = 0x8100, 0x0806, 0x0800
ARP_REQUEST = 1
MIN_FRAME = 60
"""The shortest Ethernet frame without its FCS: shorter ones are padded."""


def forwards_on(chassis: Any) -> frozenset[str]:
    """The physical networks a server's presence says it may forward on (none if it has
    no tunnel endpoint: the others could not reach it)."""
    if not isinstance(chassis, dict) or not chassis.get("vtep"):
        return frozenset()
    physnets = chassis.get("forwards")
    if not isinstance(physnets, list):
        return frozenset()
    return frozenset(p for p in physnets if isinstance(p, str))


def elect(chassis: Mapping[str, Any], physnet: str) -> tuple[str, str] | None:
    """The forwarding server of a physical network's external networks, (system id, VTEP):
    the lowest id among the live servers that may forward on it; None if there is none."""
    for system_id in sorted(chassis):
        if physnet in forwards_on(chassis[system_id]):
            return system_id, str(chassis[system_id]["vtep"])
    return None


def arp_frame(network: Network, source_mac: str, source_ip: str, target_ip: str) -> bytes:
    """An ARP request from `source_mac`/`source_ip` for `target_ip`, as it leaves the
    physical port: tagged for a vlan network, padded to the minimum frame."""
    mac = bytes.fromhex(source_mac.replace(":", ""))
    tag = b""
    if network.type == "vlan" and network.tag is not None:
        tag = struct.pack("!HH", ETH_TYPE_VLAN, network.tag)
    arp = struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        ETH_TYPE_IPV4,
        6,
        4,
        ARP_REQUEST,
        mac,
        ipaddress.IPv4Address(source_ip).packed,
        bytes(6),
        ipaddress.IPv4Address(target_ip).packed,
    )
    frame = BROADCAST + mac + tag + struct.pack("!H", ETH_TYPE_ARP) + arp
    return frame.ljust(MIN_FRAME, b"\0")


def forwarded_here(view: View) -> frozenset[str]:
    """The external networks this server is the forwarding server of."""
    return frozenset(n for n, f in view.forwarders.items() if f.here)


def gratuitous_arps(view: View, networks: Iterable[str]) -> list[PacketOut]:
    """Gratuitous ARP for every router address on these external networks, out of their
    physical port: what a newly elected forwarding server sends, so that the physical
    switches move the routers' MACs to its port and hosts refresh their caches."""
    found = []
    for network_id in sorted(networks):
        network = view.networks.get(network_id)
        physical = view.physical_port(network) if network is not None else None
        if network is None or physical is None:
            continue
        for _, interface in view.external_interfaces(network_id):
            frame = arp_frame(network, interface.mac, interface.ip, interface.ip)
            found.append(PacketOut(physical, frame))
    return found
