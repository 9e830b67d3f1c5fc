"""Module `macdrop`, table `macdrop`: drop frames from listed MACs; count LLDP from VIFs.

An example of a module written outside vlcp (see docs/modules.md, "Writing your own
module"). Its table is interposed on every path into `arp_responder` (from `ingress`,
`port_security` and `nd_guard`), so every frame a VIF or the underlay sends passes it
after classification and anti-spoofing, and before anything answers or forwards it:

- a frame whose source MAC is in the settings' `macs` is dropped, whichever port it
  came from;
- an LLDP frame from a VIF is sent to the controller, where `count_lldp` counts it per
  port and logs who sent it. Ingress drops link-local frames (LLDP's destination among
  them) before any other table sees them, so this module adds one flow per local port to
  the `ingress` table, above that drop, that classifies the port's LLDP frames and sends
  them here; here they go to the controller, through the port's packet-in meter
  (`to_controller`), and nowhere else (a frame to a link-local
  address is still never bridged).

Unloaded, the table passes everything on to `arp_responder` (its miss) and its ingress
flows are gone, so LLDP is dropped by ingress again.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel, field_validator

from vlcp.layout import LOGNET, LPORT
from vlcp.pipeline import Context, Module, PacketIn, PacketOut, Received, Table, View, to_controller
from vlcp.pipeline.fields import IN_KIND, InKind
from vlcp.pipeline.ingress import INGRESS, enter
from vlcp.southbound.openflow.flow import Flow

from .lldp import ETH_TYPE_LLDP, parse_sender

log = logging.getLogger(__name__)

LLDP_DST = "01:80:c2:00:00:0e"
"""LLDP's nearest-bridge group address, where hosts' LLDP agents send."""
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

PRIO_DROP = 300
PRIO_LLDP = 200
PRIO_LINK_LOCAL = 100
PRIO_LLDP_INGRESS = 1050
"""In `ingress`: above its link-local drop (1000), below its group-source drop (1100)."""


class Settings(BaseModel):
    """What an operator chooses: the source MACs to drop."""

    macs: list[str] = []

    @field_validator("macs")
    @classmethod
    def _lower_case(cls, macs: list[str]) -> list[str]:
        """One spelling per MAC, so that equal settings give equal flows (and cookies)."""
        normal = sorted({mac.lower() for mac in macs})
        wrong = [mac for mac in normal if not _MAC.match(mac)]
        if wrong:
            raise ValueError(f"not MAC addresses: {wrong}")
        return normal


MACDROP = Table(
    "macdrop",
    after=("ingress", "port_security", "nd_guard"),
    before=("arp_responder",),
    matches={IN_KIND, "in_port", "eth_src", "eth_dst", "eth_type"},
    miss="arp_responder",
    doc="drop frames from the listed MACs; LLDP from VIFs to the controller.",
)

SEEN: Counter[int] = Counter()
"""LLDP frames the handler saw, by in_port. An observation only: the handler's answer
depends on the packet alone, as a handler's must."""


def base_flows(ctx: Context) -> frozenset[Flow]:
    """The listed MACs' drops, and what becomes of the LLDP frames ingress let in."""
    settings = ctx.settings
    assert isinstance(settings, Settings)
    table = ctx[MACDROP.name]
    return frozenset(
        {
            *(table.flow(PRIO_DROP, {"eth_src": mac}) for mac in settings.macs),
            table.flow(PRIO_LINK_LOCAL, {"eth_dst": LLDP_DST}),
        }
    )


def port_flows(ctx: Context, view: View, port_id: str) -> frozenset[Flow]:
    """A VIF's LLDP frames, classified into its network, come here instead of being
    dropped by ingress, and go on to the controller through the port's meter."""
    port = view.ports.get(port_id)
    network = view.networks.get(port.network) if port else None
    if port is None or network is None:
        return frozenset()
    match = {"in_port": port.ofport, "eth_dst": LLDP_DST}
    actions = enter(network, InKind.LOCAL)
    table = ctx[MACDROP.name]
    lldp = {IN_KIND: InKind.LOCAL, **match, "eth_type": ETH_TYPE_LLDP}
    return frozenset(
        {
            ctx[INGRESS.name].flow(PRIO_LLDP_INGRESS, match, actions, goto=table),
            table.flow(PRIO_LLDP, lldp, (to_controller(port.ofport),)),
        }
    )


def count_lldp(ctx: Context, view: View, received: Received) -> Sequence[PacketOut]:
    """Count and log an LLDP frame from a VIF; answer nothing."""
    sender = parse_sender(received.data)
    SEEN[received.in_port] += 1
    port = local.id if (local := view.port_at(received.in_port)) else "?"
    log.info(
        "LLDP from port %s (ofport %d, network %s): chassis %s, port %s; %d from this port",
        port,
        received.in_port,
        received.network,
        sender.chassis,
        sender.port,
        SEEN[received.in_port],
    )
    return ()


MODULE = Module(
    "macdrop",
    doc="Drops frames from a configured list of source MACs; counts and logs the LLDP "
    "frames VIFs send (an example third-party module).",
    depends=("ingress",),
    tables=(MACDROP,),
    base=base_flows,
    port=port_flows,
    watches=(LPORT, LOGNET),
    packet_ins=(
        PacketIn(
            MACDROP.name,
            count_lldp,
            rate=1.0,
            burst=5,
            doc="LLDP frames from VIFs (an agent sends one every 30 s): counted and logged.",
        ),
    ),
    settings=Settings,
)
