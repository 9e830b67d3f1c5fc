"""The module invariant as the agent keeps it, for random sequences (hypothesis).

Random views, then random steps: model changes (ports, remotes and networks come, go and
change), and changes of the wanted set in the store (a module loaded, unloaded with what
needs it, reloaded with other code on disk, the set moved between `modules-all` and the
server's own key). Each step goes through what the agent uses: `ModuleManager.update`
and `push_isolated` into a `Reconciler` (a module change hands every owner over, a model
change only the owners `apply` names). After every step the reconciler's desired flows
equal what a fresh `ModuleSet` with the same modules and code computes from scratch.

One version of `mac_drop` raises for ports on ofport 3: when such a port and that code
meet, the module goes (with nothing that needs it left behind) and the rest stays exact.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.pipeline.example_modules import CATALOG, MAC_DROP, MAC_DROP_V2, port_flows
from tests.unit.pipeline.strategies import ports, tweaks, views
from vlcp.agent.agent import push_isolated
from vlcp.agent.modules import Discovery, ModuleManager, Source
from vlcp.layout import MODULES_ALL, modules_key
from vlcp.pipeline import BUILTIN, Catalog, Context, Module, ModuleSet, PutPort, View, apply
from vlcp.southbound.openflow.flow import Flow
from vlcp.southbound.reconciler import Reconciler

from .fake_code import Disk

ME = "hv1"
NAMES = [m.name for m in CATALOG]


def buggy_port(ctx: Context, view: View, port_id: str) -> frozenset[Flow]:
    port = view.ports.get(port_id)
    if port is not None and port.ofport == 3:
        raise RuntimeError("a bug that only some ports reach")
    return port_flows(ctx, view, port_id)


MAC_DROP_BUGGY = dataclasses.replace(MAC_DROP, port=buggy_port)
VERSIONS: dict[str, list[Module]] = {m.name: [m] for m in CATALOG}
"""What a reload may find on disk: the same code, or for mac_drop other versions too."""
VERSIONS["mac_drop"] = [MAC_DROP, MAC_DROP_V2, MAC_DROP_BUGGY]

steps = st.one_of(
    st.tuples(st.just("model"), st.none()),
    st.tuples(st.just("model"), st.none()),
    st.tuples(st.just("model"), ports.map(lambda p: PutPort(dataclasses.replace(p, ofport=3)))),
    st.tuples(st.just("load"), st.sampled_from(NAMES) | st.just("mac_drop")),
    st.tuples(st.just("unload"), st.sampled_from(NAMES)),
    st.tuples(st.just("reload"), st.sampled_from(NAMES) | st.just("mac_drop")),
    st.tuples(st.just("own key"), st.booleans()),
)
"""Model changes, ports on ofport 3 and mac_drop (whose code changes) are favoured."""


def cookies(compiled: dict[Any, frozenset[Flow]]) -> dict[int, Flow]:
    return {flow.cookie: flow for owned in compiled.values() for flow in owned}


@settings(max_examples=400, deadline=None)
@given(
    views,
    st.sets(st.sampled_from(NAMES)),
    st.sampled_from(VERSIONS["mac_drop"]),
    st.lists(steps, min_size=1, max_size=12),
    st.data(),
)
def test_flows_kept_by_the_agent_equal_a_fresh_module_sets(
    view: View,
    names: set[str],
    installed: Module,
    script: list[tuple[str, Any]],
    data: st.DataObject,
) -> None:
    catalog = CATALOG.replace(installed)
    code = {m.name: m for m in catalog}
    """The code each module runs: what its last reload found on disk."""
    disks = {m.name: Disk(m, m.name, "MODULE") for m in catalog}
    sources: dict[str, Source | None] = dict(disks)
    manager = ModuleManager(Discovery(catalog, sources, frozenset(m.name for m in BUILTIN)), ME)
    generations = dict.fromkeys(NAMES, 0)
    store: dict[str, Any] = {MODULES_ALL: {"modules": sorted(names), "reload": {}}}
    own = False
    manager.update(store.get)
    reconciler = Reconciler()
    push_isolated(reconciler, view, None, manager)

    for kind, arg in script:
        if kind == "model":
            change = arg or data.draw(tweaks(view), label="model change")
            view, touched = apply(view, change)
            push_isolated(reconciler, view, touched, manager)
        else:
            if kind == "load":
                names.add(arg)
            elif kind == "unload":  # with what needs it
                names = {n for n in names if arg not in CATALOG.requires([n])}
            elif kind == "reload":
                version = data.draw(st.sampled_from(VERSIONS[arg]), label="code on disk")
                disks[arg].change(version)
                code[arg] = version
                generations[arg] += 1
            else:
                own = arg
            document = {"modules": sorted(names), "reload": dict(generations)}
            store.pop(modules_key(ME), None)
            store[modules_key(ME) if own else MODULES_ALL] = document
            if manager.update(store.get):
                push_isolated(reconciler, view, None, manager)

        loaded = manager.current.loaded
        wanted = CATALOG.requires(names)
        assert loaded == wanted or ("mac_drop" in manager.errors() and loaded < wanted)
        fresh = ModuleSet(Catalog(code[n] for n in NAMES), loaded)
        assert reconciler.desired() == cookies(fresh.compile_all(view))
        bug_met = code["mac_drop"] is MAC_DROP_BUGGY and any(
            p.ofport == 3 for p in view.ports.values()
        )
        assert not ("mac_drop" in loaded and bug_met)
