"""The changes that turn one view into another, so only the touched owners are recompiled.

The agent rebuilds its view from the store mirror and OVSDB after each burst of events;
comparing it with the previous one (value equality of frozen objects, no compiling) gives
the `Change`s that `vlcp.pipeline.changes.apply` turns into the few owners whose flows to
recompute. A single port change therefore costs its port and its network, not the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlcp.pipeline.changes import (
    Change,
    DropNetwork,
    DropPort,
    DropRemote,
    PutNetwork,
    PutPort,
    PutRemote,
    SetPhysicalPort,
    SetTunnel,
)
from vlcp.pipeline.view import View


def diff_views(old: View, new: View) -> list[Change]:
    """Changes from `old` to `new`: networks first in, ports, remotes, networks last out."""
    changes: list[Change] = [PutNetwork(n) for n in _put(old.networks, new.networks)]
    changes += [PutPort(p) for p in _put(old.ports, new.ports)]
    changes += [PutRemote(r) for r in _put(old.remotes, new.remotes)]
    changes += [DropPort(k) for k in old.ports.keys() - new.ports.keys()]
    changes += [DropRemote(k) for k in old.remotes.keys() - new.remotes.keys()]
    if old.tunnel_ofport != new.tunnel_ofport:
        changes.append(SetTunnel(new.tunnel_ofport))
    for physnet in old.physical_ports.keys() | new.physical_ports.keys():
        if old.physical_ports.get(physnet) != new.physical_ports.get(physnet):
            changes.append(SetPhysicalPort(physnet, new.physical_ports.get(physnet)))
    changes += [DropNetwork(k) for k in old.networks.keys() - new.networks.keys()]
    return changes


def _put(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Any]:
    return [value for key, value in new.items() if old.get(key) != value]
