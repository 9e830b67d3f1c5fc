"""The VTEP controller's pure half: what a switch should hold (`wanted`) and the operations
that get it there (`plan`), on rows shaped as the OVSDB monitor caches them."""

from __future__ import annotations

import uuid
from typing import Any

from vlcp.agent.binding import OvsPort
from vlcp.agent.hwvtep.plan import REPLICATION, plan
from vlcp.agent.hwvtep.wanted import MARK, Endpoint, Wanted, learned, wanted
from vlcp.agent.view_builder import TUNNEL_PORT, Identity, build_view
from vlcp.layout import vtep_flood, vtep_mac
from vlcp.pipeline.compile import compile_all
from vlcp.southbound.ovsdb import NamedUuid

PS, PORT, LS, LOC = (uuid.uuid4() for _ in range(4))
VALUES = {
    "physnet/vx": {"type": "vxlan"},
    "physnet/vl": {"type": "vlan"},
    "lognet/net-a": {"physicalnetwork": "vx", "vni": 5001},
    "lognet/net-v": {"physicalnetwork": "vl", "vlanid": 101},
    "vtep-binding/ps0/p0/100": {"logicalnetwork": "net-a"},
    "vtep-binding/ps0/p0/200": {"logicalnetwork": "net-v"},
    "vtep-binding/ps0/p0/300": {"logicalnetwork": "gone"},
    "vtep-binding/ps1/p0/100": {"logicalnetwork": "net-a"},
}
REMOTES = {
    "net-a": {
        "a1": {"host": "hv0", "vtep": "192.0.2.1", "mac": "02:00:00:00:00:01", "ip": "10.0.0.1"},
        "net-a/ps0/02:00:00:00:00:09": {
            "switch": "ps0",
            "vtep": "192.0.2.9",
            "mac": "02:00:00:00:00:09",
        },
        "net-a/ps1/02:00:00:00:00:08": {
            "switch": "ps1",
            "vtep": "192.0.2.8",
            "mac": "02:00:00:00:00:08",
        },
        "net-a/ps2/unknown-dst": {"switch": "ps2", "vtep": "192.0.2.7"},
    }
}


def switch_rows(**extra: dict[uuid.UUID, dict[str, Any]]) -> dict[str, Any]:
    return {
        "Physical_Switch": {PS: {"name": "ps0", "ports": frozenset({PORT})}},
        "Physical_Port": {PORT: {"name": "p0", "vlan_bindings": {}}},
        **extra,
    }


def test_wanted_keeps_vxlan_bindings_and_every_endpoint_but_the_switch_own() -> None:
    want = wanted(VALUES, REMOTES, "ps0")
    assert want.switches == {"net-a": 5001}
    assert want.bindings == {("p0", 100): "net-a"}
    assert want.ucast == {
        ("net-a", "02:00:00:00:00:01"): Endpoint("10.0.0.1", "192.0.2.1"),
        ("net-a", "02:00:00:00:00:08"): Endpoint(None, "192.0.2.8"),  # behind another switch
    }
    assert want.flood == {"net-a": frozenset({"192.0.2.1", "192.0.2.7", "192.0.2.8"})}


def test_an_empty_switch_gets_everything_in_one_plan() -> None:
    ops = plan(switch_rows(), "ps0", wanted(VALUES, REMOTES, "ps0"))
    tables = [(op["op"], op["table"]) for op in ops]
    assert tables.count(("insert", "Logical_Switch")) == 1
    assert tables.count(("insert", "Physical_Locator")) == 3  # one per endpoint, shared
    assert tables.count(("insert", "Ucast_Macs_Remote")) == 2
    assert tables.count(("insert", "Mcast_Macs_Remote")) == 1
    assert ("update", "Physical_Port") in tables
    ls = next(op for op in ops if op["table"] == "Logical_Switch")
    assert ls["row"]["replication_mode"] == REPLICATION and ls["row"]["description"] == MARK


