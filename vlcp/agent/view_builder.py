"""This server's pipeline `View`, from the store mirror and the bridge's ports.

Only this server's endpoints pull things in: a logical port is local when an interface
of the integration bridge carries its id; its network comes with it, and so do the other
ports of that network that other servers announce under `netports/<network>/` and the
MACs hardware VTEP switches learned in it (`vtep-macs/<network>/`, whose VTEP is the
switch's tunnel IP: frames to them, and floods, go to the switch), and the network's
subnets (`subnet/<id>`, followed when a known module watches them). So do the routers
with an interface on one of those subnets (`router/<id>`), and the networks of their
other interfaces, with their remote endpoints and their subnets: this server routes its
own ports' packets to them (module `l3`). Not further: a router attached only to such a
network is not this server's.

`build_view` says what the view is, from scratch. `LocalView` keeps it up to date from
the store keys and bridge ports that changed, at the cost of what they touch: a new port
costs its port, and its network when it is the network's first local port, never a pass
over every port of the server. Tests check that both always agree.

An object the pipeline refuses (a bad MAC address in the store, say) is logged and left
out of the view, alone: the rest of the server keeps being served. (A port left out has
no flows, so its VIF's frames are dropped: bad allowed address pairs fail closed.)

Migration: when one logical port is plugged on two servers, the newest binding wins.
Each server announces its binding with its date (`binding.BOUND_AT`) under the port's
single `netports/` key; a server whose own binding is older than the one announced there
by another server yields: the port is not local to it any more, it is the other
server's remote port, and its announcement (taken over by the winner) is left alone.
When the winner's binding goes, the key goes with it and the older binding serves again.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from vlcp.layout import (
    CHASSIS,
    LOGNET,
    LPORT,
    PHYSNET,
    PHYSPORT,
    REMOTES,
    ROUTER,
    SUBNET,
    netports_key,
    network_scope,
    port_scope,
    split_remote_key,
)
from vlcp.pipeline.changes import (
    Change,
    DropNetwork,
    DropPort,
    DropRemote,
    DropRouter,
    DropSubnet,
    PutNetwork,
    PutPort,
    PutRemote,
    PutRouter,
    PutSubnet,
    SetForwarder,
    SetPhysicalPort,
    SetTunnel,
    apply_all,
)
from vlcp.pipeline.gateway import gateway_mac
from vlcp.pipeline.view import (
    AddressPair,
    DhcpFields,
    DhcpOption,
    Forwarder,
    LocalPort,
    Network,
    Owner,
    RemotePort,
    Router,
    RouterInterface,
    Subnet,
    View,
    extra_dhcp_options,
    network_numbers,
)

from .binding import OvsPort, bound_ports
from .forwarding import elect, forwards_on
from .mirror import Mirror

log = logging.getLogger(__name__)
T = TypeVar("T")

TUNNEL_PORT = "vxlan0"
"""The VXLAN port the agent keeps on its bridge (remote_ip=flow, key=flow)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who this server is in the store and on the underlay."""

    system_id: str
    bridge: str
    vtep: str | None


# ---------------------------------------------------------------- one object at a time


def _valid(what: str, make: Callable[[], T]) -> T | None:
    """`make()`, or None (logged) when the pipeline refuses the object's data."""
    try:
        return make()
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring %s: %s", what, exc)
        return None


def _local_port(
    values: Mapping[str, Any], port_id: str, ovs: OvsPort | None, me: Identity
) -> LocalPort | None:
    lport = values.get(f"{LPORT}{port_id}")
    if ovs is None or ovs.bound_at is None or lport is None:
        return None  # not plugged (or dated) here, or the interface came before the port
    port = _valid(
        f"logical port {port_id}",
        lambda: LocalPort(
            id=port_id,
            network=lport["logicalnetwork"],
            ofport=ovs.ofport,
            mac=lport["mac_address"],
            ip=lport.get("ip_address"),
            allowed=_pairs(lport.get("allowed_address_pairs"), lport["mac_address"]),
            subnet=lport.get("subnet"),
            hostname=lport.get("hostname"),
            dhcp_extra=_dhcp_extra(port_id, lport),
        ),
    )
    if port is not None and _superseded(values.get(netports_key(port.network, port_id)), ovs, me):
        return None
    return port


