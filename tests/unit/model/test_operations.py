"""Updates checked against what is allocated, deletion guards, batches, routers, status."""

from __future__ import annotations

import asyncio
import time

import pytest

from vlcp.model import Conflict, Invalid, Model, NotFound, Op, TimedOut, find_physical_port
from vlcp.store import Transaction


async def snapshot(model: Model) -> dict:
    return (await model.store.read_prefix("")).values


# -- physical networks and ports -----------------------------------------------------------


async def test_vlanrange_cannot_drop_a_used_vlan(net: Model) -> None:
    await net.create("logical-networks", {"id": "n5", "physicalnetwork": "p1", "vlanid": 105})
    with pytest.raises(Conflict) as info:
        await net.update("physical-networks", "p1", {"vlanrange": [[100, 104], [106, 109]]})
    assert info.value.field == "vlanrange"
    assert "VLAN id 105 is used by logical network n5" in info.value.message
    updated = await net.update("physical-networks", "p1", {"vlanrange": [[100, 105], [200, 300]]})
    assert updated["vlanrange"] == [[100, 105], [200, 300]]


async def test_vnirange_shrink_checks_through_a_listing(model: Model) -> None:
    """Removing millions of VNIs is checked against the VNIs in use, not by reading each."""
    await model.create(
        "physical-networks", {"id": "x", "type": "vxlan", "vnirange": [[1, 1 << 23]]}
    )
    await model.create("logical-networks", {"id": "a", "physicalnetwork": "x", "vni": 5_000_000})
    await model.create("logical-networks", {"id": "b", "physicalnetwork": "x", "vni": 7})
    with pytest.raises(Conflict, match="VNI 5000000 is used by logical network a"):
        await model.update("physical-networks", "x", {"vnirange": [[1, 1000]]})
    await model.update("physical-networks", "x", {"vnirange": [[1, 1000], [4_000_000, 6_000_000]]})


async def test_physnet_type_and_extras(model: Model) -> None:
    await model.create("physical-networks", {"id": "p", "type": "local", "rack": "r1", "zone": 3})
    with pytest.raises(Invalid, match="type: cannot be changed"):
        await model.update("physical-networks", "p", {"type": "vlan", "vlanrange": [[1, 2]]})
    with pytest.raises(Invalid, match="id: cannot be changed"):
        await model.update("physical-networks", "p", {"id": "q"})
    changed = await model.update("physical-networks", "p", {"id": "p", "rack": None, "row": [1]})
    assert changed == {
        "id": "p",
        "type": "local",
        "vlanrange": None,
        "vnirange": None,
        "zone": 3,
        "row": [1],
    }
    assert await model.get("physical-networks", "p") == changed


async def test_physical_port_selectors_most_specific_wins(net: Model) -> None:
    store = net.store
    ids = {}
    for name, systemid, bridge in [
        ("any", "%", "%"),
        ("host", "h1", "%"),
        ("bridge", "%", "br1"),
        ("exact", "h1", "br1"),
    ]:
        port = await net.create(
            "physical-ports",
            {"physicalnetwork": "p1", "name": name, "systemid": systemid, "bridge": bridge},
        )
        ids[name] = port["id"]

    async def pick(systemid: str, bridge: str) -> str | None:
        found = await find_physical_port(store, "p1", systemid, bridge)
        return None if found is None else found["name"]

    assert await pick("h1", "br1") == "exact"
    assert await pick("h1", "br2") == "host"
    assert await pick("h2", "br1") == "bridge"
    assert await pick("h2", "br2") == "any"
    snap = await store.read_prefix("")
    assert (await find_physical_port(snap, "p1", "h1", "br9"))["name"] == "host"
    await net.delete("physical-ports", ids["any"])
    assert await pick("h2", "br2") is None
    with pytest.raises(
        Conflict, match=r"already has physical port .* for vhost '', systemid h1, bridge %"
    ):
        await net.create(
            "physical-ports", {"physicalnetwork": "p1", "name": "other", "systemid": "h1"}
        )
    with pytest.raises(
        Conflict, match=r"physical port host \(vhost '', systemid h1, bridge %\) already exists"
    ):
        await net.create(
            "physical-networks", {"id": "p2", "type": "vxlan", "vnirange": [[1, 9]]}
        ) or None
        await net.create(
            "physical-ports", {"physicalnetwork": "p2", "name": "host", "systemid": "h1"}
        )


