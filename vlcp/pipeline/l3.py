"""Module `l3`, table `l3`: distributed routing between the subnets of a router, on the
source server.

Every server routes its own ports' traffic itself: the first hop never leaves the source
server for a central router, and the controller is not on the path. Every port's address
and MAC are known from the store, so the whole route is precomputed (no ARP towards
vlcp ports): the view holds, besides the networks of this server's ports, the other
networks of the routers attached to them, with their remote ports (`View.routers`).

A frame from a local port to its gateway MAC (= the router interface's MAC, `gateway_mac`)
is steered to table `gateway` by the gateway module (which still answers ARP and echo for
the gateway address there, above these flows); then:

- in `gateway`, per network with a local port and router interface on it: IPv4 to the
  interface MAC -> ROUTER := the router's number, `goto l3`;
- in `l3`, per port (local or remote) whose IPv4 address is in a subnet of a router:
  `ROUTER, ipv4_dst=<its address>` -> eth_src := that subnet's interface MAC, eth_dst :=
  the port's MAC, `dec_ttl` (at TTL 0 or 1 the packet is dropped on the switch: no
  controller named; module `icmp_errors` takes such packets first, on `nw_ttl`, to
  answer them), NETWORK := the port's network, `resubmit(,l2_forward)`, which
  delivers to the local port, or through the tunnel or the physical port to the
  port's server, as for any frame of that network;
- anything else in `l3` (an address no port of the router's subnets holds) is dropped
  by the table's miss (or answered by `icmp_errors`, when loaded).

ROUTER keeps tenants apart: a frame enters routing only from its own network's
interface, and only that router's ports match. Spoofed sources never get here
(`port_security` drops them before `arp_responder`).

Table `l3` comes after `gateway` (its entrance) and `ingress` (where module `external`
routes what comes in from outside), so it takes the next id and no table moves; it
continues into `l2_forward`, an earlier table, with a resubmit (a goto may only go
forward). Frames reach it through the gateway module's steering, and hosts
find the router by ARP for their gateway, answered there: with `gateway` unloaded,
nothing is routed (these flows stay, unreached). It does not declare `gateway` as a
dependency so that the gateway can still be unloaded alone, as before.
"""

from __future__ import annotations

from vlcp.layout import LOGNET, LPORT, REMOTES, SUBNET
from vlcp.layout import ROUTER as ROUTER_PREFIX
from vlcp.southbound.openflow.flow import Action, Flow, dec_ttl, resubmit, set_field

from .fields import NETWORK, ROUTER
from .gateway import ETH_TYPE_IPV4, GATEWAY
from .l2 import L2_FORWARD
from .module import Context, Module
from .tables import Table
from .view import Network, RouterInterface, View, ipv4

PRIO_ENTER = 50
"""In `gateway`: below its echo answers for the gateway address (`gateway.PRIO_REPLY`)."""
PRIO_ROUTE = 100

L3 = Table(
    "l3",
    after=("gateway", "ingress"),
    matches={ROUTER, "eth_type", "ipv4_dst", "nw_ttl"},
    doc="IPv4 routed by the ROUTER register to a port of one of the router's subnets: "
    "MACs rewritten, TTL decremented, NETWORK set, on to l2_forward.",
)


def network_flows(ctx: Context, view: View, network_id: str) -> frozenset[Flow]:
    """IPv4 from this network's local ports to a router interface's MAC enters routing
    by that router (one flow per interface; one router per MAC, the lowest id)."""
    network = view.networks.get(network_id)
    if network is None or not view.has_local_ports(network_id):
        return frozenset()
    entries: dict[str, int] = {}
    for router_id in sorted(view.router_ids.get(network_id, ())):
        router = view.routers[router_id]
        for interface in router.interfaces:
            if interface.network == network_id:
                entries.setdefault(interface.mac, router.number)
    table, goto = ctx[GATEWAY.name], ctx[L3.name]
    return frozenset(
        table.flow(
            PRIO_ENTER,
            {NETWORK: network.number, "eth_dst": mac, "eth_type": ETH_TYPE_IPV4},
            (ROUTER.load(number),),
            goto=goto,
        )
        for mac, number in entries.items()
    )


def _route(
    ctx: Context, view: View, network_id: str, address: str | None, mac: str
) -> frozenset[Flow]:
    """The route to one port: its address, on the router of its subnet."""
    network = view.networks.get(network_id)
    address = ipv4(address)
    found = view.route_to(network_id, address)
    if network is None or address is None or found is None:
        return frozenset()
    router, interface = found
    match = {ROUTER: router.number, "eth_type": ETH_TYPE_IPV4, "ipv4_dst": address}
    actions = deliver(ctx, network, interface, mac)
    return frozenset({ctx[L3.name].flow(PRIO_ROUTE, match, actions)})


def deliver(
    ctx: Context, network: Network, interface: RouterInterface, mac: str
) -> tuple[Action, ...]:
    """Out of a router interface to `mac` in its network: the hop's rewrite and that
    network's forwarding. Every route to a vlcp port ends so, whatever chose the MAC."""
    return (
        *rewrite(interface, mac),
        NETWORK.load(network.number),
        resubmit(ctx[L2_FORWARD.name].id),
    )


def rewrite(interface: RouterInterface, mac: str) -> tuple[Action, ...]:
    """One router hop: from the interface's MAC to `mac`, TTL one less (at TTL 0 or 1
    the packet is dropped on the switch)."""
    return (*set_field(eth_src=interface.mac, eth_dst=mac), dec_ttl())


def port_flows(ctx: Context, view: View, port_id: str) -> frozenset[Flow]:
    port = view.ports.get(port_id)
    return frozenset() if port is None else _route(ctx, view, port.network, port.ip, port.mac)


def remote_flows(ctx: Context, view: View, remote_id: str) -> frozenset[Flow]:
    remote = view.remote(remote_id)
    if remote is None:
        return frozenset()
    return _route(ctx, view, remote.network, remote.ip, remote.mac)


MODULE = Module(
    "l3",
    doc="Routes IPv4 between the subnets of a router on the source server: MACs "
    "rewritten, TTL decremented, into the destination network's forwarding.",
    depends=("ingress", "l2_forward"),
    tables=(L3,),
    port=port_flows,
    network=network_flows,
    remote=remote_flows,
    watches=(LPORT, LOGNET, *REMOTES, SUBNET, ROUTER_PREFIX),
)