def _pairs(stored: Any, port_mac: str) -> tuple[AddressPair, ...]:
    """A port's allowed address pairs; a pair without a MAC is sent from the port's."""
    return tuple(
        AddressPair(pair["ip_address"], pair.get("mac_address") or port_mac)
        for pair in stored or ()
    )


def _superseded(announced: Any, ovs: OvsPort, me: Identity) -> bool:
    """Whether another server announces a newer binding of the port (ties: larger id)."""
    if not announced or announced.get("host") == me.system_id:
        return False
    theirs = (announced.get("bound_at") or 0.0, str(announced.get("host")))
    return theirs > (ovs.bound_at or 0.0, me.system_id)


def _network(values: Mapping[str, Any], network_id: str, number: int) -> Network | None:
    lognet = values.get(f"{LOGNET}{network_id}")
    if lognet is None:
        return None
    physnet = values.get(f"{PHYSNET}{lognet.get('physicalnetwork')}")
    if physnet is None:
        return None

    def make() -> Network:
        kind = physnet["type"]
        tag = {"vlan": lognet.get("vlanid"), "vxlan": lognet.get("vni")}.get(kind)
        physnet_id = lognet["physicalnetwork"]
        dhcp = _dhcp_fields(f"logical network {network_id}", lognet)
        return Network(network_id, kind, number, tag=tag, physnet=physnet_id, dhcp=dhcp)

    return _valid(f"logical network {network_id}", make)


def _subnet(subnet_id: str, stored: Any) -> Subnet | None:
    return _valid(
        f"subnet {subnet_id}",
        lambda: Subnet(
            subnet_id,
            stored["logicalnetwork"],
            stored["cidr"],
            gateway=stored.get("gateway"),
            host_routes=tuple((dst, hop) for dst, hop in stored.get("host_routes") or ()),
            dhcp=_dhcp_fields(f"subnet {subnet_id}", stored),
        ),
    )


def _dhcp_fields(owner: str, stored: Mapping[str, Any]) -> DhcpFields:
    """An object's DHCP settings; bad ones are logged and left out, never the object
    (a wrong DNS server must not cut a network's forwarding)."""
    return _valid(f"DHCP settings of {owner}", lambda: DhcpFields.of(stored)) or DhcpFields()


def _dhcp_extra(port_id: str, lport: Mapping[str, Any]) -> tuple[DhcpOption, ...]:
    """A port's extra DHCP options; bad ones are logged and left out, not the port."""
    stored = lport.get("extra_dhcp_options")
    what = f"extra DHCP options of logical port {port_id}"
    return _valid(what, lambda: extra_dhcp_options(stored)) or ()


def _remote(network_id: str, port_id: str, entry: Any, me: Identity) -> RemotePort | None:
    if entry.get("host") == me.system_id or not entry.get("vtep"):
        return None  # ours, or a server without a tunnel endpoint (vlan only)
    return _valid(
        f"port {port_id} announced in {network_id}",
        lambda: RemotePort(port_id, network_id, _remote_mac(entry), entry["vtep"], entry.get("ip")),
    )


def _remote_mac(entry: Any) -> str | None:
    """A remote endpoint's MAC: a server's port has one; a hardware switch's flood entry
    (`layout.vtep_flood`) has none."""
    return entry.get("mac") if entry.get("switch") else entry["mac"]


class Attached(NamedTuple):
    """A router as this server sees it, before routers are numbered."""

    interfaces: tuple[RouterInterface, ...]
    routes: tuple[tuple[str, str], ...]
    """Its static routes, as stored (module `static_routes`)."""


DEFAULT_ROUTE = "0.0.0.0/0"
Interfaces = dict[str, Attached]
"""Router id -> its interfaces and routes, before routers are numbered."""


