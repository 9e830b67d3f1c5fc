"""Automatic allocation of VLAN ids, VNIs, IP addresses and MAC addresses.

Each allocated value has its own key (`physnet-tag/<net>/<vni>`, `subnet-ip/<subnet>/<ip>`),
so allocation is "read keys until one is absent, then write it". The scan starts at a hint
kept in the parent's state document (just after the last value handed out), so the usual
cost is one short batch of reads, and freed values are not reused at once (a freed address
may still sit in ARP caches). Reads go out in growing batches, and a scan is bounded, so a
transaction never exceeds the store's read limit; an exhausted range is a Conflict that
names it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator

from vlcp.store import Transaction

from .errors import Conflict

FIRST_BATCH = 8
BATCH = 64
MAX_SCAN = 512
"""Most keys one allocation reads; with the hint, only a nearly full range gets near it."""
MAC_ATTEMPTS = 16


def walk(spans: list[list[int]], start: int | None) -> Iterator[int]:
    """Every value of the sorted inclusive `spans`, from `start` on, wrapping around once."""
    low = spans[0][0] if start is None else start
    for first, last in spans:
        if last >= low:
            yield from range(max(first, low), last + 1)
    for first, last in spans:
        if first >= low:
            break
        yield from range(first, min(last, low - 1) + 1)


def after(value: int, spans: list[list[int]]) -> int:
    """The hint to keep after handing out `value`: the next value (wrapping to the start)."""
    for first, last in spans:
        if first <= value + 1 <= last:
            return value + 1
        if first > value + 1:
            return first
    return spans[0][0]


async def first_free(
    txn: Transaction,
    key_of: Callable[[int], str],
    spans: list[list[int]],
    hint: int | None,
    *,
    what: str,
    skip: frozenset[int] = frozenset(),
) -> int:
    """The first value from `hint` on (wrapping) whose key is absent; Conflict when none is.

    `what` names the range in the error ("address in pool 10.0.0.10-10.0.0.159 of subnet
    s1"). At most MAX_SCAN values are looked at.
    """
    values = walk(spans, hint)
    scanned = 0
    batch = FIRST_BATCH
    while scanned < MAX_SCAN:
        chunk = list(itertools.islice(values, min(batch, MAX_SCAN - scanned)))
        if not chunk:
            raise Conflict(f"no free {what}: all are in use")
        scanned += len(chunk)
        candidates = [v for v in chunk if v not in skip]
        found = await txn.get_many(key_of(v) for v in candidates)
        for value in candidates:
            if found[key_of(value)] is None:
                return value
        batch = BATCH
    if next(values, None) is None:
        raise Conflict(f"no free {what}: all are in use")
    raise Conflict(
        f"no free {what} among the {MAX_SCAN} values after the last one handed out: "
        "the range is nearly full; give a value explicitly or widen the range"
    )


def random_mac(rng: random.Random) -> str:
    """02:xx:xx:xx:xx:xx, locally administered unicast: never a vendor's address."""
    return "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5))


async def new_mac(txn: Transaction, key_of: Callable[[str], str], rng: random.Random) -> str:
    """A random MAC not used in the network (collisions are rare: 40 random bits)."""
    for _ in range(MAC_ATTEMPTS):
        candidate = random_mac(rng)
        if await txn.get(key_of(candidate)) is None:
            return candidate
    raise Conflict(f"no unused MAC address found in {MAC_ATTEMPTS} attempts")
