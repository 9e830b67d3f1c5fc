"""An agent in process for the length of a test, on a lab hypervisor and its own store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from tests.lab.ovs import Hypervisor
from vlcp.agent.agent import Agent
from vlcp.lab.servers import wait_for_bridge
from vlcp.store import Store
from vlcp.tasks import stop_tasks


@contextlib.asynccontextmanager
async def running(agent: Agent, hv: Hypervisor, store: Store) -> AsyncIterator[None]:
    """Run `agent` until the block ends, from the moment its bridge exists; then stop it
    and close `store` (a failure to close does not hide the block's own)."""
    task = asyncio.create_task(agent.run())
    try:
        await wait_for_bridge(hv, task)
        yield
    finally:
        await stop_tasks([task])
        with contextlib.suppress(Exception):
            await store.close()
