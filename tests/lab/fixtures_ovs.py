"""pytest fixtures for private OVS hypervisors and namespace hosts (see tests/lab/ovs/).

Registered through ``pytest_plugins`` in tests/conftest.py. Every fixture is function
scoped: a topology is cheap (a hypervisor starts in about 0.1 s) and sharing one between
tests would let flows from one test leak into the next.

Teardown keeps the private directories (OVS logs, pcaps) of a failed test and prints where
they are; a passing test leaves nothing behind. SIGTERM is turned into KeyboardInterrupt
for the session so that a killed run still tears down like Ctrl-C does, and the atexit hook
in tests/lab/netns.py removes whatever a crash left registered.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tests.lab.ovs import Host, Hypervisor, OvsLab, missing_tools

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
_previous_sigterm: Any = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember each phase's report so fixture teardown knows whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _test_failed(request: pytest.FixtureRequest) -> bool:
    """Whether setup or the test body of the requesting test failed."""
    reports = request.node.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


def _sigterm_to_interrupt(signum: int, frame: FrameType | None) -> None:
    """Let SIGTERM unwind like Ctrl-C, so fixture teardown and atexit hooks run."""
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """Install the SIGTERM handler, unless someone else already handles SIGTERM."""
    global _previous_sigterm
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        _previous_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put the previous SIGTERM handler back."""
    global _previous_sigterm
    if _previous_sigterm is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _previous_sigterm)
        _previous_sigterm = None


def _require_lab() -> None:
    """Skip (not fail) where the lab cannot run: not root, or OVS tools missing."""
    if os.geteuid() != 0:
        pytest.skip("the OVS lab needs root (network namespaces)")
    missing = missing_tools()
    if missing:
        pytest.skip(f"the OVS lab needs {', '.join(missing)}")


@pytest.fixture
def ovs_lab(request: pytest.FixtureRequest) -> Iterator[OvsLab]:
    """The owner of every hypervisor and host of one test; tears them down afterwards."""
    _require_lab()
    lab = OvsLab()
    dirs: list[str] = []
    try:
        yield lab
    finally:
        keep = _test_failed(request)
        if keep:
            dirs = [str(d) for d in map(_artifact_dir, lab.objects) if d is not None]
        lab.close(keep_dirs=keep)
        if dirs:
            print(f"OVS lab logs kept in: {' '.join(dirs)}", file=sys.stderr)


def _artifact_dir(obj: Hypervisor | Host) -> Path | None:
    """The directory holding an object's logs or pcaps, if it made one."""
    if isinstance(obj, Hypervisor):
        return obj.dir if obj.started else None
    return obj.capture_dir


class HypervisorFactory:
    """Makes started hypervisors: ``factory()`` one, ``factory.many(n)`` several."""

    def __init__(self, lab: OvsLab) -> None:
        self._lab = lab

    def __call__(self, name: str = "hv") -> Hypervisor:
        return self._lab.hypervisor(name)

    def many(self, count: int, prefix: str = "hv") -> list[Hypervisor]:
        """``count`` hypervisors labelled ``hv0``, ``hv1``, ..."""
        return [self(f"{prefix}{i}") for i in range(count)]


@pytest.fixture
def hypervisor_factory(ovs_lab: OvsLab) -> HypervisorFactory:
    """Make any number of private OVS hypervisors, each in its own namespace."""
    return HypervisorFactory(ovs_lab)


@pytest.fixture
def hypervisor(hypervisor_factory: HypervisorFactory) -> Hypervisor:
    """One started private OVS hypervisor."""
    return hypervisor_factory("hv")


HostFactory = Callable[..., Host]
"""``host_factory(hypervisor, bridge, ip, *, mac=, port_name=, ofport=, iface_id=, name=)``"""


@pytest.fixture
def host_factory(ovs_lab: OvsLab) -> HostFactory:
    """Make namespace hosts plugged into a hypervisor bridge (see :class:`Host`)."""
    return ovs_lab.host
