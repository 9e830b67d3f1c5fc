"""The module invariant, for random views and random sequences of steps.

Flows kept up to date as the agent keeps them (a view change recompiles the owners
`apply` names; a load, unload or reload recompiles every owner) equal what a fresh
module set with the same modules computes from the final view. And unloading a module
removes exactly the flows its functions produced: no other flow changes, not even its
cookie, and its tables keep their misses (they pass through).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vlcp.pipeline import Catalog, Module, ModuleSet, Owner, View, apply
from vlcp.southbound.openflow.flow import Flow

from .example_modules import CATALOG, MAC_DROP, MAC_DROP_V2
from .strategies import tweaks, views

NAMES = [m.name for m in CATALOG]
VERSIONS: dict[str, list[Module]] = {m.name: [m] for m in CATALOG}
"""What a reload may find on disk: the same code, or for mac_drop a new version too."""
VERSIONS["mac_drop"] = [MAC_DROP, MAC_DROP_V2]

module_steps = st.one_of(
    st.tuples(st.just("load"), st.sampled_from(NAMES), st.just(0)),
    st.tuples(st.just("unload"), st.sampled_from(NAMES), st.just(0)),
    st.tuples(st.just("reload"), st.sampled_from(NAMES) | st.just("mac_drop"), st.integers(0, 1)),
)
"""Reloads favour mac_drop, the one module whose code changes between versions."""
loaded_sets = st.sets(st.sampled_from(NAMES)) | st.just(set(NAMES))


def step(modules: ModuleSet, kind: str, module: Module) -> ModuleSet:
    if kind == "load":
        return modules.load(module.name)
    if kind == "unload":
        return modules.unload(module.name, dependents=True)
    return modules.reload(module)


def everything(compiled: dict[Owner, frozenset[Flow]]) -> frozenset[Flow]:
    return frozenset().union(*compiled.values())


def produced(modules: ModuleSet, view: View, name: str) -> frozenset[Flow]:
    """Every flow module `name`'s own functions give in this view."""
    module, ctx = modules.catalog[name], modules.context(name)
    flows = set(module.base(ctx)) if module.base else set()
    for kind, key in modules.owners(view)[1:]:
        function = module.owner_flows(kind)
        if function is not None:
            flows |= function(ctx, view, key)
    return frozenset(flows)


@settings(max_examples=300, deadline=None)
@given(views, loaded_sets, st.integers(1, 10), st.data())
def test_incremental_flows_equal_a_fresh_module_set(
    view: View, loaded: set[str], steps: int, data: st.DataObject
) -> None:
    modules = ModuleSet(CATALOG, loaded)
    code = {m.name: m for m in CATALOG}
    """The version of each module's code in use, kept here to check the reloads."""
    installed = modules.compile_all(view)
    for _ in range(steps):
        if data.draw(st.booleans(), label="a view change"):
            view, touched = apply(view, data.draw(tweaks(view)))
        else:
            kind, name, version = data.draw(module_steps)
            if kind == "reload":
                code[name] = VERSIONS[name][version % len(VERSIONS[name])]
            modules = step(modules, kind, code[name])
            touched = frozenset(modules.owners(view)) | installed.keys()
        for owner in touched:
            flows = modules.compile_owner(view, owner)
            if flows:
                installed[owner] = flows
            else:
                installed.pop(owner, None)
        assert all(set(m.depends) <= modules.loaded for m in modules.modules())
        fresh = ModuleSet(Catalog(code[n] for n in NAMES), modules.loaded)
        assert installed == fresh.compile_all(view)


@settings(max_examples=300, deadline=None)
@given(views, loaded_sets, st.sampled_from(NAMES))
def test_unloading_removes_exactly_the_modules_flows(
    view: View, loaded: set[str], name: str
) -> None:
    before = ModuleSet(CATALOG, {*loaded, name})
    after = before.unload(name, dependents=True)
    gone = before.loaded - after.loaded
    assert name in gone
    theirs = frozenset().union(*(produced(before, view, m) for m in gone))
    old, new = everything(before.compile_all(view)), everything(after.compile_all(view))
    assert new == old - theirs
    assert old == new | theirs
    assert before.pipeline.miss_flows() <= new  # the unloaded tables pass through
    for module in gone:
        own = {before.pipeline[t.name].id for t in CATALOG[module].tables}
        if own:  # a module with tables keeps to them (drivers add to ingress and l2,
            # dhcp to port_security, where it takes its ports' requests and guards,
            # gateway to arp_responder, where it takes what is for a gateway, l3 to
            # gateway, where it takes what is for a router interface, icmp_errors to l3,
            # where it takes what the router cannot forward, nexthops to ingress, where it
            # takes the next hops' ARP replies, and to l3)
            entrances = {
                "dhcp": ["port_security"],
                "gateway": ["arp_responder"],
                "l3": ["gateway"],
                "icmp_errors": ["l3"],
                "nexthops": ["ingress", "l3"],
            }.get(module, [])
            extra = {before.pipeline[entrance].id for entrance in entrances}
            assert {f.table for f in produced(before, view, module)} <= own | extra
