"""REST v1 `/v1/modules` through the app, over a real model on an embedded store."""

from __future__ import annotations

from typing import Any

import pytest

from vlcp.api import create_app
from vlcp.layout import MODULES_ALL, modules_key
from vlcp.model import Model
from vlcp.store import Store

from ..module_reports import DEFAULT, present, report
from .asgi import call
from .test_rest import assert_error


@pytest.fixture
def app(store: Store) -> Any:
    return create_app(Model(store))


async def stored(store: Store, key: str) -> Any:
    return (await store.read([key])).values.get(key)


async def test_list_shows_every_server_and_the_shared_set(app: Any, store: Store) -> None:
    assert (await call(app, "GET", "/v1/modules")).json() == {"all": None, "servers": []}
    await report(store, "hv1", errors={"vlan": "no such table"})
    await report(store, "hv2")
    await present(store, "hv2")
    reply = await call(app, "GET", "/v1/modules")
    assert reply.status == 200, reply.body
    hv1, hv2 = reply.json()["servers"]
    assert (hv1["server"], hv1["running"], hv2["running"]) == ("hv1", False, True)
    assert hv1["wanted"] == sorted(DEFAULT) and hv1["wanted_from"] == "default"
    assert hv1["errors"] == {"vlan": "no such table"}
    assert hv1["known"]["vxlan"]["depends"] == ["ingress", "l2_forward"]
    one = (await call(app, "GET", "/v1/modules", query={"server": "hv2"})).json()
    assert one == {"all": None, "servers": [hv2]}
    assert_error(await call(app, "GET", "/v1/modules", query={"server": "hv9"}), 404, "server")


async def test_load_writes_the_closure_and_answers_the_sets(app: Any, store: Store) -> None:
    await report(store, "hv1", default=["ingress"])
    reply = await call(app, "POST", "/v1/modules/load", json={"modules": ["vlan"], "server": "hv1"})
    assert reply.status == 200, reply.body
    written = {"modules": ["ingress", "l2_forward", "vlan"], "reload": {}, "settings": {}}
    assert reply.json() == {"all": None, "servers": {"hv1": written}}
    assert await stored(store, modules_key("hv1")) == written
    (entry,) = (await call(app, "GET", "/v1/modules", query={"server": "hv1"})).json()["servers"]
    assert entry["wanted_from"] == "server"
    assert entry["pending"] == {
        "load": ["vlan"],
        "unload": ["port_security", "vxlan"],
        "reload": [],
    }


async def test_unload_names_the_dependents_unless_asked_to_take_them(
    app: Any, store: Store
) -> None:
    await report(store, "hv1")
    body = {"modules": ["l2_forward"], "server": "hv1"}
    refused = await call(app, "POST", "/v1/modules/unload", json=body)
    assert_error(refused, 409, "modules", "vxlan need it")
    assert await stored(store, modules_key("hv1")) is None
    taken = await call(app, "POST", "/v1/modules/unload", json={**body, "dependents": True})
    assert taken.json()["servers"]["hv1"]["modules"] == ["ingress", "port_security"]


async def test_reload_bumps_the_generation(app: Any, store: Store) -> None:
    await report(store, "hv1", generations={"vxlan": 4})
    body = {"modules": ["vxlan"], "server": "hv1"}
    reply = await call(app, "POST", "/v1/modules/reload", json=body)
    assert reply.json()["servers"]["hv1"]["reload"] == {"vxlan": 5}
    again = await call(app, "POST", "/v1/modules/reload", json=body)
    assert again.json()["servers"]["hv1"]["reload"] == {"vxlan": 6}


