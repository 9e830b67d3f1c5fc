"""A controller's subscription follows what its known modules watch, not a fixed list."""

from __future__ import annotations

import dataclasses

from vlcp.agent.agent import Agent, AgentConfig
from vlcp.agent.mirror import VIEW_PREFIXES
from vlcp.agent.modules import discover
from vlcp.layout import CHASSIS, ROUTER, SUBNET
from vlcp.pipeline import BUILTIN, Catalog, Module
from vlcp.store import Store

NO_STORE: Store = None  # type: ignore[assignment]  # the agent is built, never run


def test_the_mirror_follows_the_view_and_what_known_modules_watch() -> None:
    builtin = discover(found=[])
    plain = Agent(NO_STORE, AgentConfig(), builtin)
    # dhcp, gateway and the routing modules read subnets; the routing modules routers;
    # external the live servers (who forwards for external networks)
    assert set(plain.mirror.prefixes) == {*VIEW_PREFIXES, SUBNET, ROUTER, CHASSIS}
    routing = ("l3", "icmp_errors", "static_routes", "nexthops", "external")
    without_dhcp = Catalog(m for m in BUILTIN if m.name not in ("dhcp", "gateway", *routing))
    lean = Agent(NO_STORE, AgentConfig(), dataclasses.replace(builtin, catalog=without_dhcp))
    assert set(lean.mirror.prefixes) == set(VIEW_PREFIXES)
    watcher = Module("subnet_watcher", depends=("ingress",), watches=(SUBNET,))
    known = dataclasses.replace(builtin, catalog=Catalog([*without_dhcp, watcher]))
    agent = Agent(NO_STORE, AgentConfig(), known)
    assert SUBNET in agent.mirror.prefixes  # known, even before it is loaded
