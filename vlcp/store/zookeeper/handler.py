"""kazoo's threading handler, with a `select` that costs one system call.

kazoo's connection thread calls its handler's `select` for every request sent and every
answer read. The stock handler builds an epoll selector each time (`epoll_create`, one
`epoll_ctl` per descriptor, `epoll_wait`, `close`): measured here, most of a watcher's
CPU per commit. `poll` takes the descriptors with the call itself and has no limit on
their values (unlike `select.select`, whose descriptors must stay below 1024).
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Any

from kazoo.handlers.threading import SequentialThreadingHandler
from kazoo.handlers.utils import fileobj_to_fd

_READ = select.POLLIN | select.POLLPRI
_WRITE = select.POLLOUT
_DONE = select.POLLHUP | select.POLLERR | select.POLLNVAL
"""A closed or failed descriptor is ready: the read or write that follows says how."""


def poll_select(
    rlist: Sequence[Any], wlist: Sequence[Any], xlist: Sequence[Any], timeout: float | None = None
) -> tuple[list[Any], list[Any], list[Any]]:
    """`select.select`'s contract (the objects given back, ready for reading or writing),
    with one `poll` call; `xlist` is not watched (kazoo passes none)."""
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must be non-negative")
    wanted: dict[int, int] = {}
    for objects, mask in ((rlist, _READ), (wlist, _WRITE)):
        for fileobj in objects:
            fd = fileobj_to_fd(fileobj)
            wanted[fd] = wanted.get(fd, 0) | mask
    poller = select.poll()
    for fd, mask in wanted.items():
        poller.register(fd, mask)
    ready = dict(poller.poll(None if timeout is None else timeout * 1000))
    readable = [f for f in rlist if ready.get(fileobj_to_fd(f), 0) & (_READ | _DONE)]
    writable = [f for f in wlist if ready.get(fileobj_to_fd(f), 0) & (_WRITE | _DONE)]
    return readable, writable, []


class PollHandler(SequentialThreadingHandler):
    """kazoo's `SequentialThreadingHandler` with `poll_select`."""

    def select(self, *args: Any, **kwargs: Any) -> tuple[list[Any], list[Any], list[Any]]:
        return poll_select(*args, **kwargs)
