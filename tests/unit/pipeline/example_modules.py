"""A module of the kind a third party would write, to test the module machinery with.

`mac_drop` interposes its own table between `ingress` and `port_security`, drops the
source MACs its settings list, and sends frames of the local experimental EtherType
to the controller, where its packet-in handler counts them per port and answers nothing.
`MAC_DROP_V2` is a new version of its code (a reload): other priorities, same tables.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel

from vlcp.layout import LPORT
from vlcp.pipeline import (
    BUILTIN,
    Catalog,
    Context,
    Module,
    PacketIn,
    PacketOut,
    Received,
    Table,
    View,
)
from vlcp.pipeline.module import BaseFlows
from vlcp.southbound.openflow.flow import Flow, controller

EXPERIMENTAL = 0x88B5
"""IEEE 802 local experimental EtherType 1."""
COUNTED: Counter[int] = Counter()
"""Frames the handler saw, by in_port."""


class MacDropSettings(BaseModel):
    macs: tuple[str, ...] = ("02:00:00:00:00:03",)


MAC_DROP_TABLE = Table(
    "mac_drop",
    after=("ingress",),
    before=("port_security",),
    matches={"in_port", "eth_src", "eth_type"},
    miss="port_security",
)


def _base(priority: int) -> BaseFlows:
    def base(ctx: Context) -> frozenset[Flow]:
        table = ctx["mac_drop"]
        assert isinstance(ctx.settings, MacDropSettings)
        drops = {table.flow(priority, {"eth_src": mac}) for mac in ctx.settings.macs}
        report = table.flow(priority - 1, {"eth_type": EXPERIMENTAL}, (controller(),))
        return frozenset({*drops, report})

    return base


def port_flows(ctx: Context, view: View, port_id: str) -> frozenset[Flow]:
    """Frames a port sends from its own MAC skip the drop list (a per-port flow)."""
    port = view.ports.get(port_id)
    if port is None or port.network not in view.networks:
        return frozenset()
    match = {"in_port": port.ofport, "eth_src": port.mac}
    return frozenset({ctx["mac_drop"].flow(200, match, goto=ctx["port_security"])})


def count(ctx: Context, view: View, packet: Received) -> Sequence[PacketOut]:
    COUNTED[packet.in_port] += 1
    return ()


MAC_DROP = Module(
    "mac_drop",
    doc="Drops the source MACs of its settings; counts experimental frames.",
    depends=("ingress",),
    tables=(MAC_DROP_TABLE,),
    base=_base(100),
    port=port_flows,
    watches=(LPORT,),
    packet_ins=(PacketIn("mac_drop", count, rate=5, burst=2),),
    settings=MacDropSettings,
)
MAC_DROP_V2 = dataclasses.replace(MAC_DROP, base=_base(110))

CATALOG = Catalog([*BUILTIN, MAC_DROP])
"""The built-in modules and the example: the catalog of a server that installed it."""
