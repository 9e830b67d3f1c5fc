"""The pipeline as functions of the view, one per owner of flows, for the default modules.

Flows are grouped by the object they exist for, so that a change recomputes only the
groups it touches (`changes.apply` says which) and the reconciler replaces exactly those
(`Reconciler.set_flows(owner, flows)`):

- ("base",): flows that hold whatever the view (table misses, drops);
- ("port", id): a local port's ingress, its source checks, its MAC and its ARP answer;
- ("remote", id): a remote port's MAC and its ARP answer;
- ("network", id): the network's underlay ingress and its flooding (which lists the
  network's local ports and peer servers, so it changes with them).

Each owner's flows are the union of what every loaded module's function of that kind
gives (`catalog.ModuleSet`); these functions are that union for `builtin.DEFAULT`, every
built-in module loaded. Each module function reads only its object and what it names
(its network, the tunnel or physical port, and for a network its members), which is
what makes `changes.apply` exact. `compile_all` is the recompute from scratch that
incremental updates must equal.
"""

from __future__ import annotations

from vlcp.southbound.openflow.flow import Flow

from .builtin import DEFAULT
from .view import Owner, View


def compile_owner(view: View, owner: Owner) -> frozenset[Flow]:
    """The flows of any owner; an empty set means the owner has none (remove it)."""
    return DEFAULT.compile_owner(view, owner)


def owners(view: View) -> list[Owner]:
    """Every owner that may have flows in this view."""
    return DEFAULT.owners(view)


def compile_all(view: View) -> dict[Owner, frozenset[Flow]]:
    """Every owner's flows, from scratch; owners without flows are left out."""
    return DEFAULT.compile_all(view)
