"""tcpdump captures inside a lab namespace, written to a pcap file.

Decoding the packets needs scapy, a test-only dependency: the test lab's
``tests.lab.ovs.capture.Capture`` extends :class:`PcapCapture` with it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

from vlcp.lab.netns import (
    CommandError,
    ProcessRef,
    netns_prefix,
    register_process,
    stop_process,
    wait_until,
)
from vlcp.lab.processes import wait_or_kill


class PcapCapture:
    """A tcpdump writing a pcap inside a namespace.

    ``--immediate-mode`` and ``-U`` make each packet reach the file at once, so a test can
    poll for the packet it expects instead of sleeping. ``-Z root`` stops Debian's tcpdump
    from dropping to the ``tcpdump`` user, which could not write into our 0700 directory.
    """

    def __init__(self, netns: str, path: Path, *, iface: str = "eth0", bpf: str = "") -> None:
        self.netns = netns
        self.path = path
        self.iface = iface
        self.bpf = bpf
        self._proc: subprocess.Popen[bytes] | None = None
        self._ref: ProcessRef | None = None
        self._stderr = path.with_suffix(".stderr")

    def start(self, timeout: float = 5.0) -> Self:
        """Launch tcpdump and wait until it reports "listening on" (it is then capturing)."""
        argv = [
            *netns_prefix(self.netns),
            "tcpdump",
            "-i",
            self.iface,
            "-n",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-w",
            str(self.path),
        ]
        if self.bpf:
            argv.append(self.bpf)
        with self._stderr.open("wb") as err:
            self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        self._ref = register_process(ProcessRef(marker=str(self.path), pid=self._proc.pid))
        wait_until(self._listening, timeout=timeout, message=f"tcpdump on {self.iface}")
        return self

    def _listening(self) -> bool:
        """Whether tcpdump said it is listening; raises if it died instead."""
        assert self._proc is not None
        text = self._stderr.read_text(errors="replace")
        if "listening on" in text:
            return True
        if self._proc.poll() is not None:
            raise CommandError(self._proc.args, self._proc.returncode, "", text)  # type: ignore[arg-type]
        return False

    def stop(self) -> object:
        """Stop tcpdump (SIGTERM flushes and closes the file); subclasses return the packets."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            wait_or_kill(self._proc, 5, 5)
        if self._ref is not None:
            stop_process(self._ref)  # only forgets it by now: it has exited
        return None

    def __enter__(self) -> Self:
        return self if self._proc else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
