"""`ModuleManager`: which modules a controller knows, which it loads, reloads and reports.

Driven by plain values (the store's documents through a dict, entry points built here),
so each rule is checked without a switch: the wanted set's precedence (own > all >
default), closure under dependencies, reload generations (those at start count as
applied), discovery and its errors, failures, and the status document.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from importlib.metadata import EntryPoint
from typing import Any

import pytest

from tests.unit.pipeline.example_modules import CATALOG, MAC_DROP, MAC_DROP_V2, MacDropSettings
from tests.unit.pipeline.scenario import VIEW
from vlcp.agent.modules import GROUP, Discovery, ModuleManager, Source, discover
from vlcp.layout import MODULES_ALL, module_status, modules_key
from vlcp.pipeline import BUILTIN, Catalog, Module, ModuleFailed, Table, View
from vlcp.store import Store, StoreUnavailable, open_store

from .fake_code import Disk

ME = "hv1"
BUILT_IN = frozenset(m.name for m in BUILTIN)
NEEDY = Module("needy", depends=("not_installed",))
"""A third-party module the catalog refuses: it needs a module nobody installed."""
A_FIRST = Module("a_first", depends=("mac_drop",))
"""Needs another third-party module, found after it in name order."""
CLASH = Module("clash", tables=(Table("ingress", miss="drop"),))
"""Declares a table a built-in module owns."""


def manager(
    store: dict[str, Any] | None = None, disk: Disk | None = None, start: int = 0
) -> ModuleManager:
    """A manager on the example catalog (built-ins + mac_drop), having read `store`; its
    clock ticks once per reading, from `start`."""
    sources: dict[str, Source | None] = {m.name: None for m in BUILTIN}
    sources["mac_drop"] = disk or Disk(MAC_DROP)
    discovery = Discovery(CATALOG, sources, BUILT_IN)
    made = ModuleManager(discovery, ME, clock=iter(range(start, start + 1000)).__next__)
    made.update((store or {}).get)
    return made


def wanted(*modules: str, **reload: int) -> dict[str, Any]:
    return {"modules": list(modules), "reload": reload}


# ------------------------------------------------------------------ the wanted set


def test_without_a_wanted_set_the_built_in_modules_run() -> None:
    assert manager().current.loaded == BUILT_IN  # the third-party module is only known


def test_the_servers_own_set_wins_over_all_which_wins_over_the_default() -> None:
    store: dict[str, Any] = {MODULES_ALL: wanted("ingress", "mac_drop")}
    modules = manager(store)
    assert modules.current.loaded == {"ingress", "mac_drop"}
    store[modules_key(ME)] = wanted("l2_forward")
    assert modules.update(store.get)
    assert modules.current.loaded == {"ingress", "l2_forward"}
    store[modules_key("hv2")] = wanted("vxlan")  # another server's: not ours
    store[MODULES_ALL] = wanted("arp_responder")
    assert not modules.update(store.get)
    assert modules.current.loaded == {"ingress", "l2_forward"}
    del store[modules_key(ME)]
    assert modules.update(store.get)
    assert modules.current.loaded == {"ingress", "arp_responder"}
    del store[MODULES_ALL]
    assert modules.update(store.get)
    assert modules.current.loaded == BUILT_IN


def test_the_loaded_modules_are_the_wanted_ones_and_what_they_need() -> None:
    modules = manager({MODULES_ALL: wanted("vxlan", "mac_drop")})
    assert modules.current.loaded == {"vxlan", "l2_forward", "ingress", "mac_drop"}


def test_an_unknown_module_is_an_error_and_the_others_load() -> None:
    modules = manager({modules_key(ME): wanted("arp_responder", "dhcp")})
    assert modules.current.loaded == {"arp_responder", "ingress"}
    assert modules.errors() == {"dhcp": "unknown module: not installed on this server"}


def test_a_wanted_set_of_the_wrong_shape_is_skipped_and_said() -> None:
    store = {modules_key(ME): {"modules": "ingress"}, MODULES_ALL: wanted("ingress")}
    modules = manager(store)
    assert modules.current.loaded == {"ingress"}
    assert list(modules.errors()) == [modules_key(ME)]
    assert "not a list of names" in modules.errors()[modules_key(ME)]
    store[modules_key(ME)] = {"reload": {"ingress": 1}}  # no set at all: not "no modules"
    modules.update(store.get)
    assert modules.current.loaded == {"ingress"}
    assert list(modules.errors()) == [modules_key(ME)]


def test_an_unchanged_document_changes_nothing() -> None:
    store = {MODULES_ALL: wanted("ingress")}
    modules = manager(store)
    current = modules.current
    assert not modules.update(dict(store).get)
    assert modules.current is current


# ------------------------------------------------------------------ reloads


def test_generations_at_start_count_as_applied_and_newer_ones_reload() -> None:
    disk = Disk(MAC_DROP)
    store = {MODULES_ALL: wanted("mac_drop", mac_drop=3)}
    modules = manager(store, disk)
    disk.change(MAC_DROP_V2)
    assert modules.status()["generations"] == {"mac_drop": 3}
    assert disk.imports == 0  # the code was just imported: nothing to reload

    store[MODULES_ALL] = wanted("mac_drop", "ingress", mac_drop=3)
    modules.update(store.get)
    assert disk.imports == 0  # the same generation: no reload
    assert modules.current.catalog["mac_drop"] is MAC_DROP

    store[MODULES_ALL] = wanted("mac_drop", "ingress", mac_drop=4)
    assert modules.update(store.get)
    assert disk.imports == 1
    assert modules.current.catalog["mac_drop"] is MAC_DROP_V2
    assert modules.current.loaded == {"mac_drop", "ingress"}
    assert modules.status()["generations"] == {"mac_drop": 4}

    store[modules_key(ME)] = wanted("mac_drop", mac_drop=2)  # not newer than 4
    modules.update(store.get)
    assert disk.imports == 1


def test_a_generation_not_seen_at_start_reloads_when_it_appears() -> None:
    disk = Disk(MAC_DROP_V2)
    store: dict[str, Any] = {}
    modules = manager(store, disk)
    store[MODULES_ALL] = wanted("mac_drop", mac_drop=1)
    modules.update(store.get)
    assert disk.imports == 1
    assert modules.current.catalog["mac_drop"] is MAC_DROP_V2


@pytest.mark.parametrize(
    ("new_code", "why"),
    [
        (SyntaxError("invalid syntax"), "SyntaxError: invalid syntax"),
        (
            dataclasses.replace(MAC_DROP, tables=(Table("mac_drop", after=("l2_forward",)),)),
            "cannot move or rename its tables",
        ),
        (
            dataclasses.replace(MAC_DROP, base=lambda ctx: 1 / 0),
            "ZeroDivisionError",
        ),
    ],
    ids=["import", "moved-table", "raising"],
)
def test_a_failed_reload_keeps_the_old_version_and_says_why(
    new_code: Module | Exception, why: str
) -> None:
    disk = Disk(new_code)
    store = {MODULES_ALL: wanted("mac_drop")}
    modules = manager(store, disk)
    before = modules.current
    store[MODULES_ALL] = wanted("mac_drop", mac_drop=1)
    assert not modules.update(store.get)
    assert modules.current is before
    assert modules.current.catalog["mac_drop"] is MAC_DROP
    assert why in modules.errors()["mac_drop"]
    assert "old version kept" in modules.errors()["mac_drop"]
    assert modules.status()["generations"] == {"mac_drop": 1}  # not retried forever

    disk.change(MAC_DROP_V2)  # fixed on disk, and reloaded again
    store[MODULES_ALL] = wanted("mac_drop", mac_drop=2)
    assert modules.update(store.get)
    assert modules.current.catalog["mac_drop"] is MAC_DROP_V2
    assert modules.errors() == {}


# ------------------------------------------------------------------ failures


def boom(*args: object) -> frozenset[Any]:
    raise RuntimeError("bug in the module")


def test_a_module_that_raises_is_unloaded_with_its_dependents_until_reloaded() -> None:
    disk = Disk(MAC_DROP)
    store = {MODULES_ALL: wanted("mac_drop", "l2_forward", "a_first")}
    broken = dataclasses.replace(MAC_DROP, port=boom)
    catalog = CATALOG.replace(broken)
    sources: dict[str, Source | None] = {m.name: None for m in BUILTIN}
    sources |= {"mac_drop": disk, "a_first": None}
    discovery = Discovery(Catalog([*catalog, A_FIRST]), sources, BUILT_IN)
    modules = ModuleManager(discovery, ME)
    modules.update(store.get)
    view = View()
    with pytest.raises(ModuleFailed) as failed:
        modules.current.compile_owner(view, ("port", "p1"))
    assert failed.value.name == "mac_drop"
    modules.fail(failed.value)
    assert modules.current.loaded == {"ingress", "l2_forward"}
    errors = modules.errors()
    assert "RuntimeError: bug in the module" in errors["mac_drop"]
    assert errors["a_first"] == "needs mac_drop, which failed"

    store[MODULES_ALL] = wanted("mac_drop", "l2_forward", "a_first", mac_drop=1)
    assert modules.update(store.get)  # fixed code: loaded again
    assert modules.current.loaded == {"ingress", "l2_forward", "mac_drop", "a_first"}
    assert modules.errors() == {}


def test_a_module_whose_base_flows_raise_is_left_out_at_load() -> None:
    broken = dataclasses.replace(MAC_DROP, base=boom)
    discovery = Discovery(CATALOG.replace(broken), {"mac_drop": None}, BUILT_IN)
    modules = ModuleManager(discovery, ME)
    store: dict[str, Any] = {MODULES_ALL: wanted("mac_drop", "arp_responder")}
    modules.update(store.get)
    assert modules.current.loaded == {"ingress", "arp_responder"}
    assert "bug in the module" in modules.errors()["mac_drop"]
    store[MODULES_ALL] = wanted("arp_responder")  # another set: the failure is forgotten
    modules.update(store.get)
    assert modules.errors() == {}


# ------------------------------------------------------------------ discovery


def point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name, value, GROUP)


def test_discovery_adds_installed_modules_and_leaves_out_the_broken_ones() -> None:
    here = "tests.unit.agent.test_modules"
    found = discover(
        BUILTIN,
        [
            point("mac_drop", "tests.unit.pipeline.example_modules:MAC_DROP"),
            point("a_first", f"{here}:A_FIRST"),  # needs mac_drop, found after it
            point("gone", "vlcp_no_such_package:MODULE"),
            point("notamodule", "tests.unit.pipeline.example_modules:CATALOG"),
            point("needy", f"{here}:NEEDY"),
            point("arp", "vlcp.pipeline.arp:MODULE"),
            point("clash", f"{here}:CLASH"),
        ],
    )
    assert [m.name for m in found.catalog] == [*(m.name for m in BUILTIN), "mac_drop", "a_first"]
    assert found.default == BUILT_IN
    assert set(found.errors) == {"gone", "notamodule", "needy", "arp", "clash"}
    assert "ModuleNotFoundError" in found.errors["gone"]
    assert "not a vlcp Module" in found.errors["notamodule"]
    assert "unknown module(s) ['not_installed']" in found.errors["needy"]
    assert "arp_responder is already known" in found.errors["arp"]
    assert "table ingress declared by ingress and clash" in found.errors["clash"]
    source = found.sources["mac_drop"]
    assert source is not None
    assert (source.module, source.attr) == ("tests.unit.pipeline.example_modules", "MAC_DROP")
    assert source.describe() == "unknown:tests.unit.pipeline.example_modules:MAC_DROP"
    arp = found.sources["arp_responder"]
    assert arp is not None and (arp.module, arp.attr) == ("vlcp.pipeline.arp", "MODULE")
    assert arp.describe() == "builtin"
    vlan = found.sources["vlan"]
    assert vlan is not None and (vlan.module, vlan.attr) == ("vlcp.pipeline.physical", "VLAN")


def test_without_installed_modules_discovery_is_the_built_in_catalog() -> None:
    found = discover(BUILTIN, [])
    assert [(t.id, t.name) for t in found.catalog.pipeline] == [
        (t.id, t.name) for t in BUILTIN.pipeline
    ]
    assert found.errors == {}
    assert all(found.sources[m.name] is not None for m in BUILTIN)


# ------------------------------------------------------------------ status


def test_the_status_document() -> None:
    modules = manager({MODULES_ALL: wanted("mac_drop", "dhcp", mac_drop=2)})
    status = modules.status()
    assert set(status) == {
        "known",
        "default",
        "loaded",
        "generations",
        "settings",
        "errors",
        "since",
    }
    assert status["known"]["mac_drop"] == {
        "doc": MAC_DROP.doc,
        "depends": ["ingress"],
        "tables": ["mac_drop"],
        "source": "example-dist:example:MAC_DROP",
        "settings": MacDropSettings.model_json_schema(),
    }
    assert status["known"]["ingress"]["settings"] is None
    assert status["settings"] == {"mac_drop": {"macs": ["02:00:00:00:00:03"]}}  # its defaults
    assert status["known"]["vxlan"]["source"] == "builtin"
    assert status["known"]["vxlan"]["depends"] == ["ingress", "l2_forward"]
    assert set(status["known"]) == {m.name for m in CATALOG}
    assert status["default"] == sorted(BUILT_IN)
    assert status["loaded"] == ["ingress", "mac_drop"]
    assert status["generations"] == {"mac_drop": 2}
    assert status["errors"] == {"dhcp": "unknown module: not installed on this server"}


def test_since_moves_only_when_what_is_reported_changes() -> None:
    store: dict[str, Any] = {MODULES_ALL: wanted("ingress")}
    modules = manager(store)
    since = modules.status()["since"]
    store[MODULES_ALL] = wanted("ingress", "ingress")  # another document, same report
    modules.update(store.get)
    assert modules.status()["since"] == since
    store[MODULES_ALL] = wanted("l2_forward")
    modules.update(store.get)
    assert modules.status()["since"] > since


class Outage:
    """A store that is away while `down`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False
        self.commits = 0

    async def transact(self, fn: Callable[[Any], Awaitable[Any]]) -> Any:
        if self.down:
            raise StoreUnavailable("connection refused")
        self.commits += 1
        return await self.store.transact(fn)


