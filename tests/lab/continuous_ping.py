"""A ping that runs in the background while a test breaks things, and counts every loss.

:class:`ContinuousPing` runs :mod:`tests.lab.pinger` in a host's namespace (20 requests a
second by default) from before a failure until after the recovery; its report says how
many requests went unanswered and when they left, so "0 lost" covers every moment, not
only the end state.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from tests.lab.pinger import DRAIN
from tests.lab.services.process import ManagedProcess, ServiceError, wait_until
from vlcp.lab.netns import netns_prefix
from vlcp.lab.ovs import Host

PINGER = Path(__file__).with_name("pinger.py")
INTERVAL = 0.05
"""Seconds between requests: 20 per second."""


@dataclass(frozen=True)
class PingReport:
    """What one continuous ping saw, from its start to its stop."""

    label: str
    sent: int
    received: int
    started: float
    """Wall time of the first request."""
    lost_at: tuple[float, ...]
    """Wall time each unanswered request left."""

    @property
    def lost(self) -> int:
        return self.sent - self.received

    def __str__(self) -> str:
        text = f"{self.label}: {self.sent} sent, {self.received} received, {self.lost} lost"
        if self.lost_at:
            text += " at " + ", ".join(self._spans())
        return text

    def _spans(self) -> list[str]:
        """Losses as runs of seconds after the start, e.g. "+3.10..+3.85 s (16)"."""
        spans: list[list[float]] = []
        for at in self.lost_at:
            offset = at - self.started
            if spans and offset - spans[-1][-1] <= 2 * INTERVAL:
                spans[-1].append(offset)
            else:
                spans.append([offset])
        return [f"+{s[0]:.2f}..+{s[-1]:.2f} s ({len(s)})" for s in spans]


class ContinuousPing:
    """Echo requests from ``host`` to ``ip`` every ``interval`` seconds until :meth:`stop`."""

    def __init__(
        self, host: Host, ip: str, directory: Path, *, label: str, interval: float = INTERVAL
    ) -> None:
        self.label = label
        self.output = directory / f"ping-{label}.log"
        argv = [*netns_prefix(host.netns), sys.executable, "-I", str(PINGER), ip, str(interval)]
        self._process = ManagedProcess(
            argv, cwd=directory, output=self.output, env=dict(os.environ)
        )

    def start(self, timeout: float = 10.0) -> Self:
        """Start pinging; return once a reply came back (the path works before the test)."""
        self._process.start()
        wait_until(
            self._flowing,
            timeout=timeout,
            what=f"a first reply to {self.label}",
            details=self._process.read_output,
        )
        return self

    def terminate(self) -> None:
        """Stop sending, without waiting (several pings then drain at once)."""
        self._process.terminate()

    def stop(self) -> PingReport:
        """Stop sending, let the last replies arrive, and report."""
        self._process.stop(DRAIN + 10)
        lines = self._process.read_output().splitlines()
        result = json.loads(lines[-1]) if lines and '"sent"' in lines[-1] else None
        if result is None:
            raise ServiceError(
                f"pinger {self.label} reported nothing:\n{self._process.read_output()}"
            )
        return PingReport(
            self.label,
            result["sent"],
            result["received"],
            result["started"],
            tuple(result["lost_at"]),
        )

    def _flowing(self) -> bool:
        if not self._process.running:
            raise ServiceError(f"pinger {self.label} exited:\n{self._process.read_output()}")
        return '"first_reply"' in self._process.read_output()
