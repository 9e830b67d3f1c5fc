"""`vlcp-neutron sync`'s plan without Neutron: both sides' objects in, the repairing writes
out, in an order vlcp accepts. Against real Neutron and vlcp: tests/e2e/neutron."""

from __future__ import annotations

from vlcp.integrations.neutron.mapping import NEUTRON_OWNED, Settings
from vlcp.integrations.neutron.sync import Change, State, plan

SETTINGS = Settings(vxlan_physical_network="vx")


def network(id: str, vni: int = 5001, mtu: int = 1450) -> dict:
    return {
        "id": id,
        "mtu": mtu,
        "provider:network_type": "vxlan",
        "provider:physical_network": None,
        "provider:segmentation_id": vni,
    }


def subnet(id: str, net: str) -> dict:
    return {"id": id, "network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"}


def port(id: str, net: str) -> dict:
    return {"id": id, "network_id": net, "mac_address": "fa:16:3e:00:00:01", "fixed_ips": []}


def stored_network(id: str, mtu: int = 1450) -> dict:
    return {"id": id, "physicalnetwork": "vx", "vni": 5001, "mtu": mtu, NEUTRON_OWNED: True}


def test_what_vlcp_missed_is_created_parents_first():
    neutron = State([network("n1")], [subnet("s1", "n1")], [port("p1", "n1")])
    changes, skipped = plan(neutron, State([], [], []), SETTINGS)
    assert skipped == []
    assert [(c.action, c.kind, c.id) for c in changes] == [
        ("create", "logical-networks", "n1"),
        ("create", "subnets", "s1"),
        ("create", "logical-ports", "p1"),
    ]
    assert changes[0].body == stored_network("n1")


def test_what_neutron_forgot_is_deleted_children_first_and_only_neutrons():
    vlcp = State(
        [stored_network("n1"), {"id": "operators", "physicalnetwork": "vx"}],
        [{"id": "s1", "logicalnetwork": "n1"}, {"id": "s9", "logicalnetwork": "operators"}],
        [{"id": "p1", "logicalnetwork": "n1", NEUTRON_OWNED: True}, {"id": "p9"}],
    )
    changes, _ = plan(State([], [], []), vlcp, SETTINGS)
    assert [str(c) for c in changes] == [
        "delete logical-ports p1",
        "delete subnets s1",
        "delete logical-networks n1",
    ]


def test_what_differs_is_updated_and_what_matches_is_left():
    neutron = State([network("n1", mtu=1400)], [], [])
    changes, _ = plan(neutron, State([stored_network("n1")], [], []), SETTINGS)
    assert changes == [Change("update", "logical-networks", "n1", {"mtu": 1400})]
    assert str(changes[0]) == "update logical-networks n1 (mtu)"
    in_sync = State([stored_network("n1", mtu=1400)], [], [])
    assert plan(neutron, in_sync, SETTINGS) == ([], [])


def test_what_cannot_be_mapped_is_skipped_with_why_and_its_children_too():
    geneve = network("n2") | {"provider:network_type": "geneve"}
    neutron = State([geneve], [subnet("s2", "n2")], [port("p2", "n2")])
    changes, skipped = plan(neutron, State([], [], []), SETTINGS)
    assert changes == []
    assert skipped == ["network n2: vlcp carries flat, vlan and vxlan networks, not 'geneve' ones"]


def test_an_operators_network_of_the_same_id_is_never_taken_over():
    vlcp = State([{"id": "n1", "physicalnetwork": "vx"}], [], [])
    neutron = State([network("n1")], [subnet("s1", "n1")], [port("p1", "n1")])
    changes, skipped = plan(neutron, vlcp, SETTINGS)
    assert changes == []
    assert skipped == ["network n1: vlcp has a network of that id not Neutron's"]


# -- routers -------------------------------------------------------------------------------


def router(id: str, routes: list[tuple[str, str]] = ()) -> dict:
    return {"id": id, "routes": [{"destination": d, "nexthop": n} for d, n in routes]}


def router_port(router: str, subnet: str, address: str = "10.0.0.1") -> dict:
    return {
        "id": f"rp-{router}-{subnet}",
        "network_id": "n1",
        "device_owner": "network:router_interface",
        "device_id": router,
        "mac_address": "fa:16:3e:00:00:99",
        "fixed_ips": [{"subnet_id": subnet, "ip_address": address}],
    }


