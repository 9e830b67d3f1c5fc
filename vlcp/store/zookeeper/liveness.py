"""Liveness sessions as ephemeral znodes, which ZooKeeper deletes with our session."""

from __future__ import annotations

import json
from functools import partial

from kazoo.exceptions import NodeExistsError, NoNodeError

from .core import ZooKeeperCore


class Liveness(ZooKeeperCore):
    """live_start, live_refresh, live_sessions and live_end of the backend contract."""

    async def live_start(self, session_id: str, ttl: float) -> None:
        """An ephemeral znode: alive until this process's ZooKeeper session ends.

        `ttl` is not used: ZooKeeper's session timeout (`session_timeout`) decides.
        """
        zk, client = self._require()
        path = self._live_path(session_id)
        data = json.dumps({"ttl": ttl}).encode()
        created = await zk.run_one(partial(client.create_async, path, data, ephemeral=True))
        if isinstance(created, NodeExistsError):  # left by an earlier ZooKeeper session
            await zk.run(
                [
                    partial(client.delete_async, path),
                    partial(client.create_async, path, data, ephemeral=True),
                ]
            )

    async def live_refresh(self, session_id: str, ttl: float) -> bool:
        """True while the znode lives, owned by the current ZooKeeper session."""
        zk, client = self._require()
        stat = await zk.run_one(partial(client.exists_async, self._live_path(session_id)))
        owner = client.client_id
        if owner is None:  # disconnected right after answering: undecided, not expired
            raise zk.unavailable("connection lost while refreshing a session")
        return stat is not None and stat.ephemeralOwner == owner[0]

    async def live_sessions(self) -> set[str]:
        zk, client = self._require()
        names = await zk.run_one(partial(client.get_children_async, self._live_root))
        return set() if isinstance(names, NoNodeError) else set(names)

    async def live_end(self, session_id: str) -> None:
        zk, client = self._require()
        await zk.run_one(partial(client.delete_async, self._live_path(session_id)))
