"""Hypothesis strategies for views and changes: deliberately messy views (shared ofports
and MACs, ports of networks that are not in the view, remotes shadowed by local ports,
numbers that collide), since the properties tested with them are about bookkeeping and
must hold whatever the view holds."""

from __future__ import annotations

import dataclasses

from hypothesis import strategies as st

from vlcp.pipeline import (
    AddressPair,
    Change,
    DhcpFields,
    DropNeighbour,
    DropNetwork,
    DropPort,
    DropRemote,
    DropRouter,
    DropSubnet,
    Forwarder,
    LocalPort,
    Network,
    PutNeighbour,
    PutNetwork,
    PutPort,
    PutRemote,
    PutRouter,
    PutSubnet,
    RemotePort,
    Router,
    RouterInterface,
    SetForwarder,
    SetPhysicalPort,
    SetTunnel,
    Subnet,
    View,
)

NETS = ["n0", "n1", "n2", "n3"]
PHYSNETS = ["p0", "p1"]
MACS = ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"]
IPS = [None, "10.0.0.1", "10.0.0.2", "fd00::1"]
SUBNET_IDS = ["s0", "s1", "s2"]
SHAPES = [
    ("10.0.0.0/24", "10.0.0.254"),
    ("10.0.0.0/24", "10.0.0.1"),
    ("10.0.0.0/24", None),
    ("10.0.0.0/31", None),
    ("fd00::/64", "fd00::ff"),
]
"""(cidr, gateway): holding both IPv4 port addresses, one of them, or only IPv6 ones; a
gateway apart, one that is a port's address, or none (gateway changes alone)."""
DHCP_FIELDS = st.sampled_from(
    [DhcpFields(), DhcpFields(mtu=1400, dns_nameservers=("192.0.2.53",)), DhcpFields(lease_time=60)]
)
VTEPS = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
PAIRS = st.lists(
    st.builds(
        AddressPair,
        st.sampled_from(["10.0.0.9", "10.0.8.0/24", "0.0.0.0/0", "fd00::9", "fd00:1::/64"]),
        st.sampled_from([*MACS, "00:00:5e:00:01:01"]),
    ),
    max_size=2,
).map(tuple)


@st.composite
def networks(draw: st.DrawFn) -> Network:
    kind = draw(st.sampled_from(["vxlan", "vxlan", "vlan", "native", "local"]))
    tag = {"vlan": st.integers(1, 3), "vxlan": st.integers(1, 3)}.get(kind, st.none())
    physnet = draw(st.sampled_from([*PHYSNETS, None]))
    number = draw(st.integers(1, 4))
    return Network(draw(st.sampled_from(NETS)), kind, number, draw(tag), physnet, draw(DHCP_FIELDS))


@st.composite
def subnets(draw: st.DrawFn) -> Subnet:
    cidr, gateway = draw(st.sampled_from(SHAPES))
    network = draw(st.sampled_from([*NETS, "gone"]))
    return Subnet(draw(st.sampled_from(SUBNET_IDS)), network, cidr, gateway, dhcp=draw(DHCP_FIELDS))


ROUTER_IDS = ["r0", "r1"]
INTERFACE_SHAPES = [
    ("10.0.0.0/24", "10.0.0.254"),
    ("10.0.0.0/24", "10.0.0.1"),
    ("10.0.0.0/31", "10.0.0.0"),
    ("10.0.0.2/31", "10.0.0.3"),
]
"""(cidr, interface address): holding both IPv4 port addresses, one, or neither."""
INTERFACE_MACS = ["02:00:00:00:01:01", "02:00:00:00:01:02"]
ROUTES = st.lists(
    st.tuples(
        st.sampled_from(["0.0.0.0/0", "192.0.2.0/24", "10.0.0.2/32", "fd01::/64"]),
        st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.9", "fd00::1"]),
    ),
    max_size=2,
).map(tuple)
"""Static routes through port addresses, an address no port holds (a next hop outside
vlcp) and IPv6 (which is not routed)."""
NEIGHBOURS = st.dictionaries(
    st.tuples(st.sampled_from(NETS), st.sampled_from(["10.0.0.1", "10.0.0.9"])),
    st.sampled_from(MACS),
    max_size=2,
)
"""MACs learned for next hops outside vlcp (and one a port holds: not used)."""
FORWARDERS = st.builds(Forwarder, st.sampled_from(VTEPS), here=st.booleans())
"""An external network's forwarding server: this one, or another."""


@st.composite
def interfaces(draw: st.DrawFn) -> RouterInterface:
    cidr, ip = draw(st.sampled_from(INTERFACE_SHAPES))
    network = draw(st.sampled_from([*NETS, "gone"]))
    return RouterInterface(
        draw(st.sampled_from(SUBNET_IDS)),
        network,
        cidr,
        ip,
        draw(st.sampled_from(INTERFACE_MACS)),
        external=draw(st.booleans()),
    )


@st.composite
def routers(draw: st.DrawFn) -> Router:
    """A router of two tenants' messy world: interfaces on any network, MACs shared with
    another router's, numbers that collide."""
    found = draw(st.lists(interfaces(), max_size=3, unique_by=lambda i: i.subnet))
    routes = draw(ROUTES)
    return Router(draw(st.sampled_from(ROUTER_IDS)), draw(st.integers(1, 2)), tuple(found), routes)


