"""Module `dhcp`, table `dhcp`: each server's controller answers DHCPv4 for its own ports.

No central DHCP server: a port's address is fixed by the model, and the controller of the
server where the port is bound has the port, its subnet and its network in its view, so
it answers from there (`responder.respond`), with no store round trip per packet.

Flows (docs/pipeline.md, "DHCP"):

- in `port_security`, per local port with an IPv4 address in a subnet, its DHCP client
  traffic (UDP 68 -> 67, from 0.0.0.0 or from the port's address) goes to `dhcp`, above
  every check there: the broadcast is answered, never flooded to the network. Ingress
  already checked the source MAC, and the address is matched here, so a spoofed source
  never reaches the responder;
- in `dhcp`, per such port, that traffic goes to the controller through the port's meter
  (`to_controller`), so a port flooding DHCP is cut down on the switch; nothing else is
  there (miss: drop).
  The table is declared after `l2_forward` as well as `port_security` only to come after
  every other table, so that no table id moves (ingress .. l2_forward keep 0 .. 4, and a
  table interposed before `arp_responder` still lands right after `nd_guard`);
- in `port_security`, per local port of a network with a subnet (a network vlcp serves),
  DHCP server replies (UDP 67 -> 68) from the port are dropped: no workload can answer
  another's DHCP there (DHCP guard). In a network without subnets, a tenant's own DHCP
  server works as before.

A port without an address, or whose address is in no subnet, is not answered: its DHCP
requests go through `port_security` as before. Frames from the tunnel or a physical port never
enter `port_security`. Unloaded, the module's flows go and DHCP is forwarded as before
(its table stays, with only its miss, after every other).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from vlcp.layout import LOGNET, LPORT, SUBNET
from vlcp.southbound.openflow.flow import Flow

from ..module import BadPacket, Context, Module, PacketIn, PacketOut, Received, to_controller
from ..port_security import PORT_SECURITY
from ..tables import Table
from ..view import View, ipv4
from .responder import respond
from .settings import Settings
from .wire import CLIENT_PORT, ETH_TYPE_IPV4, IPPROTO_UDP, SERVER_PORT

log = logging.getLogger(__name__)

PRIO_DHCP = 50
"""In `port_security`: above its open (40), allow (30) and drop (10) flows."""
PRIO_TO_CONTROLLER = 100
UNSPECIFIED = "0.0.0.0"
_UDP = {"eth_type": ETH_TYPE_IPV4, "ip_proto": IPPROTO_UDP}
CLIENT_TO_SERVER = {**_UDP, "udp_src": CLIENT_PORT, "udp_dst": SERVER_PORT}
SERVER_TO_CLIENT = {**_UDP, "udp_src": SERVER_PORT, "udp_dst": CLIENT_PORT}

DHCP = Table(
    "dhcp",
    after=("port_security", "l2_forward"),
    matches={"in_port", "eth_type", "ip_proto", "udp_src", "udp_dst"},
    doc="DHCP requests of local ports with an address, to the controller.",
)

OUTCOMES: Counter[str] = Counter()
"""What the responder did, by reason (offer, ack, nak: ..., or why it did not answer).
An observation only: the answer depends on the packet and the view alone."""


def port_flows(ctx: Context, view: View, port_id: str) -> frozenset[Flow]:
    """In a network vlcp serves (one with a subnet), the port's DHCP server replies
    dropped; if the port has an address in a subnet, its DHCP requests to `dhcp`, and
    from there to the controller through the port's meter."""
    port = view.ports.get(port_id)
    if port is None or port.network not in view.networks or not view.has_subnet(port.network):
        return frozenset()
    table = ctx[PORT_SECURITY.name]
    guard = table.flow(PRIO_DHCP, {**SERVER_TO_CLIENT, "in_port": port.ofport})
    address = ipv4(port.ip)
    if address is None or view.subnet_of(port) is None:
        return frozenset({guard})
    dhcp = ctx[DHCP.name]
    requests = (
        table.flow(
            PRIO_DHCP,
            {**CLIENT_TO_SERVER, "in_port": port.ofport, "ipv4_src": src},
            goto=dhcp,
        )
        for src in (UNSPECIFIED, address)
    )
    metered = dhcp.flow(
        PRIO_TO_CONTROLLER,
        {**CLIENT_TO_SERVER, "in_port": port.ofport},
        (to_controller(port.ofport),),
    )
    return frozenset({guard, *requests, metered})


def answer(ctx: Context, view: View, received: Received) -> Sequence[PacketOut]:
    """Answer a DHCP request out of the port it came from (or not, with a reason)."""
    settings = ctx.settings
    assert isinstance(settings, Settings)
    result = respond(view, settings, received)
    OUTCOMES[result.reason] += 1
    log.debug("DHCP from ofport %d: %s", received.in_port, result.reason)
    if result.malformed:
        raise BadPacket(f"DHCP: {result.reason}")
    if result.reply is None:
        return ()
    return (PacketOut(received.in_port, result.reply),)


MODULE = Module(
    "dhcp",
    doc="DHCPv4 for the local ports with an address in a subnet, answered by this "
    "server's controller from the model (port > subnet > network options); DHCP server "
    "replies from VIFs dropped.",
    depends=("ingress",),
    tables=(DHCP,),
    port=port_flows,
    watches=(LPORT, LOGNET, SUBNET),
    packet_ins=(
        PacketIn(
            DHCP.name,
            answer,
            rate=5.0,
            burst=20,
            doc="DHCP requests: a client sends a few at boot and one per renewal.",
        ),
    ),
    settings=Settings,
)
