"""A real `vlcp api` process, as users run it: started on a free loopback port, ready once
/v1/health answers, stopped by its PID.

Shared by the API integration tests (see conftest.py's `api` fixture) and bench/api.py, so
both measure and test the server exactly as it is deployed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlcp.client import Client
from vlcp.store import open_store

VLCP = [sys.executable, "-m", "vlcp.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ApiServer:
    url: str
    store_url: str
    process: subprocess.Popen[str]
    log: Path
    """The server's output (stdout and stderr), for failure messages."""
    token: str | None = None

    def client(self, **kwargs: Any) -> Client:
        return Client(self.url, token=kwargs.pop("token", self.token), **kwargs)

    def vlcp(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a `vlcp` client verb against this server."""
        extra = ["--token", self.token] if self.token and "--token" not in args else []
        command = [*VLCP, *args, "--api", self.url, *extra]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)

    def put(self, key: str, value: Any) -> None:
        """Write a key straight into the store, as a controller would."""

        async def write() -> None:
            db = await open_store(self.store_url)
            try:
                await db.transact(_put(key, value))
            finally:
                await db.close()

        asyncio.run(write())


def _put(key: str, value: Any) -> Any:
    async def fn(txn: Any) -> None:
        txn.put(key, value)

    return fn


def start_api(directory: Path, token: str | None = None, store_url: str | None = None) -> ApiServer:
    """Start `vlcp api` on a free loopback port and wait until /v1/health answers.

    The store defaults to a sqlite database in `directory`; the server's output goes there
    too (`ApiServer.log`), so a failure can show it.
    """
    port = free_port()
    store_url = store_url or f"sqlite://{directory}/state.db"
    command = [*VLCP, "api", "--store", store_url, "--listen", f"127.0.0.1:{port}"]
    if token:
        command += ["--token", token]
    log_path = directory / f"api-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115  (closed with the process)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
    log.close()
    server = ApiServer(f"http://127.0.0.1:{port}", store_url, process, log_path, token)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            output = log_path.read_text()
            raise RuntimeError(f"vlcp api exited with {process.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(f"{server.url}/v1/health", timeout=2) as answer:
                if json.load(answer)["status"] == "ok":
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_api(server)
            raise RuntimeError("vlcp api did not answer /v1/health within 30 s")
        time.sleep(0.05)


def stop_api(server: ApiServer) -> int:
    """SIGTERM by PID; returns the exit status (killed if it does not stop in 15 s)."""
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGTERM)
        try:
            return server.process.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait(5)
    return server.process.returncode
