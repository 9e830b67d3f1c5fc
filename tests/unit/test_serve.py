"""`vlcp.serve.ApiServer`: the web API as a task of `vlcp run` and `vlcp demo`."""

from __future__ import annotations

import asyncio
import socket

import pytest

from vlcp.serve import ApiServer
from vlcp.store import Store

from .test_transaction import MemoryBackend


async def test_a_taken_port_raises_oserror_and_leaves_nothing_to_stop() -> None:
    """uvicorn calls sys.exit() when it cannot listen; a SystemExit escaping a task stops
    the event loop itself, so the server turns it into the OSError `start` promises."""
    store = Store(MemoryBackend())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        api = ApiServer(store, "127.0.0.1", taken.getsockname()[1])
        with pytest.raises(OSError, match="exited while starting"):
            await api.start()
    assert api.task is None
    await api.stop()
    await store.close()


async def test_stop_ends_the_server_and_propagates_the_callers_cancellation() -> None:
    store = Store(MemoryBackend())
    api = ApiServer(store, "127.0.0.1", 0)
    await api.start()
    assert api.task is not None
    server = api.task
    stopping = asyncio.create_task(api.stop())
    await asyncio.sleep(0)  # stop() now waits for the graceful shutdown (uvicorn ticks at 0.1 s)
    assert not stopping.done() and not server.done()
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert not server.done()  # the caller's cancellation is not the server's
    await api.stop()
    assert server.done() and not server.cancelled()  # it ended gracefully
    await store.close()
