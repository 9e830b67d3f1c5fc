"""What one server sees: the input of the pipeline, as frozen values.

The agent builds a `View` from the store and OVSDB; the pipeline turns it into flows and
never looks anywhere else, so the flows are a pure function of it (a restart computes the
same flows from the same view). The view holds only what this server's endpoints need:
their networks, the remote ports in those networks, and the ports that carry them; and
for routing, the routers attached to those networks and the networks (with their remote
ports) those routers reach, since each server routes its own ports' packets.

`View.members` indexes ports by network so that the flows of one network cost work in
proportion to that network, not to the whole server; `changes.apply` keeps it up to date
one change at a time.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

NetworkType = Literal["vlan", "vxlan", "native", "local"]
NETWORK_TYPES: frozenset[str] = frozenset({"vlan", "vxlan", "native", "local"})
Owner = tuple[str, ...]
"""Who owns a group of flows: ("base",), ("port", id), ("network", id) or ("remote", id)."""
BASE: Owner = ("base",)

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_MAX_OFPORT = 0xFFFFFF00


def _mac(value: str) -> str:
    mac = value.lower()
    if not _MAC.match(mac):
        raise ValueError(f"bad MAC address {value!r}")
    return mac


def _ofport(owner: str, value: int) -> int:
    if not 1 <= value < _MAX_OFPORT:
        raise ValueError(f"{owner}: bad OpenFlow port number {value!r}")
    return value


@functools.lru_cache(maxsize=65536)
def ipv4(address: str | None) -> str | None:
    """The address if it is IPv4 (ARP knows nothing else), else None. Remembered: flows
    and DHCP answers ask it of the same addresses over and over."""
    if address is None:
        return None
    ip = ipaddress.ip_address(address)
    return str(ip) if ip.version == 4 else None


@functools.lru_cache(maxsize=4096)
def _network_of(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A subnet's parsed CIDR (parsing is most of `Subnet.holds`), remembered."""
    return ipaddress.ip_network(cidr)


INFINITE_LEASE = 0xFFFFFFFF
"""A lease time of "infinite" on the wire (RFC 2132, 9.2)."""


@dataclass(frozen=True, slots=True)
class DhcpOption:
    """One extra DHCP option as the model stores it: its code and its JSON value.

    The value is kept as canonical JSON text, so that the view stays hashable and two
    equal values compare equal (a needless difference would recompute owners)."""

    code: int
    json: str

    @classmethod
    def of(cls, code: int | str, value: Any) -> DhcpOption:
        return cls(int(code), json.dumps(value, sort_keys=True, separators=(",", ":")))

    def __post_init__(self) -> None:
        if not 1 <= self.code <= 254:
            raise ValueError(f"DHCP option code {self.code} not in 1..254")

    @property
    def value(self) -> Any:
        return json.loads(self.json)


def extra_dhcp_options(stored: Mapping[str, Any] | None) -> tuple[DhcpOption, ...]:
    """`extra_dhcp_options` as stored ({"<code>": value}), by code."""
    return tuple(sorted((DhcpOption.of(c, v) for c, v in (stored or {}).items()), key=_code))


def _code(option: DhcpOption) -> int:
    return option.code


