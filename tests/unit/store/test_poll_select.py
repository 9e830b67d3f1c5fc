"""`poll_select` keeps `select.select`'s contract for kazoo's connection thread."""

from __future__ import annotations

import socket
import time

import pytest

from vlcp.store.zookeeper.handler import poll_select


def test_readiness_is_reported_per_object_given() -> None:
    a, b = socket.socketpair()
    try:
        assert poll_select([a], [], [], 0) == ([], [], [])
        assert poll_select([], [a], [], 0) == ([], [a], [])  # an empty buffer is writable
        b.send(b"x")
        assert poll_select([a, b.fileno()], [b], [], 1) == ([a], [b], [])
        b.close()
        assert poll_select([a], [], [], 1) == ([a], [], [])  # the peer closed: readable (EOF)
    finally:
        a.close()
        b.close()


def test_the_timeout_is_in_seconds() -> None:
    a, b = socket.socketpair()
    try:
        began = time.monotonic()
        assert poll_select([a], [], [], 0.2) == ([], [], [])
        assert time.monotonic() - began >= 0.15
    finally:
        a.close()
        b.close()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        poll_select([], [], [], -1)
    with pytest.raises(TypeError):
        poll_select([object()], [], [], 0)
