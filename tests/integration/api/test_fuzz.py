"""Schemathesis over the whole OpenAPI document: no request may produce a 5xx.

The app runs in-process (schemathesis's ASGI transport) on the real model and a sqlite
store in tmp_path, so the store is always up and 503 cannot happen by construction. Every
operation gets valid (positive) and invalid (negative) requests; each answer must not be
a server error and must match the response schema the document declares. Examples are
bounded (`EXAMPLES` per operation and mode) and derandomized so the run is repeatable
(about a minute; its time is printed, never asserted).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from vlcp.api import create_app
from vlcp.model.service import Model
from vlcp.store import Store, open_store

EXAMPLES = 8
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    db = asyncio.run(open_store(f"sqlite://{tmp_path}/state.db"))
    try:
        yield db
    finally:
        asyncio.run(db.close())


def test_no_request_gets_a_server_error(store: Store) -> None:
    app = create_app(Model(store), max_wait=0.5)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    sent = 0
    operations = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def exercise(case: Any) -> None:
                nonlocal sent
                sent += 1
                case.call_and_validate(checks=CHECKS)

            try:
                exercise()
            except Unsatisfiable:
                pass  # no invalid request exists for this operation (e.g. only a path id)
            except Exception as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}"[:3000])
    elapsed = time.monotonic() - started
    print(f"schemathesis: {operations} operations, {sent} requests, {elapsed:.1f} s")
    assert operations > 100 and sent > 10 * operations
    assert not failures, "\n\n".join(failures)