def _addresses(values: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(str(ipaddress.ip_address(v)) for v in values)


@dataclass(frozen=True, slots=True)
class DhcpFields:
    """The DHCP settings one level of the model gives (a network or a subnet).

    None means "not set here": the next level down applies (subnet > network). An empty
    tuple is a value: a subnet with `dns_nameservers: []` advertises no DNS server even
    if its network names some."""

    mtu: int | None = None
    dns_nameservers: tuple[str, ...] | None = None
    domain_name: str | None = None
    ntp_servers: tuple[str, ...] | None = None
    lease_time: int | None = None
    """Seconds; `INFINITE_LEASE` (the model's "infinite") never expires."""
    extra: tuple[DhcpOption, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "dns_nameservers", _addresses(self.dns_nameservers))
        object.__setattr__(self, "ntp_servers", _addresses(self.ntp_servers))
        if self.lease_time == "infinite":
            object.__setattr__(self, "lease_time", INFINITE_LEASE)
        if self.lease_time is not None and not 1 <= self.lease_time <= INFINITE_LEASE:
            raise ValueError(f"lease time {self.lease_time!r} not in 1..2^32-1")
        if self.mtu is not None and not 68 <= self.mtu <= 65535:
            raise ValueError(f"MTU {self.mtu!r} not in 68..65535")
        object.__setattr__(self, "extra", tuple(sorted(self.extra, key=_code)))

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> DhcpFields:
        """The fields of a stored network or subnet (other keys are ignored)."""
        return cls(
            mtu=stored.get("mtu"),
            dns_nameservers=stored.get("dns_nameservers"),
            domain_name=stored.get("domain_name"),
            ntp_servers=stored.get("ntp_servers"),
            lease_time=stored.get("lease_time"),
            extra=extra_dhcp_options(stored.get("extra_dhcp_options")),
        )


NO_DHCP_FIELDS = DhcpFields()


@dataclass(frozen=True, slots=True)
class Network:
    """A logical network this server needs, with its local number (the NETWORK register)."""

    id: str
    type: NetworkType
    number: int
    tag: int | None = None
    """The VLAN id of a vlan network, the VNI of a vxlan network, else None."""
    physnet: str | None = None
    """The physical network, which says which physical port carries a vlan/native network."""
    dhcp: DhcpFields = NO_DHCP_FIELDS
    """Its network-wide DHCP settings (a subnet's and a port's win). No flow reads them:
    a change of them alone touches no owner (`changes.apply`)."""

    def __post_init__(self) -> None:
        if self.type not in NETWORK_TYPES:
            raise ValueError(f"network {self.id}: unknown type {self.type!r}")
        if not 1 <= self.number <= 0xFFFFFFFF:
            raise ValueError(f"network {self.id}: local number {self.number} not in 1..2^32-1")
        limit = {"vlan": 4094, "vxlan": 0xFFFFFF}.get(self.type)
        if limit is None and self.tag is not None:
            raise ValueError(f"network {self.id}: a {self.type} network has no tag")
        if limit is not None and not (isinstance(self.tag, int) and 1 <= self.tag <= limit):
            raise ValueError(f"network {self.id}: {self.type} tag {self.tag!r} not in 1..{limit}")


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Subnet:
    """An IP subnet of a network of this view: what DHCP (and the L3 to come) needs."""

    id: str
    network: str
    cidr: str
    gateway: str | None = None
    host_routes: tuple[tuple[str, str], ...] = ()
    """(destination CIDR, next hop), as the model stores them."""
    dhcp: DhcpFields = NO_DHCP_FIELDS
    """Its DHCP settings; they win over its network's."""

    def __post_init__(self) -> None:
        net = ipaddress.ip_network(self.cidr)
        object.__setattr__(self, "cidr", str(net))
        if self.gateway is not None:
            gateway = ipaddress.ip_address(self.gateway)
            if gateway not in net:
                raise ValueError(f"subnet {self.id}: gateway {gateway} not in {net}")
            object.__setattr__(self, "gateway", str(gateway))
        routes = tuple(
            (str(ipaddress.ip_network(dst)), str(ipaddress.ip_address(hop)))
            for dst, hop in self.host_routes
        )
        object.__setattr__(self, "host_routes", routes)

    @property
    def ip_network(self) -> IPNetwork:
        return _network_of(self.cidr)

    def holds(self, address: str | None) -> bool:
        """Whether an address is in this subnet."""
        if address is None:
            return False
        ip = ipaddress.ip_address(address)
        net = self.ip_network
        return ip.version == net.version and ip in net


@dataclass(frozen=True, slots=True)
class AddressPair:
    """A source a local port may send from besides its own address: `ip` (an address or
    a network, in CIDR form) in frames from `mac`."""

    ip: str
    mac: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "ip", str(ipaddress.ip_network(self.ip)))
        object.__setattr__(self, "mac", _mac(self.mac))

    @property
    def network(self) -> IPNetwork:
        return ipaddress.ip_network(self.ip)


