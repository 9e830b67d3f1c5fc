"""The `vlcp` client verbs end to end, against a real `vlcp api` process."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from .server import ApiServer


def ok(api: ApiServer, *args: str) -> str:
    out = api.vlcp(*args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def as_json(api: ApiServer, *args: str) -> object:
    return json.loads(ok(api, *args, "--json"))


def test_create_show_list_update_delete(api: ApiServer) -> None:
    table = ok(api, "physical-network", "create", "id=pn", "type=vlan", "vlanrange=[[10,20]]")
    assert "vlanrange" in table and "[[10,20]]" in table
    ok(api, "logical-network", "create", "id=ln", "physicalnetwork=pn", "mtu=1400")
    subnet = as_json(
        api,
        "subnet",
        "create",
        "id=sn",
        "logicalnetwork=ln",
        "cidr=10.9.0.0/24",
        "gateway=10.9.0.1",
    )
    assert subnet["cidr"] == "10.9.0.0/24"  # type: ignore[index]
    for index in range(3):
        ok(api, "logical-port", "create", f"id=p{index}", "logicalnetwork=ln", "subnet=sn")
    listing = ok(api, "logical-port", "list", "logicalnetwork=ln").splitlines()
    assert listing[0].split()[0] == "id" and [line.split()[0] for line in listing[2:]] == [
        "p0",
        "p1",
        "p2",
    ]
    assert len(as_json(api, "logical-port", "list", "--limit", "2")) == 2  # type: ignore[arg-type]
    shown = ok(api, "logical-network", "show", "ln")
    assert any(line.split() == ["mtu", "1400"] for line in shown.splitlines())
    updated = as_json(api, "logical-port", "update", "p0", 'hostname="42"')
    assert updated["hostname"] == "42"  # type: ignore[index]
    ok(api, "router", "create", "id=r")
    added = as_json(api, "router", "interface", "add", "r", "subnet=sn")
    assert added["ip_address"] == "10.9.0.1"  # type: ignore[index]
    assert "sn" in ok(api, "router", "interface", "list", "r")
    ok(api, "router", "interface", "remove", "r", "sn")
    ok(api, "router", "delete", "r")
    ok(api, "logical-port", "delete", "p0", "p1", "p2")
    assert ok(api, "logical-port", "list") == "(none)\n"


def test_errors_are_reported_with_status_and_field(api: ApiServer) -> None:
    missing = api.vlcp("logical-network", "show", "nope")
    assert missing.returncode == 1 and "error 404" in missing.stderr and "nope" in missing.stderr
    bad = api.vlcp("physical-network", "create", "type=vlan")
    assert bad.returncode == 1 and "422" in bad.stderr and "vlanrange" in bad.stderr
    usage = api.vlcp("physical-network", "create", "nonsense")
    assert usage.returncode == 2 and "FIELD=VALUE" in usage.stderr
    down = subprocess.run(
        [sys.executable, "-m", "vlcp.cli", "router", "list", "--api", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert down.returncode == 1 and "cannot reach the API" in down.stderr


def test_wait_up_returns_once_the_status_is_written(api: ApiServer) -> None:
    ok(api, "physical-network", "create", "id=pn", "type=vlan", "vlanrange=[[10,20]]")
    ok(api, "logical-network", "create", "id=ln", "physicalnetwork=pn")
    ok(api, "logical-port", "create", "id=lp", "logicalnetwork=ln")
    command = [sys.executable, "-m", "vlcp.cli", "logical-port", "show", "lp", "--wait", "up"]
    command += ["--timeout", "20", "--json", "--api", api.url]
    waiter = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        assert waiter.poll() is None, "returned before the port was up"
        api.put("lport-status/lp", {"state": "up", "host": "h", "since": 0})
        stdout, stderr = waiter.communicate(timeout=20)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, stderr
    assert json.loads(stdout)["status"] == {"state": "up", "host": "h", "since": 0}


def test_wait_up_times_out(api: ApiServer) -> None:
    ok(api, "physical-network", "create", "id=pn", "type=vlan", "vlanrange=[[10,20]]")
    ok(api, "logical-network", "create", "id=ln", "physicalnetwork=pn")
    started = time.monotonic()
    out = api.vlcp(
        "logical-port", "create", "id=lp", "logicalnetwork=ln", "--wait", "up", "--timeout", "0.5"
    )
    assert out.returncode == 1 and "error 408" in out.stderr and "lp" in out.stderr
    assert time.monotonic() - started < 15
    misuse = api.vlcp("router", "show", "r", "--wait", "up")
    assert misuse.returncode == 2 and "logical ports only" in misuse.stderr


def test_batch_from_a_file(api: ApiServer, tmp_path: object) -> None:
    operations = [
        {"action": "create", "kind": "routers", "body": {"id": "r1"}},
        {"action": "create", "kind": "routers", "body": {"id": "r2"}},
    ]
    path = f"{tmp_path}/ops.json"
    with open(path, "w") as file:
        json.dump({"operations": operations}, file)
    assert "r2" in ok(api, "batch", path)
    assert [r["id"] for r in as_json(api, "router", "list")] == ["r1", "r2"]  # type: ignore[union-attr,index]


def test_show_and_list_say_where_a_port_is_up(api: ApiServer) -> None:
    ok(api, "physical-network", "create", "id=pn", "type=vlan", "vlanrange=[[10,20]]")
    ok(api, "logical-network", "create", "id=ln", "physicalnetwork=pn")
    ok(api, "logical-port", "create", "id=lp", "logicalnetwork=ln")
    ok(api, "logical-port", "create", "id=lq", "logicalnetwork=ln")
    shown = ok(api, "logical-port", "show", "lp").splitlines()
    assert shown[-1].split() == ["status", "not", "reported"]
    api.put("lport-status/lp", {"state": "up", "host": "hv1", "since": 1764756263})
    shown = ok(api, "logical-port", "show", "lp").splitlines()
    assert shown[-1].split(None, 1) == ["status", "up on hv1 since 2025-12-03 10:04:23 UTC"]
    assert as_json(api, "logical-port", "show", "lp")["status"] == {  # type: ignore[index]
        "state": "up",
        "host": "hv1",
        "since": 1764756263,
    }
    listing = ok(api, "logical-port", "list").splitlines()
    assert listing[0].split()[-1] == "status"
    up = "up on hv1 since 2025-12-03 10:04:23 UTC"
    assert listing[2].startswith("lp") and listing[2].endswith(up)
    assert listing[3].startswith("lq") and listing[3].endswith("not reported")
    refused = api.vlcp("logical-port", "update", "lp", "status=null")
    assert refused.returncode == 1 and "error 422: status: is read only" in refused.stderr


def test_vtep_bind_list_unbind(api: ApiServer) -> None:
    ok(api, "physical-network", "create", "id=vx", "type=vxlan", "vnirange=[[100,200]]")
    ok(api, "logical-network", "create", "id=ln", "physicalnetwork=vx")
    bound = as_json(api, "vtep", "bind", "ps0", "p0", "100", "ln")
    assert bound == {
        "physicalswitch": "ps0",
        "physicalport": "p0",
        "vlan": 100,
        "logicalnetwork": "ln",
    }
    assert "ps0" in ok(api, "vtep", "bindings", "--switch", "ps0")
    switches = as_json(api, "vtep", "switches")
    assert switches[0]["name"] == "ps0" and switches[0]["reported"] is False  # type: ignore[index]
    taken = api.vlcp("vtep", "bind", "ps0", "p0", "100", "other")
    assert taken.returncode == 1 and "error 422" in taken.stderr
    assert api.vlcp("vtep", "bind", "ps0", "p0", "4096", "ln").returncode == 2  # usage
    ok(api, "vtep", "unbind", "ps0", "p0", "100")
    assert ok(api, "vtep", "bindings") == "(none)\n"
    gone = api.vlcp("vtep", "unbind", "ps0", "p0")
    assert gone.returncode == 1 and "error 404" in gone.stderr
