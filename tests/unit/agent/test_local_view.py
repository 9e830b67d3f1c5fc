"""`LocalView` kept up to date one change at a time always equals `build_view` from scratch.

Random sequences of store writes (ports, networks, physical networks and ports, ports
announced by other servers with older or newer bindings, subnets, routers joining them,
MACs and flood entries of hardware VTEP switches, bad data among them) and bridge
port changes (plug, unplug, replug elsewhere, two interfaces claiming one port, undated
bindings, the tunnel port) are applied one at a time; after each, the incrementally kept
view must equal the from-scratch one, and the flows obtained by recompiling only the
touched owners must equal `compile_all`. A scoped mirror (what a controller's
subscription holds: its ports, their networks, what their routers reach) settled at its
fixed point after each step must give that same view, built from the whole store.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vlcp.agent.binding import OvsPort
from vlcp.agent.mirror import VIEW_PREFIXES, Mirror
from vlcp.agent.view_builder import TUNNEL_PORT, Identity, LocalView, build_view
from vlcp.layout import scope_of, watched_scopes
from vlcp.pipeline.builtin import BUILTIN
from vlcp.pipeline.catalog import Catalog
from vlcp.pipeline.compile import compile_all, compile_owner
from vlcp.pipeline.gateway import gateway_mac
from vlcp.pipeline.view import (
    AddressPair,
    DhcpFields,
    DhcpOption,
    Forwarder,
    Subnet,
    View,
    build_members,
)

ME = Identity("me", "br-int", "192.0.2.1")
PORT_IDS = ["p0", "p1", "p2", "p3"]
NETWORKS = ["n0", "n1", "n2"]
PHYSNETS = ["vx", "vl", "nat"]
IFACES = ["i0", "i1", "i2", "i3", "eth1", TUNNEL_PORT]
MACS = ["02:00:00:00:00:01", "02:00:00:00:00:02", "not-a-mac"]
VRRP = "00:00:5e:00:01:01"
BOUND_AT = [None, 1.0, 2.0]
"""Binding dates: undated, older, newer (against other servers' announcements too)."""

PAIRS = [
    None,
    [],
    [{"ip_address": "10.0.8.0/24"}],
    [{"ip_address": "10.0.0.9", "mac_address": "00:00:5e:00:01:01"}],
    [{"ip_address": "not-an-address"}],
]
"""Allowed address pairs as stored: none, a network, an address with its MAC, bad data."""
SUBNET_IDS = ["s0", "s1", "s2"]
ROUTER_IDS = ["r0", "r1"]
INTERFACES = st.lists(
    st.builds(
        lambda s, ip: {"id": f"i-{s}", "subnet": s, "ip_address": ip},
        st.sampled_from(SUBNET_IDS),
        st.sampled_from(["10.0.0.254", "10.0.0.1", None, "not-an-address"]),
    ),
    max_size=3,
)
"""A router's interfaces as stored: on any subnet (two on one is refused: the router is
left out), at the gateway, a port's address, or bad data (the interface is left out)."""
ROUTES = st.lists(
    st.tuples(
        st.sampled_from(["0.0.0.0/0", "192.0.2.0/24", "10.0.0.1/32", "not-a-cidr"]),
        st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.9"]),
    ).map(list),
    max_size=2,
)
"""A router's static routes as stored: through a port's address or none's, or bad data
(the router is left out)."""
DHCP = [
    {},
    {"dns_nameservers": ["192.0.2.53"], "lease_time": 600, "extra_dhcp_options": {"66": "tftp"}},
    {"mtu": 1400},
    {"dns_nameservers": ["not-an-address"]},
]
"""DHCP fields as stored on networks and subnets: none, some, bad data (ignored alone)."""

store_writes = st.one_of(
    st.builds(
        lambda p, n, mac, ip, pairs, subnet, extra: (
            f"lport/{p}",
            {
                "logicalnetwork": n,
                "mac_address": mac,
                "ip_address": ip,
                "allowed_address_pairs": pairs,
                "subnet": subnet,
                "hostname": "vm",
                "extra_dhcp_options": extra,
            },
        ),
        st.sampled_from(PORT_IDS),
        st.sampled_from(NETWORKS),
        st.sampled_from(MACS),
        st.sampled_from([None, "10.0.0.1", "10.0.0.2"]),
        st.sampled_from(PAIRS),
        st.sampled_from([None, *SUBNET_IDS]),
        st.sampled_from([None, {"66": "tftp"}, {"0": "bad code"}]),
    ),
    st.builds(
        lambda n, phys, tag, dhcp: (
            f"lognet/{n}",
            {"physicalnetwork": phys, "vni": tag, "vlanid": tag, **dhcp},
        ),
        st.sampled_from(NETWORKS),
        st.sampled_from(PHYSNETS),
        st.sampled_from([5, 6, 70000]),
        st.sampled_from(DHCP),
    ),
    st.builds(
        lambda s, n, cidr, gateway, dhcp, external: (
            f"subnet/{s}",
            {
                "logicalnetwork": n,
                "cidr": cidr,
                "gateway": gateway,
                "isexternal": external,
                **dhcp,
            },
        ),
        st.sampled_from(SUBNET_IDS),
        st.sampled_from(NETWORKS),
        st.sampled_from(["10.0.0.0/24", "10.0.0.0/31", "not-a-cidr"]),
        st.sampled_from([None, "10.0.0.254", "10.0.0.1", "bad"]),  # outside /31: a bad subnet
        st.sampled_from(DHCP),
        st.booleans(),  # external: its routers' default route through its gateway
    ),
    st.builds(
        lambda r, interfaces, routes: (
            f"router/{r}",
            {"id": r, "routes": routes, "interfaces": interfaces},
        ),
        st.sampled_from(ROUTER_IDS),
        INTERFACES,
        ROUTES,
    ),
    st.builds(
        lambda phys, kind: (f"physnet/{phys}", {"type": kind}),
        st.sampled_from(PHYSNETS),
        st.sampled_from(["vxlan", "vlan", "native", "local"]),
    ),
    st.builds(
        lambda n, p, host, vtep, mac, bound_at: (
            f"netports/{n}/{p}",
            {"host": host, "vtep": vtep, "mac": mac, "ip": None, "bound_at": bound_at},
        ),
        st.sampled_from(NETWORKS),
        st.sampled_from([*PORT_IDS, "r0", "r1"]),
        st.sampled_from(["me", "hv2", "hv3"]),
        st.sampled_from([None, "192.0.2.2", "192.0.2.3"]),
        st.sampled_from(MACS),
        st.sampled_from(BOUND_AT),
    ),
    st.builds(  # what a hardware VTEP switch learned, and its flood entry (no MAC)
        lambda n, switch, mac, vtep: (
            f"vtep-macs/{n}/{switch}/{mac or 'unknown-dst'}",
            {"switch": switch, "vtep": vtep} | ({"mac": mac} if mac else {}),
        ),
        st.sampled_from(NETWORKS),
        st.sampled_from(["ps0", "ps1"]),
        st.sampled_from([None, *MACS]),
        st.sampled_from(["192.0.2.9", "192.0.2.2"]),
    ),
    st.builds(  # a live server, and where it may forward (`forwarding.elect`)
        lambda system, vtep, forwards: (
            f"chassis/{system}",
            {"vtep": vtep, "bridge": "br-int", "node": system, "forwards": forwards},
        ),
        st.sampled_from(["me", "hv2", "a-first"]),
        st.sampled_from([None, "192.0.2.1", "192.0.2.2", "bad"]),
        st.sampled_from([[], ["vl"], ["vx", "vl"], "bad"]),
    ),
    st.builds(
        lambda phys, system: (
            f"physport/{system}/{phys}",
            {"name": "eth1", "physicalnetwork": phys, "systemid": system, "bridge": "%"},
        ),
        st.sampled_from(PHYSNETS),
        st.sampled_from(["%", "me", "hv2"]),
    ),
)
store_deletes = st.builds(
    lambda key: (key, None),
    st.sampled_from(
        [f"lport/{p}" for p in PORT_IDS]
        + [f"lognet/{n}" for n in NETWORKS]
        + [f"physnet/{p}" for p in PHYSNETS]
        + [f"subnet/{s}" for s in SUBNET_IDS]
        + [f"router/{r}" for r in ROUTER_IDS]
        + [f"netports/{n}/{p}" for n in NETWORKS for p in ("p0", "r0")]
        + ["netports/n1/q0"]
        + [f"vtep-macs/{n}/ps0/{m}" for n in NETWORKS for m in ("unknown-dst", MACS[0])]
        + ["physport/%/vl", "physport/me/vl"]
        + ["chassis/me", "chassis/a-first"]
    ),
)
plugs = st.builds(
    lambda name, port_id, ofport, bound_at: ("plug", name, port_id, ofport, bound_at),
    st.sampled_from(IFACES),
    st.sampled_from([None, *PORT_IDS]),
    st.integers(1, 6),
    st.sampled_from(BOUND_AT),
)
unplugs = st.builds(lambda name: ("unplug", name, None, 0, None), st.sampled_from(IFACES))
SETUP: list[Any] = [
    ("physnet/vx", {"type": "vxlan"}),
    ("lognet/n0", {"physicalnetwork": "vx", "vni": 5, "dns_nameservers": ["192.0.2.53"]}),
    ("subnet/s0", {"logicalnetwork": "n0", "cidr": "10.0.0.0/24", "gateway": "10.0.0.254"}),
    ("lport/p0", {"logicalnetwork": "n0", "mac_address": MACS[0], "ip_address": "10.0.0.1"}),
]
"""A network with a subnet, known before any port is plugged: some examples start here,
so that networks (and their subnets) come and go with the ports plugged in them."""
ROUTED: list[Any] = [
    *SETUP,
    ("lognet/n1", {"physicalnetwork": "vx", "vni": 6}),
    ("subnet/s1", {"logicalnetwork": "n1", "cidr": "10.0.0.0/24", "gateway": "10.0.0.254"}),
    (
        "router/r0",
        {
            "id": "r0",
            "routes": [],
            "interfaces": [
                {"id": "a", "subnet": "s0", "ip_address": "10.0.0.254"},
                {"id": "b", "subnet": "s1", "ip_address": "10.0.0.254"},
            ],
        },
    ),
    ("netports/n1/q0", {"host": "hv2", "vtep": "192.0.2.2", "mac": MACS[1], "ip": "10.0.0.2"}),
    ("plug", "i0", "p0", 1, 1.0),
]
"""p0 plugged in n0, and a router joining n0 to n1, where hv2 has a port: the routed
network and its port are in the view from the start, to come and go with what follows.
(The port's id, q0, is announced nowhere else: a port announced in two networks at once,
which no server writes, has no one right view, and the random writes make enough of
those already.)"""
steps = st.tuples(
    st.sampled_from([[], SETUP, ROUTED]),
    st.lists(st.one_of(store_writes, store_deletes, plugs, unplugs), max_size=40),
).map(lambda t: [*t[0], *t[1]])


@settings(max_examples=300, deadline=None)
@given(steps)
def test_the_incremental_view_always_equals_the_view_from_scratch(steps: list[Any]) -> None:
    mirror = Mirror(store=None)  # type: ignore[arg-type]  # fed by hand, never run
    ports: dict[str, OvsPort] = {}
    local = LocalView(ME)
    scoped = ScopedMirror()
    flows = dict(compile_all(local.view))
    for step in steps:
        keys: set[str] = set()
        names: set[str] = set()
        if step[0] in ("plug", "unplug"):
            _, name, port_id, ofport, bound_at = step
            if step[0] == "plug":
                ports[name] = OvsPort(name, ofport, port_id, None, bound_at)
            else:
                ports.pop(name, None)
            names.add(name)
        else:
            key, value = step
            mirror.apply_change(key, value)
            keys.add(key)
        delta = local.update(mirror, ports, keys, names)
        expected = build_view(mirror.values, ports, ME)
        assert local.view == expected
        assert scoped.settle(mirror.values, ports, keys, names) == expected
        assert set(scoped.mirror.values) <= {k for k in mirror.values if scope_of(k) in scoped.held}
        assert local.view.members == build_members(expected.ports, expected.remotes)
        assert local.view.subnets == expected.subnets
        assert local.view.routers == expected.routers
        assert mirror.routers == Mirror.snapshot(mirror.values).routers
        for owner in delta.owners:
            owned = compile_owner(local.view, owner)
            if owned:
                flows[owner] = owned
            else:
                flows.pop(owner, None)
        assert flows == compile_all(expected)


ROUNDS = 50
"""More rounds than any chain of scopes in these tests: past them, it oscillates."""


class ScopedMirror:
    """A controller's scoped mirror, fed from the full store as a `Subscription` feeds it:
    a commit's keys of followed scopes only, and, each time the view names other scopes,
    the values of the added ones (dropped ones go) until the set of scopes is a fixed
    point. Its view must then equal the view built from the whole store."""

    FIXED = watched_scopes([*VIEW_PREFIXES, *Catalog(BUILTIN).watches()])
    """What the agent follows whole: the view's prefixes and what the built-in modules
    watch (subnets, routers, and the servers' presence for the external networks)."""

    def __init__(self) -> None:
        self.mirror = Mirror(store=None)  # type: ignore[arg-type]
        self.local = LocalView(ME)
        self.held: set[str] = set(self.FIXED)

    def settle(
        self, store: dict[str, Any], ports: dict[str, OvsPort], keys: set[str], names: set[str]
    ) -> View:
        keys = {k for k in keys if scope_of(k) in self.held}
        for key in keys:
            self.mirror.apply_change(key, store.get(key))
        for _round in range(ROUNDS):
            self.local.update(self.mirror, ports, keys, names)
            wanted = self.FIXED | self.local.scopes()
            if wanted == self.held:
                return self.local.view
            changed = wanted ^ self.held
            self.held = wanted
            keys = {k for k in {*store, *self.mirror.values} if scope_of(k) in changed}
            for key in keys:
                self.mirror.apply_change(key, store.get(key) if scope_of(key) in wanted else None)
            names = set()
        raise AssertionError(f"no fixed point after {ROUNDS} rounds: {sorted(self.held)}")


def test_a_new_port_touches_its_port_only_once_its_network_is_in() -> None:
    mirror = Mirror(store=None)  # type: ignore[arg-type]
    mirror.apply_change("physnet/vx", {"type": "vxlan"})
    mirror.apply_change("lognet/n0", {"physicalnetwork": "vx", "vni": 5})
    local = LocalView(ME)
    ports: dict[str, OvsPort] = {}
    for i in range(3):
        mirror.apply_change(f"lport/p{i}", {"logicalnetwork": "n0", "mac_address": MACS[0]})
        ports[f"i{i}"] = OvsPort(f"i{i}", i + 1, f"p{i}", None, bound_at=1.0)
        delta = local.update(mirror, ports, {f"lport/p{i}"}, {f"i{i}"})
        assert delta.ports == {f"p{i}"}
    assert delta.owners == {("port", "p2"), ("network", "n0")}


def test_the_newest_binding_wins_and_the_older_one_serves_again_once_it_goes() -> None:
    mirror = Mirror(store=None)  # type: ignore[arg-type]
    mirror.apply_change("physnet/vx", {"type": "vxlan"})
    mirror.apply_change("lognet/n0", {"physicalnetwork": "vx", "vni": 5})
    mirror.apply_change("lport/p0", {"logicalnetwork": "n0", "mac_address": MACS[0]})
    mirror.apply_change("lport/p1", {"logicalnetwork": "n0", "mac_address": MACS[1]})
    local = LocalView(ME)
    ports = {
        "i0": OvsPort("i0", 1, "p0", None, bound_at=None),
        "i1": OvsPort("i1", 2, "p1", None, bound_at=1.0),  # keeps n0 here throughout
    }
    keys = {"physnet/vx", "lognet/n0", "lport/p0", "lport/p1"}
    local.update(mirror, ports, keys, {"i0", "i1"})
    assert "p0" not in local.view.ports  # not dated yet
    ports["i0"] = OvsPort("i0", 1, "p0", None, bound_at=10.0)
    local.update(mirror, ports, set(), {"i0"})
    assert "p0" in local.view.ports

    elsewhere = {"host": "hv2", "vtep": "192.0.2.2", "mac": MACS[0], "ip": None}
    mirror.apply_change("netports/n0/p0", {**elsewhere, "bound_at": 5.0})  # older: ignored
    local.update(mirror, ports, {"netports/n0/p0"}, set())
    assert "p0" in local.view.ports
    mirror.apply_change("netports/n0/p0", {**elsewhere, "bound_at": 20.0})  # newer: yield
    delta = local.update(mirror, ports, {"netports/n0/p0"}, set())
    assert "p0" not in local.view.ports and delta.ports == {"p0"}
    assert local.view.remote("p0") is not None  # traffic follows it to hv2
    mirror.apply_change("netports/n0/p0", None)  # hv2's binding went away
    local.update(mirror, ports, {"netports/n0/p0"}, set())
    assert "p0" in local.view.ports


def test_allowed_address_pairs_reach_the_port_and_touch_only_it() -> None:
    mirror = Mirror(store=None)  # type: ignore[arg-type]
    mirror.apply_change("physnet/vx", {"type": "vxlan"})
    mirror.apply_change("lognet/n0", {"physicalnetwork": "vx", "vni": 5})
    port = {"logicalnetwork": "n0", "mac_address": MACS[0], "ip_address": "10.0.0.1"}
    mirror.apply_change("lport/p0", port)
    ports = {"i0": OvsPort("i0", 1, "p0", None, bound_at=1.0)}
    local = LocalView(ME)
    local.update(mirror, ports, {"physnet/vx", "lognet/n0", "lport/p0"}, {"i0"})
    assert local.view.ports["p0"].allowed == ()

    pairs = [{"ip_address": "10.0.8.0/24"}, {"ip_address": "10.0.0.9", "mac_address": VRRP}]
    mirror.apply_change("lport/p0", {**port, "allowed_address_pairs": pairs})
    delta = local.update(mirror, ports, {"lport/p0"}, set())
    assert delta.owners == {("port", "p0")}
    assert local.view.ports["p0"].allowed == (
        AddressPair("10.0.8.0/24", MACS[0]),  # no MAC: the port's own
        AddressPair("10.0.0.9/32", VRRP),
    )

    bad = [{"ip_address": "10.0.8.0/33"}]
    mirror.apply_change("lport/p0", {**port, "allowed_address_pairs": bad})
    local.update(mirror, ports, {"lport/p0"}, set())
    assert "p0" not in local.view.ports  # left out: no flows, its VIF's frames dropped


def test_subnets_come_with_their_network_and_touch_only_what_reads_them() -> None:
    mirror = Mirror(store=None)  # type: ignore[arg-type]
    for key, value in SETUP:
        mirror.apply_change(key, value)
    ports = {"i0": OvsPort("i0", 1, "p0", None, bound_at=1.0)}
    local = LocalView(ME)
    local.update(mirror, ports, {key for key, _ in SETUP}, {"i0"})
    view = local.view
    assert view.subnet_of(view.ports["p0"]) is None  # the port does not name its subnet
    port = {**SETUP[3][1], "subnet": "s0", "hostname": "vm0", "extra_dhcp_options": {"66": "t"}}
    mirror.apply_change("lport/p0", port)
    assert local.update(mirror, ports, {"lport/p0"}, set()).owners == {("port", "p0")}
    p0 = local.view.ports["p0"]
    assert local.view.subnet_of(p0) == Subnet("s0", "n0", "10.0.0.0/24", "10.0.0.254")
    assert (p0.hostname, p0.dhcp_extra) == ("vm0", (DhcpOption(66, '"t"'),))
    assert local.view.networks["n0"].dhcp.dns_nameservers == ("192.0.2.53",)

    options = {**SETUP[2][1], "dns_nameservers": ["192.0.2.54"], "lease_time": 60}
    mirror.apply_change("subnet/s0", options)  # read by the responder only
    assert local.update(mirror, ports, {"subnet/s0"}, set()).owners == frozenset()
    assert local.view.subnets["s0"].dhcp.lease_time == 60
    mirror.apply_change("lognet/n0", {**SETUP[1][1], "domain_name": "example.test"})
    assert local.update(mirror, ports, {"lognet/n0"}, set()).owners == frozenset()
    moved = {**options, "cidr": "10.0.1.0/24", "gateway": None}  # p0's address is out
    mirror.apply_change("subnet/s0", moved)  # and the gateway (its network's flows) gone
    owners = {("port", "p0"), ("network", "n0")}
    assert local.update(mirror, ports, {"subnet/s0"}, set()).owners == owners
    assert local.view.subnet_of(local.view.ports["p0"]) is None
    mirror.apply_change("subnet/s0", {**moved, "gateway": "10.0.1.1"})  # the gateway only
    assert local.update(mirror, ports, {"subnet/s0"}, set()).owners == {("network", "n0")}
    mirror.apply_change("subnet/s0", moved)
    assert local.update(mirror, ports, {"subnet/s0"}, set()).owners == {("network", "n0")}

    bad = {**SETUP[1][1], "dns_nameservers": ["not-an-address"]}
    mirror.apply_change("lognet/n0", bad)  # bad DHCP settings cost only themselves
    local.update(mirror, ports, {"lognet/n0"}, set())
    assert local.view.networks["n0"].dhcp == DhcpFields() and "p0" in local.view.ports
    mirror.apply_change("subnet/s0", None)
    assert local.update(mirror, ports, {"subnet/s0"}, set()).owners == {("port", "p0")}
    assert local.view.subnets == {} and mirror.subnets_of("n0") == {}


def test_a_router_brings_in_the_networks_it_joins_to_this_servers_and_their_ports() -> None:
    """p0's network n0 is routed to n1, where only hv2 has a port: n1 and that port come
    into the view (this server routes to them), with the router; removing the interface
    on n1 takes them out again."""
    mirror = Mirror(store=None)  # type: ignore[arg-type]
    setup = [
        *SETUP,
        ("lognet/n1", {"physicalnetwork": "vx", "vni": 6}),
        ("subnet/s1", {"logicalnetwork": "n1", "cidr": "10.0.1.0/24", "gateway": "10.0.1.254"}),
        ("netports/n1/r0", {"host": "hv2", "vtep": "192.0.2.2", "mac": MACS[1], "ip": "10.0.1.3"}),
    ]
    for key, value in setup:
        mirror.apply_change(key, value)
    ports = {"i0": OvsPort("i0", 1, "p0", None, bound_at=1.0)}
    local = LocalView(ME)
    local.update(mirror, ports, {key for key, _ in setup}, {"i0"})
    assert set(local.view.networks) == {"n0"}
    interfaces = [
        {"id": "a", "subnet": "s0", "ip_address": "10.0.0.254"},
        {"id": "b", "subnet": "s1", "ip_address": "10.0.1.254"},
    ]
    mirror.apply_change("router/r", {"id": "r", "routes": [], "interfaces": interfaces})
    delta = local.update(mirror, ports, {"router/r"}, set())
    view = local.view
    assert set(view.networks) == {"n0", "n1"} and set(view.remotes) == {"r0"}
    assert set(view.subnets) == {"s0", "s1"}
    (router,) = view.routers.values()
    assert [(i.subnet, i.network, i.ip) for i in router.interfaces] == [
        ("s0", "n0", "10.0.0.254"),
        ("s1", "n1", "10.0.1.254"),
    ]
    assert router.interfaces[0].mac == gateway_mac("s0")
    assert {("port", "p0"), ("remote", "r0"), ("network", "n0")} <= delta.owners
    assert view == build_view(mirror.values, ports, ME)

    mirror.apply_change("router/r", {"id": "r", "routes": [], "interfaces": interfaces[:1]})
    local.update(mirror, ports, {"router/r"}, set())
    assert set(local.view.networks) == {"n0"} and local.view.remotes == {}
    assert local.view == build_view(mirror.values, ports, ME)


def test_a_router_on_an_external_subnet_routes_by_default_through_its_gateway() -> None:
    """The way out: a router with an interface on an external subnet (where each router
    has a MAC of its own) gets the default route through that subnet's gateway, unless
    its routes have a default route already; the subnet's change follows."""
    mirror = Mirror(store=None)  # type: ignore[arg-type]
    external = {
        "logicalnetwork": "n1",
        "cidr": "10.0.1.0/24",
        "gateway": "10.0.1.1",
        "isexternal": True,
    }
    interfaces = [
        {"id": "a", "subnet": "s0", "ip_address": "10.0.0.254"},
        {"id": "b", "subnet": "s1", "ip_address": "10.0.1.7"},
    ]
    setup = [
        *SETUP,
        ("lognet/n1", {"physicalnetwork": "vx", "vni": 6}),
        ("subnet/s1", external),
        (
            "router/r",
            {"id": "r", "routes": [["192.0.2.0/24", "10.0.0.9"]], "interfaces": interfaces},
        ),
    ]
    for key, value in setup:
        mirror.apply_change(key, value)
    ports = {"i0": OvsPort("i0", 1, "p0", None, bound_at=1.0)}
    local = LocalView(ME)
    local.update(mirror, ports, {key for key, _ in setup}, {"i0"})
    (router,) = local.view.routers.values()
    assert router.routes == (("0.0.0.0/0", "10.0.1.1"), ("192.0.2.0/24", "10.0.0.9"))
    assert router.interfaces[1].mac == gateway_mac("s1/r") != gateway_mac("s1")
    mirror.apply_change("subnet/s1", {**external, "gateway": "10.0.1.2"})
    local.update(mirror, ports, {"subnet/s1"}, set())
    assert local.view.routers["r"].routes[0] == ("0.0.0.0/0", "10.0.1.2")
    own_default = [["0.0.0.0/0", "10.0.0.9"]]
    mirror.apply_change("router/r", {"id": "r", "routes": own_default, "interfaces": interfaces})
    local.update(mirror, ports, {"router/r"}, set())
    assert local.view.routers["r"].routes == (("0.0.0.0/0", "10.0.0.9"),)
    assert local.view == build_view(mirror.values, ports, ME)


def test_a_server_follows_its_ports_their_networks_and_what_their_routers_reach() -> None:
    scoped = ScopedMirror()
    store = dict(step for step in ROUTED if step[0] != "plug")
    store["lognet/n2"] = {"physicalnetwork": "vx", "vni": 7}  # no port here, no router
    store["netports/n2/q1"] = {"host": "hv2", "vtep": "192.0.2.2", "mac": MACS[1]}
    view = scoped.settle(store, {}, set(store), set())
    assert scoped.held == set(ScopedMirror.FIXED)  # no port: no network, no port object
    assert view == build_view(store, {}, ME)
    ports = {"i0": OvsPort("i0", 1, "p0", None, 1.0)}
    view = scoped.settle(store, ports, set(), {"i0"})
    assert scoped.held - ScopedMirror.FIXED == {"port:p0", "net:n0", "net:n1"}
    assert "netports/n2/q1" not in scoped.mirror.values
    assert view == build_view(store, ports, ME)
    view = scoped.settle(store, {}, set(), {"i0"})  # unplugged: the scopes go
    assert scoped.held == set(ScopedMirror.FIXED)
    assert not [k for k in scoped.mirror.values if k.startswith(("lport/", "netports/"))]


def test_the_forwarding_server_of_an_external_network_is_elected_and_routes_for_it() -> None:
    """Every server sees the same forwarding server of an external network (the lowest
    id of the live servers that may forward on its physical network); that server also
    routes for the routers on it with no port of its own in their networks, and when it
    goes, the next one is elected."""
    mirror = Mirror(store=None)  # type: ignore[arg-type]
    external = {"logicalnetwork": "n1", "cidr": "10.0.1.0/24", "gateway": "10.0.1.1"}
    router = {
        "id": "r",
        "routes": [],
        "interfaces": [
            {"id": "a", "subnet": "s0", "ip_address": "10.0.0.254"},
            {"id": "b", "subnet": "s1", "ip_address": "10.0.1.7"},
        ],
    }
    setup = [
        *SETUP,
        ("physnet/vl", {"type": "vlan"}),
        ("lognet/n1", {"physicalnetwork": "vl", "vlanid": 7}),
        ("subnet/s1", {**external, "isexternal": True}),
        ("router/r", router),
        ("netports/n0/q0", {"host": "zz", "vtep": "192.0.2.2", "mac": MACS[1], "ip": "10.0.0.2"}),
        ("chassis/zz", {"vtep": "192.0.2.2", "forwards": ["vl"]}),
        ("chassis/me", {"vtep": "192.0.2.1", "forwards": ["vl"]}),
    ]
    for key, value in setup:
        mirror.apply_change(key, value)
    zz, me = Identity("zz", "br-int", "192.0.2.2"), LocalView(ME)
    me.update(mirror, {}, {key for key, _ in setup}, set())
    assert me.view.forwarders == {"n1": Forwarder("192.0.2.1", here=True)}
    assert set(me.view.routers) == {"r"}  # no port here: routed for as the forwarding server
    assert me.view.remotes.keys() == {"q0"}
    there = build_view(mirror.values, {"i0": OvsPort("i0", 1, "p0", None, 1.0)}, zz)
    assert there.forwarders == {"n1": Forwarder("192.0.2.1")}
    mirror.apply_change("chassis/me", None)  # its session expired
    me.update(mirror, {}, {"chassis/me"}, set())
    assert me.view.routers == {} and me.view.forwarders == {}
    there = build_view(mirror.values, {"i0": OvsPort("i0", 1, "p0", None, 1.0)}, zz)
    assert there.forwarders == {"n1": Forwarder("192.0.2.2", here=True)}
    assert me.view == build_view(mirror.values, {}, ME)


def test_a_forwarding_server_with_no_port_follows_the_external_networks_it_may_serve() -> None:
    """Whether a server forwards for an external network depends on that network's
    object (its physical network), which a scoped mirror only holds for networks it
    follows: a server that links a physical network follows every network with an
    external subnet, and so routes for the routers on them with no port of its own
    (found by the property test above: the scoped view missed the router)."""
    store = {
        "chassis/me": {"vtep": "192.0.2.1", "forwards": ["vx"]},
        "physnet/vx": {"type": "vxlan"},
        "lognet/n0": {"physicalnetwork": "vx", "vni": 5},
        "subnet/s0": {"logicalnetwork": "n0", "cidr": "10.0.0.0/24", "isexternal": True},
        "router/r0": {
            "id": "r0",
            "routes": [],
            "interfaces": [{"id": "i", "subnet": "s0", "ip_address": "10.0.0.254"}],
        },
    }
    scoped = ScopedMirror()
    view = scoped.settle(store, {}, set(store), set())
    assert scoped.held - ScopedMirror.FIXED == {"net:n0"}
    assert set(view.routers) == {"r0"} and view == build_view(store, {}, ME)
    store["chassis/me"] = {"vtep": "192.0.2.1", "forwards": []}  # its link unplugged
    view = scoped.settle(store, {}, {"chassis/me"}, set())
    assert scoped.held == set(ScopedMirror.FIXED) and view.routers == {}
    assert view == build_view(store, {}, ME)


def test_a_port_bound_here_and_newer_elsewhere_keeps_its_network_followed() -> None:
    """A port plugged here whose binding elsewhere is newer is not local, which only its
    network's announcements tell: a scoped mirror keeps following that network (letting
    it go would make the port local again, then not, without end: found by the property
    test above, where the mirror never settled)."""
    store = {
        "physnet/vx": {"type": "vxlan"},
        "lognet/n0": {"physicalnetwork": "vx", "vni": 5},
        "lport/p0": {"logicalnetwork": "n0", "mac_address": MACS[0]},
        "netports/n0/p0": {"host": "hv3", "vtep": "192.0.2.3", "mac": MACS[0], "bound_at": 2.0},
    }
    ports = {"i0": OvsPort("i0", 1, "p0", None, bound_at=1.0)}
    scoped = ScopedMirror()
    view = scoped.settle(store, ports, set(store), {"i0"})
    assert scoped.held - ScopedMirror.FIXED == {"port:p0", "net:n0"}
    assert view == build_view(store, ports, ME) and "p0" not in view.ports
    del store["netports/n0/p0"]  # the other server let it go: local here again
    view = scoped.settle(store, ports, {"netports/n0/p0"}, set())
    assert "p0" in view.ports and view == build_view(store, ports, ME)