@dataclass(frozen=True, slots=True)
class LocalPort:
    """A logical port bound to an interface of this server's bridge."""

    id: str
    network: str
    ofport: int
    mac: str
    ip: str | None = None
    allowed: tuple[AddressPair, ...] = ()
    """More sources the port may send from (its allowed address pairs)."""
    subnet: str | None = None
    """The subnet its address is in (the model records it with the address)."""
    hostname: str | None = None
    """Its DHCP host name, if the model gives one."""
    dhcp_extra: tuple[DhcpOption, ...] = ()
    """Its own extra DHCP options; they win over its subnet's and its network's."""

    def __post_init__(self) -> None:
        _ofport(f"port {self.id}", self.ofport)
        object.__setattr__(self, "dhcp_extra", tuple(sorted(self.dhcp_extra, key=_code)))
        object.__setattr__(self, "mac", _mac(self.mac))
        if self.ip is not None:
            object.__setattr__(self, "ip", str(ipaddress.ip_address(self.ip)))
        object.__setattr__(self, "allowed", tuple(self.allowed))
        for pair in self.allowed:
            if not isinstance(pair, AddressPair):
                raise TypeError(f"port {self.id}: {pair!r} is not an AddressPair")

    @property
    def sources(self) -> tuple[AddressPair, ...] | None:
        """Every (address, MAC) the port may send from, or None: a port without an
        address may send from any (see docs/pipeline.md, "Anti-spoofing")."""
        if self.ip is None:
            return None
        return (AddressPair(self.ip, self.mac), *self.allowed)

    @property
    def macs(self) -> list[str]:
        """The source MACs the port may use: its own, then its pairs' (sorted, distinct)."""
        return [self.mac, *sorted({p.mac for p in self.allowed} - {self.mac})]


@dataclass(frozen=True, slots=True)
class RemotePort:
    """A logical port on another server, or a MAC a hardware VTEP switch learned, in one of
    this server's networks."""

    id: str
    network: str
    mac: str | None
    """None: an endpoint that only takes the network's floods (a hardware VTEP switch bound
    to the network: its hosts' MACs are learned only once they speak, and a quiet one is
    forgotten, yet a VM must reach it by ARP)."""
    vtep: str
    """The tunnel endpoint (underlay IPv4) of the server or switch that has the port."""
    ip: str | None = None

    def __post_init__(self) -> None:
        if self.mac is not None:
            object.__setattr__(self, "mac", _mac(self.mac))
        object.__setattr__(self, "vtep", str(ipaddress.IPv4Address(self.vtep)))
        if self.ip is not None:
            object.__setattr__(self, "ip", str(ipaddress.ip_address(self.ip)))


@dataclass(frozen=True, slots=True)
class RouterInterface:
    """Where a router meets one subnet: what routing into and out of it needs.

    The subnet's network and CIDR are copied in from the subnet, so that the routing
    flows read the router alone (a subnet change reaches them as a router change).
    The MAC is the subnet's gateway MAC (`gateway.gateway_mac`): hosts send to their
    gateway, and the interface that holds the gateway address is that gateway."""

    subnet: str
    network: str
    cidr: str
    ip: str
    mac: str
    external: bool = False
    """On an external subnet (`isexternal`): the router's way out of vlcp and back in,
    through the network's forwarding server (`View.forwarders`, module `external`)."""

    def __post_init__(self) -> None:
        net = ipaddress.ip_network(self.cidr)
        ip = ipaddress.ip_address(self.ip)
        if ip not in net:
            raise ValueError(f"interface on subnet {self.subnet}: {ip} not in {net}")
        object.__setattr__(self, "cidr", str(net))
        object.__setattr__(self, "ip", str(ip))
        object.__setattr__(self, "mac", _mac(self.mac))

    def holds(self, address: str | None) -> bool:
        """Whether an IPv4 address is in the interface's subnet (routing is IPv4 only)."""
        ip = ipv4(address)
        return ip is not None and ipaddress.IPv4Address(ip) in ipaddress.ip_network(self.cidr)


