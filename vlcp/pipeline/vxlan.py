"""Module `vxlan`: the driver of vxlan networks, across servers through one VXLAN port.

The tunnel port is flow-based (`remote_ip=flow`, `key=flow`): the flows choose the peer
server and the VNI. In table `ingress`, a frame from the tunnel enters a vxlan network by
its VNI, and only from the servers that have ports in that network or in a network a
router joins to it (by the packet's outer source address: anyone else on the underlay
could otherwise inject frames into any VNI; a routed packet comes from the sender's
server, `View.ingress_vteps`). In table `l2_forward`, a frame to a remote port's MAC
goes through the tunnel to that port's server, and a flood from a local port reaches
every peer server once (`tunnel_id` set once, then each server's address and an output,
in address order).

A network that cannot use the tunnel (no tunnel port, or another network here claims
its VNI: `View.tunnel_usable`) gets none of these. Without this module, vxlan networks
stay inside each server.
"""

from __future__ import annotations

from vlcp.layout import LOGNET, PHYSNET, REMOTES
from vlcp.southbound.openflow.flow import Action, Flow, output, set_field

from .fields import NETWORK, InKind
from .ingress import PRIO_CLASSIFY, enter
from .l2 import PRIO_KNOWN, flood_from_local
from .module import Context, Module
from .view import View


def network_flows(ctx: Context, view: View, network_id: str) -> frozenset[Flow]:
    """Tunnel ingress from each peer server, and the flood from local ports to them; none
    for a network without a local port here (a router's: only routed out of here)."""
    network = view.networks.get(network_id)
    usable = network is not None and view.tunnel_usable(network)
    if not usable or not view.has_local_ports(network_id):
        return frozenset()
    assert network is not None
    tunnel = view.tunnel_ofport
    assert tunnel is not None
    vteps = view.peer_vteps(network_id)
    actions = enter(network, InKind.TUNNEL)
    flows = {
        ctx["ingress"].flow(
            PRIO_CLASSIFY,
            {"in_port": tunnel, "tunnel_id": network.tag, "tun_ipv4_src": vtep},
            actions,
            goto=ctx["arp_responder"],
        )
        for vtep in view.ingress_vteps(network_id)
    }
    if vteps:
        copies: list[Action] = []
        for vtep in vteps:
            copies += (*set_field(tun_ipv4_dst=vtep), output(tunnel))
        uplink = (*set_field(tunnel_id=network.tag), *copies)
        flows |= flood_from_local(ctx, view, network_id, uplink)
    return frozenset(flows)


def remote_flows(ctx: Context, view: View, remote_id: str) -> frozenset[Flow]:
    """Frames to a remote port's MAC go through the tunnel to its server."""
    remote = view.remote(remote_id)
    network = view.networks.get(remote.network) if remote else None
    if remote is None or remote.mac is None or network is None:
        return frozenset()  # (an endpoint without a MAC takes only floods)
    if not view.tunnel_usable(network):
        return frozenset()
    assert view.tunnel_ofport is not None
    actions = (
        *set_field(tun_ipv4_dst=remote.vtep, tunnel_id=network.tag),
        output(view.tunnel_ofport),
    )
    match = {NETWORK: network.number, "eth_dst": remote.mac}
    return frozenset({ctx["l2_forward"].flow(PRIO_KNOWN, match, actions)})


MODULE = Module(
    "vxlan",
    doc="Carries vxlan networks between servers through the VXLAN tunnel port: ingress by "
    "VNI from peer servers (and those routing into the network) only, remote MACs and "
    "floods to their servers.",
    depends=("ingress", "l2_forward"),
    network=network_flows,
    remote=remote_flows,
    watches=(LOGNET, PHYSNET, *REMOTES),  # servers' ports, and hardware switches' MACs
)