def _attached_routers(mirror: Mirror, networks: Iterable[str]) -> Interfaces:
    """The routers with an interface on a subnet of these networks (this server's own),
    each with its interfaces whose subnets are known and valid."""
    found: Interfaces = {}
    for network in networks:
        for subnet_id in mirror.subnets_of(network):
            for router_id in mirror.routers_on(subnet_id):
                if router_id not in found:
                    found[router_id] = Attached(
                        _interfaces(mirror, router_id), _static_routes(mirror, router_id)
                    )
    return found


def _static_routes(mirror: Mirror, router_id: str) -> tuple[tuple[str, str], ...]:
    """A router's static routes as stored (the model checked them; `Router` refuses a
    bad one, and the router with it), and, unless they have one, the default route
    through the gateway of its external subnet (the first by id with a gateway): the way
    out of vlcp (module `nexthops` resolves that gateway by ARP)."""
    stored = mirror.get(f"{ROUTER}{router_id}")
    routes = [tuple(route) for route in stored.get("routes") or ()]
    if any(route[:1] == (DEFAULT_ROUTE,) for route in routes):
        return tuple(routes)
    for subnet_id in sorted(i.get("subnet") for i in _entries(stored)):
        subnet = mirror.get(f"{SUBNET}{subnet_id}")
        gateway = subnet.get("gateway") if subnet is not None else None
        if subnet is not None and subnet.get("isexternal") and _is_address(gateway):
            return (*routes, (DEFAULT_ROUTE, gateway))
    return tuple(routes)


def _is_address(value: Any) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _entries(stored: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A stored router's interfaces that name a subnet (bad data is left out)."""
    entries = stored.get("interfaces") or ()
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("subnet"), str)]


def _interfaces(mirror: Mirror, router_id: str) -> tuple[RouterInterface, ...]:
    """A router's interfaces, with their subnet's network and CIDR and the subnet's
    gateway MAC; one with bad data is logged and left out, alone."""
    found = []
    for entry in _entries(mirror.get(f"{ROUTER}{router_id}")):
        subnet_id = entry["subnet"]
        subnet = mirror.get(f"{SUBNET}{subnet_id}")
        if subnet is None:
            continue
        what = f"interface of router {router_id} on subnet {subnet_id}"
        make = functools.partial(_interface, router_id, subnet_id, subnet, entry)
        interface = _valid(what, make)
        if interface is not None:
            found.append(interface)
    return tuple(found)


def _interface(
    router_id: str, subnet_id: str, subnet: Mapping[str, Any], entry: Any
) -> RouterInterface:
    """An interface; on an external subnet, where several routers (one per tenant) meet,
    each router has a MAC of its own there, else the subnet's gateway MAC."""
    external = bool(subnet.get("isexternal"))
    owner = f"{subnet_id}/{router_id}" if external else subnet_id
    return RouterInterface(
        subnet_id,
        subnet["logicalnetwork"],
        subnet["cidr"],
        entry["ip_address"],
        gateway_mac(owner),
        external=external,
    )


def _routed_networks(routers: Interfaces) -> set[str]:
    return {i.network for attached in routers.values() for i in attached.interfaces}


def _routers(routers: Interfaces) -> dict[str, Router]:
    """Routers numbered (a function of the set of ids, like networks); a router the
    pipeline refuses is logged and left out."""
    numbers = network_numbers(routers)
    found = {}
    for router_id, (interfaces, routes) in routers.items():
        make = functools.partial(Router, router_id, numbers[router_id], interfaces, routes)
        router = _valid(f"router {router_id}", make)
        if router is not None:
            found[router_id] = router
    return found


Chassis = dict[str, Any]
"""System id -> its `chassis/` presence value: the live servers."""


def _physnet_of(mirror: Mirror, network_id: str) -> str | None:
    lognet = mirror.get(f"{LOGNET}{network_id}")
    return lognet.get("physicalnetwork") if isinstance(lognet, dict) else None


