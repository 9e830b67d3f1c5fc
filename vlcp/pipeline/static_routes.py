"""Module `static_routes`, in table `l3`: a router's static routes towards a next hop that
is a vlcp port (an appliance such as a firewall VM), on the source server.

A route `[cidr, nexthop]` sends what the router would route to `cidr` to the next hop
instead: the next hop must be in one of the router's subnets, and when a port (local or
remote) of that subnet holds its address, its MAC is known from the store, so the route
is one precomputed flow, like the router's routes to its own ports (module `l3`):

- in `l3`, per route through the port: `ROUTER, ipv4_dst=<cidr>` -> eth_src := the
  interface's MAC, eth_dst := the next hop's MAC, `dec_ttl`, NETWORK := the next hop's
  network, `resubmit(,l2_forward)` (`l3.deliver`).

The flows are the next hop port's (owner `port` or `remote`): a route through a port that
does not exist, or is in no subnet of the router, routes nothing; when the port goes, or
moves, or the route is removed, its flow goes with it (`changes` recomputes the next
hops of a router whose routes changed).

Longest prefix wins through the priority: `PRIO_BASE + prefix length`, all below the
router's routes to its own ports (`l3.PRIO_ROUTE`), so a port of an attached subnet is
always reached directly (a router's connected subnets win over its static routes, as a
host's do when the route is no longer than the subnet; a static route into an attached
subnet reaches only its addresses that no port holds). Two routes for one destination
through two next hops: both flows exist at one priority, and which one OpenFlow picks is
undefined (the model lets a user store it; the API documents it as an error of use).
Only IPv4 is routed.

Frames reach these flows through `l3`'s entries into its table: with `l3` unloaded they
stay, unreached. The module does not declare `l3` as a dependency, so that `l3` can still
be unloaded alone (as `l3` does not declare `gateway`).
"""

from __future__ import annotations

import ipaddress

from vlcp.layout import LOGNET, LPORT, REMOTES, SUBNET
from vlcp.layout import ROUTER as ROUTER_PREFIX
from vlcp.southbound.openflow.flow import Action, Flow

from .fields import ROUTER
from .gateway import ETH_TYPE_IPV4
from .l3 import L3, PRIO_ROUTE, deliver
from .module import Context, Module
from .port_security import prefix_match
from .tables import BoundTable
from .view import LocalPort, RemotePort, Router, View, ipv4

PRIO_BASE = PRIO_ROUTE - 40
"""A /0 route's priority; a /32's is PRIO_BASE + 32, still below `l3.PRIO_ROUTE`."""


def _routes(ctx: Context, view: View, hop: LocalPort | RemotePort | None) -> frozenset[Flow]:
    """The routes through one port (local or remote), one flow each."""
    if hop is None:
        return frozenset()
    network_id, address = hop.network, ipv4(hop.ip)
    network = view.networks.get(network_id)
    if network is None or address is None or hop.mac is None:
        return frozenset()
    table = ctx[L3.name]
    flows: set[Flow] = set()
    for router_id in sorted(view.router_ids.get(network_id, ())):
        router = view.routers[router_id]
        for interface in router.interfaces:
            if interface.network != network_id or not interface.holds(address):
                continue
            actions = deliver(ctx, network, interface, hop.mac)
            for destination in router.routes_via(address):
                if ipaddress.ip_network(destination).version == 4:
                    flows.add(route(table, router, destination, actions))
    return frozenset(flows)


def route(table: BoundTable, router: Router, destination: str, actions: tuple[Action, ...]) -> Flow:
    """The flow of one static route (IPv4) of a router, in `l3`: longest prefix first by
    priority. Every static route is one, whatever its next hop (`nexthops`, `external`)."""
    prefix = ipaddress.ip_network(destination)
    match = {ROUTER: router.number, "eth_type": ETH_TYPE_IPV4}
    value = prefix_match(prefix)
    if value is not None:
        match["ipv4_dst"] = value
    return table.flow(PRIO_BASE + prefix.prefixlen, match, actions)


def port_flows(ctx: Context, view: View, port_id: str) -> frozenset[Flow]:
    return _routes(ctx, view, view.ports.get(port_id))


def remote_flows(ctx: Context, view: View, remote_id: str) -> frozenset[Flow]:
    return _routes(ctx, view, view.remote(remote_id))


MODULE = Module(
    "static_routes",
    doc="A router's static routes through a next hop that is a vlcp port: longest prefix "
    "first, MACs rewritten, TTL decremented, into the next hop's network.",
    depends=("ingress", "l2_forward"),
    port=port_flows,
    remote=remote_flows,
    watches=(LPORT, LOGNET, *REMOTES, SUBNET, ROUTER_PREFIX),
)
