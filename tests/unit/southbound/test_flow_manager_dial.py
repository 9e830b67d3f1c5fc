"""Dialling a switch never gives up, whatever the switch does (busy, silent, gone).

A vswitchd adding thousands of ports at once stops answering for seconds: the echo
times out, and the next connection's handshake too. That must cost reconnections, never
the controller (it once ended the agent with an unhandled ConnectionClosed).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from vlcp.southbound.flow_manager import FlowManager
from vlcp.southbound.openflow.server import OpenFlowServer


async def test_a_switch_that_never_says_hello_is_dialled_again_and_again(tmp_path: Path) -> None:
    path = str(tmp_path / "silent.mgmt")
    accepted = 0
    third = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writers.append(writer)  # keep it open, say nothing: the handshake times out
        if accepted >= 3:
            third.set()

    listener = await asyncio.start_unix_server(silent, path)
    server = OpenFlowServer(handshake_timeout=0.1)
    dialling = asyncio.create_task(FlowManager(server).dial(f"unix:{path}", retry=0.01))
    try:
        async with asyncio.timeout(10):
            await third.wait()
        assert not dialling.done()  # still dialling, not crashed
    finally:
        dialling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dialling
        for writer in writers:
            writer.close()
        listener.close()
        await server.close()
