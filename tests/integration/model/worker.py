"""A model client in its own OS process, for the multi-process tests.

    python -m tests.integration.model.worker URL LOGNET SUBNET COUNT NAME

Connects, prints "ready", waits for a line on stdin (so every worker starts at once),
then creates COUNT logical ports concurrently with automatic addresses and prints one
JSON line per outcome: {"ok": port} or {"status": 409, "error": message}.
"""

from __future__ import annotations

import asyncio
import json
import sys

from vlcp.model import Model, ModelError
from vlcp.store import open_store


async def create_ports(url: str, lognet: str, subnet: str, count: int, name: str) -> None:
    store = await open_store(url)
    model = Model(store)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    async def one(index: int) -> dict:
        body = {"id": f"{name}-{index}", "logicalnetwork": lognet, "subnet": subnet}
        try:
            return {"ok": await model.create("logical-ports", body)}
        except ModelError as exc:
            return {"status": exc.status, "error": exc.message}

    for outcome in await asyncio.gather(*(one(i) for i in range(count))):
        print(json.dumps(outcome), flush=True)
    await store.close()
    print("done", flush=True)


def main() -> None:
    url, lognet, subnet, count, name = sys.argv[1:]
    asyncio.run(create_ports(url, lognet, subnet, int(count), name))


if __name__ == "__main__":
    main()