@dataclass(frozen=True, slots=True)
class Router:
    """A virtual router that has an interface on a subnet of one of this server's
    networks, with its local number (the ROUTER register), its interfaces and its static
    routes."""

    id: str
    number: int
    interfaces: tuple[RouterInterface, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()
    """(destination CIDR, next hop), as the model stores them, plus the default route
    through the gateway of an external subnet it joins (added by the agent, unless it has
    one); kept sorted and distinct, so that two orders of one list are one router."""

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 0xFFFFFFFF:
            raise ValueError(f"router {self.id}: local number {self.number} not in 1..2^32-1")
        interfaces = tuple(sorted(self.interfaces, key=_by_subnet))
        if len({i.subnet for i in interfaces}) != len(interfaces):
            raise ValueError(f"router {self.id}: two interfaces on one subnet")
        object.__setattr__(self, "interfaces", interfaces)
        routes = {
            (str(ipaddress.ip_network(dst)), str(ipaddress.ip_address(hop)))
            for dst, hop in self.routes
        }
        object.__setattr__(self, "routes", tuple(sorted(routes)))

    def routes_via(self, nexthop: str | None) -> list[str]:
        """The destinations of its static routes through one next hop."""
        return [dst for dst, hop in self.routes if hop == nexthop]

    @property
    def networks(self) -> frozenset[str]:
        return frozenset(i.network for i in self.interfaces)


def _by_subnet(interface: RouterInterface) -> str:
    return interface.subnet


@dataclass(frozen=True, slots=True)
class Forwarder:
    """The server elected to carry an external network's routed traffic to and from the
    physical network (`vlcp.agent.forwarding.elect`): its underlay address, and whether it
    is this server."""

    vtep: str
    here: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "vtep", str(ipaddress.IPv4Address(self.vtep)))


