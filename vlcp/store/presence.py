"""Presence: a few keys that say "this process is alive", kept for as long as it lives.

A `Session` ends for good when the store expires it (a store outage longer than the
session timeout can do that). A process that must stay up through any outage, such as
a controller, cannot end with it: `Presence` opens a new session whenever the last one
expired and writes its keys again, so the process rejoins by itself when the store is
back, without a restart.

Only liveness belongs here (`servers/<node>`, `chassis/<system id>`): the keys vanish
while the session is gone. State other servers act on, such as where a port is, must not
be a presence key, or a store outage would withdraw it everywhere.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .errors import SessionLost, StoreError
from .session import Session
from .store import Store

log = logging.getLogger(__name__)


class Presence:
    """Keys held through a liveness session that is reopened whenever it expires."""

    def __init__(self, store: Store, ttl: float, *, retry: float = 1.0) -> None:
        self.store = store
        self.ttl = ttl
        self.retry = retry
        self.session: Session | None = None
        self.joined = asyncio.Event()
        """Set while a session holds every key; cleared while rejoining."""
        self.rejoins = 0
        """Sessions opened after the first one expired (for logs and tests)."""
        self._keys: dict[str, Any] = {}

    async def put(self, key: str, value: Any) -> None:
        """Hold `key` = `value` from now on; written at once if the store is reachable.

        While the store is away the value is kept and written when the session is back.
        """
        self._keys[key] = value
        # A session still writing its keys took them before this one, so write it too.
        if self.session is not None and not self.session.lost.is_set():
            try:
                await self.session.put(key, value)
            except (StoreError, SessionLost) as exc:
                log.warning("presence: %s is written once the store is back: %s", key, exc)

    async def run(self) -> None:
        """Hold the keys until cancelled: join, wait for the session to expire, rejoin."""
        while True:
            session = await self._join()
            await session.lost.wait()
            self.joined.clear()
            self.rejoins += 1
            log.warning("presence: the store expired our session; rejoining")

    async def _join(self) -> Session:
        """A new session holding every key, retried until the store answers."""
        while True:
            try:
                session = await self.store.open_session(ttl=self.ttl)
            except StoreError as exc:
                log.info("presence: cannot open a session yet: %s", exc)
                await asyncio.sleep(self.retry)
                continue
            self.session = session
            try:
                await session.put_many(dict(self._keys))
            except (StoreError, SessionLost) as exc:
                log.info("presence: session %s could not write its keys: %s", session.id, exc)
                await self._abandon(session)
                await asyncio.sleep(self.retry)
                continue
            self.joined.set()
            return session

    async def _abandon(self, session: Session) -> None:
        """End a session that never held its keys (its leftovers are reaped)."""
        try:
            await session.close()
        except (StoreError, SessionLost) as exc:
            log.debug("presence: session %s is left to the reaper: %s", session.id, exc)

    async def close(self) -> None:
        """End the current session now, deleting its keys (when the store is reachable)."""
        self.joined.clear()
        if self.session is not None:
            await self._abandon(self.session)
