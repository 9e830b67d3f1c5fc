"""Modules as an operator manages them: a change through the API, then a wait on what the
controllers report (`GET /v1/modules`) until each has done what its wanted set asks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.lab.waiting import eventually

from .conftest import Cloud

Report = dict[str, Any]
"""One server of `GET /v1/modules` (docs/api.md, "Modules")."""


async def applied(
    cloud: Cloud,
    done: Callable[[Report], bool] = lambda report: True,
    *,
    what: str = "every controller to apply its wanted module set",
    timeout: float = 30,
) -> dict[str, Report]:
    """Wait until every server of `cloud` reports nothing pending, no error, and `done`;
    returns the reports by server."""
    last: dict[str, Report] = {}

    async def finished() -> bool:
        nonlocal last
        view = await cloud.api.modules()
        last = {r["server"]: r for r in view["servers"] if r["server"] in cloud.servers}
        return last.keys() == cloud.servers.keys() and all(
            r["reported"]
            and r["pending"] is not None
            and not any(r["pending"].values())
            and not r["errors"]
            and done(r)
            for r in last.values()
        )

    async def why() -> str:
        fields = ("loaded", "wanted", "pending", "errors", "generations", "reload")
        return json.dumps({s: {f: r.get(f) for f in fields} for s, r in last.items()}, indent=1)

    await eventually(finished, timeout, what=what, details=why)
    return last