async def test_the_status_is_published_when_it_differs_and_after_an_outage(tmp_path) -> None:
    store = await open_store(f"sqlite://{tmp_path}/state.db")
    try:
        outage = Outage(store)
        key = module_status(ME)
        values: dict[str, Any] = {}
        modules = manager(values)
        outage.down = True
        with pytest.raises(StoreUnavailable):
            await modules.publish(outage)  # type: ignore[arg-type]
        outage.down = False
        await modules.publish(outage)  # type: ignore[arg-type]
        assert (await store.read([key])).values[key] == modules.status()
        revision = (await store.read([key])).revision
        await modules.publish(outage)  # type: ignore[arg-type]
        assert outage.commits == 1  # published: nothing to do

        # a restarted controller with the same modules writes nothing (the since stays)
        again = manager(values, start=500)
        await again.publish(store)
        assert (await store.read([key])).revision == revision
        assert (await store.read([key])).values[key]["since"] == modules.status()["since"]

        values[MODULES_ALL] = wanted("ingress")
        again.update(values.get)
        await again.publish(store)
        assert (await store.read([key])).values[key] == again.status()
        assert again.status()["loaded"] == ["ingress"]
    finally:
        await store.close()


def test_every_built_in_module_reloads_from_its_code_with_the_same_flows() -> None:
    modules = ModuleManager(discover(BUILTIN, []), ME)
    store: dict[str, Any] = {}
    modules.update(store.get)
    before = modules.current.compile_all(VIEW)
    for generation, name in enumerate(sorted(BUILT_IN), start=1):
        old = modules.current.catalog[name]
        store[MODULES_ALL] = {"modules": sorted(BUILT_IN), "reload": {name: generation}}
        assert modules.update(store.get), name
        assert modules.current.catalog[name] is not old  # its code ran again
        assert modules.errors() == {}
    assert modules.current.compile_all(VIEW) == before


