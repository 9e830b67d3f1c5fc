"""Module `nexthops`, table `neighbours`: static routes towards a next hop outside vlcp (a
host or a router on a VLAN or native network that no vlcp port holds the address of),
whose MAC the controller learns by ARP.

A route through a vlcp port is precomputed (`static_routes`). A next hop outside vlcp
has no MAC in the store, so this server's controller asks for it: it sends ARP requests
from the router interface's address out of the network's physical port (the agent's
`vlcp.agent.neighbours`, rate-limited, refreshed before the answer expires), and the
answers come back here. What it learned is in the view (`View.neighbours`), and routing
to the next hop is then one flow per route, like a route through a port.

Flows, all owned by the next hop's network (a learned MAC is a change of that network's
flows, `changes.PutNeighbour`), on a server that has the network's physical port:

- in `ingress`, per router interface on the network with an outside next hop: from the
  physical port, in the network's VLAN (none for native), an ARP reply for the
  interface's address -> into the network (tag popped, NETWORK, IN_KIND) and `goto
  neighbours`. In ingress rather than after the physical driver's classification: a
  server that sees the network only through a router has no classification for it
  (nothing is delivered into it there), yet it routes through the next hop;
- in `neighbours`, per next hop: `NETWORK, arp_spa=<next hop>` -> controller (the miss
  drops any other reply: only the next hops' answers to the router ever reach the
  controller; the switch has no meter for a physical port, so the agent's per-port
  limit, `PacketIn.rate`, bounds them);
- in `l3`, per route through a next hop whose MAC is known: `ROUTER, ipv4_dst=<cidr>`
  at `static_routes.PRIO_BASE + prefix length` -> MACs rewritten (the learned one as
  destination), TTL decremented (`l3.rewrite`), straight out of the network's physical
  port, tagged as the network's frames are (`physical.out_of_physical`): never to a
  local port, nor into another network.

The way out of vlcp is one such next hop: a router with an interface on an external
subnet has the default route through that subnet's gateway in the view (the agent's
`view_builder` adds it), so the data center's router is resolved and routed to alike.

While a next hop is unresolved, what its routes cover matches no route (answered net
unreachable by `icmp_errors`, or dropped by the `l3` miss), never flooded. The handler
learns only an ARP reply whose sender is a next hop of the network's routes and whose
target is the interface's address, with a unicast sender MAC; a malformed one is a
`BadPacket` (counted and logged, rate-limited, by the agent).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from vlcp.layout import LOGNET, LPORT, PHYSNET, PHYSPORT, REMOTES, SUBNET
from vlcp.layout import ROUTER as ROUTER_PREFIX
from vlcp.southbound.openflow.flow import Flow, controller, pop_vlan
from vlcp.typed import Typed, setting

from .arp import ARP_REPLY, ETH_TYPE_ARP
from .fields import NETWORK, InKind
from .gateway import ETH_TYPE_IPV4
from .ingress import INGRESS, PRIO_CLASSIFY, VLAN_PRESENT, enter
from .l3 import L3, rewrite
from .module import BadPacket, Context, Learned, Module, PacketIn, Received
from .physical import out_of_physical
from .static_routes import route
from .tables import Table
from .view import Network, Router, RouterInterface, View, ipv4

PRIO_REPLY = 100
PRIO_REPLIES = PRIO_CLASSIFY + 50
"""In `ingress`: above the physical drivers' classification, below its drops."""


@dataclass(frozen=True)
class Settings(Typed):
    """How the controller resolves next hops (`vlcp.agent.neighbours`)."""

    lifetime: float = setting(60.0, ge=2.0, le=86400.0)
    """Seconds an answer holds; it is refreshed from half of it, so a next hop that moved
    is re-resolved within half a lifetime."""
    retry: float = setting(1.0, ge=0.1, le=60.0)
    """Seconds between two requests for one next hop while it does not answer."""


# Declared after `ingress` (its entrance), and `arp_responder` and `l2_forward` only to
# come after every other table (as `gateway` is): no table id moves.

NEIGHBOURS = Table(
    "neighbours",
    after=("ingress", "arp_responder", "l2_forward"),
    matches={NETWORK, "eth_type", "arp_spa"},
    doc="ARP replies from next hops outside vlcp to a router interface, to the controller.",
)


@dataclass(frozen=True, slots=True)
class OutsideHop:
    """A next hop of a router's static routes that no vlcp port holds, in the subnet of
    one of its interfaces: what to ask by ARP, from where, and what it routes."""

    network: Network
    router: Router
    interface: RouterInterface
    ip: str
    destinations: tuple[str, ...]
    """The IPv4 CIDRs routed through it."""

    @property
    def key(self) -> tuple[str, str]:
        """Its key in `View.neighbours`."""
        return self.network.id, self.ip


