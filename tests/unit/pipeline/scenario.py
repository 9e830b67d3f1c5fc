"""One server's view for behaviour tests: tenants that reuse the same MACs and addresses.

Two VXLAN tenants (A, B), two VLAN tenants on one physical port (VA, VB), a native
network and a local one. Every tenant has a port with M1/10.0.0.1; remote ports reuse M3.
"""

from __future__ import annotations

from typing import Any

from vlcp.pipeline import LocalPort, Network, RemotePort, View, compile_all, network_numbers
from vlcp.southbound.openflow.flow import Flow

TUNNEL = 100
PHYS_VLAN = 200
PHYS_NATIVE = 201
M1, M2, M3, M4, M5 = (f"02:00:00:00:00:0{i}" for i in range(1, 6))
BROADCAST = "ff:ff:ff:ff:ff:ff"
UNKNOWN = "02:00:00:00:00:99"
MULTICAST = "01:00:5e:00:00:fb"
VTEP2, VTEP3, VTEP4 = "192.0.2.2", "192.0.2.3", "192.0.2.4"

_TYPES = {
    "tenant-a": ("vxlan", 5001, None),
    "tenant-b": ("vxlan", 5002, None),
    "vlan-a": ("vlan", 100, "pv"),
    "vlan-b": ("vlan", 101, "pv"),
    "flat": ("native", None, "pn"),
    "lonely": ("local", None, None),
}
NUMBERS = network_numbers(_TYPES)
NETWORKS = {
    n: Network(n, kind, NUMBERS[n], tag, physnet) for n, (kind, tag, physnet) in _TYPES.items()
}

PORTS = [
    LocalPort("a1", "tenant-a", 1, M1, "10.0.0.1"),
    LocalPort("a2", "tenant-a", 2, M2, "10.0.0.2"),
    LocalPort("b1", "tenant-b", 3, M1, "10.0.0.1"),
    LocalPort("b2", "tenant-b", 4, M2, "10.0.0.2"),
    LocalPort("va1", "vlan-a", 5, M1, "10.0.0.1"),
    LocalPort("vb1", "vlan-b", 6, M1, "10.0.0.1"),
    LocalPort("f1", "flat", 7, M1, "10.0.0.1"),
    LocalPort("l1", "lonely", 8, M1, "10.0.0.1"),
    LocalPort("va2", "vlan-a", 9, M2, "10.0.0.2"),
    LocalPort("l2", "lonely", 10, M2, "10.0.0.2"),
]
REMOTES = [
    RemotePort("a3", "tenant-a", M3, VTEP2, "10.0.0.3"),
    RemotePort("a4", "tenant-a", M4, VTEP2, "10.0.0.4"),
    RemotePort("a5", "tenant-a", M5, VTEP4, "10.0.0.5"),
    RemotePort("b3", "tenant-b", M3, VTEP3, "10.0.0.3"),
    RemotePort("va3", "vlan-a", M3, VTEP2, "10.0.0.3"),
    RemotePort("vb3", "vlan-b", M3, VTEP3, "10.0.0.3"),
    RemotePort("l3", "lonely", M3, VTEP2, "10.0.0.3"),
]
VIEW = View(
    networks=NETWORKS,
    ports={p.id: p for p in PORTS},
    remotes={r.id: r for r in REMOTES},
    physical_ports={"pv": PHYS_VLAN, "pn": PHYS_NATIVE},
    tunnel_ofport=TUNNEL,
)
PORT = {p.id: p for p in PORTS}


def all_flows(view: View = VIEW) -> frozenset[Flow]:
    return frozenset().union(*compile_all(view).values())


FLOWS = all_flows()


EXPERIMENTAL = 0x88B5
"""IEEE 802 local experimental ethertype: a frame with no network-layer source to check."""


def frame(src: str, dst: str, **fields: Any) -> dict[str, Any]:
    """A plain L2 frame's header fields (untagged unless vlan_vid is given)."""
    return {"eth_src": src, "eth_dst": dst, "eth_type": EXPERIMENTAL, **fields}


def ipv4(src: str, dst: str, ip_src: str, ip_dst: str = "10.0.0.99", **fields: Any) -> dict:
    """An IPv4 (UDP) frame's header fields."""
    return frame(src, dst, eth_type=0x0800, ip_proto=17, ipv4_src=ip_src, ipv4_dst=ip_dst, **fields)


def arp_request(src: str, spa: str, tpa: str, **fields: Any) -> dict[str, Any]:
    return {
        "eth_src": src,
        "eth_dst": BROADCAST,
        "eth_type": 0x0806,
        "arp_op": 1,
        "arp_sha": src,
        "arp_spa": spa,
        "arp_tha": "00:00:00:00:00:00",
        "arp_tpa": tpa,
        **fields,
    }
