"""What hypervisors and hosts share: a namespace to run commands in, captures, and teardown.

Teardown runs every step even when one fails (:func:`close_quietly`), so one broken piece
never leaves the rest of a topology behind.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Self, SupportsBytes

from vlcp.lab.lifecycle import StartStop
from vlcp.lab.netns import DEFAULT_TIMEOUT, run
from vlcp.lab.ovs.capture import PcapCapture

log = logging.getLogger(__name__)

_SEND_SCRIPT = """
import socket, sys
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((sys.argv[1], 0))
for line in sys.stdin:
    if line.strip():
        sock.send(bytes.fromhex(line))
"""
"""Sends hex-encoded frames from stdin on a raw socket (runs inside the namespace)."""


def close_quietly(closer: Callable[[], object], what: str, errors: list[str]) -> None:
    """Run one cleanup step; record its failure so the remaining steps still run."""
    try:
        closer()
    except Exception as exc:
        log.warning("cleanup of %s failed: %s", what, exc)
        errors.append(f"{what}: {exc}")


class NamespaceObject(StartStop):
    """Base of a lab object that owns one network namespace (``netns``) and its captures.

    Subclasses provide ``start()`` and ``stop(remove_dir=...)`` (:class:`StartStop` makes
    the object a context manager with them).
    """

    netns: str

    capture_class: ClassVar[type[PcapCapture]] = PcapCapture
    """What ``capture()`` starts; the test lab installs its scapy-decoding subclass here."""

    def __init__(self) -> None:
        self._captures: list[PcapCapture] = []

    def start(self) -> Self:
        raise NotImplementedError

    def send(self, *packets: SupportsBytes | bytes, iface: str = "eth0") -> None:
        """Send crafted frames (scapy packets or raw bytes) out of ``iface``, unchanged.

        A short-lived python in our namespace writes them to an AF_PACKET socket: nothing
        switches namespaces inside the test process, and the frames are built by scapy
        here, so what the test crafted is exactly what goes on the wire.
        """
        frames = "\n".join(bytes(packet).hex() for packet in packets) + "\n"
        self.exec(sys.executable, "-I", "-c", _SEND_SCRIPT, iface, input=frames)

    def stop(self, *, remove_dir: bool = True) -> None:
        raise NotImplementedError

    def exec(
        self,
        *cmd: str,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside this object's namespace."""
        return run(*cmd, netns=self.netns, check=check, timeout=timeout, input=input)

    def _start_capture(self, directory: Path, iface: str, bpf: str) -> PcapCapture:
        """tcpdump on ``iface`` of our namespace into a numbered pcap in ``directory``."""
        path = directory / f"{iface}-{len(self._captures)}.pcap"
        capture = self.capture_class(self.netns, path, iface=iface, bpf=bpf)
        self._captures.append(capture)
        return capture.start()

    def _stop_captures(self, errors: list[str]) -> None:
        """Stop every capture (first teardown step); failures go to ``errors``."""
        for capture in self._captures:
            close_quietly(capture.stop, f"capture {capture.path}", errors)
        self._captures.clear()