def outside_hops(view: View, network_id: str) -> Iterator[OutsideHop]:
    """The outside next hops this server resolves and routes to itself: on a vlan or
    native network it has the physical port of (elsewhere it could neither ask nor reach
    them), unless another server forwards for the network (module `external`)."""
    network = view.networks.get(network_id)
    forwarder = view.forwarders.get(network_id)
    if network is None or view.physical_port(network) is None:
        return
    if forwarder is not None and not forwarder.here:
        return
    yield from routes_out(view, network_id)


def routes_out(view: View, network_id: str) -> Iterator[OutsideHop]:
    """The outside next hops of a network's routers (addresses in an interface's subnet
    that no vlcp port holds), wherever this server is."""
    network = view.networks.get(network_id)
    if network is None:
        return
    for router_id in sorted(view.router_ids.get(network_id, ())):
        router = view.routers[router_id]
        for interface in router.interfaces:
            if interface.network != network_id:
                continue
            hops = sorted({hop for _, hop in router.routes if interface.holds(hop)})
            for hop in hops:
                if ipv4(hop) is None or hop == interface.ip or view.holder(network_id, hop):
                    continue
                destinations = tuple(
                    d for d in router.routes_via(hop) if ipaddress.ip_network(d).version == 4
                )
                yield OutsideHop(network, router, interface, hop, destinations)


def all_outside_hops(view: View) -> list[OutsideHop]:
    """Every outside next hop of the view (what the agent resolves)."""
    return [hop for network_id in sorted(view.router_ids) for hop in outside_hops(view, network_id)]


def network_flows(ctx: Context, view: View, network_id: str) -> frozenset[Flow]:
    ingress, neighbours, l3 = ctx[INGRESS.name], ctx[NEIGHBOURS.name], ctx[L3.name]
    flows: set[Flow] = set()
    for hop in outside_hops(view, network_id):
        network = hop.network
        physical = view.physical_port(network)
        assert physical is not None  # `outside_hops` only yields those
        tagged = network.type == "vlan" and network.tag is not None
        entrance = {
            "in_port": physical,
            "vlan_vid": VLAN_PRESENT | network.tag if tagged else 0,
            "eth_type": ETH_TYPE_ARP,
            "arp_op": ARP_REPLY,
            "arp_tpa": hop.interface.ip,
        }
        into = enter(network, InKind.PHYSICAL, *((pop_vlan(),) if tagged else ()))
        flows.add(ingress.flow(PRIO_REPLIES, entrance, into, goto=neighbours))
        reply = {NETWORK: network.number, "eth_type": ETH_TYPE_ARP, "arp_spa": hop.ip}
        flows.add(neighbours.flow(PRIO_REPLY, reply, (controller(),)))
        mac = view.neighbours.get(hop.key)
        if mac is None:
            continue
        actions = (*rewrite(hop.interface, mac), *out_of_physical(hop.network, physical))
        flows.update(route(l3, hop.router, d, actions) for d in hop.destinations)
    return frozenset(flows)


_ETHERNET = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def learn(ctx: Context, view: View, received: Received) -> Sequence[Learned]:
    """An ARP reply from an outside next hop: its MAC, learned for its network."""
    data = received.data
    if len(data) < _ETHERNET.size + _ARP.size:
        raise BadPacket(f"ARP reply of {len(data)} bytes")
    _, _, ethertype = _ETHERNET.unpack_from(data)
    hw, proto, hlen, plen, op, sha, spa, _, tpa = _ARP.unpack_from(data, _ETHERNET.size)
    if (ethertype, hw, proto, hlen, plen, op) != (ETH_TYPE_ARP, 1, ETH_TYPE_IPV4, 6, 4, ARP_REPLY):
        raise BadPacket(f"not an Ethernet/IPv4 ARP reply (type {ethertype:#x}, op {op})")
    if sha[0] & 1 or sha == bytes(6):
        raise BadPacket(f"ARP reply with sender MAC {_mac(sha)}")
    sender, target = str(ipaddress.IPv4Address(spa)), str(ipaddress.IPv4Address(tpa))
    network = next((n for n in view.networks.values() if n.number == received.network), None)
    if network is None:
        return ()
    for hop in outside_hops(view, network.id):
        if (hop.ip, hop.interface.ip) == (sender, target):
            return (Learned(network.id, sender, _mac(sha)),)
    return ()


MODULE = Module(
    "nexthops",
    doc="Static routes through next hops outside vlcp (hosts or routers on a VLAN or "
    "native network), whose MACs the controller learns by ARP.",
    depends=("ingress",),
    tables=(NEIGHBOURS,),
    network=network_flows,
    watches=(LPORT, LOGNET, *REMOTES, SUBNET, ROUTER_PREFIX, PHYSNET, PHYSPORT),
    settings=Settings,
    packet_ins=(
        PacketIn(
            NEIGHBOURS.name,
            learn,
            rate=10.0,
            burst=20,
            doc="ARP replies from next hops: one per request the controller sends (at "
            "most one a second per next hop while unresolved, then one per refresh).",
        ),
    ),
)
