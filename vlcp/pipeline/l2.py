"""Module and table `l2_forward`: known MACs go where they are, the rest is flooded in
the network.

Every MAC of a network is known in advance (local ports from OVSDB, remote ports from
the store), so nothing is learned: a frame to a known MAC goes straight to its local
port, or through the tunnel to the server that has it (VXLAN), or tagged out of the
physical port (VLAN; untagged on a native network). Broadcast, multicast and unknown
destinations are flooded, and only inside the network:

- to every local port of the network (the switch never sends a frame back out of the
  port it came in on, so the sender is skipped);
- if the frame came from a local port, also to the underlay: one copy per peer server
  that has ports in the network (VXLAN), or out of the physical port (VLAN, native);
- if it came from the underlay, to local ports only (split horizon: the other servers
  got their own copy from the sender, and the physical segment already saw it).

This module delivers to local ports; the underlay belongs to each network type's driver
(`vxlan`, `physical`), which adds to this table the flows to its remote ports and the
flood from local ports (local ports and the underlay, one flow at `PRIO_FLOOD_FROM_LOCAL`,
above this module's local-only flood). A `local` network has no driver: it never leaves
the server. A frame from the underlay to a MAC that is also remote would be sent back
where it came from, which the switch suppresses: it is dropped rather than flooded.

An OpenFlow message stops at 64 KiB (about 4,000 outputs), so a flooding list longer than
`FLOOD_CHUNK` actions is cut into parts chained by resubmit: the first flow does the
first part, sets FLOOD_PART=1 and resubmits to this table, where a flow one priority
higher matching FLOOD_PART=1 does the next part, and so on. Actions run in order across
the resubmits, so the frame leaves exactly as with one long flow.
"""

from __future__ import annotations

from collections.abc import Mapping

from vlcp.layout import LOGNET, LPORT
from vlcp.southbound.openflow.flow import Action, Flow, output, resubmit

from .fields import FLOOD_PART, IN_KIND, NETWORK, InKind, RegField
from .module import Context, Module
from .tables import BoundTable, Table
from .view import View

PRIO_KNOWN = 100
PRIO_FLOOD_FROM_LOCAL = 10
PRIO_FLOOD = 5
FLOOD_CHUNK = 1000
"""Actions per flooding flow (16 bytes an output: a quarter of the 64 KiB message limit)."""
MAX_FLOOD_PARTS = 63
"""OVS follows at most 64 nested resubmits: up to 63,000 flooding actions per network."""

L2_FORWARD = Table(
    "l2_forward",
    after=("arp_responder",),
    matches={NETWORK, IN_KIND, FLOOD_PART, "eth_dst"},
    doc="known MACs to their port, tunnel peer or physical port; the rest flooded inside "
    "the network, with split horizon (long floods chained by FLOOD_PART).",
)


def port_flows(ctx: Context, view: View, port_id: str) -> frozenset[Flow]:
    """Frames to a local port's MAC, in its network, go out of its VIF."""
    port = view.ports.get(port_id)
    network = view.networks.get(port.network) if port else None
    if port is None or network is None:
        return frozenset()
    match = {NETWORK: network.number, "eth_dst": port.mac}
    return frozenset({ctx[L2_FORWARD.name].flow(PRIO_KNOWN, match, (output(port.ofport),))})


def local_outputs(view: View, network_id: str) -> tuple[Action, ...]:
    """A copy of a flooded frame to each local port of the network."""
    return tuple(output(p.ofport) for p in view.local_ports_of(network_id))


def network_flows(ctx: Context, view: View, network_id: str) -> frozenset[Flow]:
    """Flooding inside one network, to its local ports only (the drivers add the
    underlay for frames from local ports)."""
    network = view.networks.get(network_id)
    local = local_outputs(view, network_id)
    if network is None or not local:
        return frozenset()
    return frozenset(_flood(ctx[L2_FORWARD.name], PRIO_FLOOD, {NETWORK: network.number}, local))


def flood_from_local(
    ctx: Context, view: View, network_id: str, uplink: tuple[Action, ...]
) -> set[Flow]:
    """A driver's flood of frames from local ports: the local ports, then `uplink`."""
    network = view.networks[network_id]
    match = {NETWORK: network.number, IN_KIND: InKind.LOCAL}
    actions = local_outputs(view, network_id) + uplink
    return _flood(ctx[L2_FORWARD.name], PRIO_FLOOD_FROM_LOCAL, match, actions)


def _flood(
    table: BoundTable, priority: int, match: Mapping[RegField, int], actions: tuple[Action, ...]
) -> set[Flow]:
    """One flow doing `actions`, or a chain of them when there are too many (see above)."""
    if len(actions) <= FLOOD_CHUNK:
        return {table.flow(priority, match, actions)}
    parts = [actions[i : i + FLOOD_CHUNK] for i in range(0, len(actions), FLOOD_CHUNK)]
    if len(parts) > MAX_FLOOD_PARTS:
        raise ValueError(f"{len(actions)} flooding actions: at most {MAX_FLOOD_PARTS} parts")
    flows = set()
    for index, part in enumerate(parts):
        more = index + 1 < len(parts)
        chain = (FLOOD_PART.load(index + 1), resubmit(table.id)) if more else ()
        if index == 0:
            flows.add(table.flow(priority, match, part + chain))
        else:
            flows.add(table.flow(priority + 1, {**match, FLOOD_PART: index}, part + chain))
    return flows


MODULE = Module(
    "l2_forward",
    doc="Delivers frames to local ports by MAC and floods the rest to the network's local "
    "ports; the network type drivers add the underlay.",
    depends=("ingress",),
    tables=(L2_FORWARD,),
    port=port_flows,
    network=network_flows,
    watches=(LPORT, LOGNET),
)