# ------------------------------------------------------------------ settings

DROPPED = "02:00:00:00:00:99"


def test_settings_in_the_wanted_set_reach_the_module_and_a_change_hands_flows_over() -> None:
    store: dict[str, Any] = {MODULES_ALL: wanted("mac_drop")}
    modules = manager(store)
    assert modules.current.context("mac_drop").settings == MacDropSettings()
    store[MODULES_ALL] = {**wanted("mac_drop"), "settings": {"mac_drop": {"macs": [DROPPED]}}}
    assert modules.update(store.get)  # new flows: hand every owner over again
    assert modules.current.context("mac_drop").settings == MacDropSettings(macs=[DROPPED])
    assert any(DROPPED in str(f) for f in modules.current.base_flows)
    assert modules.status()["settings"] == {"mac_drop": {"macs": [DROPPED]}}
    store[MODULES_ALL] = {**wanted("mac_drop"), "settings": {"mac_drop": {"macs": [DROPPED]}}}
    assert not modules.update(store.get)  # the same settings: nothing to do


def test_refused_settings_keep_the_module_out_with_why_and_the_others_run() -> None:
    bad = {"mac_drop": {"macs": "not a list"}}
    store: dict[str, Any] = {MODULES_ALL: {**wanted("mac_drop", "l2_forward"), "settings": bad}}
    modules = manager(store)
    assert modules.current.loaded == BUILTIN.requires(["l2_forward"])
    assert modules.errors()["mac_drop"].startswith("settings refused: macs: ")
    # ingress takes no settings: it is kept out, and so is everything that needs it
    store[MODULES_ALL] = {**wanted("mac_drop", "l2_forward"), "settings": {"ingress": {"x": 1}}}
    assert modules.update(store.get)
    assert modules.current.loaded == frozenset()
    errors = modules.errors()
    assert errors["ingress"] == "settings refused: this module takes none"
    assert errors["l2_forward"] == "needs ingress, which failed"


def test_settings_accepted_later_bring_the_module_back() -> None:
    store: dict[str, Any] = {
        MODULES_ALL: {**wanted("mac_drop"), "settings": {"mac_drop": {"macs": 5}}}
    }
    modules = manager(store)
    assert "mac_drop" not in modules.current.loaded
    store[MODULES_ALL] = {**wanted("mac_drop"), "settings": {"mac_drop": {"macs": []}}}
    assert modules.update(store.get)
    assert "mac_drop" in modules.current.loaded
    assert "mac_drop" not in modules.errors()
