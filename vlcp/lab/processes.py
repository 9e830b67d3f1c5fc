"""Helpers for the children the lab spawns itself: a bounded stop, and their logs' tails.

Shared by the tcpdump captures of the OVS lab, the OVS daemons and the service lab's servers.
A ``Popen`` is only ever signalled through its own object: ``Popen.send_signal`` does nothing
once the child was reaped, so a recycled pid can never be hit by mistake.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def wait_or_kill(popen: subprocess.Popen[bytes], timeout: float, kill_timeout: float) -> None:
    """Wait up to ``timeout`` for the child to exit, then SIGKILL it and wait ``kill_timeout``.

    Raises :class:`subprocess.TimeoutExpired` only if the child survives even SIGKILL.
    """
    try:
        popen.wait(timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(kill_timeout)


def read_tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a (possibly large) log file; raises OSError if unreadable.

    Only the last 64 KiB are read, so a chatty server's log costs nothing to quote.
    """
    with path.open("rb") as stream:
        stream.seek(0, os.SEEK_END)
        stream.seek(max(0, stream.tell() - 64 * 1024))
        data = stream.read().decode(errors="replace")
    return "\n".join(data.splitlines()[-lines:])
