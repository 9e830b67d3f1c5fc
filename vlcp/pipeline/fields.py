"""The one registry of register use in the pipeline.

A register carries a fact from one table to the next (which network a frame belongs to,
where it came from). Two features that picked the same bits by hand would corrupt each
other silently, on the switch, under traffic; so every use of a register is declared here
once, overlaps are refused at import, and the rest of the pipeline names the field
(`NETWORK`, `IN_KIND`), never a raw register. A raw register name anywhere else in
`vlcp/pipeline/` is a bug (a unit test looks for it).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from vlcp.southbound.openflow.flow import Action, MatchValue

_REG = re.compile(r"^reg([0-9]|1[0-5])$")


@dataclass(frozen=True, slots=True)
class RegField:
    """Bits `ofs .. ofs+n_bits-1` of one Nicira register, given a purpose by `name`."""

    name: str
    reg: str
    ofs: int = 0
    n_bits: int = 32

    def __post_init__(self) -> None:
        if not _REG.match(self.reg):
            raise ValueError(f"{self.name}: {self.reg!r} is not reg0..reg15")
        if self.ofs < 0 or self.n_bits < 1 or self.ofs + self.n_bits > 32:
            raise ValueError(f"{self.name}: bits {self.ofs}+{self.n_bits} do not fit 32")

    @property
    def mask(self) -> int:
        """The field's bits within its register."""
        return ((1 << self.n_bits) - 1) << self.ofs

    @property
    def whole(self) -> bool:
        return self.n_bits == 32

    def check(self, value: int) -> int:
        if not 0 <= value < (1 << self.n_bits):
            raise ValueError(f"{self.name}: {value} does not fit in {self.n_bits} bits")
        return value

    def match(self, value: int) -> MatchValue:
        """The OXM match value: plain for a whole register, else (shifted value, mask)."""
        self.check(value)
        return value if self.whole else (value << self.ofs, self.mask)

    def load(self, value: int) -> Action:
        """An action writing `value` into this field only (other bits are kept)."""
        return Action.make(
            "nx_reg_load", field=self.reg, value=self.check(value), ofs=self.ofs, n_bits=self.n_bits
        )

    def extract(self, register: int) -> int:
        """This field's value inside a whole register value (for simulators and dumps)."""
        return (register & self.mask) >> self.ofs


class InKind(enum.IntEnum):
    """Where a frame entered the switch; decides split horizon when it is flooded."""

    LOCAL = 1
    """From a local endpoint (a VIF bound to a logical port)."""
    TUNNEL = 2
    """From the tunnel port (another server, VXLAN)."""
    PHYSICAL = 3
    """From the physical port of a VLAN or native network."""


NETWORK = RegField("NETWORK", "reg4")
"""The local number of the logical network the frame belongs to (see `view.network_numbers`).

Every table after ingress matches on it: it is what keeps two tenants with the same MACs
and addresses apart."""

IN_KIND = RegField("IN_KIND", "reg5", 0, 2)
"""An `InKind`: set by ingress, read by flooding (never flood back to the underlay)."""

FLOOD_PART = RegField("FLOOD_PART", "reg5", 2, 6)
"""Which part of a network's flooding a frame is at, when it is too long for one flow:
0 at the start (registers start at zero), then 1, 2, ... (see `l2.FLOOD_CHUNK`)."""

ROUTER = RegField("ROUTER", "reg6")
"""The local number of the router a frame is being routed by (`view.Router.number`): set
where a frame to a router interface's MAC enters routing, read by `l3` to find the
destination among that router's subnets only (two tenants' routers never mix)."""

REGISTRY: tuple[RegField, ...] = (NETWORK, IN_KIND, FLOOD_PART, ROUTER)
"""Every register field in use. `OUT_PORT` and friends come with the features that need them."""


def _check_disjoint(fields: tuple[RegField, ...]) -> None:
    used: dict[str, int] = {}
    for f in fields:
        if used.get(f.reg, 0) & f.mask:
            raise ValueError(f"{f.name} overlaps another field of {f.reg}")
        used[f.reg] = used.get(f.reg, 0) | f.mask


_check_disjoint(REGISTRY)
