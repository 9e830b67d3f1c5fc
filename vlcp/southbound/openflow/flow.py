"""Flows as frozen, hashable values, independent of any OpenFlow library.

The pipeline computes sets of `Flow`; the reconciler diffs sets of `Flow`; only the codec
turns them into wire messages. A flow's cookie is derived from its content, which lets
the reconciler recognise, after a restart, exactly which of the switch's flows are
already right without comparing matches and actions field by field (OVS reports them in
its own normal form): same cookie, same flow.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

COOKIE_MARK = 0xA5
"""Top byte of every vlcp cookie: flows without it were not installed by vlcp."""
COOKIE_MARK_SHIFT = 56
_HASH_BITS = 56

MatchValue = int | str | tuple[int | str, int | str]
"""A match value, or (value, mask) for a masked match."""


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True, slots=True, repr=False)
class Action:
    """One OpenFlow or Nicira action, by name (e.g. "output", "set_field", "nx_resubmit").

    The codec owns the mapping from names to wire encodings; arguments are kept as a
    sorted tuple so that equal actions are equal values.
    """

    kind: str
    args: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, kind: str, **args: Any) -> Action:
        return cls(kind, tuple(sorted((k, _freeze(v)) for k, v in args.items())))

    def arg(self, name: str, default: Any = None) -> Any:
        return dict(self.args).get(name, default)

    def __repr__(self) -> str:
        # The generated dataclass repr, written out: it is part of every cookie (see
        # `_content_cookie`), and the generated one's recursion guard made hashing a
        # flooding flow of a thousand outputs cost more than encoding it.
        return f"Action(kind={self.kind!r}, args={self.args!r})"


@dataclass(frozen=True, slots=True)
class Flow:
    """One flow entry: where it lives, what it matches, and what it does."""

    table: int
    priority: int
    match: tuple[tuple[str, MatchValue], ...] = ()
    actions: tuple[Action, ...] = ()
    """Applied at once (OFPIT_APPLY_ACTIONS); empty with no `goto` means drop."""
    goto: int | None = None
    idle_timeout: int = 0
    hard_timeout: int = 0
    cookie: int = field(init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.table <= 254:
            raise ValueError(f"table {self.table} is not in 0..254")
        if not 0 <= self.priority <= 0xFFFF:
            raise ValueError(f"priority {self.priority} is not in 0..65535")
        if self.goto is not None and self.goto <= self.table:
            raise ValueError(f"goto table {self.goto} must come after table {self.table}")
        object.__setattr__(self, "cookie", _content_cookie(self))

    @classmethod
    def make(
        cls,
        table: int,
        priority: int,
        match: Mapping[str, MatchValue] | None = None,
        actions: tuple[Action, ...] | list[Action] = (),
        **options: Any,
    ) -> Flow:
        """A flow from a plain match dict (order does not matter)."""
        return cls(table, priority, tuple(sorted((match or {}).items())), tuple(actions), **options)

    @property
    def match_dict(self) -> dict[str, MatchValue]:
        return dict(self.match)


def _content_cookie(flow: Flow) -> int:
    """COOKIE_MARK in the top byte, then 56 bits of a hash of everything the flow does."""
    content = repr(
        (
            flow.table,
            flow.priority,
            flow.match,
            flow.actions,
            flow.goto,
            flow.idle_timeout,
            flow.hard_timeout,
        )
    ).encode()
    digest = int.from_bytes(hashlib.blake2b(content, digest_size=7).digest(), "big")
    return (COOKIE_MARK << COOKIE_MARK_SHIFT) | digest


# Common actions, named as in `ovs-ofctl` so flows read like its dumps.


@functools.lru_cache(maxsize=1 << 16)
def output(port: int) -> Action:
    """Shared values: a network's flooding lists every member's output, at every change."""
    return Action.make("output", port=port)


def set_field(**fields: MatchValue) -> tuple[Action, ...]:
    return tuple(Action.make("set_field", field=k, value=v) for k, v in sorted(fields.items()))


def push_vlan(ethertype: int = 0x8100) -> Action:
    return Action.make("push_vlan", ethertype=ethertype)


def pop_vlan() -> Action:
    return Action.make("pop_vlan")


def resubmit(table: int, in_port: int | None = None) -> Action:
    """Nicira resubmit: run `table` (any table, even an earlier one) and come back."""
    return Action.make("nx_resubmit", table=table, in_port=in_port)


def dec_ttl(*controllers: int) -> Action:
    """Nicira `dec_ttl(ids)`: decrement the IP TTL; at TTL 0 or 1 the packet stops here and
    goes to the controllers named, if any (without ids, it is dropped on the switch:
    plain OpenFlow `dec_nw_ttl` would name controller 0)."""
    return Action.make("nx_dec_ttl", controllers=tuple(controllers))


def controller(max_len: int = 0xFFFF, reason: int = 0, meter_id: int | None = None) -> Action:
    """To the controller; through meter `meter_id` (which need not exist) when given."""
    if meter_id is None:
        return Action.make("controller", max_len=max_len, reason=reason)
    return Action.make("controller", max_len=max_len, reason=reason, meter_id=meter_id)
