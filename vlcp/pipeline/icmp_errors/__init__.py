"""Module `icmp_errors`, table `icmp_errors`: the ICMP errors a router owes its senders,
answered by the controller of the sender's server.

Routing (`l3`) is flows only, and a flow can drop a packet but not explain why. A user
expects the router to: `traceroute` needs "time exceeded" from each hop, and a packet to
an address the router has no route to should fail at once ("net unreachable") rather
than time out; and the router's own address on another subnet should answer as the
router (ping, the last hop of a traceroute). So the packets the router cannot forward
go to the controller of the server that routed them (the sender's), whose handler
answers from its view (`responder.respond`), out of the port they came from.

Flows (docs/pipeline.md, "ICMP errors"):

- in `l3` (base flows, whatever the view): IPv4 with TTL 0 or 1 goes to `icmp_errors`
  (`PRIO_TTL`, above every route: `l3`'s `dec_ttl` would drop it); any other IPv4
  that no route matches too (`PRIO_NO_ROUTE`, just above the table's miss). Only frames
  `l3`'s entrance sent there reach these: IPv4 from a local port to a router interface;
- in `icmp_errors`, per local port of a network with a router interface on it (the
  network's flows, as `l3`'s entrance is): from that port, to the controller through
  the port's meter (`to_controller`), so a port sending expired or unroutable packets
  fast is cut down on the switch; and the handler's own per-port bound (`PacketIn`)
  behind it. Nothing else (miss: drop).

The table is declared after `l3` (its one entrance), so it takes the next id and no
table moves. Unloaded, its flows in `l3` go with it: an expired packet is dropped on
the switch by `dec_ttl` again, and an unroutable one by `l3`'s miss, as before it.
It does not depend on `l3` (only on `ingress`), so that routing can be unloaded and
reloaded alone: without `l3`'s entrance nothing reaches these flows.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from vlcp.layout import LOGNET, LPORT
from vlcp.layout import ROUTER as ROUTER_PREFIX
from vlcp.southbound.openflow.flow import Flow

from ..inet import ETH_TYPE_IPV4
from ..l3 import L3, PRIO_ROUTE
from ..module import Context, Module, PacketIn, PacketOut, Received, to_controller
from ..tables import Table
from ..view import View
from .responder import respond

log = logging.getLogger(__name__)

PRIO_TTL = PRIO_ROUTE + 10
"""In `l3`: above every route, so an expired packet is answered, not dropped by
`dec_ttl`."""
PRIO_NO_ROUTE = 1
"""In `l3`: below every route, above the table's miss."""
PRIO_TO_CONTROLLER = 100
EXPIRING_TTLS = (0, 1)

ICMP_ERRORS = Table(
    "icmp_errors",
    after=("l3",),
    matches={"in_port"},
    doc="Routed packets the router cannot forward (TTL expired, no route), to the "
    "controller through their port's meter.",
)

OUTCOMES: Counter[str] = Counter()
"""What the handler did, by reason (time exceeded, net unreachable, or why it did not
answer). An observation only: the answer depends on the packet and the view alone."""


def base_flows(ctx: Context) -> frozenset[Flow]:
    """In `l3`: expired IPv4, and IPv4 no route matches, to `icmp_errors`."""
    table, errors = ctx[L3.name], ctx[ICMP_ERRORS.name]
    expired = (
        table.flow(PRIO_TTL, {"eth_type": ETH_TYPE_IPV4, "nw_ttl": ttl}, goto=errors)
        for ttl in EXPIRING_TTLS
    )
    unrouted = table.flow(PRIO_NO_ROUTE, {"eth_type": ETH_TYPE_IPV4}, goto=errors)
    return frozenset({*expired, unrouted})


def network_flows(ctx: Context, view: View, network_id: str) -> frozenset[Flow]:
    """From each local port of a network that enters routing (a router interface on
    it), to the controller through the port's meter."""
    if network_id not in view.networks or not view.router_ids.get(network_id):
        return frozenset()
    table = ctx[ICMP_ERRORS.name]
    return frozenset(
        table.flow(PRIO_TO_CONTROLLER, {"in_port": p.ofport}, (to_controller(p.ofport),))
        for p in view.local_ports_of(network_id)
    )


def answer(ctx: Context, view: View, received: Received) -> Sequence[PacketOut]:
    """Answer a packet the router could not forward out of the port it came from (or
    not, with a reason)."""
    result = respond(view, received)
    OUTCOMES[result.reason] += 1
    log.debug("routed packet from ofport %d: %s", received.in_port, result.reason)
    return () if result.reply is None else (PacketOut(received.in_port, result.reply),)


MODULE = Module(
    "icmp_errors",
    doc="ICMP errors from routers: time exceeded for a routed packet whose TTL runs "
    "out, net unreachable for a destination in none of the router's subnets, from the "
    "router interface of the sender's subnet; the router's other addresses answer echo "
    "and UDP (port unreachable).",
    depends=("ingress",),
    tables=(ICMP_ERRORS,),
    base=base_flows,
    network=network_flows,
    watches=(LPORT, LOGNET, ROUTER_PREFIX),
    packet_ins=(
        PacketIn(
            ICMP_ERRORS.name,
            answer,
            rate=10.0,
            burst=20,
            doc="Routed packets the router cannot forward: a traceroute sends three "
            "probes per hop, a workload retries a dead destination now and then.",
        ),
    ),
)
