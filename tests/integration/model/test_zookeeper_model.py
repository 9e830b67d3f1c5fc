"""The model on a real ZooKeeper, driven by two OS processes at once.

Two API-like processes, each with its own store connection, create 200 ports with
automatic addresses in one /24 whose pool holds 150 addresses: exactly 150 succeed, no
address is handed out twice, the other 50 get a 409 naming the pool, and the store's
counters and allocation keys agree with the ports (the same invariants as the unit tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.unit.model.invariants import check
from vlcp.model import Model
from vlcp.store import open_store

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
PORTS_PER_WORKER = 100
POOL = ("10.20.0.10", "10.20.0.159")  # 150 addresses


def _url(hosts: str) -> str:
    """A private chroot per test: tests share the session's ZooKeeper server."""
    return f"zookeeper://{hosts}/model-{uuid.uuid4().hex[:12]}?timeout=10&session_timeout=10"


async def _spawn(url: str, name: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.model.worker",
        url,
        "n",
        "s",
        str(PORTS_PER_WORKER),
        name,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    assert line == b"ready\n", line + await process.stderr.read()  # type: ignore[union-attr]
    return process


async def _finish(process: asyncio.subprocess.Process) -> list[dict]:
    stdout, stderr = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, stderr.decode()[-3000:]
    lines = stdout.decode().splitlines()
    assert lines[-1] == "done", stderr.decode()[-3000:]
    return [json.loads(line) for line in lines[:-1]]


async def test_two_processes_fill_one_subnet_exactly(zookeeper) -> None:  # type: ignore[no-untyped-def]
    url = _url(zookeeper.hosts)
    store = await open_store(url)
    try:
        model = Model(store)
        await model.create(
            "physical-networks", {"id": "p", "type": "vxlan", "vnirange": [[1, 100]]}
        )
        await model.create("logical-networks", {"id": "n", "physicalnetwork": "p"})
        await model.create(
            "subnets",
            {
                "id": "s",
                "logicalnetwork": "n",
                "cidr": "10.20.0.0/24",
                "gateway": "10.20.0.1",
                "allocated_start": POOL[0],
                "allocated_end": POOL[1],
            },
        )
        workers = [await _spawn(url, name) for name in ("a", "b")]
        started = time.monotonic()
        for worker in workers:
            worker.stdin.write(b"go\n")  # type: ignore[union-attr]
            await worker.stdin.drain()  # type: ignore[union-attr]
        outcomes = [o for w in workers for o in await _finish(w)]
        elapsed = time.monotonic() - started

        created = [o["ok"] for o in outcomes if "ok" in o]
        refused = [o for o in outcomes if "ok" not in o]
        assert len(outcomes) == 2 * PORTS_PER_WORKER
        assert {o["status"] for o in refused} <= {409}, refused[:3]
        assert len(created) == 150 and len(refused) == 50
        assert all(
            o["error"] == f"no free address in the pool {POOL[0]}-{POOL[1]} of subnet s: "
            "all are in use"
            for o in refused
        )
        addresses = [ipaddress.ip_address(p["ip_address"]) for p in created]
        assert len(set(addresses)) == 150
        low, high = (ipaddress.ip_address(a) for a in POOL)
        assert all(low <= a <= high for a in addresses)
        by_worker = {name: sum(p["id"].startswith(name) for p in created) for name in "ab"}
        assert all(by_worker.values()), by_worker  # both processes really competed

        values = (await store.read_prefix("")).values
        check(values)
        assert values["subnet-state/s"]["allocated"] == 150
        assert values["lognet-state/n"]["ports"] == 150
        print(f"\n200 creations by 2 processes on ZooKeeper: {elapsed:.2f}s, split {by_worker}")
    finally:
        await store.close()


async def test_wait_port_up_and_batch_on_zookeeper(zookeeper) -> None:  # type: ignore[no-untyped-def]
    """Readiness is a watch (another connection writes the status); a failed batch is void."""
    from vlcp.model import Conflict, Op, TimedOut

    url = _url(zookeeper.hosts)
    api, controller = await open_store(url), await open_store(url)
    try:
        model = Model(api)
        await model.batch(
            [
                Op(
                    "create",
                    "physical-networks",
                    body={"id": "p", "type": "vlan", "vlanrange": [[10, 11]]},
                ),
                Op("create", "logical-networks", body={"id": "n", "physicalnetwork": "p"}),
                Op("create", "logical-ports", body={"id": "w", "logicalnetwork": "n"}),
            ]
        )
        before = (await api.read_prefix("")).values
        with pytest.raises(
            Conflict, match=r"operation 2 .*VLAN id 10 of physical network p is already used"
        ):
            await model.batch(
                [
                    Op("create", "logical-ports", body={"id": "x", "logicalnetwork": "n"}),
                    Op(
                        "create",
                        "logical-networks",
                        body={"id": "m", "physicalnetwork": "p", "vlanid": 11},
                    ),
                    Op(
                        "create",
                        "logical-networks",
                        body={"id": "o", "physicalnetwork": "p", "vlanid": 10},
                    ),
                ]
            )
        assert (await api.read_prefix("")).values == before
        with pytest.raises(TimedOut):
            await model.wait_port_up("w", 0.3)

        async def bind() -> None:
            await asyncio.sleep(0.3)

            async def write(txn):  # type: ignore[no-untyped-def]
                # as a controller reports it: located on h1 and up there, in one transaction
                mac = before["lport/w"]["mac_address"]
                located = {"host": "h1", "vtep": None, "mac": mac, "ip": None}
                txn.put("netports/n/w", located)
                txn.put("lport-status/w", {"state": "up", "host": "h1", "since": time.time()})

            await controller.transact(write)

        task = asyncio.create_task(bind())
        port = await model.wait_port_up("w", 10)
        await task
        assert port["status"]["host"] == "h1"
        check((await api.read_prefix("")).values)
    finally:
        await api.close()
        await controller.close()
