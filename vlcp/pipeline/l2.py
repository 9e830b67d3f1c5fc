"""Table `l2_forward`: known MACs go where they are, the rest is flooded in the network.

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

A `local` network never leaves the server. A frame from the underlay to a MAC that is
also remote would be sent back where it came from, which the switch suppresses: it is
dropped rather than flooded.

An OpenFlow message stops at 64 KiB (about 4,000 outputs), so a flooding list longer than
`FLOOD_CHUNK` actions is cut into parts chained by resubmit: the first flow does the
first part, sets FLOOD_PART=1 and resubmits to this table, where a flow one priority
higher matching FLOOD_PART=1 does the next part, and so on. Actions run in order across
the resubmits, so the frame leaves exactly as with one long flow.
"""

from __future__ import annotations

from collections.abc import Mapping

from vlcp.southbound.openflow.flow import Action, Flow, output, push_vlan, resubmit, set_field

from .fields import FLOOD_PART, IN_KIND, NETWORK, InKind, RegField
from .ingress import VLAN_PRESENT
from .tables import L2_FORWARD
from .view import Network, View

PRIO_KNOWN = 100
PRIO_FLOOD_FROM_LOCAL = 10
PRIO_FLOOD = 5
FLOOD_CHUNK = 1000
"""Actions per flooding flow (16 bytes an output: a quarter of the 64 KiB message limit)."""
MAX_FLOOD_PARTS = 63
"""OVS follows at most 64 nested resubmits: up to 63,000 flooding actions per network."""


def _to_vlan(network: Network, physical: int) -> tuple[Action, ...]:
    """Out of the physical port, tagged for a VLAN network, as is for a native one."""
    if network.type == "vlan":
        assert network.tag is not None
        return (push_vlan(), *set_field(vlan_vid=VLAN_PRESENT | network.tag), output(physical))
    return (output(physical),)


def port_flows(view: View, port_id: str) -> frozenset[Flow]:
    """Frames to a local port's MAC, in its network, go out of its VIF."""
    port = view.ports.get(port_id)
    network = view.networks.get(port.network) if port else None
    if port is None or network is None:
        return frozenset()
    match = {NETWORK: network.number, "eth_dst": port.mac}
    return frozenset({L2_FORWARD.flow(PRIO_KNOWN, match, (output(port.ofport),))})


def remote_actions(view: View, network: Network, vtep: str) -> tuple[Action, ...]:
    """How a frame reaches a port of `network` on the server `vtep` (empty: it cannot)."""
    if network.type == "vxlan":
        if not view.tunnel_usable(network) or view.tunnel_ofport is None:
            return ()
        tunnel = set_field(tun_ipv4_dst=vtep, tunnel_id=network.tag)
        return (*tunnel, output(view.tunnel_ofport))
    physical = view.physical_port(network)
    if physical is None:
        return ()
    return _to_vlan(network, physical)


def remote_flows(view: View, remote_id: str) -> frozenset[Flow]:
    """Frames to a remote port's MAC go to its server (or out on its VLAN)."""
    remote = view.remote(remote_id)
    network = view.networks.get(remote.network) if remote else None
    if remote is None or network is None:
        return frozenset()
    actions = remote_actions(view, network, remote.vtep)
    if not actions:
        return frozenset()
    match = {NETWORK: network.number, "eth_dst": remote.mac}
    return frozenset({L2_FORWARD.flow(PRIO_KNOWN, match, actions)})


def _uplink(view: View, network: Network) -> tuple[Action, ...]:
    """The underlay copies of a flooded frame: one per peer VTEP, or the physical port."""
    if network.type == "vxlan":
        if not view.tunnel_usable(network) or view.tunnel_ofport is None:
            return ()
        actions: list[Action] = []
        for vtep in view.peer_vteps(network.id):
            actions += (*set_field(tun_ipv4_dst=vtep), output(view.tunnel_ofport))
        return (*set_field(tunnel_id=network.tag), *actions) if actions else ()
    physical = view.physical_port(network)
    return () if physical is None else _to_vlan(network, physical)


def network_flows(view: View, network_id: str) -> frozenset[Flow]:
    """Flooding inside one network, with split horizon towards the underlay."""
    network = view.networks.get(network_id)
    if network is None:
        return frozenset()
    local = tuple(output(p.ofport) for p in view.local_ports_of(network_id))
    flows: set[Flow] = set()
    if local:
        flows |= _flood(PRIO_FLOOD, {NETWORK: network.number}, local)
    uplink = _uplink(view, network)
    if uplink:
        match = {NETWORK: network.number, IN_KIND: InKind.LOCAL}
        flows |= _flood(PRIO_FLOOD_FROM_LOCAL, match, local + uplink)
    return frozenset(flows)


def _flood(priority: int, match: Mapping[RegField, int], actions: tuple[Action, ...]) -> set[Flow]:
    """One flow doing `actions`, or a chain of them when there are too many (see above)."""
    if len(actions) <= FLOOD_CHUNK:
        return {L2_FORWARD.flow(priority, match, actions)}
    parts = [actions[i : i + FLOOD_CHUNK] for i in range(0, len(actions), FLOOD_CHUNK)]
    if len(parts) > MAX_FLOOD_PARTS:
        raise ValueError(f"{len(actions)} flooding actions: at most {MAX_FLOOD_PARTS} parts")
    flows = set()
    for index, part in enumerate(parts):
        more = index + 1 < len(parts)
        chain = (FLOOD_PART.load(index + 1), resubmit(L2_FORWARD.id)) if more else ()
        if index == 0:
            flows.add(L2_FORWARD.flow(priority, match, part + chain))
        else:
            flows.add(L2_FORWARD.flow(priority + 1, {**match, FLOOD_PART: index}, part + chain))
    return flows
