"""Every flow change on a switch while a test runs, with its cookie: ``ovs-ofctl monitor``.

Comparing flow tables before and after a failure misses a flow deleted and added back in
between, which is a flush the dataplane feels. :class:`FlowWatcher` keeps an OpenFlow flow
monitor (``watch:!initial``) open on the bridge's management socket, a file that works from
any namespace, and records each event, so a test can assert that no flow was deleted at
any moment. A watcher that exited early (its vswitchd died) is told apart from one that saw
nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from tests.lab.services.process import ManagedProcess, ServiceError, wait_until
from vlcp.lab.ovs import Hypervisor
from vlcp.lab.ovs.daemon import ovs_env

_EVENT = re.compile(
    r"event=(?P<event>[A-Z]+)(?: reason=(?P<reason>\S+))? table=(?P<table>\d+)"
    r"(?: cookie=(?P<cookie>0x[0-9a-f]+))?"
)
_READY = "FLOW_MONITOR reply"
"""The switch's answer to the monitor request; events come after it."""


@dataclass(frozen=True)
class FlowEvent:
    """One change the switch reported."""

    event: str
    """ADDED, DELETED or MODIFIED."""
    reason: str | None
    """For a deletion: delete (a controller's), idle_timeout, hard_timeout, eviction..."""
    table: int
    cookie: int
    line: str

    def __str__(self) -> str:
        return self.line.strip()


class FlowWatcher:
    """``ovs-ofctl monitor <bridge> watch:!initial`` on one lab switch until :meth:`stop`."""

    def __init__(self, hv: Hypervisor, bridge: str, directory: Path, *, label: str) -> None:
        self.label = label
        self.output = directory / f"flows-{label}.log"
        argv = ["ovs-ofctl", "-O", "OpenFlow13", "monitor", hv.mgmt_target(bridge)]
        self._process = ManagedProcess(
            [*argv, "watch:!initial"],
            cwd=directory,
            output=self.output,
            env={**os.environ, **ovs_env(hv.dir)},
        )

    def start(self, timeout: float = 10.0) -> Self:
        """Start watching; return once the switch has accepted the monitor."""
        self._process.start()
        what = f"the flow monitor of {self.label}"
        wait_until(self._ready, timeout=timeout, what=what, details=self._process.read_output)
        return self

    @property
    def running(self) -> bool:
        """False once the monitor ended by itself (its switch went away)."""
        return self._process.running

    def events(self) -> list[FlowEvent]:
        """Every change reported so far, oldest first."""
        return [
            FlowEvent(
                m["event"],
                m["reason"],
                int(m["table"]),
                int(m["cookie"] or "0", 16),
                line,
            )
            for line in self._process.read_output().splitlines()
            if (m := _EVENT.search(line))
        ]

    def deletions(self) -> list[FlowEvent]:
        return [e for e in self.events() if e.event == "DELETED"]

    def stop(self) -> None:
        self._process.stop()

    def _ready(self) -> bool:
        if not self._process.running:
            raise ServiceError(
                f"flow monitor of {self.label} exited:\n{self._process.read_output()}"
            )
        return _READY in self._process.read_output()
