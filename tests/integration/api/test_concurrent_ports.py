"""Two `vlcp api` processes on one ZooKeeper: 200 concurrent port creations into one subnet.

The subnet's pool holds 150 addresses. Half the requests go to each process, all sent at
once (one thread and one connection per request, released together by a barrier), none
giving an address. Exactly 150 must get a 201, with 150 distinct addresses of the pool;
the other 50 a 409 saying the pool is exhausted; nothing a 5xx. The ports listed
afterwards must be exactly the ones answered 201, and the whole store must satisfy the
model's invariants (no orphaned address or MAC key, counters exact).
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.lab.services import ZooKeeperServer
from tests.unit.model.invariants import check
from vlcp.store import open_store

from .server import ApiServer, start_api, stop_api

pytestmark = pytest.mark.slow

REQUESTS = 200
POOL = ("10.40.0.10", "10.40.0.159")
POOL_SIZE = 150
EXHAUSTED = f"no free address in the pool {POOL[0]}-{POOL[1]} of subnet s: all are in use"


@dataclass(frozen=True)
class Outcome:
    server: int
    status: int
    body: Any


@pytest.fixture
def two_apis(zookeeper: ZooKeeperServer, tmp_path: Path) -> Iterator[list[ApiServer]]:
    """Two API processes sharing a private chroot of the session's ZooKeeper."""
    url = f"zookeeper://{zookeeper.hosts}/api-ports-{uuid.uuid4().hex[:12]}?timeout=5"
    servers: list[ApiServer] = []
    try:
        for _ in range(2):
            servers.append(start_api(tmp_path, store_url=url))
        yield servers
    finally:
        statuses = [stop_api(server) for server in servers]
        assert statuses == [0] * len(servers), [s.log.read_text()[-3000:] for s in servers]


def create_topology(api: ApiServer) -> None:
    client = api.client()
    client.create("physical-networks", {"id": "p", "type": "vxlan", "vnirange": [[1, 100]]})
    client.create("logical-networks", {"id": "n", "physicalnetwork": "p"})
    client.create(
        "subnets",
        {
            "id": "s",
            "logicalnetwork": "n",
            "cidr": "10.40.0.0/24",
            "gateway": "10.40.0.1",
            "allocated_start": POOL[0],
            "allocated_end": POOL[1],
        },
    )


def create_ports_at_once(servers: list[ApiServer]) -> list[Outcome]:
    """POST every port concurrently: each thread connects first, then all send together."""
    barrier = threading.Barrier(REQUESTS)
    body = json.dumps({"logicalnetwork": "n", "subnet": "s"})

    def one(index: int) -> Outcome:
        server = index % len(servers)
        address = urlsplit(servers[server].url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        try:
            connection.connect()
            barrier.wait(timeout=30)
            connection.request(
                "POST", "/v1/logical-ports", body, {"Content-Type": "application/json"}
            )
            answer = connection.getresponse()
            return Outcome(server, answer.status, json.loads(answer.read()))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        return list(pool.map(one, range(REQUESTS)))


def test_two_api_processes_fill_one_subnet_exactly(two_apis: list[ApiServer]) -> None:
    create_topology(two_apis[0])
    started = time.monotonic()
    outcomes = create_ports_at_once(two_apis)
    elapsed = time.monotonic() - started

    statuses = Counter(o.status for o in outcomes)
    assert not [o for o in outcomes if o.status >= 500], statuses
    assert statuses == {201: POOL_SIZE, 409: REQUESTS - POOL_SIZE}, statuses
    for refused in (o for o in outcomes if o.status == 409):
        assert refused.body["error"]["status"] == 409
        assert refused.body["error"]["message"] == EXHAUSTED, refused.body

    created = {o.body["id"]: o.body for o in outcomes if o.status == 201}
    assert len(created) == POOL_SIZE
    addresses = {ipaddress.ip_address(p["ip_address"]) for p in created.values()}
    low, high = (ipaddress.ip_address(a) for a in POOL)
    assert len(addresses) == POOL_SIZE and all(low <= a <= high for a in addresses)
    assert len({p["mac_address"] for p in created.values()}) == POOL_SIZE
    by_server = Counter(o.server for o in outcomes if o.status == 201)
    assert len(by_server) == 2, by_server  # both processes really competed

    for api in two_apis:  # both processes see the same store, and exactly the 201s
        listed = {p["id"]: p for p in api.client().list("logical-ports", {"logicalnetwork": "n"})}
        assert listed == {id: {**port, "status": None} for id, port in created.items()}
    check(asyncio.run(_whole_store(two_apis[0].store_url)))
    print(f"\n{REQUESTS} POSTs to 2 API processes on ZooKeeper: {elapsed:.2f}s, {dict(by_server)}")


async def _whole_store(url: str) -> dict[str, Any]:
    store = await open_store(url)
    try:
        return (await store.read_prefix("")).values
    finally:
        await store.close()