def converged(want: Wanted) -> dict[str, Any]:
    """The rows a switch holds once `want` is applied (one network, one endpoint)."""
    ((network, vni),) = want.switches.items()
    ((mac, endpoint),) = ((m, e) for (_, m), e in want.ucast.items())
    locset = uuid.uuid4()
    return switch_rows(
        Physical_Port={PORT: {"name": "p0", "vlan_bindings": {100: LS}}},
        Logical_Switch={
            LS: {
                "name": network,
                "description": MARK,
                "tunnel_key": vni,
                "replication_mode": REPLICATION,
            }
        },
        Physical_Locator={LOC: {"encapsulation_type": "vxlan_over_ipv4", "dst_ip": endpoint.vtep}},
        Physical_Locator_Set={locset: {"locators": frozenset({LOC})}},
        Ucast_Macs_Remote={
            uuid.uuid4(): {
                "MAC": mac,
                "logical_switch": LS,
                "locator": LOC,
                "ipaddr": endpoint.ip or "",
            }
        },
        Mcast_Macs_Remote={
            uuid.uuid4(): {"MAC": "unknown-dst", "logical_switch": LS, "locator_set": locset}
        },
    )


def test_a_converged_switch_gets_no_operation_and_a_change_only_its_difference() -> None:
    values = {k: v for k, v in VALUES.items() if "ps1" not in k}
    remotes = {"net-a": {"a1": REMOTES["net-a"]["a1"]}}
    want = wanted(values, remotes, "ps0")
    rows = converged(want)
    assert plan(rows, "ps0", want) == []
    want.ucast[("net-a", "02:00:00:00:00:01")] = Endpoint("10.0.0.1", "192.0.2.5")  # moved
    ops = plan(rows, "ps0", want)
    assert [(op["op"], op["table"]) for op in ops] == [
        ("insert", "Physical_Locator"),
        ("update", "Ucast_Macs_Remote"),
    ]


def test_unbinding_the_last_vlan_removes_the_network_and_leaves_others_alone() -> None:
    rows = converged(
        Wanted(
            {"net-a": 5001}, {}, {("net-a", "02:00:00:00:00:01"): Endpoint(None, "192.0.2.1")}, {}
        )
    )
    theirs = uuid.uuid4()
    rows["Logical_Switch"][theirs] = {"name": "ops", "description": "", "tunnel_key": 7}
    rows["Physical_Port"][PORT]["vlan_bindings"] = {100: LS, 7: theirs}
    ops = plan(rows, "ps0", Wanted())
    assert {
        "op": "update",
        "table": "Physical_Port",
        "where": [["_uuid", "==", ["uuid", str(PORT)]]],
        "row": {"vlan_bindings": ["map", [[7, ["uuid", str(theirs)]]]]},
    } in ops
    deleted = [op["table"] for op in ops if op["op"] == "delete"]
    assert sorted(deleted) == sorted(
        [
            "Ucast_Macs_Remote",
            "Mcast_Macs_Remote",
            "Ucast_Macs_Local",
            "Mcast_Macs_Local",
            "Logical_Switch",
        ]
    )
    assert not any(op["op"] == "delete" and str(theirs) in str(op) for op in ops)


def test_an_operator_logical_switch_of_the_same_name_is_not_taken() -> None:
    rows = switch_rows(Logical_Switch={LS: {"name": "net-a", "description": "", "tunnel_key": 1}})
    ops = plan(rows, "ps0", wanted(VALUES, REMOTES, "ps0"))
    assert not any(op["table"] == "Logical_Switch" for op in ops)
    assert not any(isinstance(v, NamedUuid) for op in ops for v in op.get("row", {}).values())