async def test_physical_port_update_and_vlcp_key(net: Model) -> None:
    await net.create("physical-networks", {"id": "p2", "type": "native"})
    port = await net.create(
        "physical-ports", {"physicalnetwork": "p1", "name": "eth1", "bridge": "br0"}
    )
    # the VLCP API names a physical port by (name, vhost, systemid, bridge), not by id
    [moved] = await net.batch(
        [
            Op(
                "update",
                "physical-ports",
                body={"name": "eth1", "bridge": "br0", "physicalnetwork": "p2"},
            )
        ]
    )
    assert moved["id"] == port["id"] and moved["physicalnetwork"] == "p2"
    with pytest.raises(
        NotFound, match=r"physical port eth1 \(vhost '', systemid %, bridge %\) does not exist"
    ):
        await net.batch([Op("delete", "physical-ports", body={"name": "eth1"})])
    with pytest.raises(Invalid, match="systemid: cannot be removed"):
        await net.update("physical-ports", port["id"], {"systemid": None})
    await net.batch([Op("delete", "physical-ports", body={"name": "eth1", "bridge": "br0"})])
    assert await net.list("physical-ports") == []


# -- logical networks, subnets, ports ------------------------------------------------------


async def test_lognet_vlan_change_and_guard(net: Model) -> None:
    changed = await net.update("logical-networks", "n1", {"vlanid": 107, "mtu": 1400})
    assert (changed["vlanid"], changed["mtu"]) == (107, 1400)
    other = await net.create("logical-networks", {"physicalnetwork": "p1"})
    assert other["vlanid"] == 101  # the hint moved on after 100; 107 is taken explicitly
    with pytest.raises(Invalid, match="physicalnetwork: cannot be changed"):
        await net.update("logical-networks", "n1", {"physicalnetwork": "p9"})
    with pytest.raises(Invalid, match="vlanid: cannot be removed"):
        await net.update("logical-networks", "n1", {"vlanid": None})
    ports = sorted(
        [(await net.create("logical-ports", {"logicalnetwork": "n1"}))["id"] for _ in range(3)]
    )
    with pytest.raises(Conflict) as info:
        await net.delete("logical-networks", "n1")
    assert info.value.message == (
        f"logical network n1 still has 3 ports ({', '.join(ports)}) and 1 subnet (s1)"
    )


async def test_subnet_updates_checked_against_allocations(net: Model) -> None:
    port = await net.create("logical-ports", {"logicalnetwork": "n1", "subnet": "s1"})
    with pytest.raises(
        Conflict, match="cannot change the cidr of subnet s1 while it has 1 allocated address"
    ):
        await net.update("subnets", "s1", {"cidr": "10.9.0.0/24", "gateway": "10.9.0.1"})
    with pytest.raises(Invalid, match=r"gateway: 10.0.0.1 is not in subnet s1 \(10.9.0.0/24\)"):
        await net.update("subnets", "s1", {"cidr": "10.9.0.0/24"})
    with pytest.raises(
        Conflict,
        match=f"gateway: {port['ip_address']} is already used by logical port {port['id']}",
    ):
        await net.update("subnets", "s1", {"gateway": port["ip_address"]})
    changed = await net.update("subnets", "s1", {"allocated_end": "10.0.0.100", "mtu": 9000})
    assert changed["allocated_end"] == "10.0.0.100" and changed["cidr"] == "10.0.0.0/24"
    with pytest.raises(Conflict) as info:
        await net.delete("subnets", "s1")
    assert info.value.message == (
        f"subnet s1 still has 1 allocated address (held by logical port {port['id']})"
    )
    await net.delete("logical-ports", port["id"])
    moved = await net.update("subnets", "s1", {"cidr": "10.9.0.0/24", "gateway": "10.9.0.1"})
    assert (moved["allocated_start"], moved["allocated_end"]) == ("10.9.0.1", "10.9.0.254")
    await net.delete("subnets", "s1")


