"""Underlay links: a "physical" veth between two hypervisors' ``br-phy`` bridges.

The VTEP address (192.0.2.x, only inside our namespaces) goes on br-phy's tap, which is what
OVS's native tunnel code routes through.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from vlcp.lab.naming import unique_name
from vlcp.lab.netns import create_veth
from vlcp.lab.ovs.hypervisor import Hypervisor

UNDERLAY_BRIDGE = "br-phy"


@dataclass(frozen=True)
class UnderlayLink:
    """A veth between two hypervisors' br-phy bridges (same port name on both sides)."""

    a: Hypervisor
    b: Hypervisor
    port: str


_vtep_hosts = itertools.cycle(range(1, 255))
"""Host numbers of default VTEP addresses, round again after 254: a long test run builds
hundreds of hypervisors, a lab only a few at a time (they differ within one lab)."""


def _ensure_vtep(hv: Hypervisor, cidr: str | None, bridge: str) -> None:
    """Give a hypervisor its underlay bridge and VTEP address once."""
    hv.vsctl("--may-exist", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev")
    if hv.vtep_cidr is None:
        hv.vtep_cidr = cidr or f"192.0.2.{next(_vtep_hosts)}/24"
        hv.set_bridge_address(bridge, hv.vtep_cidr)
    elif cidr and cidr != hv.vtep_cidr:
        raise ValueError(f"{hv!r} already has VTEP {hv.vtep_cidr}, not {cidr}")


def connect_underlay(
    a: Hypervisor,
    b: Hypervisor,
    *,
    ip_a: str | None = None,
    ip_b: str | None = None,
    bridge: str = UNDERLAY_BRIDGE,
    mtu: int = 1600,
) -> UnderlayLink:
    """Join two hypervisors by a "physical" veth on their ``br-phy`` (NORMAL forwarding).

    The VTEP address goes on br-phy's tap inside the hypervisor namespace: OVS's native
    tunnels route and ARP through that kernel interface (without it ``ovs/route/add``
    fails). MTU 1600 leaves room for VXLAN/Geneve headers on 1500-byte inner frames.
    Addresses default to 192.0.2.N/24. Do not build loops: br-phy runs no STP.
    """
    port = unique_name("link")
    create_veth(port, a.netns, port, b.netns, mtu=mtu)
    for hv, cidr in ((a, ip_a), (b, ip_b)):
        _ensure_vtep(hv, cidr, bridge)
        hv.vsctl("add-port", bridge, port)
    return UnderlayLink(a, b, port)