def test_learned_macs_of_vlcp_networks_become_store_entries() -> None:
    theirs = uuid.uuid4()
    rows = switch_rows(
        Physical_Switch={PS: {"name": "ps0", "tunnel_ips": frozenset({"192.0.2.9"})}},
        Logical_Switch={
            LS: {"name": "net-a", "description": MARK},
            theirs: {"name": "ops", "description": ""},
        },
        Physical_Locator={LOC: {"encapsulation_type": "vxlan_over_ipv4", "dst_ip": "192.0.2.9"}},
        Ucast_Macs_Local={
            uuid.uuid4(): {
                "MAC": "02:00:00:00:00:09",
                "logical_switch": LS,
                "locator": LOC,
                "ipaddr": "",
            },
            uuid.uuid4(): {
                "MAC": "02:00:00:00:00:0a",
                "logical_switch": theirs,
                "locator": LOC,
                "ipaddr": "",
            },
        },
    )
    assert learned(rows, "ps0") == {
        vtep_flood("net-a", "ps0"): {"vtep": "192.0.2.9", "switch": "ps0"},
        vtep_mac("net-a", "ps0", "02:00:00:00:00:09"): {
            "mac": "02:00:00:00:00:09",
            "vtep": "192.0.2.9",
            "switch": "ps0",
        },
    }


def server_view(entries: dict[str, Any], extra_ports: dict[str, OvsPort] | None = None) -> Any:
    """hv0's view with its port a1 in vxlan network net-a (and `extra_ports` on its
    bridge), and `entries` in the store."""
    values = {
        "physnet/vx": {"type": "vxlan"},
        "lognet/net-a": {"physicalnetwork": "vx", "vni": 5001},
        "lport/a1": {"logicalnetwork": "net-a", "mac_address": "02:00:00:00:00:01"},
        **entries,
    }
    ports = {
        "i0": OvsPort("i0", 1, "a1", None, 1.0),
        TUNNEL_PORT: OvsPort(TUNNEL_PORT, 9, None, None),
        **(extra_ports or {}),
    }
    return build_view(values, ports, Identity("hv0", "br-int", "192.0.2.1"))


def test_a_switch_flood_entry_is_a_remote_that_takes_only_floods() -> None:
    """Servers send a bound network's floods to the switch before it learned any MAC."""
    view = server_view({vtep_flood("net-a", "ps0"): {"vtep": "192.0.2.9", "switch": "ps0"}})
    assert view.peer_vteps("net-a") == ["192.0.2.9"]
    network_flows = compile_all(view)[("network", "net-a")]
    assert sum("192.0.2.9" in repr(flow) for flow in network_flows) >= 2  # ingress, flood
    assert ("remote", "net-a/ps0/unknown-dst") not in compile_all(view)  # no MAC: no unicast flow


def test_servers_answer_arp_for_a_learned_mac_whose_ip_the_switch_knows() -> None:
    entry = {"mac": "02:00:00:00:00:09", "ip": "10.0.0.9", "vtep": "192.0.2.9", "switch": "ps0"}
    view = server_view({vtep_mac("net-a", "ps0", "02:00:00:00:00:09"): entry})
    flows = compile_all(view)[("remote", "net-a/ps0/02:00:00:00:00:09")]
    assert any("10.0.0.9" in repr(f) for f in flows)  # the ARP answer
    assert any("192.0.2.9" in repr(f) for f in flows)  # unicast to the switch


def test_one_switch_is_an_endpoint_of_each_network_it_floods_or_learned_a_mac_in() -> None:
    """Found by the incremental view's property test: endpoint ids without the network
    made a switch bound in two networks a flood endpoint of only one of them."""
    flood = {"vtep": "192.0.2.9", "switch": "ps0"}
    mac = {"mac": "02:00:00:00:00:09", "vtep": "192.0.2.9", "switch": "ps0"}
    view = server_view(
        {
            "lognet/net-b": {"physicalnetwork": "vx", "vni": 5002},
            "lport/b1": {"logicalnetwork": "net-b", "mac_address": "02:00:00:00:00:01"},
            vtep_flood("net-a", "ps0"): flood,
            vtep_flood("net-b", "ps0"): flood,
            vtep_mac("net-a", "ps0", mac["mac"]): mac,
            vtep_mac("net-b", "ps0", mac["mac"]): mac,
        },
        extra_ports={"i1": OvsPort("i1", 2, "b1", None, 1.0)},
    )
    assert view.peer_vteps("net-a") == view.peer_vteps("net-b") == ["192.0.2.9"]
    assert {r.network for r in view.remotes.values() if r.mac} == {"net-a", "net-b"}