@dataclass(frozen=True, slots=True)
class Members:
    """The ids of the local and remote ports that name one network."""

    ports: frozenset[str] = frozenset()
    remotes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class View:
    """Everything the pipeline may use. Treat the mappings as immutable."""

    networks: Mapping[str, Network] = field(default_factory=dict)
    ports: Mapping[str, LocalPort] = field(default_factory=dict)
    remotes: Mapping[str, RemotePort] = field(default_factory=dict)
    """A remote port with the id of a local port is ignored: during a migration the new
    location is local before the store says so, and the local one must win."""
    physical_ports: Mapping[str, int] = field(default_factory=dict)
    """Physical network id -> ofport of the bridge port that carries it on this server."""
    tunnel_ofport: int | None = None
    """The VXLAN port (remote_ip=flow, key=flow), if this server has one."""
    subnets: Mapping[str, Subnet] = field(default_factory=dict)
    """The subnets of the networks of this view (a subnet of another network may be
    here for a while: what reads it checks its network)."""
    routers: Mapping[str, Router] = field(default_factory=dict)
    """The routers with an interface on a subnet of a network with a local port here.
    Their other interfaces' networks are in `networks` too (with their remote ports), so
    that this server routes its own ports' traffic into them."""
    neighbours: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(network id, next hop address) -> the MAC the next hop answered ARP with: next hops
    of static routes that no vlcp port holds, learned by this server's controller (not
    from the store; module `nexthops`)."""
    forwarders: Mapping[str, Forwarder] = field(default_factory=dict)
    """External network id -> its elected forwarding server, for the external networks of
    the view's routers (none while no eligible server with the physical link is alive)."""
    members: Mapping[str, Members] = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    """Index: network id -> its ports (also for networks not in `networks`). Built when
    not given; `changes.apply` passes it updated."""
    vni_users: Mapping[int, frozenset[str]] = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    """Index: VNI -> the vxlan networks that use it. Built when not given."""
    subnet_ids: Mapping[str, frozenset[str]] = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    """Index: network id -> the ids of its subnets in `subnets`. Built when not given."""
    router_ids: Mapping[str, frozenset[str]] = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    """Index: network id -> the routers with an interface on it. Built when not given."""

    def __post_init__(self) -> None:
        if self.members is None:
            kinds: tuple[tuple[str, Mapping[str, Any]], ...] = (
                ("network", self.networks),
                ("port", self.ports),
                ("remote port", self.remotes),
                ("subnet", self.subnets),
                ("router", self.routers),
            )
            for kind, objs in kinds:
                for key, obj in objs.items():
                    if key != obj.id:
                        raise ValueError(f"{kind} {obj.id} filed under {key!r}")
            object.__setattr__(self, "members", build_members(self.ports, self.remotes))
        if self.vni_users is None:
            object.__setattr__(self, "vni_users", build_vni_users(self.networks))
        if self.subnet_ids is None:
            object.__setattr__(self, "subnet_ids", build_subnet_ids(self.subnets))
        if self.router_ids is None:
            object.__setattr__(self, "router_ids", build_router_ids(self.routers))

    def local_ports_of(self, network: str) -> list[LocalPort]:
        """The local ports of a network, by id."""
        m = self.members.get(network)
        return [self.ports[p] for p in sorted(m.ports)] if m else []

    def has_local_ports(self, network: str) -> bool:
        """Whether a local port is in a network (else it is here only because a router
        reaches it: nothing is delivered into it here, only routed out of this server)."""
        m = self.members.get(network)
        return bool(m and m.ports)

    def remotes_of(self, network: str) -> list[RemotePort]:
        """The remote ports of a network that no local port shadows, by id."""
        m = self.members.get(network)
        if not m:
            return []
        return [self.remotes[r] for r in sorted(m.remotes) if r not in self.ports]

    def remote(self, remote_id: str) -> RemotePort | None:
        """A remote port, unless a local port of the same id shadows it."""
        return None if remote_id in self.ports else self.remotes.get(remote_id)

    def port_at(self, ofport: int) -> LocalPort | None:
        """The local port on an OpenFlow port number (what a packet-in names)."""
        return self._by_ofport.get(ofport)

    @functools.cached_property
    def _by_ofport(self) -> Mapping[int, LocalPort]:
        """Index: ofport -> local port. Built on first use, once per view (a view is a
        value: a change makes a new one), so packet-ins do not each pass over every port
        and flow compilation, which never asks, does not pay for it."""
        return {port.ofport: port for port in self.ports.values()}

    def subnet_of(self, port: LocalPort) -> Subnet | None:
        """The subnet of a local port's address: the one the port names, if it is in the
        port's network and holds the address (None for a port without an address)."""
        subnet = self.subnets.get(port.subnet) if port.subnet is not None else None
        if subnet is None or subnet.network != port.network or not subnet.holds(port.ip):
            return None
        return subnet

    def has_subnet(self, network: str) -> bool:
        """Whether a network has a subnet."""
        return network in self.subnet_ids

    def holder(self, network: str, address: str) -> LocalPort | RemotePort | None:
        """The port (local first, then remote) of a network that holds an address."""
        for port in (*self.local_ports_of(network), *self.remotes_of(network)):
            if port.ip == address:
                return port
        return None

    def route_to(self, network: str, address: str | None) -> tuple[Router, RouterInterface] | None:
        """The router and interface that route to an address of a network: the first
        router (by id) with an interface on the network whose subnet holds it."""
        for router_id in sorted(self.router_ids.get(network, ())):
            router = self.routers[router_id]
            for interface in router.interfaces:
                if interface.network == network and interface.holds(address):
                    return router, interface
        return None

    def external_interfaces(self, network: str) -> list[tuple[Router, RouterInterface]]:
        """The routers (by id) with an interface on an external network, and that
        interface: what its forwarding server answers for and routes in."""
        found = []
        for router_id in sorted(self.router_ids.get(network, ())):
            router = self.routers[router_id]
            for interface in router.interfaces:
                if interface.network == network and interface.external:
                    found.append((router, interface))
        return found

    def routed_neighbours(self, network: str) -> frozenset[str]:
        """The other networks a router of this network reaches."""
        found = {n for r in self.router_ids.get(network, ()) for n in self.routers[r].networks}
        return frozenset(found - {network})

    def ingress_vteps(self, network: str) -> list[str]:
        """The servers that may send into a network through the tunnel: its peers, those
        with ports in a network routed to it (each server routes its own ports' traffic,
        so a routed packet enters from the sender's server), and the forwarding servers of
        the external networks routed to it (they route what comes in from outside)."""
        vteps = set(self.peer_vteps(network))
        for neighbour in self.routed_neighbours(network):
            vteps.update(self.peer_vteps(neighbour))
            forwarder = self.forwarders.get(neighbour)
            if forwarder is not None and not forwarder.here:
                vteps.add(forwarder.vtep)  # routes the way in from outside into it
        return sorted(vteps, key=ipaddress.IPv4Address)

    def physical_port(self, network: Network) -> int | None:
        """The ofport that carries a vlan or native network here, if any."""
        if network.type not in ("vlan", "native") or network.physnet is None:
            return None
        return self.physical_ports.get(network.physnet)

    def tunnel_usable(self, network: Network) -> bool:
        """Whether a vxlan network may use the tunnel: there is one, and no other network
        here has its VNI. Two networks of one VNI (from two physical networks with
        overlapping ranges) cannot be told apart on the wire, so neither gets tunnel
        traffic: a frame of one must never be delivered into the other."""
        return (
            network.type == "vxlan"
            and self.tunnel_ofport is not None
            and len(self.vni_users.get(network.tag or 0, ())) == 1
        )

    def vni_conflicts(self) -> dict[int, frozenset[str]]:
        """VNIs claimed by several networks of this view (for the agent to report)."""
        return {vni: ids for vni, ids in self.vni_users.items() if len(ids) > 1}

    def peer_vteps(self, network: str) -> list[str]:
        """The other servers with ports in a network: one flood copy each."""
        return sorted({r.vtep for r in self.remotes_of(network)}, key=ipaddress.IPv4Address)