def _external_candidates(mirror: Mirror, chassis: Chassis, me: Identity) -> frozenset[str]:
    """The networks with an external subnet, if this server links any physical network:
    it may be elected to forward for them, which their objects (their physical network)
    tell, so a scoped mirror must follow them even with no port of this server on them."""
    if not forwards_on(chassis.get(me.system_id)):
        return frozenset()
    return frozenset(
        network_id
        for network_id, subnets in mirror.subnets.items()
        if any(s.get("isexternal") for s in subnets.values())
    )


def _forwarded_networks(
    mirror: Mirror, chassis: Chassis, me: Identity, candidates: frozenset[str]
) -> frozenset[str]:
    """The external networks (of `candidates`) this server is elected to forward for
    (`forwarding.elect`): it routes for every router on them, not only for its own
    ports' (the way in)."""
    physnets = forwards_on(chassis.get(me.system_id))
    mine = {p for p in physnets if (elect(chassis, p) or ("",))[0] == me.system_id}
    if not mine:
        return frozenset()
    return frozenset(n for n in candidates if _physnet_of(mirror, n) in mine)


def _forwarders(
    mirror: Mirror, chassis: Chassis, routers: Mapping[str, Router], me: Identity
) -> dict[str, Forwarder]:
    """The forwarding server of each external network the routers join."""
    found = {}
    for router in routers.values():
        for interface in router.interfaces:
            physnet = _physnet_of(mirror, interface.network) if interface.external else None
            elected = elect(chassis, physnet) if physnet is not None else None
            if elected is not None:
                system_id, vtep = elected
                make = functools.partial(Forwarder, vtep, here=system_id == me.system_id)
                forwarder = _valid(f"forwarding server {system_id}", make)
                if forwarder is not None:
                    found[interface.network] = forwarder
    return found


def _chassis(values: Mapping[str, Any]) -> Chassis:
    return {k.removeprefix(CHASSIS): v for k, v in values.items() if k.startswith(CHASSIS)}


def _physical_ports(
    candidates: Iterable[Any],
    physnets: Iterable[str],
    ports: Mapping[str, OvsPort],
    me: Identity,
) -> dict[str, int]:
    """Physical network -> ofport, by the most specific physical-port object that applies."""
    candidates = list(candidates)
    found: dict[str, int] = {}
    for physnet in physnets:
        best = _most_specific(candidates, physnet, me)
        if best is not None and best.get("name") in ports:
            found[physnet] = ports[best["name"]].ofport
    return found


def linked_physnets(mirror: Mirror, ports: Mapping[str, OvsPort], me: Identity) -> frozenset[str]:
    """The physical networks this server's bridge has a port of (whatever its view)."""
    candidates = mirror.physports.values()
    physnets = {p.get("physicalnetwork") for p in candidates} - {None}
    return frozenset(_physical_ports(candidates, physnets, ports, me))


def _most_specific(candidates: list[Any], physnet: str, me: Identity) -> Any:
    order = [(me.system_id, me.bridge), (me.system_id, "%"), ("%", me.bridge), ("%", "%")]
    for systemid, bridge in order:
        for port in candidates:
            if (
                port.get("physicalnetwork") == physnet
                and port.get("systemid", "%") == systemid
                and port.get("bridge", "%") == bridge
            ):
                return port
    return None


def _tunnel(ports: Mapping[str, OvsPort]) -> int | None:
    return ports[TUNNEL_PORT].ofport if TUNNEL_PORT in ports else None


# ---------------------------------------------------------------- from scratch


