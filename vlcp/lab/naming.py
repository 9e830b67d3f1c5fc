"""Unique names and free ports for one test run.

Every namespace, bridge, temp dir and port a test creates carries the run prefix, so two
runs on one machine never collide and leftovers are easy to attribute.
"""

from __future__ import annotations

import itertools
import os
import socket
import tempfile
from pathlib import Path

RUN_PREFIX = f"vt{os.getpid() % 100000:05d}"
"""Short (namespace and interface names are limited to 15 characters) and unique per run."""

_counter = itertools.count(1)


def unique_name(kind: str) -> str:
    """A name such as ``vt01234h3``: run prefix, a one-letter kind and a per-run counter."""
    name = f"{RUN_PREFIX}{kind[:1]}{next(_counter)}"
    if len(name) > 15:
        raise ValueError(f"name {name!r} exceeds the 15-character interface limit")
    return name


def private_dir(kind: str) -> Path:
    """A fresh directory under /tmp named after the run, for one service instance."""
    return Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}-{kind}-"))


def free_tcp_ports(count: int) -> list[int]:
    """Ports on 127.0.0.1 that nothing listens on right now (held open until all are chosen)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def set_run_prefix(prefix: str) -> None:
    """Use ``prefix`` for the names made from now on (``vlcp demo`` uses its own, ``vd...``)."""
    global RUN_PREFIX
    if not prefix or len(prefix) > 9 or not prefix.isalnum():
        raise ValueError(f"run prefix {prefix!r} must be 1-9 letters or digits")
    RUN_PREFIX = prefix
