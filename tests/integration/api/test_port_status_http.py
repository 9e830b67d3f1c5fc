"""A logical port's status, read with the port over HTTP from a real `vlcp api` process.

The status key (`lport-status/<id>`) is written here as a controller writes it, straight
into the store the API serves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from vlcp.model.service import Model
from vlcp.store import open_store
from vlcp.store.limits import MAX_TXN_READS

from .server import ApiServer
from .test_rest_http import build_topology, refused
from .test_vlcp_http import Vlcp, literal

UP = {"state": "up", "host": "hv1", "since": 1764756263.25}
DOWN = {"state": "down", "host": "hv2", "since": 1764756300.0}


def test_a_port_is_read_with_its_status(api: ApiServer) -> None:
    client = api.client()
    build_topology(client)
    created = client.create("logical-ports", {"id": "a", "logicalnetwork": "ln", "subnet": "sn"})
    assert "status" not in created, "a create answers the stored object"
    client.create("logical-ports", {"id": "b", "logicalnetwork": "ln"})
    client.create("logical-ports", {"id": "c", "logicalnetwork": "ln"})
    port = client.get("logical-ports", "a")
    assert port["status"] is None and list(port)[-1] == "status"
    assert port["ip_address"] == "10.0.0.2"

    api.put("lport-status/a", UP)
    api.put("lport-status/c", DOWN)
    assert client.get("logical-ports", "a")["status"] == UP
    assert client.get("logical-ports", "c", wait=None)["status"] == DOWN
    first, after = client.list_page("logical-ports", limit=2)
    second, last = client.list_page("logical-ports", limit=2, after=after)
    assert last is None
    assert {p["id"]: p["status"] for p in first + second} == {"a": UP, "b": None, "c": DOWN}
    filtered = list(client.list("logical-ports", {"logicalnetwork": "ln", "subnet": "sn"}))
    assert [(p["id"], p["status"]) for p in filtered] == [("a", UP)]

    client.delete("logical-ports", "a")
    with refused(404, text="a"):
        client.get("logical-ports", "a")
    client.create("logical-ports", {"id": "a", "logicalnetwork": "ln"})
    assert client.get("logical-ports", "a")["status"] is None, "the model deleted the old one"


def test_status_is_read_only(api: ApiServer) -> None:
    client = api.client()
    build_topology(client)
    with refused(422, "status", "read only"):
        client.create("logical-ports", {"id": "a", "logicalnetwork": "ln", "status": UP})
    client.create("logical-ports", {"id": "a", "logicalnetwork": "ln"})
    with refused(422, "status", "read only"):
        client.update("logical-ports", "a", {"status": UP})
    update = {"action": "update", "kind": "logical-ports", "id": "a", "body": {"status": None}}
    with refused(422, "operations[1].status", "read only"):
        client.batch([{"action": "delete", "kind": "logical-ports", "id": "a"}, update])
    with refused(400, "status", "servers report"):
        client.list_page("logical-ports", {"status": "null"})
    vlcp = Vlcp(api)
    got, body = vlcp.call("viperflow/updatelogicalport", id="a", status="`None`")
    assert got == 422 and "status: is read only" in body["error"], body
    vlcp.fails(422, "viperflow/createlogicalports", "read only", ports=literal([{"status": UP}]))
    assert client.get("logical-ports", "a")["status"] is None, "nothing was written"


def test_a_full_page_reads_its_statuses_at_once(api: ApiServer, tmp_path: Path) -> None:
    """A page of 1000 ports (the store's read limit per transaction) and 1001 statuses."""
    client = api.client()
    build_topology(client)
    ids = [f"p{index:04d}" for index in range(MAX_TXN_READS + 1)]
    for start in range(0, len(ids), 250):
        bodies = [{"id": i, "logicalnetwork": "ln"} for i in ids[start : start + 250]]
        client.batch([{"action": "create", "kind": "logical-ports", "body": b} for b in bodies])
    api.put(f"lport-status/{ids[-1]}", UP)
    page, after = client.list_page("logical-ports", limit=MAX_TXN_READS)
    assert len(page) == MAX_TXN_READS and after == ids[-2]
    assert all(p["status"] is None for p in page)
    last, after = client.list_page("logical-ports", after=after)
    assert [(p["id"], p["status"]) for p in last] == [(ids[-1], UP)] and after is None

    async def statuses() -> dict[str, dict | None]:
        store = await open_store(api.store_url)
        try:
            return await Model(store).port_statuses(ids)
        finally:
            await store.close()

    every = asyncio.run(statuses())
    assert len(every) == len(ids) and every[ids[-1]] == UP and every[ids[0]] is None
