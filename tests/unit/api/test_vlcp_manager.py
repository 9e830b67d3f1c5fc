"""The original VLCP `manager` API (`/manager/<method>`) on the wanted module sets."""

from __future__ import annotations

from typing import Any

import pytest

from vlcp.api import create_app
from vlcp.layout import MODULES_ALL, modules_key
from vlcp.model import Model
from vlcp.store import Store

from ..module_reports import DEFAULT, report
from .asgi import Reply, call

ARP = "vlcp.service.sdn.arpresponder.ARPResponder"


@pytest.fixture
def app(store: Store) -> Any:
    return create_app(Model(store))


async def stored(store: Store, key: str) -> Any:
    return (await store.read([key])).values.get(key)


def failed(reply: Reply, status: int, text: str) -> None:
    assert reply.status == status, reply.body
    assert set(reply.json()) == {"error"} and text in reply.json()["error"], reply.json()


async def test_activemodules_lists_loaded_modules_by_original_path(app: Any, store: Store) -> None:
    await report(store, "hv1", loaded=["ingress", "l2_forward", "port_security"])
    await report(store, "hv2", loaded=["ingress"])
    one = await call(app, "GET", "/manager/activemodules", query={"server": "hv1"})
    assert one.json() == {
        "result": {
            "ingress": "vlcp.service.sdn.ioprocessing.IOProcessing",
            "l2_forward": "vlcp.service.sdn.l2switch.L2Switch",
            "port_security": "port_security",  # no equivalent in the original
        }
    }
    every = (await call(app, "POST", "/manager/activemodules")).json()["result"]
    assert set(every) == {"hv1", "hv2"} and list(every["hv2"]) == ["ingress"]
    failed(await call(app, "GET", "/manager/activemodules", query={"server": "x"}), 404, "x")


@pytest.mark.parametrize(
    "params",
    [
        {"path": ARP, "server": "hv1"},
        {"path": "ARPResponder", "server": "hv1"},  # the original's service name
        {"name": "arp_responder", "server": "hv1"},
    ],
)
async def test_loadmodule_takes_original_paths_and_vlcp_names(
    app: Any, store: Store, params: dict[str, str]
) -> None:
    await report(store, "hv1", default=[])
    reply = await call(app, "POST", "/manager/loadmodule", json=params)
    assert reply.status == 200, reply.body
    written = {"modules": ["arp_responder", "ingress"], "reload": {}, "settings": {}}
    assert reply.json()["result"]["servers"] == {"hv1": written}
    assert await stored(store, modules_key("hv1")) == written


async def test_without_server_the_change_is_for_every_server(app: Any, store: Store) -> None:
    await report(store, "hv1")
    reply = await call(app, "GET", "/manager/loadmodule", query={"path": ARP})
    assert reply.status == 200, reply.body
    assert "arp_responder" in (await stored(store, MODULES_ALL))["modules"]


async def test_unloadmodule_names_dependents_unless_asked(app: Any, store: Store) -> None:
    await report(store, "hv1")
    params = {"path": "vlcp.service.sdn.l2switch.L2Switch", "server": "hv1"}
    failed(await call(app, "POST", "/manager/unloadmodule", query=params), 409, "vxlan need it")
    reply = await call(app, "POST", "/manager/unloadmodule", query={**params, "dependents": "true"})
    assert reply.json()["result"]["servers"]["hv1"]["modules"] == ["ingress", "port_security"]


async def test_reloadmodules_takes_a_list_literal_or_one_path(app: Any, store: Store) -> None:
    await report(store, "hv1", generations={"vxlan": 1})
    pathlist = '`["vlcp.service.sdn.vxlancast.VXLANCast", "ingress"]`'
    reply = await call(app, "GET", "/manager/reloadmodules", query={"pathlist": pathlist})
    assert reply.status == 200, reply.body
    assert (await stored(store, MODULES_ALL))["reload"] == {"ingress": 1, "vxlan": 2}
    single = await call(app, "POST", "/manager/reloadmodules", json={"pathlist": "vxlan"})
    assert single.json()["result"]["all"]["reload"]["vxlan"] == 3
    failed(await call(app, "POST", "/manager/reloadmodules", json={"pathlist": []}), 400, "list")


async def test_errors_are_in_the_original_shape(app: Any, store: Store) -> None:
    failed(
        await call(app, "GET", "/manager/loadmodule", query={"name": "vlan", "server": "hv1"}),
        409,
        "hv1 has not reported its modules",
    )
    await report(store, "hv1")
    unknown = await call(app, "GET", "/manager/loadmodule", query={"name": "dhcp"})
    failed(unknown, 422, "modules: dhcp unknown to server hv1 (its controller knows: ")
    router = {"path": "vlcp.service.sdn.l3router.L3Router"}
    failed(await call(app, "GET", "/manager/loadmodule", query=router), 422, "no vlcp equivalent")
    both = {"path": ARP, "name": "arp_responder"}
    failed(await call(app, "GET", "/manager/loadmodule", query=both), 400, "'path'")
    typo = {"name": "vlan", "sever": "hv1"}
    failed(await call(app, "GET", "/manager/loadmodule", query=typo), 400, "got ['sever']")
    empty = {"name": "vlan", "server": ""}
    failed(await call(app, "GET", "/manager/loadmodule", query=empty), 400, "leave it out")
    bad = {"path": ARP, "dependents": "maybe"}
    failed(await call(app, "GET", "/manager/unloadmodule", query=bad), 400, "true or false")


async def test_enableautoreload_says_reload_is_on_request_only(app: Any) -> None:
    failed(await call(app, "GET", "/manager/enableautoreload"), 422, "no auto reload")
    off = await call(app, "GET", "/manager/enableautoreload", query={"enabled": "`False`"})
    assert off.status == 200 and off.json() == {"result": None}


async def test_the_manager_needs_the_token_too(store: Store) -> None:
    app = create_app(Model(store), token="s3cret")
    refused = await call(app, "GET", "/manager/activemodules")
    failed(refused, 401, "authentication required")
    await report(store, "hv1", loaded=list(DEFAULT))
    allowed = await call(
        app, "GET", "/manager/activemodules", headers={"Authorization": "Bearer s3cret"}
    )
    assert allowed.status == 200 and "hv1" in allowed.json()["result"]