def build_view(values: Mapping[str, Any], ports: Mapping[str, OvsPort], me: Identity) -> View:
    """The view of one server, from mirrored store values and its bridge's ports."""
    local = {}
    for port_id, ovs_port in bound_ports(ports).items():
        port = _local_port(values, port_id, ovs_port, me)
        if port is not None:
            local[port_id] = port
    index = Mirror.snapshot(values)
    chassis = _chassis(values)
    own = {p.network for p in local.values()} | _forwarded_networks(
        index, chassis, me, _external_candidates(index, chassis, me)
    )
    attached = _attached_routers(index, own)
    numbers = network_numbers({p.network for p in local.values()} | _routed_networks(attached))
    networks = {}
    for network_id, number in numbers.items():
        network = _network(values, network_id, number)
        if network is not None:
            networks[network_id] = network
    remotes = {}
    for key, entry in values.items():
        if key.startswith(REMOTES):
            network_id, port_id = split_remote_key(key)
            remote = _remote(network_id, port_id, entry, me) if network_id in networks else None
            if remote is not None:
                remotes[port_id] = remote
    subnets = {}
    for key, stored in values.items():
        if key.startswith(SUBNET) and stored.get("logicalnetwork") in networks:
            subnet = _subnet(key.removeprefix(SUBNET), stored)
            if subnet is not None:
                subnets[subnet.id] = subnet
    physports = [v for k, v in values.items() if k.startswith(PHYSPORT)]
    physnets = {n.physnet for n in networks.values() if n.physnet}
    routers = _routers(attached)
    return View(
        networks=networks,
        ports={p.id: p for p in local.values() if p.network in networks},
        remotes=remotes,
        subnets=subnets,
        routers=routers,
        forwarders=_forwarders(index, chassis, routers, me),
        physical_ports=_physical_ports(physports, physnets, ports, me),
        tunnel_ofport=_tunnel(ports),
    )


# ---------------------------------------------------------------- incrementally


@dataclass(frozen=True, slots=True)
class Delta:
    """What one `LocalView.update` changed."""

    owners: frozenset[Owner]
    """The owners whose flows may differ (recompile them)."""
    ports: frozenset[str]
    """Local ports that appeared, changed or went away (announce or withdraw them)."""