def stored_router(id: str, *interfaces: tuple[str, str], routes: list | None = None) -> dict:
    return {
        "id": id,
        "routes": routes or [],
        "interfaces": [{"subnet": s, "ip_address": a} for s, a in interfaces],
        NEUTRON_OWNED: True,
    }


NET = State([network("n1")], [subnet("s1", "n1")], [])
"""A network and subnet both sides hold (the routers' tests add to it)."""
STORED_NET = State(
    [stored_network("n1")], [{"id": "s1", "logicalnetwork": "n1", "cidr": "10.0.0.0/24"}], []
)


def with_routers(state: State, routers: list[dict], ports: list[dict] = ()) -> State:
    return State(state.networks, state.subnets, [*state.ports, *ports], routers)


def test_a_missed_router_is_created_then_attached_and_its_port_is_no_logical_port():
    neutron = with_routers(
        NET, [router("r1", [("0.0.0.0/0", "10.0.0.254")])], [router_port("r1", "s1")]
    )
    changes, skipped = plan(neutron, with_routers(STORED_NET, []), SETTINGS)
    assert skipped == []
    assert changes == [
        Change(
            "create",
            "routers",
            "r1",
            {"id": "r1", NEUTRON_OWNED: True, "routes": [["0.0.0.0/0", "10.0.0.254"]]},
        ),
        Change(
            "create",
            "router-interfaces",
            "s1",
            {"subnet": "s1", "ip_address": "10.0.0.1"},
            router="r1",
        ),
    ]
    assert [str(c) for c in changes] == ["create routers r1", "create router-interfaces r1/s1"]


def test_a_forgotten_router_is_detached_then_deleted_before_its_subnet():
    vlcp = with_routers(STORED_NET, [stored_router("r1", ("s1", "10.0.0.1"))])
    changes, _ = plan(State([], [], []), vlcp, SETTINGS)
    assert [str(c) for c in changes] == [
        "delete router-interfaces r1/s1",
        "delete routers r1",
        "delete subnets s1",
        "delete logical-networks n1",
    ]


def test_routes_and_interfaces_that_differ_are_repaired_and_what_matches_is_left():
    neutron = with_routers(
        NET,
        [router("r1", [("198.51.100.0/24", "10.0.0.9")])],
        [router_port("r1", "s1", "10.0.0.5")],
    )
    vlcp = with_routers(STORED_NET, [stored_router("r1", ("s1", "10.0.0.1"))])
    changes, _ = plan(neutron, vlcp, SETTINGS)
    assert [str(c) for c in changes] == [
        "update routers r1 (routes)",
        "delete router-interfaces r1/s1",
        "create router-interfaces r1/s1",
    ]
    assert changes[0].body == {"routes": [["198.51.100.0/24", "10.0.0.9"]]}
    assert changes[2].body == {"subnet": "s1", "ip_address": "10.0.0.5"}
    in_sync = with_routers(
        STORED_NET,
        [stored_router("r1", ("s1", "10.0.0.5"), routes=[["198.51.100.0/24", "10.0.0.9"]])],
    )
    assert plan(neutron, in_sync, SETTINGS) == ([], [])


def test_an_operators_router_is_never_touched_nor_taken_over():
    operators = {
        "id": "r1",
        "routes": [],
        "interfaces": [{"subnet": "s1", "ip_address": "10.0.0.1"}],
    }
    neutron = with_routers(NET, [router("r1")], [router_port("r1", "s1")])
    changes, skipped = plan(neutron, with_routers(STORED_NET, [operators]), SETTINGS)
    assert changes == []
    assert skipped == ["router r1: vlcp has a router of that id not Neutron's"]
    assert plan(with_routers(NET, []), with_routers(STORED_NET, [operators]), SETTINGS) == ([], [])


def test_an_interface_on_a_subnet_vlcp_does_not_hold_is_not_attached():
    ipv6 = {"id": "s6", "network_id": "n1", "ip_version": 6, "cidr": "2001:db8::/64"}
    neutron = State(
        NET.networks, [*NET.subnets, ipv6], [router_port("r1", "s6", "2001:db8::1")], [router("r1")]
    )
    changes, _ = plan(neutron, with_routers(STORED_NET, [stored_router("r1")]), SETTINGS)
    assert changes == []


def test_without_neutrons_router_api_vlcps_routers_are_left_as_they_are():
    vlcp = with_routers(STORED_NET, [stored_router("r1", ("s1", "10.0.0.1"))])
    unknown = State(NET.networks, NET.subnets, [router_port("r1", "s1")], None)
    assert plan(unknown, vlcp, SETTINGS) == ([], [])
