"""REST v1 writes for the driver: retried while vlcp cannot answer, idempotent on repeat.

ML2 calls postcommit hooks after Neutron's transaction committed, so a write that fails
there cannot be undone by a rollback: it is retried while vlcp is unreachable or busy (the
API's 0 and 503, when nothing was written), and the caller decides what an error left
after the retries means. A create that finds its id taken (an earlier attempt did reach
vlcp, or `sync` got there first) becomes an update, and a delete of what is gone is done,
so every write can be sent again safely.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from vlcp.client import ApiError, Client

from .mapping import Body

T = TypeVar("T")

RETRIED = frozenset({0, 503})
"""Statuses after which nothing was written and a retry may succeed."""


def unavailable(error: ApiError) -> bool:
    """Whether vlcp could not answer (as opposed to refusing what it was sent)."""
    return error.status in RETRIED


class Writer:
    """One vlcp API, written with `attempts` tries `backoff` seconds apart (doubling)."""

    def __init__(self, client: Client, *, attempts: int = 3, backoff: float = 0.5) -> None:
        self.client = client
        self.attempts = attempts
        self.backoff = backoff

    def retried(self, call: Callable[[], T]) -> T:
        """`call()`, again while it fails with a status in `RETRIED`; the last error raised."""
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except ApiError as error:
                if not unavailable(error) or attempt == self.attempts:
                    raise
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    def create(self, kind: str, body: Body) -> dict[str, Any]:
        """Create `body`; if its id exists already, update that object to `body` instead."""
        try:
            return self.retried(lambda: self.client.create(kind, body))
        except ApiError as error:
            if error.status != 409 or error.field != "id":
                raise
        changes = {name: value for name, value in body.items() if name not in _FIXED}
        return self.update(kind, body["id"], changes)

    def update(self, kind: str, id: str, changes: Body) -> dict[str, Any]:
        return self.retried(lambda: self.client.update(kind, id, changes))

    def delete(self, kind: str, id: str) -> None:
        """Delete `id`; one already gone is deleted."""
        self._unless_gone(lambda: self.client.delete(kind, id))

    def add_interface(self, router: str, body: Body) -> None:
        """Attach `router` to `body["subnet"]`; one attached already is attached."""
        try:
            self.retried(lambda: self.client.add_interface(router, body))
        except ApiError as error:
            if error.status != 409 or body["subnet"] not in _attached(self.client, router):
                raise

    def remove_interface(self, router: str, subnet: str) -> None:
        """Detach `router` from `subnet`; one detached already (or gone) is detached."""
        self._unless_gone(lambda: self.client.remove_interface(router, subnet))

    def _unless_gone(self, call: Callable[[], object]) -> None:
        """`call()` retried, a 404 (what it removes is not there) taken as done."""
        try:
            self.retried(call)
        except ApiError as error:
            if error.status != 404:
                raise


def _attached(client: Client, router: str) -> set[str]:
    return {interface["subnet"] for interface in client.interfaces(router)}


_FIXED = frozenset({"id", "logicalnetwork", "physicalnetwork", "cidr"})
"""Fields set at creation that an update may not send (vlcp refuses to move an object)."""