def build_members(
    ports: Mapping[str, LocalPort], remotes: Mapping[str, RemotePort]
) -> dict[str, Members]:
    """The network index of a view, from scratch."""
    local: dict[str, set[str]] = {}
    remote: dict[str, set[str]] = {}
    for p in ports.values():
        local.setdefault(p.network, set()).add(p.id)
    for r in remotes.values():
        remote.setdefault(r.network, set()).add(r.id)
    return {
        n: Members(frozenset(local.get(n, ())), frozenset(remote.get(n, ())))
        for n in local.keys() | remote.keys()
    }


def build_subnet_ids(subnets: Mapping[str, Subnet]) -> dict[str, frozenset[str]]:
    """The subnet index of a view, from scratch."""
    ids: dict[str, set[str]] = {}
    for subnet in subnets.values():
        ids.setdefault(subnet.network, set()).add(subnet.id)
    return {network: frozenset(found) for network, found in ids.items()}


def build_router_ids(routers: Mapping[str, Router]) -> dict[str, frozenset[str]]:
    """The router index of a view, from scratch."""
    ids: dict[str, set[str]] = {}
    for router in routers.values():
        for network in router.networks:
            ids.setdefault(network, set()).add(router.id)
    return {network: frozenset(found) for network, found in ids.items()}


def build_vni_users(networks: Mapping[str, Network]) -> dict[int, frozenset[str]]:
    """The VNI index of a view, from scratch."""
    users: dict[int, set[str]] = {}
    for n in networks.values():
        if n.type == "vxlan" and n.tag is not None:
            users.setdefault(n.tag, set()).add(n.id)
    return {vni: frozenset(ids) for vni, ids in users.items()}


def _hash(network_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(network_id.encode(), digest_size=8).digest(), "big")


def network_numbers(network_ids: Iterable[str], *, bits: int = 24) -> dict[str, int]:
    """A local number for each network: a hash of its id, never 0, unique in the set.

    The number only has to be unique on one switch, but it should not change when the
    controller restarts with the same networks (the flows, hence their cookies, would
    all change). So it is a function of the set alone: ids in sorted order each take
    hash(id) in 1..2^bits-1, or on a collision the next free number (wrapping around).
    """
    size = (1 << bits) - 1
    ids = sorted(set(network_ids))
    if len(ids) > size:
        raise ValueError(f"{len(ids)} networks do not fit in {bits} bits")
    taken: set[int] = set()
    numbers: dict[str, int] = {}
    for network_id in ids:
        number = _hash(network_id) % size + 1
        while number in taken:
            number = number % size + 1
        taken.add(number)
        numbers[network_id] = number
    return numbers
