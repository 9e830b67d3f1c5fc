"""Automatic VLAN/VNI/IP/MAC allocation: first free from the hint, wraparound, exhaustion."""

from __future__ import annotations

import asyncio
import random

import pytest

from vlcp.model import Conflict, Model
from vlcp.model.allocation import MAX_SCAN, after, random_mac, walk


def test_walk_wraps_around_once() -> None:
    spans = [[1, 3], [7, 8]]
    assert list(walk(spans, None)) == [1, 2, 3, 7, 8]
    assert list(walk(spans, 3)) == [3, 7, 8, 1, 2]
    assert list(walk(spans, 5)) == [7, 8, 1, 2, 3]
    assert list(walk(spans, 9)) == [1, 2, 3, 7, 8]
    assert list(walk(spans, 0)) == [1, 2, 3, 7, 8]


def test_after_moves_to_the_next_value_or_wraps() -> None:
    spans = [[1, 3], [7, 8]]
    assert [after(v, spans) for v in (1, 3, 7, 8)] == [2, 7, 8, 1]


def test_random_macs_are_locally_administered_unicast() -> None:
    rng = random.Random(1)
    for _ in range(1000):
        mac = random_mac(rng)
        assert mac.startswith("02:") and len(mac) == 17


async def test_vlan_ids_are_first_free_then_exhausted(model: Model) -> None:
    await model.create(
        "physical-networks", {"id": "p", "type": "vlan", "vlanrange": [[5, 6], [9, 9]]}
    )
    tags = []
    for i in range(3):
        tags.append(
            (await model.create("logical-networks", {"id": f"n{i}", "physicalnetwork": "p"}))[
                "vlanid"
            ]
        )
    assert tags == [5, 6, 9]
    with pytest.raises(
        Conflict,
        match=r"no free VLAN id in the vlanrange \[\[5, 6\], \[9, 9\]\] of physical network p: "
        "all are in use",
    ):
        await model.create("logical-networks", {"physicalnetwork": "p"})
    await model.delete("logical-networks", "n1")
    # the freed id comes back once the hint wraps around to it
    assert (await model.create("logical-networks", {"id": "n9", "physicalnetwork": "p"}))[
        "vlanid"
    ] == 6


async def test_vni_allocation_does_not_reuse_a_freed_vni_at_once(model: Model) -> None:
    await model.create(
        "physical-networks", {"id": "x", "type": "vxlan", "vnirange": [[1000, 1 << 20]]}
    )
    a = await model.create("logical-networks", {"id": "a", "physicalnetwork": "x"})
    await model.delete("logical-networks", "a")
    b = await model.create("logical-networks", {"id": "b", "physicalnetwork": "x"})
    c = await model.create("logical-networks", {"id": "c", "physicalnetwork": "x", "vni": 1002})
    d = await model.create("logical-networks", {"id": "d", "physicalnetwork": "x"})
    assert (a["vni"], b["vni"], c["vni"], d["vni"]) == (1000, 1001, 1002, 1003)


async def test_native_network_carries_one_logical_network(model: Model) -> None:
    await model.create("physical-networks", {"id": "nat", "type": "native"})
    await model.create("logical-networks", {"id": "only", "physicalnetwork": "nat"})
    with pytest.raises(
        Conflict, match="native physical network nat already carries logical network only"
    ):
        await model.create("logical-networks", {"physicalnetwork": "nat"})
    await model.create("physical-networks", {"id": "loc", "type": "local"})
    for i in range(3):
        net = await model.create("logical-networks", {"id": f"l{i}", "physicalnetwork": "loc"})
        assert net["vlanid"] is None and net["vni"] is None


async def test_ip_addresses_skip_the_gateway_and_taken_ones(net: Model) -> None:
    await net.update("subnets", "s1", {"gateway": "10.0.0.11"})
    await net.create(
        "logical-ports", {"id": "fixed", "logicalnetwork": "n1", "ip_address": "10.0.0.12"}
    )
    got = [
        (await net.create("logical-ports", {"logicalnetwork": "n1", "subnet": "s1"}))["ip_address"]
        for _ in range(3)
    ]
    assert got == ["10.0.0.10", "10.0.0.13", "10.0.0.14"]