async def test_port_update_moves_addresses(net: Model) -> None:
    await net.create("subnets", {"id": "s2", "logicalnetwork": "n1", "cidr": "10.2.0.0/24"})
    port = await net.create("logical-ports", {"id": "p", "logicalnetwork": "n1", "subnet": "s1"})
    assert port["ip_address"] == "10.0.0.10"
    port = await net.update(
        "logical-ports", "p", {"ip_address": "10.0.0.99", "mac_address": "02:00:00:00:00:09"}
    )
    assert (port["ip_address"], port["mac_address"]) == ("10.0.0.99", "02:00:00:00:00:09")
    port = await net.update("logical-ports", "p", {"subnet": "s2"})
    assert (port["subnet"], port["ip_address"]) == ("s2", "10.2.0.1")
    port = await net.update("logical-ports", "p", {"ip_address": None})
    assert port["ip_address"] == "10.2.0.2"
    port = await net.update("logical-ports", "p", {"subnet": None, "hostname": "vm1", "role": "db"})
    assert (port["subnet"], port["ip_address"], port["role"]) == (None, None, "db")
    port = await net.update("logical-ports", "p", {"ip_address": "10.0.0.10"})
    assert port["subnet"] == "s1"
    with pytest.raises(Invalid, match="logicalnetwork: cannot be changed"):
        await net.update("logical-ports", "p", {"logicalnetwork": "n2"})


async def test_deleting_a_port_frees_mac_address_and_status(net: Model) -> None:
    await net.create(
        "logical-ports",
        {
            "id": "a",
            "logicalnetwork": "n1",
            "ip_address": "10.0.0.30",
            "mac_address": "02:00:00:00:00:30",
        },
    )
    await net.store.transact(_put("lport-status/a", {"state": "up", "host": "h", "since": 1.0}))
    await net.delete("logical-ports", "a")
    again = await net.create(
        "logical-ports",
        {
            "id": "a",
            "logicalnetwork": "n1",
            "ip_address": "10.0.0.30",
            "mac_address": "02:00:00:00:00:30",
        },
    )
    assert again["ip_address"] == "10.0.0.30"
    assert await net.port_status("a") is None


async def test_deletion_guards_of_physical_network(net: Model) -> None:
    await net.create("physical-ports", {"id": "pp", "physicalnetwork": "p1", "name": "eth0"})
    with pytest.raises(Conflict) as info:
        await net.delete("physical-networks", "p1")
    assert info.value.message == (
        "physical network p1 still has 1 logical network (n1) and 1 physical port (pp)"
    )


async def test_guards_name_at_most_five_of_what_is_in_the_way(net: Model) -> None:
    """Beyond five ids the message counts the rest; a batch's own writes are included."""
    for index in range(7):
        await net.create(
            "logical-ports", {"id": f"p{index}", "logicalnetwork": "n1", "subnet": "s1"}
        )
    await net.create("routers", {"id": "r1"})
    await net.add_router_interface("r1", {"subnet": "s1"})
    with pytest.raises(Conflict) as info:
        await net.delete("subnets", "s1")
    assert info.value.message == (
        "subnet s1 still has 7 allocated addresses (held by logical ports p0, p1, p2, p3, p4 "
        "and 2 more) and router r1"
    )
    with pytest.raises(Conflict) as info:
        await net.batch(
            [
                Op("delete", "logical-ports", "p0"),
                Op("delete", "logical-ports", "p1"),
                Op("create", "logical-ports", body={"id": "a", "logicalnetwork": "n1"}),
                Op("delete", "logical-networks", "n1"),
            ]
        )
    assert info.value.message == (
        "operation 3 (delete logical-networks n1): logical network n1 still has 6 ports "
        "(a, p2, p3, p4, p5 and 1 more) and 1 subnet (s1)"
    )


