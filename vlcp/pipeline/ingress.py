"""Module `ingress`, table `ingress`: what enters the switch, from where, into which network.

Every frame is classified by the port it came in on, and nothing else: a VIF belongs to
its logical port's network; the tunnel port belongs to a VXLAN network by VNI, and only
from the servers that have ports in that network (by the packet's outer source address:
anyone else on the underlay could otherwise inject frames into any VNI); a physical port
to a VLAN network by tag (popped here) or to the native network when the frame is
untagged. The network's local number goes into NETWORK and the origin into
IN_KIND; every later table matches NETWORK, so identical MACs and addresses in two
networks never meet. A frame that no rule classifies is dropped (the table's miss).

Also dropped, before anything else:
- a frame whose source MAC is multicast or broadcast (no host sends one; forwarding it
  would only help poison MAC tables or amplify floods);
- link-local control frames (01:80:c2:00:00:0x: STP, LLDP, 802.1X, pause), which belong
  to the link and must never be bridged across a tenant network;
- from a VIF, a frame with another source MAC than its port's or its allowed address
  pairs' (anti-spoofing) or with a VLAN tag (on a VLAN or native network it would leave
  on the wire inside another VLAN).

A VIF's frames go on to `port_security`, which checks their source addresses; frames
from the underlay were checked by the server that has their sender. This module
classifies VIFs; each network type's driver (`vxlan`, `physical`) adds the rules of its
underlay to this table, with `enter`.
"""

from __future__ import annotations

from vlcp.layout import LOGNET, LPORT, PHYSNET
from vlcp.southbound.openflow.flow import Action, Flow

from .fields import IN_KIND, NETWORK, InKind
from .module import Context, Module
from .tables import Table
from .view import Network, View

MULTICAST = ("01:00:00:00:00:00", "01:00:00:00:00:00")
"""The group bit of a MAC: set for multicast and broadcast addresses."""
LINK_LOCAL = ("01:80:c2:00:00:00", "ff:ff:ff:ff:ff:f0")
"""IEEE 802.1D reserved group addresses: never forwarded by a bridge."""
VLAN_PRESENT = 0x1000
"""OFPVID_PRESENT: a vlan_vid with this bit set is tagged; 0 (OFPVID_NONE) is untagged."""

PRIO_DROP_SOURCE = 1100
PRIO_DROP_LINK_LOCAL = 1000
PRIO_CLASSIFY = 100

INGRESS = Table(
    "ingress",
    matches={
        "in_port",
        "eth_src",
        "eth_dst",
        "vlan_vid",
        "tunnel_id",
        "tun_ipv4_src",
        "eth_type",
        "arp_op",
        "arp_tpa",
    },
    doc="drop what must never be forwarded; classify by in_port into a network (NETWORK) "
    "and an origin (IN_KIND); a VIF only with its own MACs.",
)


def enter(network: Network, kind: InKind, *first: Action) -> tuple[Action, ...]:
    """The actions that put a frame into `network`, from `kind` (after `first`)."""
    return (*first, NETWORK.load(network.number), IN_KIND.load(kind))


def base_flows(ctx: Context) -> frozenset[Flow]:
    """Drops that hold for every frame, whoever owns the ports."""
    table = ctx[INGRESS.name]
    return frozenset(
        {
            table.flow(PRIO_DROP_SOURCE, {"eth_src": MULTICAST}),
            table.flow(PRIO_DROP_LINK_LOCAL, {"eth_dst": LINK_LOCAL}),
        }
    )


def port_flows(ctx: Context, view: View, port_id: str) -> frozenset[Flow]:
    """A VIF enters its network, only untagged and only with one of its source MACs."""
    port = view.ports.get(port_id)
    network = view.networks.get(port.network) if port else None
    if port is None or network is None:
        return frozenset()
    table, checks = ctx[INGRESS.name], ctx["port_security"]
    actions = enter(network, InKind.LOCAL)
    return frozenset(
        table.flow(
            PRIO_CLASSIFY,
            {"in_port": port.ofport, "eth_src": mac, "vlan_vid": 0},
            actions,
            goto=checks,
        )
        for mac in port.macs
    )


MODULE = Module(
    "ingress",
    doc="Classifies every frame by the port it came in on into a network; drops group "
    "source MACs, link-local control frames, and VIF frames from foreign MACs or tagged.",
    tables=(INGRESS,),
    base=base_flows,
    port=port_flows,
    watches=(LPORT, LOGNET, PHYSNET),
)
