"""REST v1 over an in-memory model: routes, status codes and the one error shape."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vlcp.api import create_app

from .asgi import Reply, call
from .fake_model import FakeModel


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def app(model: FakeModel) -> Any:
    return create_app(model)


def assert_error(reply: Reply, status: int, field: str | None = None, text: str = "") -> None:
    """Every REST error: the status, repeated in the body, a message and the field."""
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert set(error) == {"status", "message", "field"}
    assert error["status"] == status and error["message"]
    assert error["field"] == field, error
    assert text in error["message"], error


async def test_crud_of_one_kind(app: Any) -> None:
    created = await call(app, "POST", "/v1/physical-networks", json={"id": "p1", "type": "vlan"})
    assert created.status == 201 and created.json() == {"id": "p1", "type": "vlan"}
    assert (await call(app, "GET", "/v1/physical-networks/p1")).json()["type"] == "vlan"
    updated = await call(app, "PATCH", "/v1/physical-networks/p1", json={"mtu": 1400})
    assert updated.status == 200 and updated.json()["mtu"] == 1400
    deleted = await call(app, "DELETE", "/v1/physical-networks/p1")
    assert deleted.status == 204 and deleted.body == b""
    assert_error(await call(app, "GET", "/v1/physical-networks/p1"), 404, "id", "p1")


async def test_list_pages_by_id_with_a_cursor(app: Any) -> None:
    for index in range(5):
        await call(app, "POST", "/v1/routers", json={"id": f"r{index}"})
    first = (await call(app, "GET", "/v1/routers", query={"limit": "2"})).json()
    assert [o["id"] for o in first["items"]] == ["r0", "r1"] and first["next"] == "r1"
    query = {"limit": "2", "after": "r3"}
    last = (await call(app, "GET", "/v1/routers", query=query)).json()
    assert [o["id"] for o in last["items"]] == ["r4"] and last["next"] is None
    exact = (await call(app, "GET", "/v1/routers", query={"limit": "5"})).json()
    assert len(exact["items"]) == 5 and exact["next"] is None


async def test_list_filters_by_field(app: Any) -> None:
    await call(app, "POST", "/v1/physical-networks", json={"id": "a", "type": "vlan"})
    await call(app, "POST", "/v1/physical-networks", json={"id": "b", "type": "vxlan"})
    page = (await call(app, "GET", "/v1/physical-networks", query={"type": "vxlan"})).json()
    assert [o["id"] for o in page["items"]] == ["b"]
    twice = await call(app, "GET", "/v1/physical-networks", query="type=a&type=b")
    assert_error(twice, 400, "type", "more than once")


@pytest.mark.parametrize(
    ("query", "field"),
    [({"limit": "x"}, "limit"), ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit")],
)
async def test_bad_query_is_a_400_naming_the_parameter(app: Any, query: Any, field: str) -> None:
    assert_error(await call(app, "GET", "/v1/routers", query=query), 400, field)


async def test_malformed_json_is_a_400(app: Any) -> None:
    reply = await call(app, "POST", "/v1/routers", body=b'{"id": ', content_type="application/json")
    assert_error(reply, 400, None, "malformed JSON")


@pytest.mark.parametrize("document", [[1, 2], "text", 3, None])
async def test_a_body_that_is_not_an_object_is_a_422(app: Any, document: Any) -> None:
    body = b"null" if document is None else None
    reply = await call(
        app, "POST", "/v1/routers", json=document, body=body, content_type="application/json"
    )
    assert_error(reply, 422, None, "must be a JSON object")


async def test_model_errors_keep_their_status_and_field(app: Any) -> None:
    await call(app, "POST", "/v1/physical-networks", json={"id": "p1", "type": "vlan"})
    duplicate = await call(app, "POST", "/v1/physical-networks", json={"id": "p1"})
    assert_error(duplicate, 409, "id", "already exists")
    bad = await call(app, "PATCH", "/v1/physical-networks/p1", json={"mtu": 10})
    assert_error(bad, 422, "mtu", "68..65535")
    orphan = await call(app, "POST", "/v1/logical-networks", json={"physicalnetwork": "nope"})
    assert_error(orphan, 404, "physicalnetwork", "nope")
    await call(app, "POST", "/v1/logical-networks", json={"id": "l1", "physicalnetwork": "p1"})
    assert_error(await call(app, "DELETE", "/v1/physical-networks/p1"), 409, None, "l1")


async def test_unknown_paths_and_methods_use_the_error_shape(app: Any) -> None:
    assert_error(await call(app, "GET", "/v1/nothing"), 404, None, "/v1/nothing")
    assert_error(await call(app, "PUT", "/v1/routers"), 405, None, "PUT")


async def test_oversized_bodies_are_refused(app: Any) -> None:
    body = b'{"id": "' + b"x" * (2 << 20) + b'"}'
    reply = await call(app, "POST", "/v1/routers", body=body, content_type="application/json")
    assert_error(reply, 413)


async def test_oversized_streamed_bodies_are_refused_too(app: Any) -> None:
    chunks = [b'{"id": "'] + [b"x" * 65536] * 20 + [b'"}']
    for path in ("/v1/routers", "/vrouterapi/createvirtualrouter"):
        reply = await call(app, "POST", path, chunks=chunks, content_type="application/json")
        assert reply.status == 413 and "too large" in reply.body.decode(), reply.body


async def test_batch_is_all_or_nothing(app: Any, model: FakeModel) -> None:
    ops = [
        {"action": "create", "kind": "physical-networks", "body": {"id": "p", "type": "vlan"}},
        {"action": "create", "kind": "routers", "body": {"id": "r"}},
    ]
    done = await call(app, "POST", "/v1/batch", json={"operations": ops})
    assert done.status == 200 and [r["id"] for r in done.json()["results"]] == ["p", "r"]
    failing = [
        {"action": "create", "kind": "routers", "body": {"id": "r2"}},
        {"action": "delete", "kind": "routers", "id": "missing"},
    ]
    assert_error(await call(app, "POST", "/v1/batch", json={"operations": failing}), 404, "id")
    assert "r2" not in model.objects["routers"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"operations": []}, "operations"),
        ({"operations": [{"action": "drop", "kind": "routers"}]}, "operations[0].action"),
        ({"operations": [{"action": "create", "kind": "x", "body": {}}]}, "operations[0].kind"),
        ({"operations": [{"action": "delete", "kind": "routers"}]}, "operations[0].id"),
        ({"operations": [{"action": "create", "kind": "routers"}]}, "operations[0].body"),
        ({"ops": []}, "operations"),
    ],
)
async def test_batch_validation_names_the_field(app: Any, document: Any, field: str) -> None:
    assert_error(await call(app, "POST", "/v1/batch", json=document), 422, field)


async def test_router_interfaces(app: Any) -> None:
    await call(app, "POST", "/v1/physical-networks", json={"id": "p", "type": "vlan"})
    await call(app, "POST", "/v1/logical-networks", json={"id": "l", "physicalnetwork": "p"})
    await call(app, "POST", "/v1/subnets", json={"id": "s", "logicalnetwork": "l"})
    await call(app, "POST", "/v1/routers", json={"id": "r"})
    added = await call(app, "POST", "/v1/routers/r/interfaces", json={"subnet": "s"})
    assert added.status == 201 and added.json()["subnet"] == "s"
    listed = (await call(app, "GET", "/v1/routers/r/interfaces")).json()
    assert [i["subnet"] for i in listed["items"]] == ["s"]
    assert (await call(app, "DELETE", "/v1/routers/r/interfaces/s")).status == 204
    assert_error(await call(app, "DELETE", "/v1/routers/r/interfaces/s"), 404)


async def test_waiting_for_a_port(app: Any, model: FakeModel) -> None:
    await call(app, "POST", "/v1/physical-networks", json={"id": "p", "type": "vlan"})
    await call(app, "POST", "/v1/logical-networks", json={"id": "l", "physicalnetwork": "p"})
    await call(app, "POST", "/v1/logical-ports", json={"id": "port", "logicalnetwork": "l"})
    query = {"wait": "up", "timeout": "0.1"}
    assert_error(await call(app, "GET", "/v1/logical-ports/port", query=query), 408)

    async def later() -> None:
        await asyncio.sleep(0.05)
        model.status["port"] = {"state": "up", "host": "h", "since": 0}

    task = asyncio.ensure_future(later())
    query = {"wait": "up", "timeout": "5"}
    reply = await call(app, "GET", "/v1/logical-ports/port", query=query)
    await task
    assert reply.status == 200 and reply.json()["status"]["state"] == "up"
    assert_error(
        await call(app, "GET", "/v1/logical-ports/port", query={"wait": "down"}), 400, "wait"
    )
    assert_error(
        await call(app, "GET", "/v1/logical-ports/port", query={"wait": "up", "timeout": "1e9"}),
        400,
        "timeout",
    )


async def test_a_port_is_read_with_its_status(app: Any, model: FakeModel) -> None:
    await call(app, "POST", "/v1/physical-networks", json={"id": "p", "type": "vlan"})
    await call(app, "POST", "/v1/logical-networks", json={"id": "l", "physicalnetwork": "p"})
    for name in ("a", "b", "c"):
        body = {"id": name, "logicalnetwork": "l"}
        created = await call(app, "POST", "/v1/logical-ports", json=body)
        assert "status" not in created.json()  # the stored object; servers report the status
    unreported = (await call(app, "GET", "/v1/logical-ports/a")).json()
    assert unreported == {"id": "a", "logicalnetwork": "l", "status": None}
    model.status["a"] = {"state": "up", "host": "hv1", "since": 1.5}
    model.status["c"] = {"state": "down", "host": "hv2", "since": 2.0}
    shown = (await call(app, "GET", "/v1/logical-ports/a")).json()
    assert list(shown) == ["id", "logicalnetwork", "status"], "status comes last"
    assert shown["status"] == {"state": "up", "host": "hv1", "since": 1.5}

    model.calls.clear()
    first = (await call(app, "GET", "/v1/logical-ports", query={"limit": "2"})).json()
    rest = (await call(app, "GET", "/v1/logical-ports", query={"after": first["next"]})).json()
    statuses = {o["id"]: o["status"] for o in first["items"] + rest["items"]}
    assert statuses == {"a": model.status["a"], "b": None, "c": model.status["c"]}
    assert model.calls == ["port_statuses 2", "port_statuses 1"], "one read per page"
    other = (await call(app, "GET", "/v1/logical-networks")).json()
    assert "status" not in other["items"][0]


async def test_a_port_status_is_no_list_filter_and_is_documented(app: Any) -> None:
    wanted = await call(app, "GET", "/v1/logical-ports", query={"status": "null"})
    assert_error(wanted, 400, "status", "servers report")
    document = (await call(app, "GET", "/openapi.json")).json()
    paths = document["paths"]
    listed = [p["name"] for p in paths["/v1/logical-ports"]["get"]["parameters"]]
    assert "logicalnetwork" in listed and "status" not in listed
    one = paths["/v1/logical-ports/{id}"]["get"]["responses"]["200"]["content"]
    shape = document["components"]["schemas"][one["application/json"]["schema"]["$ref"][21:]]
    assert "status" in shape["required"], "null when unreported, never absent"


async def test_health_and_openapi(app: Any) -> None:
    health = await call(app, "GET", "/v1/health")
    assert health.status == 200 and health.json()["status"] == "ok"
    document = (await call(app, "GET", "/openapi.json")).json()
    paths = document["paths"]
    assert "/v1/logical-ports/{id}" in paths and "/viperflow/createlogicalport" in paths
    assert "/vrouterapi/addrouterinterfaces" in paths


async def test_token_is_required_when_configured(model: FakeModel) -> None:
    app = create_app(model, token="s3cret")
    assert_error(await call(app, "GET", "/v1/routers"), 401, None, "Bearer")
    wrong = await call(app, "GET", "/v1/routers", headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401)
    assert wrong.headers["www-authenticate"] == "Bearer"
    right = await call(app, "GET", "/v1/routers", headers={"Authorization": "Bearer s3cret"})
    assert right.status == 200
    compat = await call(app, "GET", "/viperflow/listphysicalnetworks")
    assert compat.status == 401 and isinstance(compat.json()["error"], str)
    assert (await call(app, "GET", "/v1/health")).status == 200
    document = (await call(app, "GET", "/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_store_trouble_is_a_503_with_a_clear_message(model: FakeModel) -> None:
    from vlcp.store import StoreUnavailable

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("zookeeper 127.0.0.1:2181: connection refused")

    model.list = unreachable  # type: ignore[method-assign]
    app = create_app(model)
    assert_error(await call(app, "GET", "/v1/routers"), 503, None, "store is unavailable")
    assert_error(await call(app, "GET", "/v1/health"), 503, None, "connection refused")


async def test_a_503_says_when_a_change_may_have_been_made(model: FakeModel) -> None:
    """A commit whose answer was lost must not be reported as "nothing was written"."""
    from vlcp.store import StoreUnavailable

    async def answer_lost(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("zookeeper: connection lost after commit", maybe_applied=True)

    model.create = answer_lost  # type: ignore[method-assign]
    app = create_app(model)
    body = {"id": "r1"}
    response = await call(app, "POST", "/v1/routers", json=body)
    assert_error(response, 503, None, "may or may not have been made")
    assert "nothing was written" not in response.json()["error"]["message"]
