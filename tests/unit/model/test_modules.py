"""Wanted module sets: checked against what controllers report, one transaction each."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vlcp.layout import MODULES_ALL, module_status, modules_key
from vlcp.model import Model
from vlcp.model.errors import Conflict, Invalid, NotFound
from vlcp.model.modules import Change
from vlcp.model.servers import forget_server
from vlcp.store import Store

from ..module_reports import DEFAULT, present, put, report, status


async def wanted(store: Store, key: str) -> Any:
    return (await store.read([key])).values.get(key)


def load(*names: str) -> Change:
    return Change("load", names)


def unload(*names: str, dependents: bool = False) -> Change:
    return Change("unload", names, dependents)


def reload(*names: str) -> Change:
    return Change("reload", names)


async def test_a_server_that_never_reported_is_refused(model: Model, store: Store) -> None:
    with pytest.raises(Conflict, match="hv1 has not reported its modules") as refused:
        await model.change_modules(load("vxlan"), "hv1")
    assert refused.value.field == "server"
    with pytest.raises(Conflict, match="no controller has reported its modules yet"):
        await model.change_modules(load("vxlan"))
    assert await wanted(store, modules_key("hv1")) is None
    assert await wanted(store, MODULES_ALL) is None


async def test_load_starts_from_the_default_and_writes_the_closure(
    model: Model, store: Store
) -> None:
    await report(store, "hv1", default=["ingress"], loaded=["ingress"])
    result = await model.change_modules(load("vlan"), "hv1")
    written = {"modules": ["ingress", "l2_forward", "vlan"], "reload": {}, "settings": {}}
    assert result == {"all": None, "servers": {"hv1": written}}
    assert await wanted(store, modules_key("hv1")) == written
    assert await wanted(store, MODULES_ALL) is None  # a server's change is its own


async def test_a_server_without_its_own_set_starts_from_the_shared_one(
    model: Model, store: Store
) -> None:
    await report(store, "hv1", generations={"vxlan": 2})
    await put(store, {MODULES_ALL: {"modules": ["ingress", "vxlan"], "reload": {"vxlan": 7}}})
    await model.change_modules(load("arp_responder"), "hv1")
    assert await wanted(store, modules_key("hv1")) == {
        "modules": ["arp_responder", "ingress", "l2_forward", "vxlan"],
        "reload": {"vxlan": 7},  # its reload requests come along, so none is lost
        "settings": {},
    }


async def test_unknown_names_are_refused_naming_them_and_the_known_ones(
    model: Model, store: Store
) -> None:
    await report(store, "hv1")
    with pytest.raises(Invalid) as refused:
        await model.change_modules(load("vxlan", "dhcp", "l3"), "hv1")
    message = refused.value.message
    assert "dhcp, l3 unknown to server hv1" in message and "arp_responder, ingress" in message
    assert refused.value.field == "modules"
    assert await wanted(store, modules_key("hv1")) is None


async def test_unload_refuses_what_others_need_naming_them(model: Model, store: Store) -> None:
    await report(store, "hv1")
    with pytest.raises(Conflict, match="cannot unload l2_forward on server hv1: vxlan need it"):
        await model.change_modules(unload("l2_forward"), "hv1")
    with pytest.raises(Conflict, match="port_security, vxlan need it"):
        await model.change_modules(unload("ingress", "l2_forward"), "hv1")
    assert await wanted(store, modules_key("hv1")) is None


async def test_unload_with_dependents_takes_them_too(model: Model, store: Store) -> None:
    await report(store, "hv1")
    await model.change_modules(unload("l2_forward", dependents=True), "hv1")
    assert (await wanted(store, modules_key("hv1")))["modules"] == ["ingress", "port_security"]
    await model.change_modules(unload("vlan"), "hv1")  # not loaded: nothing to do, no error
    assert (await wanted(store, modules_key("hv1")))["modules"] == ["ingress", "port_security"]


async def test_reload_asks_for_a_generation_above_the_applied_one(
    model: Model, store: Store
) -> None:
    await report(store, "hv1", generations={"vxlan": 3})
    await model.change_modules(reload("vxlan", "ingress"), "hv1")
    first = await wanted(store, modules_key("hv1"))
    assert first == {
        "modules": sorted(DEFAULT),
        "reload": {"ingress": 1, "vxlan": 4},
        "settings": {},
    }
    await model.change_modules(reload("vxlan"), "hv1")  # before the controller applied it
    assert (await wanted(store, modules_key("hv1")))["reload"] == {"ingress": 1, "vxlan": 5}


async def test_reload_of_a_module_not_in_the_set_is_refused(model: Model, store: Store) -> None:
    await report(store, "hv1")
    with pytest.raises(Conflict, match="cannot reload vlan on server hv1: not in its module set"):
        await model.change_modules(reload("vlan", "vxlan"), "hv1")


async def test_a_change_for_all_updates_every_own_set_in_one_go(model: Model, store: Store) -> None:
    await report(store, "hv1")
    await report(store, "hv2", default=["ingress"])
    await model.change_modules(unload("port_security"), "hv1")
    result = await model.change_modules(load("arp_responder"))
    shared = {"modules": sorted({*DEFAULT, "arp_responder"}), "reload": {}, "settings": {}}
    own = {
        "modules": ["arp_responder", "ingress", "l2_forward", "vxlan"],
        "reload": {},
        "settings": {},
    }
    assert result == {"all": shared, "servers": {"hv1": own}}
    assert await wanted(store, MODULES_ALL) == shared
    assert await wanted(store, modules_key("hv1")) == own
    assert await wanted(store, modules_key("hv2")) is None  # hv2 follows the shared set


async def test_a_change_for_all_is_refused_whole_when_one_server_refuses(
    model: Model, store: Store
) -> None:
    await report(store, "hv1")
    await report(store, "hv2", graph={"ingress": (), "l2_forward": ("ingress",)})
    with pytest.raises(Invalid, match=r"vxlan unknown to server hv2 \(its controller knows: "):
        await model.change_modules(load("vxlan"))
    await model.change_modules(load("vlan"), "hv1")
    # hv1's own set has vlan needing l2_forward; the shared default set has vxlan too
    with pytest.raises(Conflict, match="on all servers: vxlan need it"):
        await model.change_modules(unload("l2_forward"))
    assert await wanted(store, MODULES_ALL) is None
    await model.change_modules(unload("l2_forward", dependents=True))
    assert (await wanted(store, MODULES_ALL))["modules"] == ["ingress", "port_security"]
    assert (await wanted(store, modules_key("hv1")))["modules"] == ["ingress", "port_security"]


async def test_a_change_for_all_writes_nothing_when_one_own_set_refuses(
    model: Model, store: Store
) -> None:
    await report(store, "hv1")
    await report(store, "hv2")
    await model.change_modules(unload("vxlan"), "hv2")
    before = await wanted(store, modules_key("hv2"))
    # the shared (default) set has vxlan, so its reload is fine there; hv2's own set has not
    with pytest.raises(Conflict, match="cannot reload vxlan on server hv2"):
        await model.change_modules(reload("vxlan"))
    assert await wanted(store, MODULES_ALL) is None
    assert await wanted(store, modules_key("hv2")) == before


async def test_a_change_for_all_is_refused_while_a_server_with_its_own_set_is_silent(
    model: Model, store: Store
) -> None:
    await report(store, "hv1")
    await put(store, {modules_key("gone"): {"modules": ["ingress"], "reload": {}}})
    with pytest.raises(Conflict, match="gone have a module set of their own but never reported"):
        await model.change_modules(load("vlan"))
    await forget_server(store, "gone")
    await model.change_modules(load("vlan"))
    assert "vlan" in (await wanted(store, MODULES_ALL))["modules"]


async def test_a_value_written_outside_vlcp_is_named(model: Model, store: Store) -> None:
    await report(store, "hv1")
    await put(store, {modules_key("hv1"): {"modules": "vxlan"}})
    with pytest.raises(Conflict, match="modules/hv1 holds a malformed value"):
        await model.change_modules(load("vlan"), "hv1")
    await put(store, {modules_key("hv1"): None, module_status("hv1"): {"known": ["vxlan"]}})
    with pytest.raises(Conflict, match="module-status/hv1 holds a malformed value"):
        await model.change_modules(load("vlan"), "hv1")


async def test_concurrent_changes_are_never_lost(model: Model, store: Store) -> None:
    await report(store, "hv1", default=["ingress"])
    names = ["vlan", "arp_responder", "port_security", "vxlan"]
    await asyncio.gather(*(model.change_modules(load(n), "hv1") for n in names))
    assert (await wanted(store, modules_key("hv1")))["modules"] == sorted(
        {*names, "ingress", "l2_forward"}
    )


@pytest.mark.parametrize(
    ("args", "field", "text"),
    [
        (("load", ()), "modules", "give 1 to 100"),
        (("load", ("a", "")), "modules[1]", "non-empty text"),
        (("load", ("a", 3)), "modules[1]", "non-empty text"),
        (("unload", ("a", "b", "a")), "modules[2]", "'a' is given twice"),
        (("reload", ("a",), True), "dependents", "unload only"),
    ],
)
def test_a_change_is_checked_before_the_store_is_read(
    args: tuple[Any, ...], field: str, text: str
) -> None:
    with pytest.raises(Invalid, match=text) as refused:
        Change(*args)
    assert refused.value.field == field


async def test_the_view_says_what_each_server_runs_wants_and_has_yet_to_do(
    model: Model, store: Store
) -> None:
    await report(store, "hv1", generations={"ingress": 1}, errors={"vlan": "boom"})
    await report(store, "hv2", loaded=["ingress"])
    await present(store, "hv1")
    await put(store, {MODULES_ALL: {"modules": ["ingress"], "reload": {}}})
    await model.change_modules(load("vlan"), "hv1")
    await model.change_modules(reload("ingress"), "hv1")
    view = await model.modules()
    assert view["all"] == {"modules": ["ingress"], "reload": {}}
    hv1, hv2 = view["servers"]
    assert hv1["server"] == "hv1" and hv1["running"] and hv1["reported"]
    assert hv1["wanted_from"] == "server" and hv1["errors"] == {"vlan": "boom"}
    assert hv1["wanted"] == ["ingress", "l2_forward", "vlan"]  # from the shared set
    assert hv1["reload"] == {"ingress": 2}
    pending = {"load": ["vlan"], "unload": ["port_security", "vxlan"], "reload": ["ingress"]}
    assert hv1["pending"] == pending
    assert set(hv1["known"]["vxlan"]) == {"doc", "depends", "tables", "source", "settings"}
    assert hv2["wanted_from"] == "all" and not hv2["running"]
    assert hv2["wanted"] == ["ingress"] and hv2["loaded"] == ["ingress"]
    assert hv2["pending"] == {"load": [], "unload": [], "reload": []}
    assert (await model.modules("hv2"))["servers"] == [hv2]


async def test_the_view_of_one_server(model: Model, store: Store) -> None:
    with pytest.raises(NotFound, match="server hv9: no controller has reported") as missing:
        await model.modules("hv9")
    assert missing.value.field == "server"
    await put(store, {module_status("hv9"): status(default=["ingress"], loaded=[])})
    (entry,) = (await model.modules("hv9"))["servers"]
    assert entry["wanted_from"] == "default" and entry["wanted"] == ["ingress"]
    assert entry["pending"] == {"load": ["ingress"], "unload": [], "reload": []}
    with pytest.raises(Invalid, match="server: 'a/b' is not a valid id"):
        await model.modules("a/b")


async def test_forgetting_a_server_drops_its_module_keys(model: Model, store: Store) -> None:
    await report(store, "hv1")
    await model.change_modules(load("vlan"), "hv1")
    await forget_server(store, "hv1")
    assert await wanted(store, modules_key("hv1")) is None
    assert await wanted(store, module_status("hv1")) is None


def configure(name: str, settings: dict[str, Any] | None) -> Change:
    return Change("configure", (name,), settings=settings)


async def test_configure_writes_a_modules_settings_and_null_takes_them_back(
    model: Model, store: Store
) -> None:
    await report(store, "hv1", configurable=["port_security"])
    await model.change_modules(configure("port_security", {"macs": ["02:00:00:00:00:09"]}), "hv1")
    written = await wanted(store, modules_key("hv1"))
    assert written["settings"] == {"port_security": {"macs": ["02:00:00:00:00:09"]}}
    assert written["modules"] == sorted(DEFAULT)  # the set itself is untouched
    await model.change_modules(load("arp_responder"), "hv1")  # settings survive other changes
    assert (await wanted(store, modules_key("hv1")))["settings"] == written["settings"]
    await model.change_modules(configure("port_security", None), "hv1")
    assert (await wanted(store, modules_key("hv1")))["settings"] == {}


async def test_configure_refuses_a_module_without_settings_and_several_at_once(
    model: Model, store: Store
) -> None:
    await report(store, "hv1", configurable=["port_security"])
    with pytest.raises(Invalid, match="vxlan takes no settings on server hv1") as refused:
        await model.change_modules(configure("vxlan", {"x": 1}), "hv1")
    assert refused.value.field == "modules"
    with pytest.raises(Invalid, match="unknown to server hv1"):
        await model.change_modules(configure("dhcp", {"x": 1}), "hv1")
    with pytest.raises(Invalid, match="configure one module at a time"):
        Change("configure", ("vxlan", "vlan"), settings={})
    with pytest.raises(Invalid, match="settings: applies to configure only"):
        Change("load", ("vxlan",), settings={})
    assert await wanted(store, modules_key("hv1")) is None


async def test_configure_for_all_servers_writes_every_set(model: Model, store: Store) -> None:
    await report(store, "hv1", configurable=["port_security"])
    await report(store, "hv2", configurable=["port_security"])
    await model.change_modules(load("arp_responder"), "hv2")  # hv2 has a set of its own
    await model.change_modules(configure("port_security", {"macs": []}))
    expected = {"port_security": {"macs": []}}
    assert (await wanted(store, MODULES_ALL))["settings"] == expected
    assert (await wanted(store, modules_key("hv2")))["settings"] == expected
    view = await model.modules("hv2")
    assert view["servers"][0]["wanted_settings"] == expected
