"""VNIs are global on the underlay: vxlan physical networks may not share any.

VLAN ids stay per physical network (two vlan networks are two wires).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from typing import Any

import pytest

from vlcp.api import create_app
from vlcp.layout import VNI_RANGES
from vlcp.model import Conflict, Invalid, Model, Op
from vlcp.store import Store, Transaction, open_store

from ..api.asgi import call
from .conftest import fresh_db_dir
from .invariants import check

PHYSNETS = "physical-networks"
LOGNETS = "logical-networks"


async def snapshot(model: Model) -> dict:
    return (await model.store.read_prefix("")).values


async def vxlan(model: Model, id: str, *spans: list[int]) -> dict:
    return await model.create(PHYSNETS, {"id": id, "type": "vxlan", "vnirange": list(spans)})


async def test_an_overlapping_vnirange_is_refused_naming_the_other_network(model: Model) -> None:
    await vxlan(model, "a", [100, 199], [300, 399])
    before = await snapshot(model)
    with pytest.raises(Conflict) as info:
        await vxlan(model, "b", [1, 10], [150, 250])
    assert info.value.status == 409
    assert info.value.field == "vnirange"
    assert info.value.message.startswith(
        "vnirange: [150, 250] overlaps [100, 199] of vxlan physical network a (VNIs 150-199); "
    )
    assert await snapshot(model) == before
    with pytest.raises(Conflict, match=r"overlaps \[300, 399\] of vxlan physical network a "):
        await vxlan(model, "b", [399, 399])
    with pytest.raises(Conflict, match=r"\(VNI 399\)"):
        await vxlan(model, "b", [399, 500])
    # touching ranges do not overlap
    await vxlan(model, "b", [1, 99], [200, 299], [400, 400])


async def test_every_overlapping_network_is_named(model: Model) -> None:
    for index, id in enumerate(["p0", "p1", "p2"]):
        await vxlan(model, id, [index * 10 + 1, index * 10 + 10])
    with pytest.raises(Conflict) as info:
        await vxlan(model, "q", [5, 25])
    message = info.value.message
    assert "[5, 25] overlaps [1, 10] of vxlan physical network p0 (VNIs 5-10)" in message
    assert "; it also overlaps physical networks p1, p2; " in message


async def test_vlan_ranges_may_overlap_and_vlan_does_not_clash_with_vxlan(model: Model) -> None:
    await model.create(PHYSNETS, {"id": "v1", "type": "vlan", "vlanrange": [[100, 200]]})
    await model.create(PHYSNETS, {"id": "v2", "type": "vlan", "vlanrange": [[100, 200]]})
    await vxlan(model, "x", [100, 200])
    a = await model.create(LOGNETS, {"id": "a", "physicalnetwork": "v1", "vlanid": 150})
    b = await model.create(LOGNETS, {"id": "b", "physicalnetwork": "v2", "vlanid": 150})
    c = await model.create(LOGNETS, {"id": "c", "physicalnetwork": "x", "vni": 150})
    assert (a["vlanid"], b["vlanid"], c["vni"]) == (150, 150, 150)


async def test_an_update_into_another_range_is_refused(model: Model) -> None:
    await vxlan(model, "a", [1, 100])
    await vxlan(model, "b", [101, 200])
    before = await snapshot(model)
    with pytest.raises(Conflict) as info:
        await model.update(PHYSNETS, "b", {"vnirange": [[90, 200]]})
    assert info.value.field == "vnirange"
    assert "[90, 200] overlaps [1, 100] of vxlan physical network a (VNIs 90-100)" in str(
        info.value
    )
    assert await snapshot(model) == before
    # its own old range is no obstacle, and what it gives up is free for the others
    await model.update(PHYSNETS, "b", {"vnirange": [[150, 250]]})
    await model.update(PHYSNETS, "a", {"vnirange": [[1, 149]]})
    # an update that leaves the range alone is not checked again
    await model.update(PHYSNETS, "a", {"vnirange": [[1, 149]], "rack": "r1"})
    assert (await snapshot(model))[VNI_RANGES] == {"a": [[1, 149]], "b": [[150, 250]]}


async def test_deleting_a_network_frees_its_range(model: Model) -> None:
    await vxlan(model, "a", [1, 100])
    with pytest.raises(Conflict):
        await vxlan(model, "b", [50, 60])
    await model.delete(PHYSNETS, "a")
    assert VNI_RANGES not in await snapshot(model)
    await vxlan(model, "b", [50, 60])
    await model.create(PHYSNETS, {"id": "l", "type": "local"})
    await model.delete(PHYSNETS, "l")
    assert (await snapshot(model))[VNI_RANGES] == {"b": [[50, 60]]}


async def test_a_network_in_use_keeps_its_range(model: Model) -> None:
    """A refused deletion (the guard) frees nothing."""
    await vxlan(model, "a", [1, 100])
    await model.create(LOGNETS, {"id": "n", "physicalnetwork": "a"})
    with pytest.raises(Conflict, match="still has 1 logical network"):
        await model.delete(PHYSNETS, "a")
    with pytest.raises(Conflict, match="vxlan physical network a"):
        await vxlan(model, "b", [100, 100])


async def test_an_explicit_vni_stays_inside_its_own_range(model: Model) -> None:
    await vxlan(model, "a", [1, 100])
    await vxlan(model, "b", [101, 200])
    with pytest.raises(Invalid) as info:
        await model.create(LOGNETS, {"id": "n", "physicalnetwork": "b", "vni": 50})
    assert info.value.field == "vni"
    assert "vni: 50 is not in the vnirange [[101, 200]] of physical network b" in str(info.value)
    await model.create(LOGNETS, {"id": "n", "physicalnetwork": "b", "vni": 150})
    with pytest.raises(Invalid, match="vni: 50 is not in the vnirange"):
        await model.update(LOGNETS, "n", {"vni": 50})


async def test_a_batch_is_checked_against_its_own_earlier_operations(model: Model) -> None:
    ops = [
        Op("create", PHYSNETS, body={"id": "a", "type": "vxlan", "vnirange": [[1, 10]]}),
        Op("create", PHYSNETS, body={"id": "b", "type": "vxlan", "vnirange": [[10, 20]]}),
    ]
    with pytest.raises(Conflict) as info:
        await model.batch(ops)
    assert info.value.field == "ops[1].vnirange"
    assert info.value.message.startswith(
        "operation 1 (create physical-networks): vnirange: [10, 20] overlaps [1, 10] "
        "of vxlan physical network a (VNI 10)"
    )
    assert await snapshot(model) == {}
    # a deletion earlier in the batch frees the range for a later creation
    await vxlan(model, "a", [1, 10])
    await model.batch(
        [
            Op("delete", PHYSNETS, "a"),
            Op("create", PHYSNETS, body={"id": "b", "type": "vxlan", "vnirange": [[1, 20]]}),
        ]
    )
    assert (await snapshot(model))[VNI_RANGES] == {"b": [[1, 20]]}


async def test_a_store_without_the_index_is_checked_from_the_networks(
    model: Model, store: Store
) -> None:
    """A store written before `physnet-vni-ranges` existed: the index is rebuilt."""
    await vxlan(model, "a", [1, 100])
    await vxlan(model, "b", [200, 300])

    async def drop(txn: Transaction) -> None:
        txn.delete(VNI_RANGES)

    await store.transact(drop)
    with pytest.raises(Conflict, match="vxlan physical network b"):
        await vxlan(model, "c", [250, 260])
    assert VNI_RANGES not in await snapshot(model)
    await vxlan(model, "c", [101, 199])
    assert (await snapshot(model))[VNI_RANGES] == {
        "a": [[1, 100]],
        "b": [[200, 300]],
        "c": [[101, 199]],
    }


async def test_lock_hint_serialises_one_process(model: Model) -> None:
    """Many overlapping creations through one Model: exactly one wins, none is a 503."""
    calls = [vxlan(model, f"p{i}", [1, 10]) for i in range(20)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, dict | Conflict) for r in results), results


async def test_concurrent_creations_from_two_processes_cannot_both_win() -> None:
    """Two Models on two store connections (two API processes) race overlapping ranges."""
    directory = fresh_db_dir()
    url = f"sqlite://{directory}/state.db"
    stores = [await open_store(url), await open_store(url)]
    models = [Model(s) for s in stores]
    try:
        for round in range(10):
            base = round * 100 + 1
            calls = [
                vxlan(models[i % 2], f"r{round}-{i}", [base + i, base + 10 + i]) for i in range(4)
            ]
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert all(isinstance(r, dict | Conflict) for r in results), results
            assert sum(isinstance(r, dict) for r in results) == 1, results
        values = (await stores[0].read_prefix("")).values
        check(values)
        assert len(values[VNI_RANGES]) == 10
    finally:
        for s in stores:
            await s.close()
        shutil.rmtree(directory, ignore_errors=True)


async def test_both_apis_answer_409(model: Model) -> None:
    app = create_app(model)
    body = {"id": "a", "type": "vxlan", "vnirange": [[1, 100]]}
    assert (await call(app, "POST", "/v1/physical-networks", json=body)).status == 201
    reply = await call(
        app, "POST", "/v1/physical-networks", json={**body, "id": "b", "vnirange": [[50, 60]]}
    )
    assert reply.status == 409, reply.body
    error: dict[str, Any] = reply.json()["error"]
    assert error["field"] == "vnirange"
    assert "overlaps [1, 100] of vxlan physical network a (VNIs 50-60)" in error["message"]

    query = {"id": "b", "type": "vxlan", "vnirange": "`[[50, 60]]`"}
    reply = await call(app, "GET", "/viperflow/createphysicalnetwork", query=query)
    assert reply.status == 409, reply.body
    assert reply.json()["error"].startswith(
        "vnirange: [50, 60] overlaps [1, 100] of vxlan physical network a (VNIs 50-60)"
    )
    networks = json.dumps([{"id": "c", "type": "vxlan", "vnirange": [[100, 110]]}])
    reply = await call(
        app, "GET", "/viperflow/createphysicalnetworks", query={"networks": f"`{networks}`"}
    )
    assert reply.status == 409, reply.body
    assert "vnirange: [100, 110] overlaps [1, 100]" in reply.json()["error"]
    reply = await call(
        app, "GET", "/viperflow/updatephysicalnetwork", query={"id": "a", "vnirange": "`[[1, 9]]`"}
    )
    assert reply.status == 200, reply.body
    assert (await call(app, "GET", "/viperflow/createphysicalnetwork", query=query)).status == 200
