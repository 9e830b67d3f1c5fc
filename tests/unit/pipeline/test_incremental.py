"""Incremental equals recompute: recompiling only the owners a change touches gives
exactly `compile_all` of the new view, for random views and random change sequences.

The views are deliberately messy (shared ofports and MACs, ports of networks that are
not in the view, remotes shadowed by local ports, numbers that collide): the property is
about bookkeeping, and must hold whatever the view holds.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from vlcp.pipeline import (
    AddressPair,
    Change,
    DropPort,
    DropRouter,
    DropSubnet,
    LocalPort,
    Network,
    PutPort,
    PutRemote,
    PutRouter,
    PutSubnet,
    RemotePort,
    Router,
    RouterInterface,
    Subnet,
    View,
    apply,
    compile_all,
    compile_owner,
)
from vlcp.pipeline.view import (
    build_members,
    build_router_ids,
    build_subnet_ids,
    build_vni_users,
)

from .strategies import changes, tweaks, views


def fresh(view: View) -> View:
    """The same data, with the index built from scratch."""
    return View(
        dict(view.networks),
        dict(view.ports),
        dict(view.remotes),
        dict(view.physical_ports),
        view.tunnel_ofport,
        dict(view.subnets),
        dict(view.routers),
        dict(view.neighbours),
        dict(view.forwarders),
    )


@settings(max_examples=500, deadline=None)
@given(views, st.integers(1, 8), st.data())
def test_recomputing_the_touched_owners_equals_compile_all(
    view: View, steps: int, data: st.DataObject
) -> None:
    installed = compile_all(view)
    for _ in range(steps):
        change = data.draw(tweaks(view))
        view, touched = apply(view, change)
        for owner in touched:
            flows = compile_owner(view, owner)
            if flows:
                installed[owner] = flows
            else:
                installed.pop(owner, None)
        assert installed == compile_all(view), change
        assert view.members == build_members(view.ports, view.remotes)
        assert view.vni_users == build_vni_users(view.networks)
        assert view.subnet_ids == build_subnet_ids(view.subnets)
        assert view.router_ids == build_router_ids(view.routers)
        assert view == fresh(view)


@settings(max_examples=200, deadline=None)
@given(views, changes)
def test_a_change_that_changes_nothing_touches_nothing(view: View, change: Change) -> None:
    once, _ = apply(view, change)
    again, touched = apply(once, change)
    assert touched == frozenset()
    assert again is once


def test_a_port_change_costs_its_port_and_network_not_the_server() -> None:
    nets = {n: Network(n, "vxlan", i + 1, i + 1) for i, n in enumerate(["big", "small"])}
    many = {
        f"p{i}": LocalPort(f"p{i}", "big", i + 1, f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}")
        for i in range(1000)
    }
    view = View(networks=nets, ports=many, tunnel_ofport=5000)
    new_port = LocalPort("x", "small", 4000, "02:00:00:00:ff:01", "10.0.0.1")
    view, touched = apply(view, PutPort(new_port))
    assert touched == {("port", "x"), ("network", "small")}
    moved_ip = LocalPort("x", "small", 4000, "02:00:00:00:ff:01", "10.0.0.2")
    assert apply(view, PutPort(moved_ip))[1] == {("port", "x")}
    pairs = (AddressPair("10.0.9.0/24", "00:00:5e:00:01:01"),)
    allowed = dataclasses.replace(new_port, allowed=pairs)
    assert apply(view, PutPort(allowed))[1] == {("port", "x")}
    remote = RemotePort("r", "small", "02:00:00:00:ff:02", "192.0.2.1")
    assert apply(view, PutRemote(remote))[1] == {("remote", "r"), ("network", "small")}


def test_shadowing_a_remote_touches_the_remotes_network() -> None:
    """A local port takes over a remote port's id (a migration): the remote's network
    loses a flood peer even though the local port is in another network."""
    view = View(
        networks={"n": Network("n", "vxlan", 1, 5), "m": Network("m", "vxlan", 2, 6)},
        remotes={"r": RemotePort("r", "n", "02:00:00:00:00:02", "192.0.2.1")},
        tunnel_ofport=100,
    )
    local = LocalPort("r", "m", 1, "02:00:00:00:00:02")
    new, touched = apply(view, PutPort(local))
    assert touched == {("port", "r"), ("network", "m"), ("remote", "r"), ("network", "n")}
    assert compile_owner(new, ("remote", "r")) == frozenset()
    back, touched = apply(new, DropPort("r"))
    assert touched == {("port", "r"), ("network", "m"), ("remote", "r"), ("network", "n")}
    assert compile_all(back) == compile_all(view)


def test_a_remote_moving_to_another_server_touches_its_networks_flooding() -> None:
    remote = RemotePort("r", "n", "02:00:00:00:00:02", "192.0.2.1")
    view = View(
        networks={"n": Network("n", "vxlan", 1, 5)}, remotes={"r": remote}, tunnel_ofport=100
    )
    moved = dataclasses.replace(remote, vtep="192.0.2.2")
    assert apply(view, PutRemote(moved))[1] == {("remote", "r"), ("network", "n")}


def test_a_gateway_change_touches_its_networks_and_nothing_else() -> None:
    net = Network("n0", "vxlan", 1, 5)
    port = LocalPort("p0", "n0", 1, "02:00:00:00:00:01", "10.0.0.1", subnet="s0")
    subnet = Subnet("s0", "n0", "10.0.0.0/24", "10.0.0.254")
    view = View({"n0": net}, {"p0": port}, subnets={"s0": subnet})
    for gateway in ("10.0.0.253", None):  # moved, then gone
        new, touched = apply(view, PutSubnet(dataclasses.replace(subnet, gateway=gateway)))
        assert touched == {("network", "n0")}
        assert compile_owner(new, ("network", "n0")) != compile_owner(view, ("network", "n0"))
    routes = dataclasses.replace(subnet, host_routes=(("192.0.2.0/24", "10.0.0.9"),))
    assert apply(view, PutSubnet(routes))[1] == frozenset()  # read by DHCP only
    assert apply(view, DropSubnet("s0"))[1] == {("port", "p0"), ("network", "n0")}


def test_a_router_change_touches_what_it_routes_and_the_networks_it_joins() -> None:
    """Its routed ports and remote ports, and the networks it joins (their entry into
    routing, and which servers may tunnel into them); a remote port of one network
    touches the tunnel ingress of the networks routed to it."""
    nets = {"n": Network("n", "vxlan", 1, 5), "m": Network("m", "vxlan", 2, 6)}
    port = LocalPort("p", "n", 1, "02:00:00:00:00:01", "10.0.0.1")
    other = LocalPort("q", "n", 2, "02:00:00:00:00:02", "10.0.9.1")  # not in a routed subnet
    remote = RemotePort("r", "m", "02:00:00:00:00:03", "192.0.2.1", "10.0.1.3")
    view = View(nets, {"p": port, "q": other}, {"r": remote}, tunnel_ofport=100)
    router = Router(
        "R",
        1,
        (
            RouterInterface("s", "n", "10.0.0.0/24", "10.0.0.254", "02:00:00:00:01:01"),
            RouterInterface("t", "m", "10.0.1.0/24", "10.0.1.254", "02:00:00:00:01:02"),
        ),
    )
    view, touched = apply(view, PutRouter(router))
    assert touched == {("network", "n"), ("network", "m"), ("port", "p"), ("remote", "r")}
    renumbered = dataclasses.replace(router, number=2)
    assert apply(view, PutRouter(renumbered))[1] == touched
    peer = RemotePort("r2", "m", "02:00:00:00:00:04", "192.0.2.9", "10.0.1.4")
    new, touched = apply(view, PutRemote(peer))
    assert touched == {("remote", "r2"), ("network", "m"), ("network", "n")}
    assert compile_owner(new, ("network", "n")) != compile_owner(view, ("network", "n"))
    assert apply(view, DropRouter("R"))[0] == fresh(dataclasses.replace(view, routers={}))
