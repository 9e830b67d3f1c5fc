"""A module: one function of the controller (ingress, ARP answers, a network type, ...),
declared as data.

Each function is a declaration rather than code wired into the pipeline so that the
pipeline can be assembled from whichever modules are loaded, and a module can come, go
or be replaced on a running controller with its flows and nothing else (see
`catalog.ModuleSet`). A module says:

- its `tables`, by name and position (`Table.after`, `Table.before`);
- its flow functions, one per owner kind (`base`, `port`, `network`, `remote`; each
  optional), pure functions of a `Context` and the view, like the rest of the pipeline;
- what it `depends` on (other modules, by name) and what it `watches` in the store (key
  prefixes from `vlcp.layout`, so the agent's subscription can follow the loaded modules);
- its `packet_ins`: the packets its tables send to the controller, their handler and a
  per-port rate limit;
- its `settings` class (a `vlcp.typed.Typed` dataclass, or a pydantic model), or None.

A module's flows must not depend on which other modules are loaded: that is what lets
unloading one remove exactly its flows. Gotos name tables of the catalog, which are there
whether their module is loaded or not (an unloaded module's table passes through).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vlcp.layout import PREFIXES, SINGLE_KEYS
from vlcp.southbound.openflow.flow import Action, Flow, controller

from .ratelimit import PortRateLimiter
from .tables import BoundTable, Pipeline, Table
from .view import View

OWNER_KINDS = ("port", "network", "remote")
"""The owners that are objects of the view, each with its own flow function."""
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ModuleError(ValueError):
    """A module declaration, or a load, unload or reload, that cannot be honoured."""


class ModuleFailed(ModuleError):
    """A module's own code raised (a flow function, or its settings' defaults).

    The module is at fault, not the view or the other modules: whoever compiles can drop
    this module (and what needs it) and carry on with the rest, rather than retrying a
    computation that will raise again. `name` says which module; `cause` is what it raised.
    """

    def __init__(self, name: str, cause: BaseException, what: str = "raised") -> None:
        super().__init__(f"module {name} {what}: {type(cause).__name__}: {cause}")
        self.name = name
        self.cause = cause


@dataclass(frozen=True, slots=True)
class Context:
    """What a module's functions get besides the view: the tables of the whole catalog
    (ids and goto routes, by name) and the module's settings."""

    pipeline: Pipeline
    settings: object | None = None

    def __getitem__(self, table: str) -> BoundTable:
        return self.pipeline[table]


BaseFlows = Callable[[Context], frozenset[Flow]]
"""The flows a module has whatever the view: drops, defaults."""
OwnerFlows = Callable[[Context, View, str], frozenset[Flow]]
"""The flows a module has for one port, network or remote port of the view (by id)."""


@dataclass(frozen=True, slots=True)
class Received:
    """A packet one of the module's tables sent to the controller."""

    in_port: int
    network: int | None
    """The NETWORK register (the frame's network number), if ingress set it."""
    data: bytes


@dataclass(frozen=True, slots=True)
class PacketOut:
    """A packet a handler wants sent out of a port of the switch."""

    port: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Learned:
    """A fact a handler learned from a packet: `ip` is at `mac` in network `network` (an
    ARP answer). The agent keeps it (with its age) and puts it into the view
    (`View.neighbours`); the handler stays pure."""

    network: str
    ip: str
    mac: str


Handler = Callable[[Context, View, Received], Sequence[PacketOut | Learned]]
"""Answers a packet: pure, like the flow functions; the agent sends the packet-outs it
returns and keeps what it learned."""


class BadPacket(ValueError):
    """Raised by a handler for a packet that is malformed (truncated, oversized, not the
    protocol it claims): the agent counts it and logs it, a line per module at most every
    so often, whatever a workload sends. A packet that is well formed but not answered
    is not one: the handler just returns no packet-out."""


def to_controller(ofport: int) -> Action:
    """The action a module's flow sends a packet from local port `ofport` to the
    controller with: through that port's meter, whose id is the ofport (the agent keeps
    one per local port at the loaded modules' `packet_in_budget`, `vlcp.southbound.meters`),
    so a flooding port is cut down on the switch. A flow so metered matches `in_port`."""
    return controller(meter_id=ofport)


@dataclass(frozen=True)
class PacketIn:
    """Packets one table of the module sends to the controller, and who handles them.

    The packet-in names the table its flow is in (OpenFlow's `table_id`), and a table
    belongs to one module, so the table identifies the handler: flows send with
    `flow.controller()` from the declaring module's own `table`, at most one handler per
    table. (Cookies cannot identify them: a cookie is a hash of the flow's content.)
    Each port may send `rate` packets a second, in bursts of up to `burst`; the rest
    are dropped by the agent before the handler sees them, so a VIF flooding the
    controller costs the others nothing.
    """

    table: str
    handler: Handler
    rate: float = 10.0
    burst: int = 20
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.rate > 0 or self.burst < 1:
            raise ModuleError(f"packet-in of {self.table}: rate {self.rate}, burst {self.burst}")

    def limiter(self) -> PortRateLimiter:
        """A fresh per-port limit for this kind of packet."""
        return PortRateLimiter(self.rate, self.burst)


@dataclass(frozen=True)
class Module:
    """One function of the controller: its tables, flows, needs and handlers."""

    name: str
    doc: str = ""
    depends: Sequence[str] = ()
    tables: Sequence[Table] = ()
    base: BaseFlows | None = None
    port: OwnerFlows | None = None
    network: OwnerFlows | None = None
    remote: OwnerFlows | None = None
    watches: Sequence[str] = ()
    """Store key prefixes (from `vlcp.layout`) its flows are computed from."""
    packet_ins: Sequence[PacketIn] = ()
    settings: type | None = None
    """Its settings model; its default instance applies until others are given."""

    def __post_init__(self) -> None:
        for name in ("depends", "tables", "watches", "packet_ins"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not _NAME.match(self.name):
            raise ModuleError(f"module name {self.name!r}: lower case, digits and _ only")
        if self.name in self.depends:
            raise ModuleError(f"module {self.name} depends on itself")
        layout = (*PREFIXES, *SINGLE_KEYS)
        stray = [w for w in self.watches if not w.startswith(layout)]
        if stray:
            raise ModuleError(f"module {self.name} watches keys outside vlcp.layout: {stray}")
        own = [t.name for t in self.tables]
        handled = [p.table for p in self.packet_ins]
        foreign = sorted(set(handled) - set(own))
        if foreign:
            raise ModuleError(f"module {self.name}: packet-in from tables not its own {foreign}")
        if len(set(handled)) != len(handled):
            raise ModuleError(f"module {self.name}: two packet-in handlers for one table")

    def owner_flows(self, kind: str) -> OwnerFlows | None:
        """Its flow function for an owner kind (one of `OWNER_KINDS`)."""
        fn: OwnerFlows | None = getattr(self, kind)
        return fn
