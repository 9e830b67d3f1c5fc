"""Modules: declarations, dependencies, stable ids, pass-through tables, interposition,
settings, packet-in handlers and reloads, on the built-in catalog and the example."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import BaseModel

from vlcp.agent.mirror import VIEW_PREFIXES
from vlcp.layout import CHASSIS, ROUTER, SUBNET
from vlcp.pipeline import (
    BASE,
    BUILTIN,
    DEFAULT,
    Catalog,
    LocalPort,
    Module,
    ModuleError,
    ModuleFailed,
    ModuleSet,
    Network,
    PacketIn,
    Received,
    RemotePort,
    Table,
    View,
    compile_all,
)
from vlcp.southbound.openflow.flow import Flow

from .example_modules import CATALOG, COUNTED, MAC_DROP, MAC_DROP_V2, MacDropSettings
from .scenario import VIEW

ALL = frozenset(m.name for m in BUILTIN)
DRIVERS = {"vxlan", "vlan", "native"}


def flows_of(modules: ModuleSet, view: View = VIEW) -> frozenset[Flow]:
    return frozenset().union(*modules.compile_all(view).values())


def by_table(flows: frozenset[Flow], table: int) -> frozenset[Flow]:
    return frozenset(f for f in flows if f.table == table)


# ------------------------------------------------------------------ the built-in set


def test_the_builtin_modules_compile_what_the_pipeline_always_did() -> None:
    assert (
        DEFAULT.loaded
        == ALL
        == {"ingress", "port_security", "arp_responder", "l2_forward", "dhcp", "gateway", "l3"}
        | {"icmp_errors", "static_routes", "nexthops", "external"}
        | (DRIVERS)
    )
    assert [(t.id, t.name) for t in DEFAULT.pipeline][-5:] == [
        (5, "dhcp"),
        (6, "gateway"),
        (7, "l3"),
        (8, "icmp_errors"),
        (9, "neighbours"),
    ]
    assert DEFAULT.compile_all(VIEW) == compile_all(VIEW)


def test_the_builtin_modules_watch_what_the_view_is_built_from() -> None:
    # dhcp: subnets; l3: routers; external: the live servers (who forwards)
    assert DEFAULT.watches() == {*VIEW_PREFIXES, SUBNET, ROUTER, CHASSIS} == BUILTIN.watches()
    assert ModuleSet(BUILTIN, ["port_security"]).watches() < DEFAULT.watches()


# ------------------------------------------------------------------ dependencies


def test_loading_pulls_in_what_a_module_needs() -> None:
    assert ModuleSet(BUILTIN, ["vxlan"]).loaded == {"vxlan", "l2_forward", "ingress"}
    some = ModuleSet(BUILTIN, ["ingress"]).load("arp_responder", "vlan")
    assert some.loaded == {"ingress", "arp_responder", "vlan", "l2_forward"}


def test_unloading_what_others_need_is_refused_naming_them() -> None:
    with pytest.raises(
        ModuleError, match="l2_forward: needed by l3, native, static_routes, vlan, vxlan"
    ):
        DEFAULT.unload("l2_forward")
    needed = (
        "needed by arp_responder, dhcp, external, gateway, icmp_errors, l2_forward, l3, "
        "native, nexthops"
    )
    with pytest.raises(ModuleError, match=needed):
        DEFAULT.unload("ingress")


def test_unloading_with_dependents_takes_them_too() -> None:
    assert DEFAULT.unload("l2_forward", dependents=True).loaded == ALL - DRIVERS - {
        "l2_forward",
        "l3",
        "static_routes",
    }
    nothing = DEFAULT.unload("ingress", dependents=True)
    assert nothing.loaded == frozenset()
    assert flows_of(nothing) == DEFAULT.pipeline.miss_flows()


def test_unloading_a_module_nobody_needs_or_that_is_not_loaded() -> None:
    fewer = DEFAULT.unload("vxlan")
    assert fewer.loaded == ALL - {"vxlan"}
    assert fewer.unload("vxlan").loaded == fewer.loaded


@pytest.mark.parametrize(
    "action",
    [
        lambda: DEFAULT.load("nope"),
        lambda: DEFAULT.unload("nope"),
        lambda: ModuleSet(BUILTIN, ["nope"]),
        lambda: BUILTIN["nope"],
        lambda: DEFAULT.context("nope"),
    ],
)
def test_unknown_modules_are_named(action) -> None:
    with pytest.raises(ModuleError, match="nope"):
        action()


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ([Module("a"), Module("a")], "a declared twice"),
        ([Module("a", depends=("b",))], r"unknown module\(s\) \['b'\]"),
        (
            [Module("a", depends=("b",)), Module("b", depends=("c",)), Module("c", depends=("a",))],
            "depend on each other: a -> b -> c -> a",
        ),
        ([Module("a", tables=(Table("t"),)), Module("b", tables=(Table("t"),))], "by a and b"),
    ],
)
def test_bad_catalogs_are_refused(modules: list[Module], message: str) -> None:
    with pytest.raises(ModuleError, match=message):
        Catalog(modules)


def handler(ctx, view, packet):  # type: ignore[no-untyped-def]
    return ()


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda: Module("Bad-Name"), "lower case"),
        (lambda: Module("a", depends=("a",)), "depends on itself"),
        (lambda: Module("a", watches=("elsewhere/",)), "outside vlcp.layout"),
        (lambda: Module("a", packet_ins=(PacketIn("t", handler),)), "not its own"),
        (
            lambda: Module("a", tables=(Table("t"),), packet_ins=[PacketIn("t", handler)] * 2),
            "two packet-in handlers",
        ),
        (lambda: PacketIn("t", handler, rate=0), "rate 0"),
    ],
)
def test_bad_module_declarations_are_refused(declare, message: str) -> None:
    with pytest.raises(ModuleError, match=message):
        declare()


# ------------------------------------------------------------------ stable ids, pass-through


def test_table_ids_are_the_catalogs_whatever_is_loaded() -> None:
    layout = [(t.id, t.name) for t in CATALOG.pipeline]
    assert layout == [
        (0, "ingress"),
        (1, "mac_drop"),
        (2, "port_security"),
        (3, "nd_guard"),
        (4, "arp_responder"),
        (5, "l2_forward"),
        (6, "dhcp"),
        (7, "gateway"),
        (8, "l3"),
        (9, "icmp_errors"),
        (10, "neighbours"),
    ]
    for loaded in ([], ["ingress"], ["arp_responder"], ["mac_drop", "vxlan"]):
        assert [(t.id, t.name) for t in ModuleSet(CATALOG, loaded).pipeline] == layout


def test_an_unloaded_modules_table_passes_everything_through() -> None:
    without = DEFAULT.unload("arp_responder")
    arp = DEFAULT.pipeline["arp_responder"]
    flows = flows_of(without)
    assert by_table(flows, arp.id) == {arp.miss_flow()}
    assert arp.miss_flow() in without.compile_owner(VIEW, BASE)  # the pipeline's, not arp's
    assert arp.miss_flow().goto == DEFAULT.pipeline["l2_forward"].id
    # everything else is as it was, to the cookie
    assert flows == flows_of(DEFAULT) - by_table(flows_of(DEFAULT), arp.id) | {arp.miss_flow()}


def test_unloading_a_driver_removes_its_underlay_flows_only() -> None:
    without = flows_of(DEFAULT.unload("vxlan"))
    gone = flows_of(DEFAULT) - without
    assert without < flows_of(DEFAULT)
    tunnel = VIEW.tunnel_ofport
    assert gone and all(
        dict(f.match).get("in_port") == tunnel or any(a.arg("port") == tunnel for a in f.actions)
        for f in gone
    )


# ------------------------------------------------------------------ interposition


def test_an_interposed_table_is_on_the_path_of_vifs_loaded_or_not() -> None:
    view = View(
        networks={"n": Network("n", "vxlan", 1, 5)},
        ports={"p": LocalPort("p", "n", 1, "02:00:00:00:00:01", "10.0.0.1")},
        remotes={"r": RemotePort("r", "n", "02:00:00:00:00:02", "192.0.2.2")},
        tunnel_ofport=100,
    )
    ids = {t.name: t.id for t in CATALOG.pipeline}
    loaded = ModuleSet.all(CATALOG)
    unloaded = loaded.unload("mac_drop")
    for modules in (loaded, unloaded):
        ingress = by_table(flows_of(modules, view), ids["ingress"])
        vif = {f.goto for f in ingress if dict(f.match).get("in_port") == 1}
        tunnel = {f.goto for f in ingress if dict(f.match).get("in_port") == 100}
        assert (vif, tunnel) == ({ids["mac_drop"]}, {ids["arp_responder"]})
    miss = CATALOG.pipeline["mac_drop"].miss_flow()
    assert by_table(flows_of(unloaded, view), ids["mac_drop"]) == {miss}
    assert miss.goto == ids["port_security"]
    assert flows_of(unloaded, view) == flows_of(loaded, view) - (
        by_table(flows_of(loaded, view), ids["mac_drop"]) - {miss}
    )


# ------------------------------------------------------------------ settings


def drops(modules: ModuleSet) -> set[str]:
    table = CATALOG.pipeline["mac_drop"].id
    return {
        str(dict(f.match)["eth_src"])
        for f in modules.compile_owner(VIEW, BASE)
        if f.table == table and f.priority == 100
    }


def test_settings_default_to_the_models_defaults_and_can_be_given() -> None:
    assert drops(ModuleSet(CATALOG, ["mac_drop"])) == {"02:00:00:00:00:03"}
    given = {"mac_drop": MacDropSettings(macs=("02:00:00:00:00:09", "02:00:00:00:00:0a"))}
    modules = ModuleSet(CATALOG, ["mac_drop"], given)
    assert drops(modules) == {"02:00:00:00:00:09", "02:00:00:00:00:0a"}
    assert drops(modules.unload("mac_drop").load("mac_drop")) == drops(modules)
    assert modules.context("mac_drop").settings == given["mac_drop"]


class Required(BaseModel):
    limit: int


class Other(BaseModel):
    pass


@pytest.mark.parametrize(
    ("modules", "settings", "message"),
    [
        ([MAC_DROP], {"mac_drop": Other()}, "must be MacDropSettings"),
        ([Module("a")], {"a": Other()}, "takes no settings"),
        ([Module("a", settings=Required)], {}, "needs settings"),
    ],
)
def test_bad_settings_are_refused(modules, settings, message: str) -> None:
    catalog = Catalog([*BUILTIN, *modules])
    with pytest.raises(ModuleError, match=message):
        ModuleSet(catalog, [m.name for m in modules], settings)


# ------------------------------------------------------------------ packet-in


def test_a_packet_in_finds_the_handler_of_its_table_while_its_module_is_loaded() -> None:
    table = CATALOG.pipeline["mac_drop"].id
    found = ModuleSet.all(CATALOG).packet_in(table)
    assert found is not None
    ctx, packet_in = found
    COUNTED.clear()
    assert packet_in.handler(ctx, VIEW, Received(7, 1, b"\x00" * 60)) == ()
    assert COUNTED == {7: 1}
    limiter = packet_in.limiter()
    assert [limiter.allow(7, 0.0) for _ in range(3)] == [True, True, False]
    assert ModuleSet.all(CATALOG).unload("mac_drop").packet_in(table) is None
    assert ModuleSet.all(CATALOG).packet_in(CATALOG.pipeline["ingress"].id) is None
    assert ModuleSet.all(CATALOG).packet_in(200) is None


# ------------------------------------------------------------------ reload


def test_a_reload_replaces_the_modules_flows_and_nothing_else() -> None:
    before = ModuleSet.all(CATALOG)
    after = before.reload(MAC_DROP_V2)
    table = CATALOG.pipeline["mac_drop"].id
    old, new = flows_of(before), flows_of(after)
    assert old - new and new - old
    assert {f.table for f in old ^ new} == {table}
    assert [(t.id, t.name) for t in after.pipeline] == [(t.id, t.name) for t in before.pipeline]
    assert flows_of(after.reload(MAC_DROP)) == old


def test_a_reload_keeps_the_loaded_state_and_pulls_in_new_needs() -> None:
    unloaded = ModuleSet.all(CATALOG).unload("mac_drop")
    assert "mac_drop" not in unloaded.reload(MAC_DROP_V2).loaded
    needy = dataclasses.replace(MAC_DROP, depends=("ingress", "arp_responder"))
    assert "arp_responder" in ModuleSet(CATALOG, ["mac_drop"]).reload(needy).loaded


def test_a_reload_cannot_move_tables() -> None:
    moved = Table("mac_drop", after=("port_security",), miss="arp_responder")
    with pytest.raises(ModuleError, match="cannot move or rename its tables"):
        ModuleSet.all(CATALOG).reload(dataclasses.replace(MAC_DROP, tables=(moved,)))


# ------------------------------------------------------------------ failures


def test_a_module_whose_code_raises_is_named() -> None:
    def boom(*args: object) -> frozenset[Flow]:
        raise KeyError("oops")

    catalog = Catalog([*BUILTIN, Module("buggy", port=boom), Module("worse", base=boom)])
    with pytest.raises(ModuleFailed, match="module worse raised: KeyError") as failed:
        ModuleSet(catalog, ["worse"])
    assert failed.value.name == "worse" and isinstance(failed.value.cause, KeyError)
    modules = ModuleSet(catalog, [*ALL, "buggy"])
    assert modules.compile_owner(VIEW, ("network", "tenant-a"))  # no port: not called
    with pytest.raises(ModuleFailed) as failed:
        modules.compile_owner(VIEW, ("port", "a1"))
    assert failed.value.name == "buggy"