ports = st.builds(
    LocalPort,
    id=st.sampled_from(["a", "b", "c", "d"]),
    network=st.sampled_from([*NETS, "gone"]),
    ofport=st.integers(1, 5),
    mac=st.sampled_from(MACS),
    ip=st.sampled_from(IPS),
    allowed=PAIRS,
    subnet=st.sampled_from([None, *SUBNET_IDS]),
)
remotes = st.builds(
    RemotePort,
    id=st.sampled_from(["c", "d", "e", "f", "g"]),
    network=st.sampled_from([*NETS, "gone"]),
    mac=st.sampled_from(MACS),
    vtep=st.sampled_from(VTEPS),
    ip=st.sampled_from(IPS),
)
views = st.builds(
    lambda nets, lps, rps, phys, tunnel, subs, rts, neighbours, forwarders: View(
        networks={n.id: n for n in nets},
        ports={p.id: p for p in lps},
        remotes={r.id: r for r in rps},
        physical_ports=phys,
        tunnel_ofport=tunnel,
        subnets={s.id: s for s in subs},
        routers={r.id: r for r in rts},
        neighbours=neighbours,
        forwarders=forwarders,
    ),
    st.lists(networks(), max_size=5),
    st.lists(ports, max_size=6),
    st.lists(remotes, max_size=7),
    st.dictionaries(st.sampled_from(PHYSNETS), st.integers(20, 21)),
    st.sampled_from([100, 100, 101, None]),
    st.lists(subnets(), max_size=3),
    st.lists(routers(), max_size=2),
    NEIGHBOURS,
    st.dictionaries(st.sampled_from(NETS), FORWARDERS, max_size=2),
)
changes: st.SearchStrategy[Change] = st.one_of(
    st.builds(PutNetwork, networks()),
    st.builds(DropNetwork, st.sampled_from(NETS)),
    st.builds(PutPort, ports),
    st.builds(DropPort, st.sampled_from(["a", "b", "c", "d"])),
    st.builds(PutRemote, remotes),
    st.builds(DropRemote, st.sampled_from(["c", "d", "e", "f", "g"])),
    st.builds(PutSubnet, subnets()),
    st.builds(DropSubnet, st.sampled_from(SUBNET_IDS)),
    st.builds(PutRouter, routers()),
    st.builds(DropRouter, st.sampled_from(ROUTER_IDS)),
    st.builds(
        PutNeighbour,
        st.sampled_from(NETS),
        st.sampled_from(["10.0.0.1", "10.0.0.9"]),
        st.sampled_from(MACS),
    ),
    st.builds(DropNeighbour, st.sampled_from(NETS), st.sampled_from(["10.0.0.1", "10.0.0.9"])),
    st.builds(SetTunnel, st.sampled_from([None, 100, 101])),
    st.builds(SetPhysicalPort, st.sampled_from(PHYSNETS), st.sampled_from([None, 20, 21])),
    st.builds(SetForwarder, st.sampled_from(NETS), st.none() | FORWARDERS),
)


def tweaks(view: View) -> st.SearchStrategy[Change]:
    """Changes to one attribute of an object already in the view: the likely events."""
    options: list[st.SearchStrategy[Change]] = [changes]
    if view.ports:
        options.append(
            st.builds(
                lambda p, attr, n, o, m, i, a, s: PutPort(
                    dataclasses.replace(
                        p,
                        **{
                            attr: {
                                "network": n,
                                "ofport": o,
                                "mac": m,
                                "id": i,
                                "allowed": a,
                                "subnet": s,
                            }[attr]
                        },
                    )
                ),
                st.sampled_from(sorted(view.ports.values(), key=lambda p: p.id)),
                st.sampled_from(["network", "ofport", "mac", "id", "allowed", "subnet"]),
                st.sampled_from(NETS),
                st.integers(1, 5),
                st.sampled_from(MACS),
                st.sampled_from(sorted(view.remotes) or ["a"]),
                PAIRS,
                st.sampled_from([None, *SUBNET_IDS]),
            )
        )
    if view.remotes:
        options.append(
            st.builds(
                lambda r, attr, n, v: PutRemote(
                    dataclasses.replace(r, **{attr: {"network": n, "vtep": v}[attr]})
                ),
                st.sampled_from(sorted(view.remotes.values(), key=lambda r: r.id)),
                st.sampled_from(["network", "vtep"]),
                st.sampled_from(NETS),
                st.sampled_from(VTEPS),
            )
        )
    if view.networks:
        options.append(
            st.builds(
                lambda n, number, dhcp: PutNetwork(
                    dataclasses.replace(n, number=number, dhcp=dhcp)
                ),
                st.sampled_from(sorted(view.networks.values(), key=lambda n: n.id)),
                st.integers(1, 4),
                DHCP_FIELDS,
            )
        )
    if view.subnets:
        options.append(
            st.builds(
                lambda s, shape, n, dhcp: PutSubnet(
                    dataclasses.replace(s, cidr=shape[0], gateway=shape[1], network=n, dhcp=dhcp)
                ),
                st.sampled_from(sorted(view.subnets.values(), key=lambda s: s.id)),
                st.sampled_from(SHAPES),
                st.sampled_from(NETS),
                DHCP_FIELDS,
            )
        )
    if view.routers:
        options.append(
            st.builds(
                lambda r, number, extra, routes: PutRouter(
                    dataclasses.replace(
                        r,
                        number=number,
                        interfaces=tuple({i.subnet: i for i in (*r.interfaces, *extra)}.values()),
                        routes=routes,
                    )
                ),
                st.sampled_from(sorted(view.routers.values(), key=lambda r: r.id)),
                st.integers(1, 2),
                st.lists(interfaces(), max_size=1),
                st.one_of(st.just(r.routes) for r in view.routers.values()) | ROUTES,
            )
        )
    return st.one_of(options)
