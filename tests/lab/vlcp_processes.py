"""`vlcp run` and `vlcp api` as separate processes, the way users run them.

Each process reads a TOML configuration file written here and logs to a file beside it; it
is started, stopped (SIGTERM), killed (SIGKILL) and started again by its own PID through
:class:`~tests.lab.services.process.ManagedProcess`, so a test sees exactly what a crash or
a restart does to the others. A :class:`Controller` is the `vlcp run` of one lab hypervisor
(`[api] enabled = false`, `[agent] enabled = true`); an :class:`ApiProcess` is the cloud's
`vlcp api`; a :class:`VtepProcess` the `vlcp vtep run` of one hardware switch. Readiness
is a condition, never a delay: the API answers `/v1/health`; a controller's run announced
itself (`servers/<node>` names its PID) and its bridge exists; a VTEP controller reported
its switch.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.lab.services.process import STOP_TIMEOUT, ManagedProcess, _scrubbed_env
from tests.lab.waiting import eventually
from vlcp.client import ApiError, Client
from vlcp.lab.naming import free_tcp_ports
from vlcp.lab.ovs import Hypervisor
from vlcp.lab.processes import read_tail
from vlcp.lab.servers import BRIDGE, agent_config, run_settings
from vlcp.layout import vtep_switch
from vlcp.store import Store

VLCP = (sys.executable, "-m", "vlcp.cli")
START_TIMEOUT = 30.0
"""Seconds until a process must be ready; generous because 2 vCPUs may run several JVMs."""


def toml(settings: Mapping[str, Any]) -> str:
    """Settings as TOML: top-level scalars first, then one table per nested mapping.

    One level of tables is all vlcp's settings have; None means "not set" and is left out.
    """
    lines = [_entry(k, v) for k, v in settings.items() if not isinstance(v, Mapping)]
    for name, table in settings.items():
        if isinstance(table, Mapping):
            lines += ["", f"[{name}]", *(_entry(k, v) for k, v in table.items())]
    return "\n".join(line for line in lines if line is not None) + "\n"


def _entry(key: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, str):
        text = json.dumps(value)  # a JSON string is a TOML basic string
    else:
        raise TypeError(f"{key}: cannot write {type(value).__name__} as a TOML value")
    return f"{key} = {text}"


class VlcpProcess:
    """One long-running `vlcp` command: its configuration file, its log, its life by PID.

    ``start()`` may follow ``stop()`` or ``kill()`` any number of times; the log accumulates
    across runs, so a failure shows what every run said.
    """

    def __init__(
        self,
        name: str,
        directory: Path,
        settings: Mapping[str, Any],
        command: Sequence[str],
        *,
        pythonpath: Sequence[Path] = (),
    ) -> None:
        """`pythonpath`: directories put first on the process's PYTHONPATH (packages it
        should find installed, e.g. a module package and its `.dist-info`)."""
        self.name = name
        self.config = directory / f"{name}.toml"
        self.log = directory / f"{name}.log"
        self.config.write_text(toml(settings))
        env = _scrubbed_env(("VLCP_",))  # only the file configures it
        if pythonpath:
            paths = [str(path) for path in pythonpath]
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [*paths, env.get("PYTHONPATH")]))
        self._process = ManagedProcess(
            [*VLCP, "--config", str(self.config), *command], cwd=directory, output=self.log, env=env
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process.running

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def start(self) -> None:
        """Spawn the process (readiness is the subclass's ``ready()``)."""
        self._process.start()

    def terminate(self) -> None:
        """SIGTERM without waiting, so that several processes stop in parallel."""
        self._process.terminate()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """A clean stop: SIGTERM, wait (SIGKILL after ``timeout``); the exit status."""
        self._process.stop(timeout)
        return self.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, nothing gets to clean up."""
        self._process.kill()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return read_tail(self.log, lines)
        except OSError as exc:
            return f"({self.log}: {exc.strerror})"

    async def details(self) -> str:
        """The log's tail, for a timed-out wait (see :func:`~tests.lab.waiting.eventually`)."""
        return self.log_tail()

    def assert_running(self) -> None:
        """Fail with the log's tail if the process has exited."""
        if not self.running:
            raise AssertionError(
                f"{self.name} exited with status {self.returncode}:\n{self.log_tail()}"
            )


class Controller(VlcpProcess):
    """The `vlcp run` of one lab hypervisor: the controller alone, no API."""

    def __init__(
        self,
        hv: Hypervisor,
        node: str,
        directory: Path,
        store_url: str,
        *,
        session_ttl: float,
        listen: bool = False,
        pythonpath: Sequence[Path] = (),
    ) -> None:
        self.hv = hv
        self.node = node
        config = agent_config(hv, node, listen=listen, session_ttl=session_ttl)
        settings = run_settings(config, store_url)
        super().__init__(f"vlcp-run-{node}", directory, settings, ["run"], pythonpath=pythonpath)

    async def ready(self, store: Store, timeout: float = START_TIMEOUT) -> None:
        """Wait until this run announced itself (`servers/<node>` names its PID, which
        tells it from a killed run's leftover) and the bridge exists; fail if it exited."""
        key = f"servers/{self.node}"

        async def announced() -> bool:
            self.assert_running()
            value = (await store.read([key])).values.get(key)
            if not isinstance(value, dict) or value.get("pid") != self.pid:
                return False
            return BRIDGE in (await asyncio.to_thread(self.hv.vsctl, "list-br")).split()

        await eventually(announced, timeout, what=f"{self.name} to start", details=self.details)


class VtepProcess(VlcpProcess):
    """A `vlcp vtep run`: the VTEP controller of one emulated hardware switch."""

    def __init__(
        self, manager: str, switch: str, directory: Path, store_url: str, node: str
    ) -> None:
        self.node = node
        self.switch = switch
        settings = {
            "node_name": node,
            "store": {"url": store_url},
            "vtep": {"manager": manager, "switch": switch},
        }
        super().__init__(f"vlcp-vtep-{node}", directory, settings, ["vtep", "run"])

    async def active(self, store: Store) -> bool:
        """Whether this instance writes the switch: it holds the lock and reported so."""
        self.assert_running()
        key = vtep_switch(self.switch)
        report = (await store.read([key])).values.get(key)
        return isinstance(report, dict) and report.get("controller") == self.node

    async def ready(self, store: Store, timeout: float = START_TIMEOUT) -> None:
        """Wait until this instance is the switch's active controller."""
        await eventually(
            lambda: self.active(store), timeout, what=f"{self.name} active", details=self.details
        )


class ApiProcess(VlcpProcess):
    """The cloud's `vlcp api` on a free loopback port."""

    def __init__(self, directory: Path, store_url: str, name: str = "vlcp-api") -> None:
        listen = f"127.0.0.1:{free_tcp_ports(1)[0]}"
        self.url = f"http://{listen}"
        settings = {"store": {"url": store_url}, "api": {"listen": listen}}
        super().__init__(name, directory, settings, ["api"])

    def client(self) -> Client:
        return Client(self.url)

    async def ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until `/v1/health` answers (the API reached the store); fail if it exited."""
        probe = Client(self.url, timeout=2)

        async def healthy() -> bool:
            self.assert_running()
            try:
                return (await asyncio.to_thread(probe.health))["status"] == "ok"
            except ApiError:
                return False

        await eventually(healthy, timeout, what=f"{self.name} to answer", details=self.details)


class AsyncApi:
    """REST v1 over HTTP (:class:`vlcp.client.Client`) for async tests: a thread per call.

    The calls the end-to-end tests make, named as the model's, so a test describes its
    networks the way a user's script would.
    """

    def __init__(self, client: Client) -> None:
        self.client = client

    async def create(self, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self.client.create, kind, body)

    async def get(self, kind: str, id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.client.get, kind, id)

    async def delete(self, kind: str, id: str) -> None:
        await asyncio.to_thread(self.client.delete, kind, id)

    async def modules(self, server: str | None = None) -> dict[str, Any]:
        """`GET /v1/modules`: every server's modules (or one server's)."""
        return await asyncio.to_thread(self.client.modules, server)

    async def change_modules(
        self, action: str, modules: list[str], *, server: str | None = None
    ) -> dict[str, Any]:
        """`POST /v1/modules/<action>` (load, unload, reload): the wanted sets written."""
        return await asyncio.to_thread(self.client.change_modules, action, modules, server=server)

    async def wait_port_up(self, id: str, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """The port once a server reports it up (`?wait=up`); ApiError 408 after ``timeout``."""
        return await asyncio.to_thread(
            self.client.get, "logical-ports", id, wait="up", timeout=timeout
        )
