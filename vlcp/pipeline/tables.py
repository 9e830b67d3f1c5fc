"""Flow tables declared by name, with the tables that must come before (or after) them.

Nobody numbers a table by hand: `Pipeline` orders the declarations topologically (ties
keep declaration order, so a table declared last and needed last takes the next free id
and renumbers nothing) and gives the first table id 0, where the switch starts every
packet. Each table also declares what its flows may match; `BoundTable.flow` refuses an
undeclared match field, a register not taken from `fields`, and a goto to a table that
was not declared to follow it, so a malformed flow fails in a unit test instead of being
rejected by (or, worse, accepted and misread on) the switch.

A table may also name the tables it comes `before`, which lets it step in between two
others: a table declared after S and before T is interposed on S -> T, and every goto
from S to T lands on it instead (see `Pipeline.route`). So a module can add a stage to a
path it does not own, and the flows of S never name it.

The tables themselves are declared by the modules that own them (`ingress.py`, ...), and
the pipeline is built from every known module's tables (`catalog.Catalog`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from vlcp.southbound.openflow.flow import Action, Flow, MatchValue

from .fields import RegField

MatchKey = str | RegField
"""An OXM field name ("eth_dst"), or a register field from `fields`."""


class PipelineError(ValueError):
    """A table declaration or a flow does not fit the declared pipeline."""


_ETH_IP = frozenset({0x0800, 0x86DD})
PREREQUISITES: dict[str, tuple[str, frozenset[int]]] = {
    "ipv4_src": ("eth_type", frozenset({0x0800})),
    "ipv4_dst": ("eth_type", frozenset({0x0800})),
    "ipv6_src": ("eth_type", frozenset({0x86DD})),
    "arp_op": ("eth_type", frozenset({0x0806})),
    "arp_spa": ("eth_type", frozenset({0x0806})),
    "arp_tpa": ("eth_type", frozenset({0x0806})),
    "arp_sha": ("eth_type", frozenset({0x0806})),
    "ip_proto": ("eth_type", _ETH_IP),
    "nw_ttl": ("eth_type", _ETH_IP),
    "udp_src": ("ip_proto", frozenset({17})),
    "icmpv4_type": ("ip_proto", frozenset({1})),
    "icmpv4_code": ("ip_proto", frozenset({1})),
    "udp_dst": ("ip_proto", frozenset({17})),
    "icmpv6_type": ("ip_proto", frozenset({58})),
    "ipv6_nd_target": ("icmpv6_type", frozenset({135, 136})),
}
"""OpenFlow match prerequisites (OpenFlow 1.3, 7.2.3.8): a match on the key needs the
named field matched to one of these values; a switch refuses the flow otherwise. (ICMPv6
also needs IPv6, which its ip_proto alone does not say: checked in `_match`.)"""


@dataclass(frozen=True)
class Table:
    """A table declaration: its name, its neighbours, what its flows may match."""

    name: str
    after: Sequence[str] = ()
    """Tables that come before this one; their flows may go to it."""
    matches: AbstractSet[MatchKey] = frozenset()
    miss: str | None = None
    """Where a packet no flow matched continues (a successor); None drops it. The miss
    stays when the table's module is unloaded: it is what makes the table pass through."""
    doc: str = ""
    before: Sequence[str] = ()
    """Tables that come after this one; its flows may go to them. With `after`, this
    interposes the table between two others (see `Pipeline.route`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "after", tuple(self.after))
        object.__setattr__(self, "before", tuple(self.before))
        object.__setattr__(self, "matches", frozenset(self.matches))


@dataclass(frozen=True, eq=False)
class BoundTable:
    """A declared table with its computed id: the only way to make a flow for it."""

    decl: Table
    id: int
    successors: frozenset[str]
    pipeline: Pipeline = field(repr=False)

    @property
    def name(self) -> str:
        return self.decl.name

    def flow(
        self,
        priority: int,
        match: Mapping[MatchKey, MatchValue] | None = None,
        actions: Sequence[Action] = (),
        goto: BoundTable | None = None,
    ) -> Flow:
        """A flow of this table; empty `actions` and no `goto` drop the packet.

        A goto lands on the table interposed on the way, if any (`Pipeline.route`)."""
        if goto is not None and (
            goto.pipeline is not self.pipeline or goto.name not in self.successors
        ):
            raise PipelineError(f"{self.name}: goto {goto.name} is not a declared successor")
        return Flow.make(
            self.id,
            priority,
            self._match(match or {}),
            tuple(actions),
            goto=None if goto is None else self.pipeline.route(self, goto).id,
        )

    def _match(self, match: Mapping[MatchKey, MatchValue]) -> dict[str, MatchValue]:
        plain: dict[str, MatchValue] = {}
        regs: dict[str, tuple[int, int]] = {}
        for key, value in match.items():
            if key not in self.decl.matches:
                label = key.name if isinstance(key, RegField) else key
                raise PipelineError(f"{self.name}: match on {label} is not declared")
            if isinstance(key, RegField):
                if not isinstance(value, int):
                    raise PipelineError(f"{self.name}: {key.name} takes an int, not {value!r}")
                key.check(value)
                old_value, old_mask = regs.get(key.reg, (0, 0))
                regs[key.reg] = (old_value | value << key.ofs, old_mask | key.mask)
            else:
                plain[key] = value
        for reg, (value, mask) in regs.items():
            plain[reg] = value if mask == 0xFFFFFFFF else (value, mask)
        self._check_prerequisites(plain)
        return plain

    def _check_prerequisites(self, match: Mapping[str, MatchValue]) -> None:
        for key in match:
            needed = PREREQUISITES.get(key)
            if needed is not None and match.get(needed[0]) not in needed[1]:
                raise PipelineError(
                    f"{self.name}: a match on {key} needs {needed[0]} in {sorted(needed[1])}"
                )
        if "icmpv6_type" in match and match.get("eth_type") != 0x86DD:
            raise PipelineError(f"{self.name}: a match on icmpv6_type needs IPv6")

    def miss_flow(self) -> Flow:
        """The priority-0 flow that sends unmatched packets to `miss` (or drops them)."""
        miss = self.decl.miss
        return self.flow(0, goto=None if miss is None else self.pipeline[miss])


class Pipeline:
    """Tables in a stable topological order, with ids from `first_id` up.

    A table X is interposed on S -> T when it is declared after S and before T, and T is
    a successor of S by their own declarations. A goto from S to T then lands on the
    interposed table with the lowest id (T when there is none). The interposed table's
    own flows to T are gotos from X to T and follow the same rule, so several tables
    interposed on one edge form a chain when each is declared after the one before it;
    any that such a chain would skip is refused, and so is an interposed table whose
    miss does not continue to T (unloading its module must not cut the path).
    """

    def __init__(self, tables: Iterable[Table], first_id: int = 0) -> None:
        decls = list(tables)
        names = [t.name for t in decls]
        if len(set(names)) != len(names):
            raise PipelineError(f"tables declared twice: {sorted(_dupes(names))}")
        known = set(names)
        for t in decls:
            for side, neighbours in (("after", t.after), ("before", t.before)):
                missing = [a for a in neighbours if a not in known]
                if missing:
                    raise PipelineError(f"{t.name}: {side} undeclared table(s) {missing}")
        order = _topological(decls)
        if first_id + len(order) > 255:
            raise PipelineError("more tables than OpenFlow table ids")
        successors: dict[str, set[str]] = {n: set() for n in names}
        for t in decls:
            for before in t.after:
                successors[before].add(t.name)
            successors[t.name].update(t.before)
        self._tables: dict[str, BoundTable] = {}
        for index, t in enumerate(order):
            if t.miss is not None and t.miss not in successors[t.name]:
                raise PipelineError(f"{t.name}: miss goes to {t.miss}, not a successor")
            bound = BoundTable(t, first_id + index, frozenset(successors[t.name]), self)
            self._tables[t.name] = bound
        self._by_id = {t.id: t for t in self._tables.values()}
        self._routes = self._interpose(decls, successors)

    def _interpose(
        self, decls: list[Table], successors: Mapping[str, set[str]]
    ) -> dict[tuple[BoundTable, BoundTable], BoundTable]:
        """The first interposed table of every edge that has one; checks the chains."""
        on_edge: dict[tuple[str, str], list[BoundTable]] = {}
        for x in decls:
            for s in x.after:
                for t in x.before:
                    if t in successors[s]:
                        on_edge.setdefault((s, t), []).append(self._tables[x.name])
        first = {edge: min(xs, key=lambda b: b.id) for edge, xs in on_edge.items()}
        for (s, t), xs in on_edge.items():
            for x in xs:
                if x.decl.miss != t:
                    raise PipelineError(
                        f"{x.name}: interposed between {s} and {t}, its miss must go to {t}"
                    )
            seen, here = set(), s
            while here != t:
                here = first.get((here, t), self._tables[t]).name
                seen.add(here)
            skipped = sorted(x.name for x in xs if x.name not in seen)
            if skipped:
                raise PipelineError(
                    f"{skipped} would be skipped between {s} and {t}: tables interposed on "
                    "one edge must each be declared after the one before them"
                )
        return {(self._tables[s], self._tables[t]): x for (s, t), x in first.items()}

    def route(self, source: BoundTable, target: BoundTable) -> BoundTable:
        """Where a goto from `source` to `target` lands: the first table interposed
        between them, or `target` itself."""
        return self._routes.get((source, target), target) if self._routes else target

    def __getitem__(self, name: str) -> BoundTable:
        return self._tables[name]

    def __iter__(self) -> Iterator[BoundTable]:
        """The tables in id order."""
        return iter(sorted(self._tables.values(), key=lambda t: t.id))

    def name_of(self, table_id: int) -> str:
        """The name of a table id (or the number itself for a foreign table)."""
        table = self._by_id.get(table_id)
        return table.name if table else str(table_id)

    def by_id(self, table_id: int) -> BoundTable | None:
        """The table of an id (a packet-in names its table by id)."""
        return self._by_id.get(table_id)

    def miss_flows(self) -> frozenset[Flow]:
        return frozenset(t.miss_flow() for t in self)


def _dupes(names: list[str]) -> set[str]:
    return {n for n in names if names.count(n) > 1}


def _topological(decls: list[Table]) -> list[Table]:
    """Kahn's algorithm, always taking the earliest-declared table that is ready."""
    pending = {t.name: set(t.after) for t in decls}
    for t in decls:
        for later in t.before:
            pending[later].add(t.name)
    order: list[Table] = []
    while pending:
        ready = [t for t in decls if t.name in pending and not pending[t.name]]
        if not ready:
            raise PipelineError(f"tables in a cycle: {sorted(pending)}")
        chosen = ready[0]
        order.append(chosen)
        del pending[chosen.name]
        for deps in pending.values():
            deps.discard(chosen.name)
    return order
