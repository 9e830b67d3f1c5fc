"""Modules `vlan` and `native`: the drivers of networks carried by a physical port.

A physical network is carried on each server by one bridge port (`View.physical_ports`).
A vlan network is one VLAN on it: in table `ingress`, frames with its tag enter the
network (the tag popped); in table `l2_forward`, frames to its remote ports' MACs and
floods from local ports leave tagged. A native network is the untagged traffic of its
physical port, in and out. The segment itself delivers to the other servers, so a
remote port needs no address here, only the port.

Without its driver, a network of that type stays inside each server.
"""

from __future__ import annotations

from typing import Literal

from vlcp.layout import LOGNET, NETPORTS, PHYSNET, PHYSPORT
from vlcp.southbound.openflow.flow import Action, Flow, output, pop_vlan, push_vlan, set_field

from .fields import NETWORK, InKind
from .ingress import PRIO_CLASSIFY, VLAN_PRESENT, enter
from .l2 import PRIO_KNOWN, flood_from_local
from .module import Context, Module
from .view import Network, View

Kind = Literal["vlan", "native"]


def _carrier(view: View, network: Network | None, kind: Kind) -> int | None:
    """The ofport carrying `network` here, if it is of this driver's type."""
    if network is None or network.type != kind:
        return None
    return view.physical_port(network)


def out_of_physical(network: Network, physical: int) -> tuple[Action, ...]:
    """Out of the physical port, tagged for a vlan network, as is for a native one."""
    if network.type == "vlan":
        assert network.tag is not None
        return (push_vlan(), *set_field(vlan_vid=VLAN_PRESENT | network.tag), output(physical))
    return (output(physical),)


def _driver(kind: Kind, doc: str) -> Module:
    def network_flows(ctx: Context, view: View, network_id: str) -> frozenset[Flow]:
        """Ingress from the physical port, and the flood from local ports out of it; none
        for a network without a local port here (a router's: only routed out of here)."""
        network = view.networks.get(network_id)
        physical = _carrier(view, network, kind)
        if network is None or physical is None or not view.has_local_ports(network_id):
            return frozenset()
        if kind == "vlan":
            assert network.tag is not None
            match = {"in_port": physical, "vlan_vid": VLAN_PRESENT | network.tag}
            actions = enter(network, InKind.PHYSICAL, pop_vlan())
        else:
            match = {"in_port": physical, "vlan_vid": 0}
            actions = enter(network, InKind.PHYSICAL)
        flows = {ctx["ingress"].flow(PRIO_CLASSIFY, match, actions, goto=ctx["arp_responder"])}
        return frozenset(
            flows | flood_from_local(ctx, view, network_id, out_of_physical(network, physical))
        )

    def remote_flows(ctx: Context, view: View, remote_id: str) -> frozenset[Flow]:
        """Frames to a remote port's MAC go out of the physical port."""
        remote = view.remote(remote_id)
        network = view.networks.get(remote.network) if remote else None
        physical = _carrier(view, network, kind)
        if remote is None or remote.mac is None or network is None or physical is None:
            return frozenset()
        match = {NETWORK: network.number, "eth_dst": remote.mac}
        return frozenset(
            {ctx["l2_forward"].flow(PRIO_KNOWN, match, out_of_physical(network, physical))}
        )

    return Module(
        kind,
        doc=doc,
        depends=("ingress", "l2_forward"),
        network=network_flows,
        remote=remote_flows,
        watches=(LOGNET, PHYSNET, PHYSPORT, NETPORTS),
    )


VLAN = _driver(
    "vlan",
    "Carries vlan networks on their physical network's port, one VLAN tag each.",
)
NATIVE = _driver(
    "native",
    "Carries a native network as the untagged traffic of its physical network's port.",
)