class LocalView:
    """`build_view`, kept up to date by `update(keys that changed, ports that changed)`."""

    def __init__(self, me: Identity) -> None:
        self.me = me
        self.view = View()
        self._claims: dict[str, dict[str, OvsPort]] = {}
        """Logical port id -> the interfaces (by name) that carry it: normally one."""
        self._claimed_by: dict[str, str] = {}
        """Interface name -> the logical port id it carries."""
        self._local: dict[str, LocalPort] = {}
        """Every bound logical port, whether or not its network is usable."""
        self._users: dict[str, set[str]] = {}
        """Network id -> the ids in `_local` that use it: this server's own networks."""
        self._attached: Interfaces = {}
        """The routers attached to this server's own networks (`_attached_routers`)."""
        self._numbers: dict[str, int] = {}
        """The networks this server needs (its own and those its routers reach), numbered."""
        self._chassis: Chassis = {}
        """The live servers (`chassis/`): who forwards for external networks."""
        self._forwarded: frozenset[str] = frozenset()
        """The external networks this server forwards for (`_forwarded_networks`)."""
        self._candidates: frozenset[str] = frozenset()
        """The external networks it might forward for (`_external_candidates`)."""
        self._claimed_networks: dict[str, str] = {}
        """Port bound here (local or not: see `_follow_claimed`) -> its network."""

    def update(
        self,
        mirror: Mirror,
        ports: Mapping[str, OvsPort],
        keys: Iterable[str],
        names: Iterable[str],
    ) -> Delta:
        """Catch up with store `keys` and bridge port `names` that changed since last time.

        `ports` is the bridge's current ports (`BridgePorts.ports`); `mirror` is already
        up to date with `keys`.
        """
        names = set(names)
        port_ids = self._rebind(ports, names)
        networks: set[str] = set()
        netports: list[tuple[str, str]] = []
        subnets: set[str] = set()
        physports_changed = False
        routing = False
        elected = False
        for key in keys:
            if key.startswith(LPORT):
                port_ids.add(key.removeprefix(LPORT))
            elif key.startswith(LOGNET):
                networks.add(key.removeprefix(LOGNET))
            elif key.startswith(PHYSNET):
                physnet = key.removeprefix(PHYSNET)
                networks.update(n for n in self._numbers if self._physnet_of(mirror, n) == physnet)
            elif key.startswith(REMOTES):
                network_id, port_id = split_remote_key(key)
                netports.append((network_id, port_id))
                port_ids.add(port_id)  # a newer binding elsewhere, or the end of one
            elif key.startswith(PHYSPORT):
                physports_changed = True
            elif key.startswith(SUBNET):
                subnet_id = key.removeprefix(SUBNET)
                subnets.add(subnet_id)
                # A subnet on a router: its interface's network or CIDR (a subnet on no
                # router attaches nothing, and its DHCP settings change often)
                routing = routing or bool(mirror.routers_on(subnet_id))
            elif key.startswith(ROUTER):
                routing = True
            elif key.startswith(CHASSIS):
                elected = True
                self._follow_chassis(mirror, key)
        elected = elected or routing or bool(subnets or networks)
        if elected:
            self._candidates = _external_candidates(mirror, self._chassis, self.me)
            forwarded = _forwarded_networks(mirror, self._chassis, self.me, self._candidates)
            routing = routing or forwarded != self._forwarded
            self._forwarded = forwarded
        own = self._relocate(mirror.values, port_ids)
        if own or routing:
            self._attached = _attached_routers(mirror, set(self._users) | self._forwarded)
            networks |= own | self._renumber(set(self._users) | _routed_networks(self._attached))
        plan = _Plan(self.view)
        if own or routing:
            plan.routers = _routers(self._attached)
        if own or elected:
            plan.forwarders = _forwarders(mirror, self._chassis, plan.routers, self.me)
        self._plan_networks(mirror, networks, plan)
        for port_id in port_ids:
            port = self._local.get(port_id)
            plan.port(port_id, port if port is not None and port.network in plan.networks else None)
        for network_id, port_id in netports:
            if network_id in plan.networks:
                entry = mirror.netports_of(network_id).get(port_id)
                remote = _remote(network_id, port_id, entry, self.me) if entry else None
                plan.remote(port_id, network_id, remote)
        for subnet_id in subnets:
            stored = mirror.get(f"{SUBNET}{subnet_id}")
            in_view = stored is not None and stored.get("logicalnetwork") in plan.networks
            plan.subnet(subnet_id, _subnet(subnet_id, stored) if in_view else None)
        if TUNNEL_PORT in names:
            plan.tunnel = _tunnel(ports)
        if physports_changed or plan.network_changes or names & self._physport_names(mirror):
            physnets = {n.physnet for n in plan.networks.values() if n.physnet}
            candidates = mirror.physports.values()
            plan.physical = _physical_ports(candidates, physnets, ports, self.me)
        self.view, owners = apply_all(self.view, plan.changes())
        return Delta(owners, frozenset(plan.port_changes))

    def scopes(self) -> set[str]:
        """The store scopes this view needs (`Mirror.scope`): its bound ports' objects, and
        its networks (its ports', those its routers reach, those of ports bound here that
        a newer binding elsewhere took) with their remote endpoints, and the external
        networks it might forward for. Each update can name more (a port's object names
        its network, whose subnets name routers, which reach networks): following them
        until the set stops growing is the fixed point the mirror settles at; ports and
        networks that go, go from it."""
        ports = {port_scope(port_id) for port_id in self._claims}
        networks = {*self._numbers, *self._candidates, *self._claimed_networks.values()}
        return ports | {network_scope(n) for n in networks}

    def learned(self, changes: list[Change]) -> frozenset[Owner]:
        """Apply what this server's controller learned itself (next hops' MACs, from
        `neighbours.Resolver`): not from the store, so `update` never sees it."""
        self.view, owners = apply_all(self.view, changes)
        return owners

    def _follow_chassis(self, mirror: Mirror, key: str) -> None:
        value = mirror.get(key)
        system_id = key.removeprefix(CHASSIS)
        if value is None:
            self._chassis.pop(system_id, None)
        else:
            self._chassis[system_id] = value

    def bound_at(self, port_id: str) -> float | None:
        """When the interface that carries a local port was bound (None: not bound)."""
        claims = self._claims.get(port_id)
        return bound_ports(claims)[port_id].bound_at if claims else None

    def _rebind(self, ports: Mapping[str, OvsPort], names: set[str]) -> set[str]:
        """Follow interfaces that changed; the logical port ids whose binding may differ."""
        touched: set[str] = set()
        for name in names:
            old_id = self._claimed_by.pop(name, None)
            if old_id is not None:
                claims = self._claims[old_id]
                del claims[name]
                if not claims:
                    del self._claims[old_id]
                touched.add(old_id)
            port = ports.get(name)
            if port is not None and port.iface_id is not None:
                self._claims.setdefault(port.iface_id, {})[name] = port
                self._claimed_by[name] = port.iface_id
                touched.add(port.iface_id)
        return touched

    def _relocate(self, values: Mapping[str, Any], port_ids: set[str]) -> set[str]:
        """Recompute these local ports; the networks whose local use started or ended."""
        networks: set[str] = set()
        for port_id in port_ids:
            claims = self._claims.get(port_id)
            ovs = bound_ports(claims)[port_id] if claims else None
            self._follow_claimed(values, port_id, ovs is not None)
            new = _local_port(values, port_id, ovs, self.me)
            old = self._local.get(port_id)
            if old == new:
                continue
            if old is not None:
                del self._local[port_id]
                users = self._users[old.network]
                users.discard(port_id)
                if not users:
                    del self._users[old.network]
                    networks.add(old.network)
            if new is not None:
                self._local[port_id] = new
                if new.network not in self._users:
                    networks.add(new.network)
                self._users.setdefault(new.network, set()).add(port_id)
        return networks

    def _follow_claimed(self, values: Mapping[str, Any], port_id: str, claimed: bool) -> None:
        """Keep the network of a port bound here, whether or not it is local: a newer
        binding elsewhere (its announcement, in that network's scope) decides, so a
        scoped mirror that let the network go would take the port back, then lose it
        again, never settling."""
        lport = values.get(f"{LPORT}{port_id}") if claimed else None
        network = lport.get("logicalnetwork") if isinstance(lport, dict) else None
        if isinstance(network, str):
            self._claimed_networks[port_id] = network
        else:
            self._claimed_networks.pop(port_id, None)

    def _renumber(self, needed: set[str]) -> set[str]:
        """Number the networks this server needs; those that came, went or were
        renumbered (numbers are a function of the set)."""
        if needed == self._numbers.keys():
            return set()
        numbers = network_numbers(needed)
        changed = {
            n
            for n in numbers.keys() | self._numbers.keys()
            if numbers.get(n) != self._numbers.get(n)
        }
        self._numbers = numbers
        return changed

    def _plan_networks(self, mirror: Mirror, network_ids: set[str], plan: _Plan) -> None:
        for network_id in network_ids:
            number = self._numbers.get(network_id)
            new = _network(mirror.values, network_id, number) if number is not None else None
            old = self.view.networks.get(network_id)
            if old == new:
                continue
            plan.network(network_id, new)
            if old is None:  # it comes in with its ports and the ports announced in it
                for port_id in self._users.get(network_id, ()):
                    plan.port(port_id, self._local[port_id])
                for port_id, entry in mirror.netports_of(network_id).items():
                    plan.remote(port_id, network_id, _remote(network_id, port_id, entry, self.me))
                for subnet_id, stored in mirror.subnets_of(network_id).items():
                    plan.subnet(subnet_id, _subnet(subnet_id, stored))
            elif new is None:  # and goes out with them
                members = self.view.members.get(network_id)
                for port_id in members.ports if members else ():
                    plan.port(port_id, None)
                for port_id in members.remotes if members else ():
                    plan.remote(port_id, network_id, None)
                for subnet in self.view.subnets.values():
                    if subnet.network == network_id:
                        plan.subnet(subnet.id, None)

    def _physnet_of(self, mirror: Mirror, network_id: str) -> str | None:
        lognet = mirror.get(f"{LOGNET}{network_id}")
        return lognet.get("physicalnetwork") if lognet else None

    def _physport_names(self, mirror: Mirror) -> set[str]:
        return {p.get("name") for p in mirror.physports.values()}


