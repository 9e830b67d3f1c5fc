"""REST v1 over HTTP against a real `vlcp api` process on a sqlite store."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from vlcp.client import ApiError, Client

from .server import ApiServer, start_api, stop_api


def refused(status: int, field: str | None = None, text: str = "") -> Any:
    """Context manager: the call fails with this status, field and message text."""

    class Check:
        def __enter__(self) -> None:
            return None

        def __exit__(self, kind: Any, error: Any, trace: Any) -> bool:
            assert isinstance(error, ApiError), f"expected an ApiError {status}, got {error!r}"
            assert error.status == status, str(error)
            assert error.field == field, str(error)
            assert text in error.message, str(error)
            return True

    return Check()


def raw(api: ApiServer, method: str, path: str, body: bytes, content_type: str) -> Any:
    """A request with a body the client would never send; returns (status, JSON)."""
    request = urllib.request.Request(api.url + path, data=body, method=method)
    request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def build_topology(client: Client) -> None:
    client.create("physical-networks", {"id": "pn", "type": "vlan", "vlanrange": [[100, 199]]})
    client.create("physical-ports", {"id": "pp", "physicalnetwork": "pn", "name": "eth1"})
    client.create("logical-networks", {"id": "ln", "physicalnetwork": "pn"})
    client.create(
        "subnets",
        {"id": "sn", "logicalnetwork": "ln", "cidr": "10.0.0.0/24", "gateway": "10.0.0.1"},
    )


def test_create_read_update_delete_every_kind(api: ApiServer) -> None:
    client = api.client()
    build_topology(client)
    assert client.get("physical-networks", "pn")["vlanrange"] == [[100, 199]]
    assert client.get("physical-ports", "pp")["systemid"] == "%"
    network = client.get("logical-networks", "ln")
    assert 100 <= network["vlanid"] <= 199
    port = client.create("logical-ports", {"id": "lp", "logicalnetwork": "ln", "subnet": "sn"})
    assert port["ip_address"].startswith("10.0.0.") and port["ip_address"] != "10.0.0.1"
    assert port["mac_address"]
    router = client.create("routers", {"id": "r"})
    assert router["id"] == "r"

    assert client.update("physical-networks", "pn", {"vlanrange": [[100, 299]]})["vlanrange"]
    assert client.update("physical-ports", "pp", {"bridge": "br-ex"})["bridge"] == "br-ex"
    assert client.update("logical-networks", "ln", {"mtu": 1400})["mtu"] == 1400
    assert client.update("subnets", "sn", {"domain_name": "example.org"})["domain_name"]
    assert client.update("logical-ports", "lp", {"hostname": "vm1"})["hostname"] == "vm1"
    routes = [["192.168.0.0/16", "10.0.0.254"]]
    assert client.update("routers", "r", {"routes": routes})["routes"] == routes

    with refused(
        409, text="physical network pn still has 1 logical network (ln) and 1 physical port (pp)"
    ):
        client.delete("physical-networks", "pn")
    with refused(409, text="logical network ln still has 1 port (lp) and 1 subnet (sn)"):
        client.delete("logical-networks", "ln")
    for kind, id in (
        ("logical-ports", "lp"),
        ("routers", "r"),
        ("subnets", "sn"),
        ("logical-networks", "ln"),
        ("physical-ports", "pp"),
        ("physical-networks", "pn"),
    ):
        client.delete(kind, id)
        with refused(404):
            client.get(kind, id)


def test_list_filters_and_pages(api: ApiServer) -> None:
    client = api.client()
    build_topology(client)
    for index in range(7):
        client.create("logical-ports", {"id": f"p{index}", "logicalnetwork": "ln", "subnet": "sn"})
    items, cursor = client.list_page("logical-ports", limit=3)
    assert [p["id"] for p in items] == ["p0", "p1", "p2"] and cursor == "p2"
    items, cursor = client.list_page("logical-ports", limit=3, after="p5")
    assert [p["id"] for p in items] == ["p6"] and cursor is None
    assert len(list(client.list("logical-ports", limit=5))) == 5
    assert len(list(client.list("logical-ports", {"logicalnetwork": "ln"}))) == 7
    client.update("logical-networks", "ln", {"mtu": 1500})
    assert [n["id"] for n in client.list("logical-networks", {"mtu": 1500})] == ["ln"]
    assert list(client.list("logical-networks", {"mtu": 9000})) == []
    with refused(400, "mtu", "not an integer"):
        list(client.list("logical-networks", {"mtu": "big"}))
    with refused(400, "colour", "unknown filter"):
        list(client.list("subnets", {"colour": "red"}))


def test_interfaces_of_a_router(api: ApiServer) -> None:
    client = api.client()
    build_topology(client)
    client.create("routers", {"id": "r"})
    interface = client.add_interface("r", {"subnet": "sn"})
    assert interface["ip_address"] == "10.0.0.1" and interface["subnet"] == "sn"
    assert [i["subnet"] for i in client.interfaces("r")] == ["sn"]
    with refused(409):
        client.delete("routers", "r")
    with refused(409):
        client.delete("subnets", "sn")
    client.remove_interface("r", "sn")
    assert client.interfaces("r") == []
    with refused(404):
        client.remove_interface("r", "sn")


def test_batch_is_one_transaction(api: ApiServer) -> None:
    client = api.client()
    build_topology(client)
    ops = [
        {"action": "create", "kind": "logical-ports", "body": {"id": "a", "logicalnetwork": "ln"}},
        {"action": "create", "kind": "routers", "body": {"id": "r"}},
        {"action": "update", "kind": "logical-networks", "id": "ln", "body": {"mtu": 1450}},
        {"action": "create", "kind": "router-interfaces", "id": "r", "body": {"subnet": "sn"}},
    ]
    results = client.batch(ops)
    assert [r["id"] for r in results[:3]] == ["a", "r", "ln"] and results[3]["subnet"] == "sn"
    failing = [
        {"action": "create", "kind": "logical-ports", "body": {"id": "b", "logicalnetwork": "ln"}},
        {"action": "update", "kind": "logical-networks", "id": "ln", "body": {"mtu": 1300}},
        {"action": "delete", "kind": "physical-networks", "id": "nope"},
    ]
    with refused(404, "operations[2]", "nope"):
        client.batch(failing)
    assert [p["id"] for p in client.list("logical-ports")] == ["a"]
    assert client.get("logical-networks", "ln")["mtu"] == 1450


def test_bad_input_gets_a_precise_4xx(api: ApiServer) -> None:
    client = api.client()
    build_topology(client)
    status, body = raw(api, "POST", "/v1/routers", b'{"id": "r",', "application/json")
    assert status == 400 and "malformed JSON" in body["error"]["message"]
    status, body = raw(api, "POST", "/v1/routers", b"[1]", "application/json")
    assert status == 422 and "JSON object" in body["error"]["message"]
    with refused(422, "mtu"):
        client.update("logical-networks", "ln", {"mtu": "1500"})
    with refused(422, "mtu", "68..65535"):
        client.update("logical-networks", "ln", {"mtu": 10})
    with refused(422, "colour"):
        client.create("subnets", {"logicalnetwork": "ln", "cidr": "10.1.0.0/24", "colour": 1})
    with refused(422, "cidr"):
        client.create("subnets", {"logicalnetwork": "ln", "cidr": "10.1.0.1/24"})
    with refused(409, "id", "pn"):
        client.create("physical-networks", {"id": "pn", "type": "vlan", "vlanrange": [[1, 2]]})
    with refused(422, "physicalnetwork", "nope"):
        client.create("logical-networks", {"physicalnetwork": "nope"})
    with refused(422, "id"):
        client.create("routers", {"id": "a/b"})
    with refused(400, "limit"):
        client.list_page("routers", limit=0)
    with refused(422, "operations[0].kind"):
        client.batch([{"action": "create", "kind": "bridges", "body": {}}])
    with refused(404):
        client.request("GET", "/v1/switches")


def test_waiting_for_a_port_to_come_up(api: ApiServer) -> None:
    client = api.client()
    build_topology(client)
    client.create("logical-ports", {"id": "lp", "logicalnetwork": "ln"})
    with refused(408, text="lp"):
        client.get("logical-ports", "lp", wait="up", timeout=0.3)
    with refused(404):
        client.get("logical-ports", "ghost", wait="up", timeout=0.3)
    api.put("lport-status/lp", {"state": "up", "host": "h", "since": 0})
    port = client.get("logical-ports", "lp", wait="up", timeout=5)
    assert port["status"]["state"] == "up" and port["status"]["host"] == "h"


def test_token_authentication(tmp_path: Path) -> None:
    server = start_api(tmp_path, token="t0ken")
    try:
        with refused(401, text="Bearer"):
            server.client(token=None).create("routers", {"id": "r"})
        with refused(401):
            server.client(token="wrong").list_page("routers")
        assert server.client().create("routers", {"id": "r"})["id"] == "r"
        assert Client(server.url).health()["status"] == "ok"
        denied = server.vlcp("router", "list", "--token", "wrong")
        assert denied.returncode == 1 and "401" in denied.stderr
    finally:
        assert stop_api(server) == 0


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999"])
def test_bad_listen_address_is_refused(tmp_path: Path, listen: str) -> None:
    import subprocess
    import sys

    store = f"sqlite://{tmp_path}/s.db"
    out = subprocess.run(
        [sys.executable, "-m", "vlcp.cli", "api", "--store", store, "--listen", listen],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "HOST:PORT" in out.stderr