async def test_pool_exhaustion_names_the_pool(net: Model) -> None:
    for _ in range(11):
        await net.create("logical-ports", {"logicalnetwork": "n1", "subnet": "s1"})
    with pytest.raises(Conflict) as info:
        await net.create("logical-ports", {"logicalnetwork": "n1", "subnet": "s1"})
    assert info.value.message == (
        "no free address in the pool 10.0.0.10-10.0.0.20 of subnet s1: all are in use"
    )
    # an address outside the pool may still be given explicitly
    port = await net.create("logical-ports", {"logicalnetwork": "n1", "ip_address": "10.0.0.200"})
    assert port["subnet"] == "s1"


async def test_ipv6_subnet_allocation(net: Model) -> None:
    await net.create(
        "subnets",
        {"id": "v6", "logicalnetwork": "n1", "cidr": "fd00:1::/64", "gateway": "fd00:1::1"},
    )
    ports = [
        await net.create("logical-ports", {"logicalnetwork": "n1", "subnet": "v6"})
        for _ in range(2)
    ]
    assert [p["ip_address"] for p in ports] == ["fd00:1::2", "fd00:1::3"]
    explicit = await net.create(
        "logical-ports", {"logicalnetwork": "n1", "ip_address": "fd00:1:0::00a"}
    )
    assert explicit["ip_address"] == "fd00:1::a" and explicit["subnet"] == "v6"
    with pytest.raises(Conflict, match="fd00:1::a of subnet v6 is already used"):
        await net.create("logical-ports", {"logicalnetwork": "n1", "ip_address": "fd00:1::a"})


async def test_large_nearly_full_range_stops_scanning(model: Model) -> None:
    """A scan never reads more than MAX_SCAN keys (the transaction read limit is 1000)."""
    await model.create("physical-networks", {"id": "x", "type": "vxlan", "vnirange": [[1, 2000]]})
    ops = [{"id": f"n{i}", "physicalnetwork": "x", "vni": i} for i in range(1, MAX_SCAN + 2)]
    for start in range(0, len(ops), 200):

        async def put(txn, chunk=ops[start : start + 200]):  # type: ignore[no-untyped-def]
            from vlcp.model.lognet import create_lognet

            for body in chunk:
                await create_lognet(txn, body)

        await model.transact(put)
    with pytest.raises(Conflict, match="nearly full"):
        await model.create("logical-networks", {"physicalnetwork": "x"})


async def test_generated_macs_are_unique_and_local(net: Model) -> None:
    ports = await asyncio.gather(
        *(net.create("logical-ports", {"logicalnetwork": "n1"}) for _ in range(50))
    )
    macs = {p["mac_address"] for p in ports}
    assert len(macs) == 50
    assert all(m.startswith("02:") for m in macs)


async def test_same_mac_and_ip_in_two_networks(net: Model) -> None:
    await net.create("logical-networks", {"id": "n2", "physicalnetwork": "p1"})
    await net.create("subnets", {"id": "s2", "logicalnetwork": "n2", "cidr": "10.0.0.0/24"})
    body = {"mac_address": "02:AA:00:00:00:01", "ip_address": "10.0.0.5"}
    a = await net.create("logical-ports", {"logicalnetwork": "n1", **body})
    b = await net.create("logical-ports", {"logicalnetwork": "n2", **body})
    assert a["mac_address"] == b["mac_address"] == "02:aa:00:00:00:01"
    assert (a["subnet"], b["subnet"]) == ("s1", "s2")


async def test_concurrent_creations_fill_the_pool_exactly(net: Model) -> None:
    """One process, 40 concurrent creations, 11 free addresses: 11 succeed, 29 Conflict."""
    results = await asyncio.gather(
        *(net.create("logical-ports", {"logicalnetwork": "n1", "subnet": "s1"}) for _ in range(40)),
        return_exceptions=True,
    )
    ok = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(ok) == 11 and len(refused) == 29
    assert len({p["ip_address"] for p in ok}) == 11
