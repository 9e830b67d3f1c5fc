"""Naming what blocks a deletion: the ids behind a deletion guard's counters.

The guard itself is a counter in the parent's state document, read inside the transaction:
one small read, and the key every child's creation and deletion writes, so a child created
while its parent is deleted makes one of the two transactions conflict. Only once the
guard has fired are the children listed, so that the 409 can say who is in the way, with
one prefix read of the derived keys that hold their ids (`lognet-mac/<lognet>/` -> port
ids, `physnet-port/<physnet>/` -> physical port ids, ...) rather than of every object.

That read is outside the transaction, yet it agrees with the counter: the model answers an
error only after the transaction's reads (the state document among them) are confirmed
unchanged, and every change to the children writes that document. The transaction's own
writes (earlier operations of a batch) are laid over the listing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vlcp.store import Transaction
from vlcp.store.codec import decode_value

from .common import counted, prefix_reader

SHOWN = 5
"""At most this many ids in a message: enough to act on, short enough to read."""


def same(value: Any) -> str | None:
    """The value of a derived key is the child's id (MAC, tag, selector and address keys)."""
    return value if isinstance(value, str) else None


async def holders(
    txn: Transaction, prefix: str, pick: Callable[[Any], str | None] = same
) -> list[str] | None:
    """The sorted ids `pick` finds in the values under `prefix`, as the transaction sees them.

    None when no prefix reader is available (a transaction run outside `Model`): the
    message then gives the counts alone.
    """
    reader = prefix_reader.get()
    if reader is None:
        return None
    values: dict[str, Any] = dict((await reader(prefix)).values)
    for key, data in txn.writes.items():
        if key.startswith(prefix):
            if data is None:
                values.pop(key, None)
            else:
                values[key] = decode_value(data)
    return sorted({id for id in map(pick, values.values()) if id is not None})


def named(
    count: int, noun: str, ids: list[str] | None, *, plural: str | None = None, label: str = ""
) -> str:
    """'3 ports (p1, p2, p3)'; beyond `SHOWN` ids '(a, b, c, d, e and 7 more)'.

    `label` names the ids when the noun does not ("held by logical ports").
    """
    text = counted(count, noun, plural)
    if not ids:
        return text
    return f"{text} ({label + ' ' if label else ''}{listed(ids)})"


def listed(ids: list[str]) -> str:
    """'a, b, c'; beyond `SHOWN` ids 'a, b, c, d, e and 7 more'."""
    shown = ", ".join(ids[:SHOWN])
    return shown + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")
