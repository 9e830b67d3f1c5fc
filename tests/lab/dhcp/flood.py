"""A workload that floods: raw frames sent from a lab host's eth0, paced, for a while.

A hostile or broken VM is just a namespace sending what it likes, so the sender is a
small Python program run in the host's namespace (an AF_PACKET socket: the frames go out
exactly as given, malformed ones too). It sends the frames in turn, `rate` a second in
batches every `TICK`, for `seconds`, and prints how many it sent. It ends by itself, so a
test that fails meanwhile leaves nothing running for long.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from vlcp.lab.netns import netns_prefix

TICK = 0.01
"""Seconds between two batches."""

_SENDER = """
import socket, sys, time
iface, path = sys.argv[1], sys.argv[5]
rate, seconds, tick = map(float, sys.argv[2:5])
frames = [bytes.fromhex(line) for line in open(path).read().split()]
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((iface, 0))
start = time.monotonic()
sent = 0
while (now := time.monotonic()) < start + seconds:
    due = int((now - start) * rate) + 1
    while sent < due:
        sock.send(frames[sent % len(frames)])
        sent += 1
    time.sleep(tick)
print(sent)
"""


def flood(
    netns: str, frames: Sequence[bytes], *, rate: float, seconds: float, workdir: Path
) -> int:
    """Send `frames` in turn out of `netns`'s eth0; returns how many were sent."""
    path = workdir / "flood.frames"
    path.write_text("\n".join(frame.hex() for frame in frames))
    argv = [sys.executable, "-c", _SENDER, "eth0", str(rate), str(seconds), str(TICK), str(path)]
    done = subprocess.run(
        [*netns_prefix(netns), *argv], capture_output=True, text=True, timeout=seconds + 30
    )
    if done.returncode != 0:
        raise RuntimeError(f"the flood sender failed: {done.stderr}")
    return int(done.stdout)
