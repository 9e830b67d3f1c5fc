"""Hardware VTEP bindings through REST v1 (`/v1/vtep`) and the original `vtepcontroller`
API: what is written, and the precise 4xx of every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from vlcp.api import create_app
from vlcp.layout import vtep_binding, vtep_switch
from vlcp.model import Model
from vlcp.store import Store

from ..model.invariants import check
from .asgi import Reply, call


@pytest.fixture
async def app(store: Store) -> Any:
    """A vxlan network `net-a` (VNI 5000) and a vlan network `net-v`."""
    app = create_app(Model(store))
    for body in (
        {"id": "vx", "type": "vxlan", "vnirange": [[5000, 5999]]},
        {"id": "vl", "type": "vlan", "vlanrange": [[100, 199]]},
    ):
        assert (await call(app, "POST", "/v1/physical-networks", json=body)).status == 201
    for body in (
        {"id": "net-a", "physicalnetwork": "vx"},
        {"id": "net-b", "physicalnetwork": "vx"},
        {"id": "net-v", "physicalnetwork": "vl"},
    ):
        assert (await call(app, "POST", "/v1/logical-networks", json=body)).status == 201
    return app


def binding(vlan: int = 100, network: str = "net-a", port: str = "p0") -> dict[str, Any]:
    return {"physicalswitch": "ps0", "physicalport": port, "vlan": vlan, "logicalnetwork": network}


def refused(reply: Reply, status: int, text: str) -> None:
    assert reply.status == status, reply.body
    assert text in reply.body.decode(), reply.body


async def stored(store: Store, key: str) -> Any:
    return (await store.read([key])).values.get(key)


async def test_bind_list_unbind(app: Any, store: Store) -> None:
    reply = await call(app, "POST", "/v1/vtep/bindings", json=binding())
    assert reply.status == 201 and reply.json() == binding()
    assert await stored(store, vtep_binding("ps0", "p0", 100)) == binding()
    again = await call(app, "POST", "/v1/vtep/bindings", json=binding())
    assert again.status == 201  # idempotent
    await call(app, "POST", "/v1/vtep/bindings", json=binding(200, "net-b"))
    listed = (await call(app, "GET", "/v1/vtep/bindings")).json()
    assert listed == [binding(100), binding(200, "net-b")]
    switches = (await call(app, "GET", "/v1/vtep/switches")).json()
    assert switches[0]["name"] == "ps0" and switches[0]["reported"] is False
    gone = await call(app, "DELETE", "/v1/vtep/bindings/ps0/p0/100")
    assert gone.status == 204 and await stored(store, vtep_binding("ps0", "p0", 100)) is None
    rest = await call(app, "DELETE", "/v1/vtep/bindings/ps0/p0")
    assert rest.status == 200 and rest.json() == [binding(200, "net-b")]


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        (binding(network="nope"), 422, "logical network nope does not exist"),
        (binding(network="net-v"), 422, "only vxlan networks"),
        (binding(vlan=4096), 422, "vlan"),
        (binding(port="a/b"), 422, "physicalport"),
        ({**binding(), "extra": 1}, 422, "extra"),
        ({"physicalswitch": "ps0"}, 422, "physicalport"),
    ],
)
async def test_bind_refusals(app: Any, body: dict[str, Any], status: int, text: str) -> None:
    refused(await call(app, "POST", "/v1/vtep/bindings", json=body), status, text)


async def test_a_bound_vlan_is_not_taken_over_and_unbinding_nothing_is_404(app: Any) -> None:
    await call(app, "POST", "/v1/vtep/bindings", json=binding())
    taken = await call(app, "POST", "/v1/vtep/bindings", json=binding(network="net-b"))
    refused(taken, 409, "bound to logical network net-a: unbind it first")
    refused(await call(app, "DELETE", "/v1/vtep/bindings/ps0/p0/7"), 404, "not bound")
    refused(await call(app, "DELETE", "/v1/vtep/bindings/ps0/p9"), 404, "has no binding")


async def test_original_vtepcontroller_calls(app: Any, store: Store) -> None:
    report = {
        "description": "OVS VTEP Emulator",
        "tunnel_ips": ["192.0.2.9"],
        "management_ips": [],
        "switch_fault_status": [],
        "ports": {"p0": {}, "p1": {}},
        "controller": "c1",
    }

    async def write(txn) -> None:
        txn.put(vtep_switch("ps0"), report)

    await store.transact(write)
    switches = (await call(app, "GET", "/vtepcontroller/listphysicalswitches")).json()
    assert switches == {
        "result": {
            "ps0": {
                "management_ips": [],
                "tunnel_ips": ["192.0.2.9"],
                "description": "OVS VTEP Emulator",
                "switch_fault_status": [],
            }
        }
    }
    ports = await call(
        app, "GET", "/vtepcontroller/listphysicalports", query={"physicalswitch": "ps0"}
    )
    assert ports.json() == {"result": {"ps0": ["p0", "p1"]}}
    params = {"physicalswitch": "ps0", "physicalport": "p0", "vlanid": "100"}
    bound = await call(
        app,
        "POST",
        "/vtepcontroller/updatelogicalswitch",
        query={**params, "logicalnetwork": "net-a"},
    )
    assert bound.json() == {"result": None}
    assert await stored(store, vtep_binding("ps0", "p0", 100)) == binding()
    wrong = {**params, "logicalnetwork": "net-a", "vni": "4"}
    refused(await call(app, "POST", "/vtepcontroller/updatelogicalswitch", query=wrong), 422, "VNI")
    other = {**params, "logicalnetwork": "net-b"}
    refused(
        await call(app, "POST", "/vtepcontroller/unbindlogicalswitch", query=other), 409, "net-a"
    )
    typo = {**params, "logicalnetwrk": "net-a"}
    refused(
        await call(app, "POST", "/vtepcontroller/unbindlogicalswitch", query=typo),
        400,
        "takes only",
    )
    done = await call(
        app,
        "POST",
        "/vtepcontroller/unbindphysicalport",
        query={"physicalswitch": "ps0", "physicalport": "p0"},
    )
    assert done.json() == {"result": None}
    assert await stored(store, vtep_binding("ps0", "p0", 100)) is None


async def test_a_bound_network_is_not_deleted(app: Any) -> None:
    await call(app, "POST", "/v1/vtep/bindings", json=binding())
    refused(await call(app, "DELETE", "/v1/logical-networks/net-a"), 409, "ps0/p0/100")
    await call(app, "DELETE", "/v1/vtep/bindings/ps0/p0")
    assert (await call(app, "DELETE", "/v1/logical-networks/net-a")).status == 204


async def test_bindings_keep_the_model_invariants(app: Any, store: Store) -> None:
    """The bindings' counter in the network's state follows binds and unbinds."""
    await call(app, "POST", "/v1/vtep/bindings", json=binding())
    await call(app, "POST", "/v1/vtep/bindings", json=binding(200))
    check((await store.read_prefix("")).values)
    await call(app, "DELETE", "/v1/vtep/bindings/ps0/p0/100")
    check((await store.read_prefix("")).values)
    await call(app, "DELETE", "/v1/vtep/bindings/ps0/p0")
    check((await store.read_prefix("")).values)