async def test_guard_of_a_local_physical_network_names_its_logical_networks(model: Model) -> None:
    """A local network hands out no tags, so its logical networks are found by their parent."""
    await model.create("physical-networks", {"id": "loc", "type": "local"})
    await model.create("physical-networks", {"id": "other", "type": "local"})
    for id, parent in (("b", "loc"), ("a", "loc"), ("c", "other")):
        await model.create("logical-networks", {"id": id, "physicalnetwork": parent})
    with pytest.raises(Conflict) as info:
        await model.delete("physical-networks", "loc")
    assert info.value.message == "physical network loc still has 2 logical networks (a, b)"


# -- routers -------------------------------------------------------------------------------


async def test_router_interfaces(net: Model) -> None:
    await net.create("routers", {"id": "r1", "routes": [["0.0.0.0/0", "10.0.0.254"]]})
    await net.create("routers", {"id": "r2"})
    interface = await net.add_router_interface("r1", {"subnet": "s1", "id": "if1"})
    assert interface == {"id": "if1", "router": "r1", "subnet": "s1", "ip_address": "10.0.0.1"}
    with pytest.raises(
        Conflict,
        match="subnet s1 is already attached to router r1; an internal subnet joins at most one "
        "router",
    ):
        await net.add_router_interface("r2", {"subnet": "s1", "ip_address": "10.0.0.2"})
    with pytest.raises(
        Conflict, match=r"gateway: 10.0.0.1 is the address of router r1 on subnet s1"
    ):
        await net.update("subnets", "s1", {"gateway": "10.0.0.2"})
    with pytest.raises(Conflict, match=r"router r1 still has 1 interface \(on subnet s1\)"):
        await net.delete("routers", "r1")
    with pytest.raises(Conflict, match="subnet s1 still has router r1"):
        await net.delete("subnets", "s1")
    assert await net.list_router_interfaces("r1") == [interface]
    # an external subnet joins several routers, each with an address of its own
    await net.create("logical-networks", {"id": "ext", "physicalnetwork": "p1"})
    await net.create(
        "subnets",
        {
            "id": "e",
            "logicalnetwork": "ext",
            "cidr": "192.0.2.0/28",
            "gateway": "192.0.2.1",
            "isexternal": True,
        },
    )
    a = await net.add_router_interface("r1", {"subnet": "e"})
    b = await net.add_router_interface("r2", {"subnet": "e"})
    assert (a["ip_address"], b["ip_address"]) == ("192.0.2.2", "192.0.2.3")
    # overlapping subnets cannot meet on one router
    await net.create("logical-networks", {"id": "n3", "physicalnetwork": "p1"})
    await net.create(
        "subnets",
        {"id": "s3", "logicalnetwork": "n3", "cidr": "10.0.0.0/16", "gateway": "10.0.9.1"},
    )
    with pytest.raises(
        Conflict,
        match=r"s3 \(10.0.0.0/16\) overlaps subnet s1 \(10.0.0.0/24\), already attached to "
        "router r1",
    ):
        await net.add_router_interface("r1", {"subnet": "s3"})
    with pytest.raises(NotFound, match="router r2 has no interface on subnet s1"):
        await net.remove_router_interface("r2", "s1")
    await net.remove_router_interface("r1", "s1")
    await net.update("subnets", "s1", {"gateway": "10.0.0.2"})
    await net.add_router_interface("r2", {"subnet": "s1"})
    assert [i["ip_address"] for i in await net.list_router_interfaces("r2")] == [
        "192.0.2.3",
        "10.0.0.2",
    ]


