"""The ZooKeeper backend: the mixins of this package assembled, and its life cycle."""

from __future__ import annotations

import asyncio
import contextlib
import json
from functools import partial

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError
from kazoo.retry import KazooRetry

from ..backend import Backend, ScopeFeed
from ..lifecycle import start_or_close
from .commit import Commits
from .handler import PollHandler
from .kazoo_bridge import KazooBridge, failed_op
from .liveness import Liveness
from .scopes import ZooKeeperScopeFeed
from .url import parse_url


class ZooKeeperBackend(Commits, Liveness, Backend):
    """A store in a ZooKeeper ensemble (tested with ZooKeeper 3.8)."""

    name = "zookeeper"

    async def start(self) -> None:
        """Connect (StoreUnavailable after `timeout`) and create the layout if missing."""
        client = KazooClient(
            hosts=self.config.hosts,
            timeout=self.config.session_timeout,
            handler=PollHandler(),
            # Reconnect forever, at least once a second and four times within a call's
            # `timeout`: a call that waits for the connection sees members that come back.
            connection_retry=KazooRetry(
                max_tries=-1,
                delay=0.05,
                backoff=2,
                max_delay=min(1.0, self.config.timeout / 4),
            ),
        )
        self._client = client
        self._zk = KazooBridge(client, asyncio.get_running_loop(), self.config)
        client.start_async()
        await self._zk.wait_connected()
        await self._create_layout()
        await self._refresh_head()

    def scope_feed(self, since: int) -> ScopeFeed:
        """Filtered by ZooKeeper: watches of the followed scopes' entries only (`scopes`)."""
        return ZooKeeperScopeFeed(self, since)

    async def _create_layout(self) -> None:
        """Create the root's znodes in one multi, so a half-made layout never exists."""
        zk, client = self._require()
        parts = self.config.root.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            path = "/" + "/".join(parts[:depth])
            await zk.run_one(partial(client.create_async, path, b""))  # NodeExists is fine
        txn = client.transaction()
        txn.create(self._data_root, b"")
        txn.create(self._log_root, json.dumps({"first": 0}).encode())
        txn.create(self._segment_path(0), b"")
        txn.create(self._head_path, b"0")
        txn.create(self._gc_path, b"")
        txn.create(self._live_root, b"")
        txn.create(self._scopes_root, b"")
        results = await zk.run_one(txn.commit_async)
        failed = failed_op(results)
        if failed is not None and not isinstance(results[failed], NodeExistsError):
            raise zk.unavailable(f"cannot create the store layout: {results[failed]!r}")

    async def close(self) -> None:
        """Stop background work and the kazoo client; ephemeral liveness znodes go with it."""
        if self._closed:
            return
        self._closed = True
        for event in list(self._wakers):
            event.set()
        await self._tasks.cancel()
        if self._zk is not None:
            self._zk.closed = True
            self._zk.state_changed.set()
        if self._client is not None:
            stopping = asyncio.get_running_loop().run_in_executor(
                None, self._stop_client, self._client
            )
            # a thread cannot be cancelled: past the bound it is left to finish on its own
            await asyncio.wait([stopping], timeout=self.config.timeout + 1)

    @staticmethod
    def _stop_client(client: KazooClient) -> None:
        """Blocking (it joins kazoo's threads): run off the event loop."""
        with contextlib.suppress(Exception):
            client.stop()
        with contextlib.suppress(Exception):
            client.close()


async def open_zookeeper(url: str) -> ZooKeeperBackend:
    """Connect to the ensemble named by `url` and prepare the layout (StoreUnavailable if down)."""
    backend = ZooKeeperBackend(parse_url(url))
    return await start_or_close(backend, backend.start)
