"""A tiny OpenFlow switch for tests: trace one packet through a set of flows.

Only what the pipeline uses: exact and masked matches, apply-actions, goto, and the
actions output, controller, set_field, push_vlan, pop_vlan, nx_reg_load, nx_reg_move,
nx_resubmit, nx_dec_ttl.
It follows the switch where the pipeline relies on it:

- a table miss drops (the pipeline installs explicit misses anyway);
- output to the port the packet came in on is suppressed (OpenFlow and OVS send there only
  through the IN_PORT pseudo-port), which is how the sender is left out of a flood;
- registers start at 0; an absent vlan_vid is 0 (untagged);
- `nx_dec_ttl` decrements `nw_ttl` (64 when the packet does not say); at 0 or 1 it stops
  the flow's actions there (and its goto), as OVS does, sending to no controller.

Two flows of equal top priority that both match with different effects are an error
here (the switch would pick one arbitrarily), so overlapping flows fail the test.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vlcp.southbound.openflow.flow import Action, Flow

Packet = dict[str, Any]


class Ambiguous(AssertionError):
    """Two flows of the same priority match one packet and disagree."""


CONTROLLER = -1
"""The `Output.port` of a packet sent to the controller (a packet-in)."""


@dataclass(frozen=True)
class Output:
    port: int
    packet: Mapping[str, Any]
    """The packet's fields (registers included) when it was sent."""

    def __getitem__(self, name: str) -> Any:
        return self.packet.get(name)


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if ":" in value and len(value) == 17:
        return int(value.replace(":", ""), 16)
    return int(ipaddress.ip_address(value))


def _default(name: str) -> Any:
    return 0 if name.startswith("reg") or name == "vlan_vid" else None


def matches(flow: Flow, packet: Packet) -> bool:
    for name, want in flow.match:
        have = packet.get(name, _default(name))
        if have is None:
            return False
        value, mask = want if isinstance(want, tuple) else (want, None)
        if mask is None:
            if _int(have) != _int(value):
                return False
        elif _int(have) & _int(mask) != _int(value) & _int(mask):
            return False
    return True


def lookup(flows: Iterable[Flow], table: int, packet: Packet) -> Flow | None:
    """The flow that handles a packet in a table (None: a miss)."""
    hits = [f for f in flows if f.table == table and matches(f, packet)]
    if not hits:
        return None
    top = max(f.priority for f in hits)
    best = {(f.actions, f.goto): f for f in hits if f.priority == top}
    if len(best) > 1:
        raise Ambiguous(f"table {table} priority {top}: {list(best.values())}")
    return next(iter(best.values()))


def _apply(
    action: Action, packet: Packet, out: list[Output], flows: list[Flow], depth: int
) -> bool:
    """Do one action; True when the rest of the flow must not run (TTL expired)."""
    a = action.arg
    match action.kind:
        case "nx_dec_ttl":
            if a("controllers"):
                raise NotImplementedError("dec_ttl to controllers")
            ttl = packet.get("nw_ttl", 64)
            if ttl <= 1:
                return True
            packet["nw_ttl"] = ttl - 1
        case "nx_resubmit":
            if a("in_port") is not None:
                raise NotImplementedError("resubmit with another in_port")
            _run(flows, a("table"), packet, out, depth + 1)
        case "output":
            port = a("port")
            if port == "in_port":
                port = packet["in_port"]
            elif port == packet["in_port"]:
                return
            out.append(Output(port, dict(packet)))
        case "controller":
            out.append(Output(CONTROLLER, {**packet, "meter": a("meter_id")}))
        case "set_field":
            packet[a("field")] = a("value")
        case "push_vlan":
            packet["vlan_vid"] = 0x1000
        case "pop_vlan":
            packet["vlan_vid"] = 0
        case "nx_reg_load":
            field, ofs, n_bits = a("field"), a("ofs", 0), a("n_bits")
            mask = ((1 << n_bits) - 1) << ofs
            packet[field] = (packet.get(field, 0) & ~mask) | ((a("value") << ofs) & mask)
        case "nx_reg_move":
            if a("n_bits") or a("src_ofs") or a("dst_ofs"):
                raise NotImplementedError("partial moves")
            packet[a("dst")] = packet[a("src")]
        case _:
            raise NotImplementedError(f"action {action.kind}")
    return False


def trace(flows: Iterable[Flow], in_port: int, packet: Mapping[str, Any]) -> list[Output]:
    """Every copy of `packet` that leaves the switch, in order."""
    pkt: Packet = {**packet, "in_port": in_port}
    out: list[Output] = []
    _run(list(flows), 0, pkt, out, 0)
    return out


MAX_DEPTH = 64
"""OVS gives up past 64 nested resubmits (the frame is dropped): so does the simulator."""


def _run(flows: list[Flow], table: int | None, pkt: Packet, out: list[Output], depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise RecursionError(f"more than {MAX_DEPTH} nested resubmits")
    while table is not None:
        flow = lookup(flows, table, pkt)
        if flow is None:
            break
        if any(_apply(action, pkt, out, flows, depth) for action in flow.actions):
            break
        table = flow.goto
