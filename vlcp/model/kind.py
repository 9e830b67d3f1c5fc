"""`Kind`: everything vlcp knows of one kind of object, in one record.

A kind used to be spelled in a dozen files (names, store prefixes, message nouns, pydantic
classes, operation tables, API and CLI name lists), which drifted apart. Now each kind's
module ends with its `Kind` (`physnet.PHYSNETS`, ...), next to the operations it names,
and `kinds.KINDS` lists them: the model's operations, the REST API's routes and bodies,
the VLCP-compatible calls and the CLI's commands are all derived from those records.

This module imports none of the kinds' modules, so each of them can import it; the
names a record gives its interfaces are plain text, so the model still imports no API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import BaseModel

from vlcp.store import Transaction

Create = Callable[[Transaction, object], Awaitable[dict]]
Update = Callable[[Transaction, str, object], Awaitable[dict]]
Delete = Callable[[Transaction, str], Awaitable[None]]


@dataclass(frozen=True)
class VlcpNames:
    """How the original VLCP API names a kind, so its scripts keep working.

    Its calls are `<module>/create<noun>`, `.../create<noun>s` taking the list `plural`,
    and likewise update, delete and `list<noun>s`.
    """

    module: str
    noun: str
    plural: str
    params: tuple[str, ...]
    """The documented parameters of a singular create or update, in the original's order."""
    key: tuple[str, ...] = ("id",)
    """The parameters naming one object (a physical port: its name and selectors)."""


@dataclass(frozen=True)
class Kind:
    """One kind of object: its names, where it is stored, its shapes and operations."""

    name: str
    """The REST path segment, and the name `Model` and `Op` take (`logical-ports`)."""
    noun: str
    """How messages call one object (`logical port`)."""
    prefix: str
    """Its store key prefix, from `vlcp.layout` (the one home of key prefixes)."""
    create_body: type[BaseModel]
    update_body: type[BaseModel]
    stored: type[BaseModel]
    create: Create
    update: Update
    delete: Delete
    cli: str
    """The CLI command (`vlcp logical-port ...`)."""
    vlcp: VlcpNames
    parent: str | None = None
    """The field referencing the parent object; the original API's lists filter by it."""
    reported: frozenset[str] = frozenset()
    """Fields read beside the stored object, written by servers (a port's status)."""
    contended: tuple[tuple[str, Callable[[str], str]], ...] = ()
    """(body field, key builder): contended keys a create writes, for `ops.lock_hint`."""

    def key(self, id: str) -> str:
        """The store key of the object `id` of this kind."""
        return f"{self.prefix}{id}"
