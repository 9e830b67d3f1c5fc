"""Module and table `arp_responder`: ARP requests answered on the switch for every known address.

Every port address in a network is known to the controller (local ports and remote ports
alike), so a request from a local port for one of them is turned around into the reply
on the switch and sent back out of the port it came from: ARP broadcasts never cross the
underlay, and a request for an address nobody has is still flooded (inside the network).

Only requests from local ports are answered. One that arrived from the tunnel or the
physical side came from a host this controller does not serve; replying out of the
ingress port would lose the tunnel destination or the VLAN tag, so it is forwarded like
any broadcast and the owner answers. A port asking for its own address (a gratuitous ARP
or a duplicate-address probe) is not answered either: a reply would tell it its address
is taken.
"""

from __future__ import annotations

from typing import Any

from vlcp.layout import LPORT, REMOTES
from vlcp.southbound.openflow.flow import Action, Flow, output

from .fields import IN_KIND, NETWORK, InKind
from .module import Context, Module
from .tables import BoundTable, Table
from .view import LocalPort, Network, RemotePort, View, ipv4

ETH_TYPE_ARP = 0x0806
ARP_REQUEST, ARP_REPLY = 1, 2

PRIO_OWN_ADDRESS = 200
PRIO_ANSWER = 100

ARP_RESPONDER = Table(
    "arp_responder",
    after=("ingress", "port_security", "nd_guard"),
    matches={NETWORK, IN_KIND, "in_port", "eth_dst", "eth_type", "arp_op", "arp_tpa"},
    miss="l2_forward",
    doc="answer ARP requests from local ports for every known address.",
)
"""`eth_dst` is for the gateway module's entries here (frames to a gateway MAC)."""


def _set(field: str, value: Any) -> Action:
    return Action.make("set_field", field=field, value=value)


def _move(src: str, dst: str) -> Action:
    return Action.make("nx_reg_move", src=src, dst=dst)


def reply_actions(mac: str, ip: str) -> tuple[Action, ...]:
    """Turn a request for `ip` into the reply "ip is at mac", back out of the in_port.

    The order matters: the requester's addresses are moved into the target fields
    before the sender fields are overwritten with the answer.
    """
    return (
        _move("eth_src", "eth_dst"),
        _set("eth_src", mac),
        _set("arp_op", ARP_REPLY),
        _move("arp_sha", "arp_tha"),
        _move("arp_spa", "arp_tpa"),
        _set("arp_sha", mac),
        _set("arp_spa", ip),
        output("in_port"),
    )


def _answer(table: BoundTable, network: Network, mac: str, ip: str) -> Flow:
    match = {
        NETWORK: network.number,
        IN_KIND: InKind.LOCAL,
        "eth_type": ETH_TYPE_ARP,
        "arp_op": ARP_REQUEST,
        "arp_tpa": ip,
    }
    return table.flow(PRIO_ANSWER, match, reply_actions(mac, ip))


def port_flows(ctx: Context, view: View, port_id: str) -> frozenset[Flow]:
    """Answer for a local port's address; let its own requests for it through."""
    port: LocalPort | None = view.ports.get(port_id)
    network = view.networks.get(port.network) if port else None
    ip = ipv4(port.ip) if port else None
    if port is None or network is None or ip is None:
        return frozenset()
    own = {
        "in_port": port.ofport,
        "eth_type": ETH_TYPE_ARP,
        "arp_op": ARP_REQUEST,
        "arp_tpa": ip,
    }
    table = ctx[ARP_RESPONDER.name]
    return frozenset(
        {
            _answer(table, network, port.mac, ip),
            table.flow(PRIO_OWN_ADDRESS, own, goto=ctx["l2_forward"]),
        }
    )


def remote_flows(ctx: Context, view: View, remote_id: str) -> frozenset[Flow]:
    """Answer for a remote port's address (not on a local network: it is unreachable)."""
    remote: RemotePort | None = view.remote(remote_id)
    network = view.networks.get(remote.network) if remote else None
    ip = ipv4(remote.ip) if remote else None
    if remote is None or remote.mac is None or network is None or ip is None:
        return frozenset()
    if network.type == "local":
        return frozenset()
    return frozenset({_answer(ctx[ARP_RESPONDER.name], network, remote.mac, ip)})


MODULE = Module(
    "arp_responder",
    doc="Answers ARP requests from local ports on the switch, for every port address of "
    "the network (local or remote): ARP broadcasts never cross the underlay.",
    depends=("ingress",),
    tables=(ARP_RESPONDER,),
    port=port_flows,
    remote=remote_flows,
    watches=(LPORT, *REMOTES),
)
