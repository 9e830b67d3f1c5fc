"""The values the store hands to its callers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Values of many keys as they all were at one `revision` (absent keys are left out)."""

    revision: int
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    """A key written by a commit: its new value, or None when it was deleted."""

    key: str
    value: Any


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """The watched keys one commit changed, in commit order."""

    revision: int
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class Resync:
    """The complete current state of the watched keys: replace, don't merge.

    Sent first by a watch without `since`, and whenever the changes since the last
    revision can no longer be replayed (the change log was compacted meanwhile).
    """

    revision: int
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScopeResync:
    """The complete state of some scopes of a `Subscription` as of `revision`: replace
    every value of those scopes by `values` (empty when the scopes were dropped)."""

    revision: int
    scopes: frozenset[str]
    values: dict[str, Any]
