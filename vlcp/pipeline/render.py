"""Flows as `ovs-ofctl`-like text, with table names instead of numbers.

For golden tests and dumps that a person reads: the text names tables, so it does not
change when a new table renumbers the pipeline, and a diff of two dumps shows what a
change did. Not a parser's input; `ovs-ofctl` itself would want numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vlcp.southbound.openflow.flow import Action, Flow, MatchValue

from .builtin import PIPELINE
from .tables import Pipeline

_HEX16_FIELDS = frozenset({"eth_type", "vlan_vid"})
_PORT_NAMES = {"in_port": "IN_PORT", "controller": "CONTROLLER", "local": "LOCAL"}


def _value(name: str, value: Any) -> str:
    if isinstance(value, tuple):
        return f"{_value(name, value[0])}/{_value(name, value[1])}"
    if isinstance(value, int) and name in _HEX16_FIELDS:
        return f"0x{value:04x}"
    if isinstance(value, int) and name.startswith("reg"):
        return hex(value)
    return str(value)


def _rank(item: tuple[str, MatchValue]) -> tuple[int, str]:
    """in_port first, then registers, then the packet's fields, as ovs-ofctl tends to."""
    name = item[0]
    return (0 if name == "in_port" else 1 if name.startswith("reg") else 2, name)


def _match(match: Iterable[tuple[str, MatchValue]]) -> str:
    return ",".join(f"{name}={_value(name, value)}" for name, value in sorted(match, key=_rank))


def _bits(field: str, ofs: int, n_bits: int) -> str:
    return field if ofs == 0 and n_bits in (0, 32) else f"{field}[{ofs}..{ofs + n_bits - 1}]"


def render_action(action: Action, pipeline: Pipeline = PIPELINE) -> str:
    a = action.arg
    match action.kind:
        case "output":
            port = a("port")
            return f"output:{_PORT_NAMES.get(port, port)}"
        case "set_field":
            field = a("field")
            return f"set_field:{_value(field, a('value'))}->{field}"
        case "push_vlan":
            return f"push_vlan:{hex(a('ethertype', 0x8100))}"
        case "pop_vlan":
            return "pop_vlan"
        case "nx_reg_load":
            target = _bits(a("field"), a("ofs", 0), a("n_bits", 0) or 32)
            return f"load:{hex(a('value'))}->{target}"
        case "nx_reg_move":
            return f"move:{a('src')}->{a('dst')}"
        case "nx_resubmit":
            return f"resubmit(,{pipeline.name_of(a('table'))})"
        case "nx_dec_ttl":
            return f"dec_ttl({','.join(str(c) for c in a('controllers', ()))})"
        case "group":
            return f"group:{a('group_id')}"
    args = ",".join(f"{k}={v}" for k, v in action.args)
    return f"{action.kind}({args})"


def render(flow: Flow, pipeline: Pipeline = PIPELINE) -> str:
    """`table=l2_forward priority=100 eth_dst=02:00:00:00:00:01 actions=output:3`, say."""
    actions = [render_action(a, pipeline) for a in flow.actions]
    if flow.goto is not None:
        actions.append(f"goto_table:{pipeline.name_of(flow.goto)}")
    head = f"table={pipeline.name_of(flow.table)} priority={flow.priority}"
    match = _match(flow.match)
    return f"{head}{' ' + match if match else ''} actions={','.join(actions) or 'drop'}"


def render_all(flows: Iterable[Flow], pipeline: Pipeline = PIPELINE) -> list[str]:
    """Rendered flows in pipeline order: by table id, then priority (highest first)."""
    ordered = sorted(flows, key=lambda f: (f.table, -f.priority, render(f, pipeline)))
    return [render(f, pipeline) for f in ordered]
