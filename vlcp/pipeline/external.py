"""Module `external`: the way back in from an external network, and forwarding servers.

A router with an interface on an external subnet (`isexternal`, on a VLAN or native
physical network) routes out by default through that subnet's gateway (module
`nexthops`). Of all the servers that have the network's physical link, one only talks
to the physical network for it: its forwarding server, elected by every controller from
the same store data (`vlcp.agent.forwarding.elect`, in `View.forwarders`), so that a
router's external MAC is on one switch port of the data center, never flapping between
servers. The others send their routed traffic out through it, over the overlay, and it
routes what comes in to the tenants' ports, wherever they are.

Flows, all owned by the external network, on the forwarding server (with the physical
port), per router interface on the network:

- in `ingress`, an ARP request from the physical port (in the network's VLAN) for the
  interface's address -> the reply "at the interface's MAC" built in place, back out of
  the physical port (`arp.reply_actions`: the tag stays);
- in `ingress`, IPv4 from the physical port to the interface's MAC -> into the network
  (tag popped), ROUTER := the router's number, in_port := none (it may leave by the
  physical port it came in on, to a vlan network's port on another server), `goto l3`:
  routed like a tenant's packet
  (`l3`'s routes to the router's ports: TTL one less, MACs rewritten, delivered in the
  port's network, through the tunnel or the physical port to its server). Only that
  router's ports match: two tenants with the same addresses are two routers, each with
  its own external address and MAC;
- in `ingress`, per server routing for the router (those with ports in its networks):
  from the tunnel, VNI 0 (no network's: the model gives VNIs from 1), that server's
  underlay address, to the interface's MAC -> ROUTER, `goto l3`, where the way out
  (`nexthops`) takes it.

On every other server that routes for the router (with the physical link or not), per
route through an outside next hop of the network (the default route through the
external gateway): in `l3`, at that route's priority (`static_routes.PRIO_BASE` + prefix
length), `ROUTER, ipv4_dst` -> destination MAC := the router's external MAC, VNI 0,
through the tunnel to the forwarding server, unrouted (TTL unchanged: the forwarding
server routes it, one hop). `nexthops` leaves such a network to this module there (it
neither asks nor routes).

Without a forwarding server (none alive and eligible), each server with the physical
link goes out itself (`nexthops`), and nothing answers from outside.
"""

from __future__ import annotations

import ipaddress

from vlcp.layout import CHASSIS, LOGNET, PHYSNET, PHYSPORT, REMOTES, SUBNET
from vlcp.layout import ROUTER as ROUTER_PREFIX
from vlcp.southbound.openflow.flow import Action, Flow, output, pop_vlan, set_field

from .arp import ARP_REQUEST, ETH_TYPE_ARP, reply_actions
from .fields import ROUTER, InKind
from .gateway import ETH_TYPE_IPV4
from .ingress import INGRESS, VLAN_PRESENT, enter
from .l3 import L3
from .module import Context, Module
from .nexthops import PRIO_REPLIES, routes_out
from .static_routes import route
from .view import Network, Router, View

TRANSIT_VNI = 0
"""The tunnel key of routed packets on their way to a forwarding server: no network's
(vxlan networks take VNIs from 1), so they never enter a network by the tunnel ingress."""
FROM_NO_PORT = Action.make("nx_reg_load", field="in_port", value=0, ofs=0, n_bits=32)
"""What comes in from the physical port is routed as if from no port (0: OVS lets a
Nicira load write `in_port`, not an OpenFlow set-field), so that it may leave by the
port it came in on (to a vlan network's port on another server), which OpenFlow never
outputs to otherwise."""
PRIO_ENTER = PRIO_REPLIES
"""In `ingress`: above the drivers' classification, beside `nexthops`' ARP replies (other
`arp_op` or `eth_type`)."""


def _vlan(network: Network) -> int:
    """The `vlan_vid` of the network's frames on its physical port."""
    return VLAN_PRESENT | network.tag if network.type == "vlan" and network.tag is not None else 0


def _senders(view: View, router: Router, network_id: str) -> list[str]:
    """The servers that route for a router (they have ports in its networks): they may
    send its packets out through the forwarding server."""
    vteps = {v for n in router.networks - {network_id} for v in view.peer_vteps(n)}
    return sorted(vteps, key=ipaddress.IPv4Address)


def _forwarding(ctx: Context, view: View, network: Network) -> set[Flow]:
    """On the forwarding server: ARP answered and the way in, from the physical port and
    from the other servers."""
    physical = view.physical_port(network)
    if physical is None:
        return set()
    ingress, l3 = ctx[INGRESS.name], ctx[L3.name]
    tunnel = view.tunnel_ofport
    vlan = _vlan(network)
    untag = (pop_vlan(),) if vlan else ()
    flows: set[Flow] = set()
    for router, interface in view.external_interfaces(network.id):
        asked = {
            "in_port": physical,
            "vlan_vid": vlan,
            "eth_type": ETH_TYPE_ARP,
            "arp_op": ARP_REQUEST,
            "arp_tpa": interface.ip,
        }
        flows.add(ingress.flow(PRIO_ENTER, asked, reply_actions(interface.mac, interface.ip)))
        routed = (ROUTER.load(router.number),)
        inbound = {
            "in_port": physical,
            "vlan_vid": vlan,
            "eth_dst": interface.mac,
            "eth_type": ETH_TYPE_IPV4,
        }
        into = (*enter(network, InKind.PHYSICAL, *untag), *routed, FROM_NO_PORT)
        flows.add(ingress.flow(PRIO_ENTER, inbound, into, goto=l3))
        for vtep in _senders(view, router, network.id) if tunnel is not None else ():
            transit = {
                "in_port": tunnel,
                "tunnel_id": TRANSIT_VNI,
                "tun_ipv4_src": vtep,
                "eth_dst": interface.mac,
                "eth_type": ETH_TYPE_IPV4,
            }
            into = (*enter(network, InKind.TUNNEL), *routed)
            flows.add(ingress.flow(PRIO_ENTER, transit, into, goto=l3))
    return flows


def _through(ctx: Context, view: View, network: Network, vtep: str) -> set[Flow]:
    """On another server: the routes out through the network's outside next hops, to
    the forwarding server at `vtep`."""
    tunnel = view.tunnel_ofport
    if tunnel is None:
        return set()
    l3 = ctx[L3.name]
    flows: set[Flow] = set()
    for hop in routes_out(view, network.id):
        actions = (
            *set_field(eth_dst=hop.interface.mac, tunnel_id=TRANSIT_VNI, tun_ipv4_dst=vtep),
            output(tunnel),
        )
        flows.update(route(l3, hop.router, d, actions) for d in hop.destinations)
    return flows


def network_flows(ctx: Context, view: View, network_id: str) -> frozenset[Flow]:
    network = view.networks.get(network_id)
    forwarder = view.forwarders.get(network_id)
    if network is None or forwarder is None:
        return frozenset()
    if forwarder.here:
        return frozenset(_forwarding(ctx, view, network))
    return frozenset(_through(ctx, view, network, forwarder.vtep))


MODULE = Module(
    "external",
    doc="The way back in from external networks and their forwarding servers: the elected "
    "server answers ARP for the routers' external addresses and routes inbound traffic; "
    "the others send their traffic out through it, over the overlay.",
    depends=("ingress",),
    network=network_flows,
    watches=(LOGNET, *REMOTES, SUBNET, ROUTER_PREFIX, PHYSNET, PHYSPORT, CHASSIS),
)
