"""`push_flows`: what the agent hands the reconciler, incrementally or all at once.

All at once is how a controller starts, and how it starts over after a round that failed
part-way (the changes that round consumed are lost): the desired state must then be
exactly the view's, even for owners that no change named.
"""

from __future__ import annotations

from typing import Any

from vlcp.agent.agent import push_flows
from vlcp.agent.binding import OvsPort
from vlcp.agent.view_builder import Identity, build_view
from vlcp.pipeline.builtin import DEFAULT
from vlcp.pipeline.compile import compile_all
from vlcp.pipeline.view import View
from vlcp.southbound.reconciler import Reconciler

ME = Identity("me", "br-int", "192.0.2.1")
STORE: dict[str, Any] = {
    "physnet/vl": {"type": "vlan"},
    "lognet/n0": {"physicalnetwork": "vl", "vlanid": 10},
    "lport/p0": {"logicalnetwork": "n0", "mac_address": "02:00:00:00:00:01"},
    "lport/p1": {"logicalnetwork": "n0", "mac_address": "02:00:00:00:00:02"},
}
PORTS = {
    "i0": OvsPort("i0", 1, "p0", None, bound_at=1.0),
    "i1": OvsPort("i1", 2, "p1", None, bound_at=1.0),
}


def desired_of(view: View) -> dict[int, Any]:
    return {flow.cookie: flow for owned in compile_all(view).values() for flow in owned}


def test_all_at_once_makes_the_desired_state_exactly_the_views() -> None:
    reconciler = Reconciler()
    both = build_view(STORE, PORTS, ME)
    push_flows(reconciler, both, None)
    assert reconciler.desired() == desired_of(both)
    assert ("port", "p1") in reconciler.owners()

    # p1 was deleted in a round that failed before handing anything over: starting over
    # names no owner, yet p1's flows go and nobody else's do
    only_p0 = build_view({k: v for k, v in STORE.items() if k != "lport/p1"}, PORTS, ME)
    push_flows(reconciler, only_p0, None)
    assert reconciler.desired() == desired_of(only_p0)
    assert ("port", "p1") not in reconciler.owners()
    assert ("port", "p0") in reconciler.owners()


def test_incrementally_only_the_touched_owners_change() -> None:
    reconciler = Reconciler()
    both = build_view(STORE, PORTS, ME)
    push_flows(reconciler, both, None)
    only_p0 = build_view({k: v for k, v in STORE.items() if k != "lport/p1"}, PORTS, ME)
    push_flows(reconciler, only_p0, [("port", "p0")])
    assert ("port", "p1") in reconciler.owners()  # not touched: kept
    push_flows(reconciler, only_p0, [("port", "p1"), ("network", "n0")])
    assert reconciler.desired() == desired_of(only_p0)


def test_a_module_change_hands_over_every_owner_and_removes_only_its_flows() -> None:
    reconciler = Reconciler()
    view = build_view(STORE, PORTS, ME)
    push_flows(reconciler, view, None)
    before = reconciler.desired()
    fewer = DEFAULT.unload("l2_forward", dependents=True)
    push_flows(reconciler, view, None, fewer)
    after = reconciler.desired()
    assert after == {f.cookie: f for owned in fewer.compile_all(view).values() for f in owned}
    assert after.keys() < before.keys()
    l2 = DEFAULT.pipeline["l2_forward"].id
    assert {f.table for cookie, f in before.items() if cookie not in after} == {l2}
    push_flows(reconciler, view, None, DEFAULT)
    assert reconciler.desired() == before