class _Plan:
    """The changes one update makes, collected by object, then emitted in a safe order."""

    def __init__(self, view: View) -> None:
        self.view = view
        self.networks: dict[str, Network] = dict(view.networks)
        """The networks as they will be (to know which ports and remotes may stay)."""
        self.network_changes: dict[str, Network | None] = {}
        self.port_changes: dict[str, LocalPort | None] = {}
        self.remote_changes: dict[str, RemotePort | None] = {}
        self.subnet_changes: dict[str, Subnet | None] = {}
        self.tunnel = view.tunnel_ofport
        self.physical: Mapping[str, int] = view.physical_ports
        self.routers: Mapping[str, Router] = view.routers
        self.forwarders: Mapping[str, Forwarder] = view.forwarders

    def network(self, network_id: str, network: Network | None) -> None:
        self.network_changes[network_id] = network
        if network is None:
            self.networks.pop(network_id, None)
        else:
            self.networks[network_id] = network

    def port(self, port_id: str, port: LocalPort | None) -> None:
        if self.view.ports.get(port_id) != port:
            self.port_changes[port_id] = port
        else:
            self.port_changes.pop(port_id, None)

    def subnet(self, subnet_id: str, subnet: Subnet | None) -> None:
        if self.view.subnets.get(subnet_id) != subnet:
            self.subnet_changes[subnet_id] = subnet
        else:
            self.subnet_changes.pop(subnet_id, None)

    def remote(self, port_id: str, network_id: str, remote: RemotePort | None) -> None:
        current = self.remote_changes.get(port_id, self.view.remotes.get(port_id))
        if remote is None and (current is None or current.network != network_id):
            return  # the port is known in another network: not this entry's to remove
        if self.view.remotes.get(port_id) != remote:
            self.remote_changes[port_id] = remote
        else:
            self.remote_changes.pop(port_id, None)

    def changes(self) -> list[Change]:
        """Networks in first, then ports, remotes, subnets and routers, the underlay,
        networks out last."""
        changes: list[Change] = [
            PutNetwork(n) for n in self.network_changes.values() if n is not None
        ]
        changes += [PutPort(p) for p in self.port_changes.values() if p is not None]
        changes += [PutRemote(r) for r in self.remote_changes.values() if r is not None]
        changes += [PutSubnet(s) for s in self.subnet_changes.values() if s is not None]
        old_routers = self.view.routers
        changes += [PutRouter(r) for r in self.routers.values() if old_routers.get(r.id) != r]
        changes += [DropRouter(k) for k in old_routers.keys() - self.routers.keys()]
        old_forwarders = self.view.forwarders
        for network in sorted(old_forwarders.keys() | self.forwarders.keys()):
            if old_forwarders.get(network) != self.forwarders.get(network):
                changes.append(SetForwarder(network, self.forwarders.get(network)))
        changes += [DropPort(k) for k, p in self.port_changes.items() if p is None]
        changes += [DropRemote(k) for k, r in self.remote_changes.items() if r is None]
        changes += [DropSubnet(k) for k, s in self.subnet_changes.items() if s is None]
        if self.tunnel != self.view.tunnel_ofport:
            changes.append(SetTunnel(self.tunnel))
        old = self.view.physical_ports
        for physnet in old.keys() | self.physical.keys():
            if old.get(physnet) != self.physical.get(physnet):
                changes.append(SetPhysicalPort(physnet, self.physical.get(physnet)))
        changes += [DropNetwork(k) for k, n in self.network_changes.items() if n is None]
        return changes