async def test_router_extras_are_kept_beside_its_interfaces(net: Model) -> None:
    """A router keeps extra attributes like networks and ports do (Neutron's driver marks
    its routers with one), and an interface added or a route changed keeps them."""
    await net.create("routers", {"id": "r", "neutron": True, "owner": "ops"})
    await net.add_router_interface("r", {"subnet": "s1"})
    changed = await net.update("routers", "r", {"routes": [], "owner": None})
    assert changed == {
        "id": "r",
        "routes": [],
        "interfaces": [changed["interfaces"][0]],
        "neutron": True,
    }
    assert await net.get("routers", "r") == changed
    with pytest.raises(Invalid, match="interfaces: is a field of the model"):
        await net.create("routers", {"id": "r2", "interfaces": []})


async def test_router_interface_without_gateway_needs_an_address(net: Model) -> None:
    await net.create("subnets", {"id": "ng", "logicalnetwork": "n1", "cidr": "10.3.0.0/24"})
    await net.create("routers", {"id": "r"})
    with pytest.raises(Invalid, match="subnet ng has no gateway; give the interface's address"):
        await net.add_router_interface("r", {"subnet": "ng"})
    assert (await net.add_router_interface("r", {"subnet": "ng", "ip_address": "10.3.0.9"}))[
        "ip_address"
    ] == "10.3.0.9"
    with pytest.raises(Conflict, match=r"10.3.0.9 of subnet ng is already used by router r"):
        await net.create("logical-ports", {"logicalnetwork": "n1", "ip_address": "10.3.0.9"})


# -- batches -------------------------------------------------------------------------------


async def test_batch_is_one_transaction(net: Model) -> None:
    results = await net.batch(
        [
            Op("create", "logical-networks", body={"id": "b1", "physicalnetwork": "p1"}),
            Op(
                "create",
                "subnets",
                body={"id": "bs", "logicalnetwork": "b1", "cidr": "10.7.0.0/24"},
            ),
            Op(
                "create", "logical-ports", body={"id": "bp", "logicalnetwork": "b1", "subnet": "bs"}
            ),
            Op("update", "logical-ports", "bp", {"hostname": "web"}),
            Op("create", "routers", body={"id": "br"}),
            Op("create", "router-interfaces", "br", {"subnet": "bs", "ip_address": "10.7.0.254"}),
        ]
    )
    assert results[2]["ip_address"] == "10.7.0.1" and results[3]["hostname"] == "web"
    before = await snapshot(net)
    with pytest.raises(Conflict) as info:
        await net.batch(
            [
                Op("delete", "router-interfaces", "br", {"subnet": "bs"}),
                Op("delete", "logical-ports", "bp"),
                Op(
                    "create",
                    "logical-ports",
                    body={"logicalnetwork": "b1", "ip_address": "10.7.0.5"},
                ),
                Op(
                    "create",
                    "logical-ports",
                    body={"logicalnetwork": "b1", "ip_address": "10.7.0.5"},
                ),
            ]
        )
    assert info.value.message.startswith("operation 3 (create logical-ports): ip_address: 10.7.0.5")
    assert info.value.field == "ops[3].ip_address"
    assert await snapshot(net) == before
    assert await net.batch([]) == []
    with pytest.raises(Invalid, match=r"operation 0 .*kind: 'widgets' is not one of"):
        await net.batch([Op("create", "widgets", body={})])


async def test_batch_too_large_is_refused_cleanly(net: Model) -> None:
    ops = [Op("create", "logical-ports", body={"logicalnetwork": "n1"}) for _ in range(600)]
    before = await snapshot(net)
    with pytest.raises(Invalid, match="too large for one transaction"):
        await net.batch(ops)
    assert await snapshot(net) == before


