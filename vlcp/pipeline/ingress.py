"""Table `ingress`: what enters the switch, from where, and into which network.

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
from the underlay were checked by the server that has their sender.
"""

from __future__ import annotations

from vlcp.southbound.openflow.flow import Action, Flow, pop_vlan

from .fields import IN_KIND, NETWORK, InKind
from .tables import ARP_RESPONDER, INGRESS, PORT_SECURITY
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


def _enter(network: Network, kind: InKind, *first: Action) -> tuple[Action, ...]:
    return (*first, NETWORK.load(network.number), IN_KIND.load(kind))


def base_flows() -> frozenset[Flow]:
    """Drops that hold for every frame, whoever owns the ports."""
    return frozenset(
        {
            INGRESS.flow(PRIO_DROP_SOURCE, {"eth_src": MULTICAST}),
            INGRESS.flow(PRIO_DROP_LINK_LOCAL, {"eth_dst": LINK_LOCAL}),
        }
    )


def port_flows(view: View, port_id: str) -> frozenset[Flow]:
    """A VIF enters its network, only untagged and only with one of its source MACs."""
    port = view.ports.get(port_id)
    network = view.networks.get(port.network) if port else None
    if port is None or network is None:
        return frozenset()
    actions = _enter(network, InKind.LOCAL)
    return frozenset(
        INGRESS.flow(
            PRIO_CLASSIFY,
            {"in_port": port.ofport, "eth_src": mac, "vlan_vid": 0},
            actions,
            goto=PORT_SECURITY,
        )
        for mac in port.macs
    )


def network_flows(view: View, network_id: str) -> frozenset[Flow]:
    """The underlay side of a network: the tunnel by VNI, or the physical port by tag."""
    network = view.networks.get(network_id)
    if network is None:
        return frozenset()
    if network.type == "vxlan":
        if not view.tunnel_usable(network):
            return frozenset()
        assert view.tunnel_ofport is not None
        actions = _enter(network, InKind.TUNNEL)
        return frozenset(
            INGRESS.flow(
                PRIO_CLASSIFY,
                {"in_port": view.tunnel_ofport, "tunnel_id": network.tag, "tun_ipv4_src": vtep},
                actions,
                goto=ARP_RESPONDER,
            )
            for vtep in view.peer_vteps(network_id)
        )
    else:
        physical = view.physical_port(network)
        if physical is None:
            return frozenset()
        if network.type == "vlan":
            assert network.tag is not None
            match = {"in_port": physical, "vlan_vid": VLAN_PRESENT | network.tag}
            actions = _enter(network, InKind.PHYSICAL, pop_vlan())
        else:
            match = {"in_port": physical, "vlan_vid": 0}
            actions = _enter(network, InKind.PHYSICAL)
    return frozenset({INGRESS.flow(PRIO_CLASSIFY, match, actions, goto=ARP_RESPONDER)})
