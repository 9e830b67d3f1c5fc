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
