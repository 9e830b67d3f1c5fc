"""A real Neutron API server beside a real vlcp cloud: fixtures for tests/e2e/neutron."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.lab.naming import unique_name
from tests.lab.neutron import NeutronServer, build_venv
from tests.lab.waiting import eventually

from ..conftest import Cloud

NeutronFactory = Callable[..., Awaitable[NeutronServer]]
"""``await neutron_factory(cloud, **ml2_vlcp_options)``: a started Neutron on `cloud`'s API."""

_NEUTRONS = pytest.StashKey[list[NeutronServer]]()


@pytest.fixture(scope="session")
def neutron_venv() -> Path:
    """Neutron's own venv: built by the first test that needs it, reused afterwards."""
    return build_venv()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The embedded store only: the driver talks to the API, whatever store is behind it."""
    return f"sqlite://{tmp_path}/{unique_name('s')}.db"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator:
    """A failing test's report ends with the tail of Neutron's log (the driver logs there)."""
    report: pytest.TestReport = yield
    if report.failed:
        for server in item.stash.get(_NEUTRONS, []):
            report.sections.append((f"neutron-server ({server.log})", server.log_tail(80)))
    return report


@pytest.fixture
async def neutron_factory(
    request: pytest.FixtureRequest, neutron_venv: Path, tmp_path: Path
) -> AsyncIterator[NeutronFactory]:
    """Neutron servers on a cloud's `vlcp api`, each in a private dir, stopped by PID."""
    started: list[NeutronServer] = request.node.stash.setdefault(_NEUTRONS, [])

    async def start(cloud: Cloud, **options: str) -> NeutronServer:
        directory = tmp_path / unique_name("neutron")
        server = NeutronServer(neutron_venv, directory, cloud.api.client.url, **options)
        started.append(server)
        await asyncio.to_thread(server.start)

        async def ready() -> bool:
            return await asyncio.to_thread(server.ready)

        await eventually(ready, 60, what="neutron-server to answer")
        return server

    yield start
    for server in started:
        server.stop()
