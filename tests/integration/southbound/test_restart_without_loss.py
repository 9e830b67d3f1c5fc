"""The reconciler on a real OVS: restarts cost no flow-mods and no packets.

A controller process owns a secure bridge's flows. It is restarted 20 times (killed or
stopped) while two hosts ping each other 50 times a second: not one packet may be lost,
and each reconnection must find the table already right and send nothing.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.fixtures_ovs import HostFactory
from tests.lab.marks import needs_ovs_lab
from tests.lab.ovs import Hypervisor

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    needs_ovs_lab,
]

REPO = Path(__file__).resolve().parents[3]
RESTARTS = 20


class ControllerProcess:
    """`flow_controller.py` in a subprocess, with its `synced ...` lines as results."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.southbound.flow_controller", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.next_line() == "started"

    def next_line(self, timeout: float = 30.0) -> str:
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()))
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            self.stop(signal.SIGKILL)
            raise AssertionError(f"controller said nothing: {self.proc.stderr.read()[-2000:]}")
        return result[0].strip()

    def synced(self) -> tuple[int, int]:
        line = self.next_line()
        match = re.fullmatch(r"synced added=(\d+) deleted=(\d+)", line)
        assert match, line
        return int(match[1]), int(match[2])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def bridge(hypervisor: Hypervisor, host_factory: HostFactory, tmp_path: Path) -> Iterator[dict]:
    """A secure bridge controlled through a unix socket, with two hosts on it."""
    socket = tmp_path / "of.sock"
    hypervisor.add_bridge(
        "br0", fail_mode="secure", controller=hypervisor.controller_target(socket)
    )
    h1 = host_factory(hypervisor, "br0", "10.0.0.1/24")
    h2 = host_factory(hypervisor, "br0", "10.0.0.2/24")
    dpid = hypervisor.vsctl("get", "bridge", "br0", "datapath_id").strip('"')
    yield {
        "target": hypervisor.mgmt_target("br0"),
        "dpid": dpid,
        "ports": (str(h1.ofport), str(h2.ofport)),
        "hosts": (h1, h2),
        "hv": hypervisor,
    }


def test_restarts_send_nothing_and_lose_no_packet(bridge: dict) -> None:
    args = (bridge["target"], bridge["dpid"], *bridge["ports"], "--filler", "200")
    controller = ControllerProcess(*args)
    assert controller.synced() == (202, 0)
    h1, h2 = bridge["hosts"]
    assert h1.ping_ok(h2.ip)

    pings = PingRounds(h1, h2.ip)
    pings.start()
    try:
        for restart in range(RESTARTS):
            controller.stop(signal.SIGKILL if restart % 2 else signal.SIGTERM)
            controller = ControllerProcess(*args)
            assert controller.synced() == (0, 0), f"restart {restart} sent flow-mods"
            pings.wait_for_round()  # traffic really crossed each restart
    finally:
        controller.stop()
        sent, received = pings.finish()
    assert sent >= PingRounds.COUNT * RESTARTS
    assert received == sent, f"{sent - received} of {sent} pings lost across {RESTARTS} restarts"


def test_a_one_percent_change_sends_only_that(bridge: dict) -> None:
    args = (bridge["target"], bridge["dpid"], *bridge["ports"], "--filler", "1000")
    controller = ControllerProcess(*args)
    assert controller.synced() == (1002, 0)
    controller.stop()
    controller = ControllerProcess(*args, "--variant", "10")
    try:
        # 10 flows changed their actions: 10 adds replace them in place, and 10 strict
        # deletes of the old cookies clean up (no-ops once replaced); nothing else is sent
        assert controller.synced() == (10, 10)
    finally:
        controller.stop()
    flows = bridge["hv"].dump_flows("br0")
    assert len(flows) == 1002
    assert sum("output:1001" in f for f in flows) == 1  # reg0=0 now outputs to 1001


class PingRounds:
    """Back-to-back rounds of `ping -i 0.02` (50/s) until told to finish.

    Each round ends by its own count, so every packet's reply is awaited: a lost packet is
    a packet the network dropped, never one cut off by stopping the measurement.
    """

    COUNT = 25
    """Packets per round: half a second of pinging."""

    def __init__(self, host: object, ip: str) -> None:
        self.host, self.ip = host, ip
        self.sent = self.received = self.rounds = 0
        self._round_done = threading.Condition()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            ping = ["ping", "-q", "-n", "-i", "0.02", "-c", str(self.COUNT), "-W", "2", self.ip]
            out = subprocess.run(
                ["ip", "netns", "exec", self.host.netns, *ping],
                capture_output=True,
                text=True,
                timeout=60,
            )
            match = re.search(r"(\d+) packets transmitted, (\d+) received", out.stdout)
            if not match:
                self.errors.append(out.stdout + out.stderr)
                return
            with self._round_done:
                self.sent += int(match[1])
                self.received += int(match[2])
                self.rounds += 1
                self._round_done.notify_all()

    def wait_for_round(self) -> None:
        """Return once a round that started after this call has finished."""
        with self._round_done:
            target = self.rounds + 2
            assert self._round_done.wait_for(lambda: self.rounds >= target or self.errors, 30)

    def finish(self) -> tuple[int, int]:
        self._done.set()
        self._thread.join(90)
        assert not self.errors, self.errors
        return self.sent, self.received
