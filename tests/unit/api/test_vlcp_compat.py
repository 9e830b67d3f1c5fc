"""The original VLCP API over an in-memory model: parameter sources, literals, error shape."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from vlcp.api import create_app
from vlcp.api.vlcp_names import CALLS

from .asgi import Reply, call
from .fake_model import FakeModel


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def app(model: FakeModel) -> Any:
    return create_app(model)


def result(reply: Reply) -> Any:
    assert reply.status == 200, reply.body
    return reply.json()["result"]


def refused(reply: Reply, status: int, text: str = "") -> str:
    assert reply.status == status, reply.body
    message = reply.json()["error"]
    assert isinstance(message, str) and text in message, message
    return message


async def test_every_listed_name_is_served() -> None:
    names = {f"{module}/{method}" for module, method in CALLS}
    for noun in ("physicalnetwork", "physicalport", "logicalnetwork", "logicalport", "subnet"):
        for verb in ("create", "update", "delete"):
            assert {f"viperflow/{verb}{noun}", f"viperflow/{verb}{noun}s"} <= names
        assert f"viperflow/list{noun}s" in names
    for verb in ("create", "update", "delete"):
        assert {f"vrouterapi/{verb}virtualrouter", f"vrouterapi/{verb}virtualrouters"} <= names
    assert "vrouterapi/listvirtualrouters" in names
    for name in ("addrouterinterface", "removerouterinterface"):
        assert {f"vrouterapi/{name}", f"vrouterapi/{name}s"} <= names
    assert "vrouterapi/listrouterinterfaces" in names


async def test_query_form_and_json_are_all_accepted(app: Any) -> None:
    query = {"id": "p1", "type": "vlan", "vlanrange": "`[[100, 200]]`"}
    created = result(await call(app, "GET", "/viperflow/createphysicalnetwork", query=query))
    assert created == [{"id": "p1", "type": "vlan", "vlanrange": [[100, 200]]}]
    form = urlencode({"id": "p2", "type": "vxlan", "vnirange": "`[[1, 9]]`"}).encode()
    reply = await call(
        app,
        "POST",
        "/viperflow/createphysicalnetwork",
        body=form,
        content_type="application/x-www-form-urlencoded",
    )
    assert result(reply)[0]["vnirange"] == [[1, 9]]
    body = {"id": "p3", "type": "vlan", "vlanrange": [[5, 6]]}
    reply = await call(app, "POST", "/viperflow/createphysicalnetwork", json=body)
    assert result(reply)[0]["vlanrange"] == [[5, 6]]
    listed = result(await call(app, "GET", "/viperflow/listphysicalnetworks"))
    assert [n["id"] for n in listed] == ["p1", "p2", "p3"]


async def test_list_filters_by_id_parent_and_attributes(app: Any) -> None:
    await call(app, "GET", "/viperflow/createphysicalnetwork", query={"id": "p", "type": "vlan"})
    await call(app, "GET", "/viperflow/createphysicalnetwork", query={"id": "q", "type": "vxlan"})
    for net, phys in (("a", "p"), ("b", "p"), ("c", "q")):
        query = {"id": net, "physicalnetwork": phys}
        result(await call(app, "GET", "/viperflow/createlogicalnetwork", query=query))
    path = "/viperflow/listlogicalnetworks"
    assert [n["id"] for n in result(await call(app, "GET", path, query={"id": "b"}))] == ["b"]
    assert result(await call(app, "GET", path, query={"id": "zz"})) == []
    by_parent = result(await call(app, "GET", path, query={"physicalnetwork": "p"}))
    assert [n["id"] for n in by_parent] == ["a", "b"]
    by_type = result(await call(app, "GET", "/viperflow/listphysicalnetworks", query="type=vxlan"))
    assert [n["id"] for n in by_type] == ["q"]


async def test_plural_forms_are_atomic(app: Any, model: FakeModel) -> None:
    await call(app, "GET", "/viperflow/createphysicalnetwork", query={"id": "p", "type": "vlan"})
    networks = json.dumps(
        [{"id": "a", "physicalnetwork": "p"}, {"id": "b", "physicalnetwork": "x"}]
    )
    reply = await call(
        app, "GET", "/viperflow/createlogicalnetworks", query={"networks": f"`{networks}`"}
    )
    refused(reply, 404, "physicalnetwork")
    assert model.objects["logical-networks"] == {}
    good = [{"id": "a", "physicalnetwork": "p"}, {"id": "b", "physicalnetwork": "p"}]
    created = result(
        await call(app, "POST", "/viperflow/createlogicalnetworks", json={"networks": good})
    )
    assert [n["id"] for n in created] == ["a", "b"]
    deleted = await call(
        app, "POST", "/viperflow/deletelogicalnetworks", json={"networks": [{"id": "a"}]}
    )
    assert result(deleted) == {"status": "OK"}


async def test_physical_ports_are_named_by_their_key(app: Any, model: FakeModel) -> None:
    await call(app, "GET", "/viperflow/createphysicalnetwork", query={"id": "p", "type": "vlan"})
    port = {"physicalnetwork": "p", "name": "eth1", "vhost": "", "systemid": "%", "bridge": "%"}
    result(await call(app, "POST", "/viperflow/createphysicalport", json=port))
    listed = result(await call(app, "GET", "/viperflow/listphysicalports", query={"name": "eth1"}))
    assert len(listed) == 1 and listed[0]["physicalnetwork"] == "p"
    key = {"name": "eth1", "vhost": "", "systemid": "%", "bridge": "%"}
    reply = await call(app, "POST", "/viperflow/deletephysicalport", json=key)
    assert result(reply) == {"status": "OK"}
    assert model.objects["physical-ports"] == {}
    missing = await call(app, "GET", "/viperflow/deletephysicalport", query={"name": "eth1"})
    refused(missing, 404, "eth1")


@pytest.mark.parametrize(
    ("query", "status", "text"),
    [
        ({"id": "`__import__('os')`"}, 400, "function call"),
        ({"id": "`[1,`"}, 400, "not a valid literal"),
        ({"id": "`" + "[" * 100 + "]" * 100 + "`"}, 400, "nested"),
    ],
)
async def test_bad_literals_are_400(app: Any, query: Any, status: int, text: str) -> None:
    reply = await call(app, "GET", "/viperflow/createphysicalnetwork", query=query)
    refused(reply, status, text)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"query": "id=a&id=b"}, "more than once"),
        ({"body": b"{nope", "content_type": "application/json"}, "malformed JSON"),
        ({"json": [1, 2]}, "object of parameters"),
        ({"body": b"x", "content_type": "text/plain"}, "unsupported body type"),
        ({"query": {"id": "a"}, "json": {"id": "b"}}, "more than once"),
    ],
)
async def test_malformed_requests_are_400(app: Any, kwargs: Any, text: str) -> None:
    method = "GET" if "json" not in kwargs and "body" not in kwargs else "POST"
    reply = await call(app, method, "/viperflow/createphysicalnetwork", **kwargs)
    refused(reply, 400, text)


async def test_plural_parameters_are_checked(app: Any) -> None:
    path = "/viperflow/createphysicalnetworks"
    refused(await call(app, "GET", path), 400, "'networks'")
    refused(await call(app, "GET", path, query={"networks": "`[1]`"}), 400, "networks[0]")
    extra = {"networks": "`[{}]`", "id": "x"}
    refused(await call(app, "GET", path, query=extra), 400, "takes only")


async def test_model_errors_keep_their_status(app: Any) -> None:
    query = {"id": "p", "type": "vlan"}
    await call(app, "GET", "/viperflow/createphysicalnetwork", query=query)
    refused(await call(app, "GET", "/viperflow/createphysicalnetwork", query=query), 409, "p")
    refused(await call(app, "GET", "/viperflow/updatephysicalnetwork"), 400, "'id'")
    bad = {"id": "p", "mtu": "`5`"}
    refused(await call(app, "GET", "/viperflow/updatephysicalnetwork", query=bad), 422, "mtu")
    refused(await call(app, "GET", "/viperflow/deletephysicalnetwork", query={"id": "z"}), 404)


async def test_routers_and_interfaces(app: Any) -> None:
    await call(app, "GET", "/viperflow/createphysicalnetwork", query={"id": "p", "type": "vlan"})
    await call(
        app, "GET", "/viperflow/createlogicalnetwork", query={"id": "l", "physicalnetwork": "p"}
    )
    for subnet in ("s1", "s2"):
        query = {"id": subnet, "logicalnetwork": "l", "cidr": "10.0.0.0/24"}
        result(await call(app, "GET", "/viperflow/createsubnet", query=query))
    router = result(await call(app, "GET", "/vrouterapi/createvirtualrouter", query={"id": "r"}))
    assert router[0]["id"] == "r"
    added = await call(
        app, "GET", "/vrouterapi/addrouterinterface", query={"router": "r", "subnet": "s1"}
    )
    assert result(added)[0]["subnet"] == "s1"
    interfaces = '`[{"router": "r", "subnet": "s2"}]`'
    query = {"interfaces": interfaces}
    result(await call(app, "GET", "/vrouterapi/addrouterinterfaces", query=query))
    listed = result(await call(app, "GET", "/vrouterapi/listrouterinterfaces", query={"id": "r"}))
    assert sorted(i["subnet"] for i in listed) == ["s1", "s2"]
    refused(await call(app, "GET", "/vrouterapi/deletevirtualrouter", query={"id": "r"}), 409)
    query = {"router": "r", "subnet": "s1"}
    removed = await call(app, "GET", "/vrouterapi/removerouterinterface", query=query)
    assert result(removed) == {"status": "OK"}
    query = {"interfaces": '`[{"router": "r", "subnet": "s2"}]`'}
    reply = await call(app, "GET", "/vrouterapi/removerouterinterfaces", query=query)
    assert result(reply) == {"status": "OK"}
    done = await call(app, "GET", "/vrouterapi/deletevirtualrouter", query={"id": "r"})
    assert result(done) == {"status": "OK"}


async def test_unknown_method_is_a_404(app: Any) -> None:
    reply = await call(app, "GET", "/viperflow/dropeverything")
    assert reply.status == 404