# -- listing, status, waiting --------------------------------------------------------------


async def test_list_filters_and_pages(net: Model) -> None:
    for i in range(5):
        await net.create("logical-ports", {"id": f"p{i}", "logicalnetwork": "n1", "rank": i % 2})
    ids = [p["id"] for p in await net.list("logical-ports", limit=2)]
    assert ids == ["p0", "p1"]
    assert [p["id"] for p in await net.list("logical-ports", after="p1", limit=2)] == ["p2", "p3"]
    assert [p["id"] for p in await net.list("logical-ports", {"rank": 1})] == ["p1", "p3"]
    assert [p["id"] for p in await net.list("logical-ports", {"rank": "1"})] == ["p1", "p3"]
    assert [n["id"] for n in await net.list("logical-networks", {"vlanid": "100"})] == ["n1"]
    with pytest.raises(Invalid, match="limit: 0 is not in"):
        await net.list("logical-ports", limit=0)


def _put(*pairs: object):  # type: ignore[no-untyped-def]
    """A transaction writing key, value[, key, value...]."""

    async def write(txn: Transaction) -> None:
        for key, value in zip(pairs[::2], pairs[1::2], strict=True):
            txn.put(str(key), value)

    return write


async def test_wait_port_up(net: Model) -> None:
    port = await net.create("logical-ports", {"id": "w", "logicalnetwork": "n1"})
    assert await net.port_status("w") is None
    with pytest.raises(TimedOut, match=r"logical port w is not up after 0.1 s"):
        await net.wait_port_up("w", 0.1)
    status = {"state": "up", "host": "h1", "since": time.time()}

    async def later() -> None:
        await asyncio.sleep(0.2)
        await net.store.transact(_put("lport-status/w", {**status, "state": "down"}))
        await asyncio.sleep(0.1)
        # as a controller reports it: located on h1 and up there, in one transaction
        located = {"host": "h1", "vtep": None, "mac": port["mac_address"], "ip": None}
        await net.store.transact(_put("netports/n1/w", located, "lport-status/w", status))

    task = asyncio.create_task(later())
    started = time.monotonic()
    port = await net.wait_port_up("w", 5)
    assert 0.25 < time.monotonic() - started < 2
    assert port["status"] == status and port["id"] == "w"
    await task
    assert await net.port_status("w") == status
    assert (await net.wait_port_up("w", 0))["status"] == status
    with pytest.raises(NotFound):
        await net.wait_port_up("nope", 1)
    with pytest.raises(NotFound):
        await net.port_status("nope")


async def test_wait_port_up_sees_the_port_deleted(net: Model) -> None:
    await net.create("logical-ports", {"id": "gone", "logicalnetwork": "n1"})

    async def later() -> None:
        await asyncio.sleep(0.1)
        await net.delete("logical-ports", "gone")

    task = asyncio.create_task(later())
    with pytest.raises(NotFound, match="logical port gone does not exist"):
        await net.wait_port_up("gone", 5)
    await task


async def test_returned_objects_match_their_shapes(net: Model) -> None:
    from vlcp.model.kinds import SHAPES

    await net.create("physical-ports", {"physicalnetwork": "p1", "name": "eth0"})
    await net.create("logical-ports", {"logicalnetwork": "n1", "subnet": "s1", "tier": {"a": 1}})
    await net.create("routers", {"id": "r", "routes": [["10.9.0.0/16", "10.0.0.254"]]})
    interface = await net.add_router_interface("r", {"subnet": "s1"})
    SHAPES["router-interfaces"][2].model_validate(interface, strict=True)
    for kind, (create, update, shape) in SHAPES.items():
        create.model_json_schema()
        if update is not None:
            update.model_json_schema()
        if kind != "router-interfaces":
            objects = await net.list(kind)
            assert objects, kind
            for item in objects:
                shape.model_validate(item, strict=True)
