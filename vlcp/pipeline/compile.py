"""The pipeline as functions of the view, one per owner of flows.

Flows are grouped by the object they exist for, so that a change recomputes only the
groups it touches (`changes.apply` says which) and the reconciler replaces exactly those
(`Reconciler.set_flows(owner, flows)`):

- ("base",): flows that hold whatever the view (drops, table misses);
- ("port", id): a local port's ingress, its source checks, its MAC and its ARP answer;
- ("remote", id): a remote port's MAC and its ARP answer;
- ("network", id): the network's underlay ingress and its flooding (which lists the
  network's local ports and peer servers, so it changes with them).

Each function reads only its object and what it names (its network, the tunnel or
physical port, and for a network its members), which is what makes `changes.apply`
exact. `compile_all` is the recompute from scratch that incremental updates must equal.
"""

from __future__ import annotations

from collections.abc import Callable

from vlcp.southbound.openflow.flow import Flow

from . import arp, ingress, l2, port_security
from .tables import PIPELINE
from .view import BASE, Owner, View


def compile_base() -> frozenset[Flow]:
    """Flows that do not depend on the view."""
    return PIPELINE.miss_flows() | ingress.base_flows() | port_security.base_flows()


def compile_port(view: View, port_id: str) -> frozenset[Flow]:
    """The flows of a local port (empty if it, or its network, is not in the view)."""
    return (
        ingress.port_flows(view, port_id)
        | port_security.port_flows(view, port_id)
        | arp.port_flows(view, port_id)
        | l2.port_flows(view, port_id)
    )


def compile_network(view: View, network_id: str) -> frozenset[Flow]:
    """The flows of a network: underlay ingress and flooding."""
    return ingress.network_flows(view, network_id) | l2.network_flows(view, network_id)


def compile_remote(view: View, remote_id: str) -> frozenset[Flow]:
    """The flows of a remote port (none while a local port of the same id shadows it)."""
    return arp.remote_flows(view, remote_id) | l2.remote_flows(view, remote_id)


_BY_KIND: dict[str, Callable[[View, str], frozenset[Flow]]] = {
    "port": compile_port,
    "network": compile_network,
    "remote": compile_remote,
}


def compile_owner(view: View, owner: Owner) -> frozenset[Flow]:
    """The flows of any owner; an empty set means the owner has none (remove it)."""
    if owner == BASE:
        return compile_base()
    kind, key = owner
    return _BY_KIND[kind](view, key)


def owners(view: View) -> list[Owner]:
    """Every owner that may have flows in this view."""
    return [
        BASE,
        *(("network", n) for n in view.networks),
        *(("port", p) for p in view.ports),
        *(("remote", r) for r in view.remotes),
    ]


def compile_all(view: View) -> dict[Owner, frozenset[Flow]]:
    """Every owner's flows, from scratch; owners without flows are left out."""
    result = {}
    for owner in owners(view):
        flows = compile_owner(view, owner)
        if flows:
            result[owner] = flows
    return result
