"""The `api` fixture: a real `vlcp api` process on a sqlite store (see server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .server import ApiServer, start_api, stop_api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiServer]:
    server = start_api(tmp_path)
    try:
        yield server
    finally:
        status = stop_api(server)
        assert status == 0, server.log.read_text()