async def test_a_change_for_all_rewrites_each_own_set_too(app: Any, store: Store) -> None:
    await report(store, "hv1")
    await report(store, "hv2")
    await call(app, "POST", "/v1/modules/unload", json={"modules": ["vxlan"], "server": "hv2"})
    reply = await call(app, "POST", "/v1/modules/load", json={"modules": ["arp_responder"]})
    assert reply.status == 200, reply.body
    shared = await stored(store, MODULES_ALL)
    assert shared == reply.json()["all"] and "arp_responder" in shared["modules"]
    own = await stored(store, modules_key("hv2"))
    assert own == reply.json()["servers"]["hv2"]
    assert own["modules"] == ["arp_responder", "ingress", "l2_forward", "port_security"]
    assert await stored(store, modules_key("hv1")) is None
    listing = (await call(app, "GET", "/v1/modules")).json()
    assert [s["wanted_from"] for s in listing["servers"]] == ["all", "server"]


async def test_unknown_names_and_silent_servers_are_refused(app: Any, store: Store) -> None:
    body = {"modules": ["dhcp"], "server": "hv1"}
    assert_error(await call(app, "POST", "/v1/modules/load", json=body), 409, "server", "hv1")
    everywhere = await call(app, "POST", "/v1/modules/load", json={"modules": ["vlan"]})
    assert_error(everywhere, 409, None, "no controller has reported")
    await report(store, "hv1")
    unknown = await call(app, "POST", "/v1/modules/load", json=body)
    assert_error(unknown, 422, "modules", "dhcp unknown to server hv1")
    assert "arp_responder, ingress, l2_forward" in unknown.json()["error"]["message"]
    idle = await call(app, "POST", "/v1/modules/reload", json={"modules": ["vlan"]})
    assert_error(idle, 409, "modules", "cannot reload vlan on all servers")


@pytest.mark.parametrize(
    ("path", "body", "field", "text"),
    [
        ("load", {}, "modules", "required"),
        ("load", {"modules": []}, "modules", "at least 1"),
        ("load", {"modules": "vlan"}, "modules", "valid list"),
        ("load", {"modules": ["vlan", 1]}, "modules[1]", "valid string"),
        ("load", {"modules": ["vlan"], "dependents": True}, "dependents", "Extra inputs"),
        ("unload", {"modules": ["vlan"], "dependents": "yes"}, "dependents", "valid boolean"),
        ("reload", {"modules": ["vlan", "vlan"]}, "modules[1]", "'vlan' is given twice"),
        ("reload", {"modules": ["vlan"], "server": "a/b"}, "server", "not a valid id"),
        ("reload", {"modules": ["vlan"], "server": 7}, "server", "valid string"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(
    app: Any, path: str, body: Any, field: str, text: str
) -> None:
    assert_error(await call(app, "POST", f"/v1/modules/{path}", json=body), 422, field, text)


async def test_modules_need_the_token_when_one_is_set(store: Store) -> None:
    app = create_app(Model(store), token="s3cret")
    assert (await call(app, "GET", "/v1/modules")).status == 401
    authorised = {"Authorization": "Bearer s3cret"}
    assert (await call(app, "GET", "/v1/modules", headers=authorised)).status == 200


async def test_configure_gives_a_module_settings_and_refuses_bad_requests(
    app: Any, store: Store
) -> None:
    await report(store, "hv1", configurable=["port_security"])
    body = {"module": "port_security", "settings": {"macs": ["02:00:00:00:00:09"]}, "server": "hv1"}
    reply = await call(app, "POST", "/v1/modules/configure", json=body)
    assert reply.status == 200, reply.body
    assert reply.json()["servers"]["hv1"]["settings"] == {"port_security": body["settings"]}
    assert (await stored(store, modules_key("hv1")))["settings"] == {
        "port_security": body["settings"]
    }
    (entry,) = (await call(app, "GET", "/v1/modules", query={"server": "hv1"})).json()["servers"]
    assert entry["wanted_settings"] == {"port_security": body["settings"]}
    refused = {**body, "module": "vxlan"}
    assert_error(await call(app, "POST", "/v1/modules/configure", json=refused), 422, "modules")
    missing = {"module": "port_security", "server": "hv1"}  # settings: explicit null only
    assert_error(await call(app, "POST", "/v1/modules/configure", json=missing), 422, "settings")
