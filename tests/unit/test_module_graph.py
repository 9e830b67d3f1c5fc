"""The dependency graph shared by the catalog and the API: closure and dependents."""

from __future__ import annotations

import pytest

from vlcp.module_graph import DependencyCycle, UnknownModule, closure, dependents

GRAPH = {
    "ingress": (),
    "l2_forward": ("ingress",),
    "vxlan": ("l2_forward",),
    "vlan": ("l2_forward",),
    "arp_responder": ("ingress",),
    "router": ("arp_responder", "l2_forward"),
}


def test_closure_is_the_names_and_everything_they_need() -> None:
    assert closure(GRAPH, ["vxlan"]) == {"vxlan", "l2_forward", "ingress"}
    assert closure(GRAPH, ["router", "vlan"]) == {
        "router",
        "arp_responder",
        "l2_forward",
        "ingress",
        "vlan",
    }
    assert closure(GRAPH, []) == frozenset()


def test_closure_names_an_unknown_module_and_who_needs_it() -> None:
    with pytest.raises(UnknownModule, match="'nope'") as asked:
        closure(GRAPH, ["nope"])
    assert asked.value.name == "nope" and asked.value.needed_by is None
    with pytest.raises(UnknownModule, match=r"'gone' \(needed by b\)") as needed:
        closure({"a": ("b",), "b": ("gone",)}, ["a"])
    assert needed.value.needed_by == "b"


def test_closure_refuses_a_cycle_and_shows_it() -> None:
    graph = {"a": ("b",), "b": ("c",), "c": ("a",), "d": ("a",)}
    with pytest.raises(DependencyCycle, match="a -> b -> c -> a") as cycle:
        closure(graph, ["d"])
    assert cycle.value.cycle == ("a", "b", "c", "a")


def test_a_shared_dependency_is_not_a_cycle() -> None:
    diamond = {"top": ("left", "right"), "left": ("base",), "right": ("base",), "base": ()}
    assert closure(diamond, ["top"]) == set(diamond)


def test_dependents_are_those_that_need_a_name_directly_or_not() -> None:
    loaded = set(GRAPH)
    assert dependents(GRAPH, ["l2_forward"], loaded) == {"vxlan", "vlan", "router"}
    assert dependents(GRAPH, ["ingress"], loaded) == loaded - {"ingress"}
    assert dependents(GRAPH, ["vxlan"], loaded) == frozenset()
    # only among the given ones, and never the names themselves
    assert dependents(GRAPH, ["l2_forward", "vxlan"], {"vxlan", "l2_forward"}) == frozenset()
    assert dependents(GRAPH, ["ingress"], {"arp_responder", "vlan"}) == {"arp_responder", "vlan"}
