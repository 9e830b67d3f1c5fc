"""The container integrations' end-to-end tests: real runtimes on lab servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lab.naming import unique_name


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The embedded store only: the plugins talk to the API, whatever store is behind it,
    and every store backend is tested end to end by the other tests."""
    return f"sqlite://{tmp_path}/{unique_name('s')}.db"
