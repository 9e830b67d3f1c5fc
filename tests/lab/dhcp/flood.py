"""A workload that floods: raw frames sent from a lab host's eth0, paced, for a while.

A hostile or broken VM is just a namespace sending what it likes, so the sender is a
small Python program run in the host's namespace (an AF_PACKET socket: the frames go out
exactly as given, malformed ones too). It sends the frames in turn, `rate` a second in
batches every `TICK` (catching up after a stall), for at least `least` seconds and then
until the `stop` file exists, at most `seconds`, and prints how many it sent and for how
long. It ends by itself, so a test that fails meanwhile leaves nothing running for long;
a test stops it when what it measures during the flood is done, however long that took
on a loaded machine.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vlcp.lab.netns import netns_prefix

TICK = 0.01
"""Seconds between two batches."""

_SENDER = """
import os, socket, sys, time
iface, path, stop = sys.argv[1], sys.argv[6], sys.argv[7]
rate, least, seconds, tick = map(float, sys.argv[2:6])
frames = [bytes.fromhex(line) for line in open(path).read().split()]
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((iface, 0))
start = time.monotonic()
sent = 0
while (now := time.monotonic()) < start + seconds:
    if now >= start + least and os.path.exists(stop):
        break
    due = int((now - start) * rate) + 1
    while sent < due:
        sock.send(frames[sent % len(frames)])
        sent += 1
    time.sleep(tick)
print(sent, time.monotonic() - start)
"""


@dataclass(frozen=True)
class Flooded:
    sent: int
    seconds: float


def flood(
    netns: str,
    frames: Sequence[bytes],
    *,
    rate: float,
    least: float,
    seconds: float,
    stop: Path,
    workdir: Path,
) -> Flooded:
    """Send `frames` in turn out of `netns`'s eth0 for `least` seconds, then until `stop`
    exists (at most `seconds`); how many were sent, in how long."""
    path = workdir / "flood.frames"
    path.write_text("\n".join(frame.hex() for frame in frames))
    argv = [sys.executable, "-c", _SENDER, "eth0", *map(str, (rate, least, seconds, TICK))]
    done = subprocess.run(
        [*netns_prefix(netns), *argv, str(path), str(stop)],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the flood sender failed: {done.stderr}")
    sent, took = done.stdout.split()
    return Flooded(int(sent), float(took))
