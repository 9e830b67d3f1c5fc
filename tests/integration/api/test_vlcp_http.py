"""The original VLCP API over HTTP, using only the calls the issue lists, as old scripts do."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from .server import ApiServer


class Vlcp:
    """`http://host:port/<module>/<method>` with parameters as query, form or JSON."""

    def __init__(self, api: ApiServer) -> None:
        self.url = api.url

    def call(self, path: str, how: str = "query", **params: Any) -> tuple[int, Any]:
        url = f"{self.url}/{path}"
        if how == "query":
            request = urllib.request.Request(f"{url}?{urlencode(params)}")
        elif how == "form":
            request = urllib.request.Request(url, data=urlencode(params).encode(), method="POST")
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        else:
            request = urllib.request.Request(url, data=json.dumps(params).encode(), method="POST")
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def ok(self, path: str, how: str = "query", **params: Any) -> Any:
        status, body = self.call(path, how, **params)
        assert status == 200 and set(body) == {"result"}, (status, body)
        return body["result"]

    def fails(self, status: int, path: str, text: str = "", **params: Any) -> str:
        got, body = self.call(path, **params)
        assert got == status and set(body) == {"error"}, (got, body)
        assert isinstance(body["error"], str) and text in body["error"], body
        return body["error"]


def literal(value: Any) -> str:
    return f"`{json.dumps(value)}`"


def test_networks_ports_and_subnets(api: ApiServer) -> None:
    v = Vlcp(api)
    vf = "viperflow"
    made = v.ok(f"{vf}/createphysicalnetwork", id="vlan", type="vlan", vlanrange="`[[1000,1099]]`")
    assert made[0]["id"] == "vlan" and made[0]["vlanrange"] == [[1000, 1099]]
    v.ok(f"{vf}/createphysicalnetwork", "form", id="vx", type="vxlan", vnirange="`[[10, 20]]`")
    port = v.ok(
        f"{vf}/createphysicalport", "json", physicalnetwork="vlan", name="eth1", bridge="br1"
    )
    assert port[0]["name"] == "eth1" and port[0]["systemid"] == "%"
    v.ok(f"{vf}/createphysicalports", ports=literal([{"physicalnetwork": "vx", "name": "vx0"}]))
    # name, vhost, systemid and bridge name the port; other parameters are the update
    v.fails(404, f"{vf}/updatephysicalport", "eth1", name="eth1", bridge="br0")
    v.ok(f"{vf}/updatephysicalport", name="eth1", bridge="br1", physicalnetwork="vx")
    assert v.ok(f"{vf}/listphysicalports", name="eth1")[0]["physicalnetwork"] == "vx"
    assert len(v.ok(f"{vf}/listphysicalports", physicalnetwork="vx")) == 2
    moves = [{"name": "eth1", "bridge": "br1", "physicalnetwork": "vlan"}]
    v.ok(f"{vf}/updatephysicalports", ports=literal(moves))

    networks = [
        {"id": "net1", "physicalnetwork": "vlan", "vlanid": 1005, "mtu": 1400},
        {"id": "net2", "physicalnetwork": "vx"},
    ]
    created = v.ok(f"{vf}/createlogicalnetworks", "json", networks=networks)
    assert created[0]["vlanid"] == 1005 and 10 <= created[1]["vni"] <= 20
    v.ok(f"{vf}/createlogicalnetwork", physicalnetwork="vlan", id="net3", mtu="`1500`")
    v.ok(f"{vf}/updatelogicalnetwork", id="net3", domain_name="example.org", mtu="1450")
    assert v.ok(f"{vf}/listlogicalnetworks", id="net3")[0]["mtu"] == 1450
    by_parent = v.ok(f"{vf}/listlogicalnetworks", physicalnetwork="vlan")
    assert [n["id"] for n in by_parent] == ["net1", "net3"]
    assert [n["id"] for n in v.ok(f"{vf}/listlogicalnetworks", mtu="`1400`")] == ["net1"]

    v.ok(
        f"{vf}/createsubnet",
        logicalnetwork="net1",
        id="sub1",
        cidr="192.168.1.0/24",
        gateway="192.168.1.1",
        allocated_start="192.168.1.10",
        allocated_end="192.168.1.20",
        isexternal="`False`",
        dns_nameservers=literal(["8.8.8.8"]),
    )
    subnets = [{"logicalnetwork": "net2", "id": "sub2", "cidr": "10.2.0.0/16"}]
    v.ok(f"{vf}/createsubnets", subnets=literal(subnets))
    v.ok(f"{vf}/updatesubnet", id="sub1", lease_time="`600`")
    v.ok(f"{vf}/updatesubnets", subnets=literal([{"id": "sub2", "mtu": 1300}]))
    assert v.ok(f"{vf}/listsubnets", logicalnetwork="net1")[0]["lease_time"] == 600

    lport = v.ok(f"{vf}/createlogicalport", logicalnetwork="net1", id="lp1", subnet="sub1")[0]
    assert lport["ip_address"] == "192.168.1.10" and lport["mac_address"]
    ports = [
        {"logicalnetwork": "net1", "id": "lp2", "subnet": "sub1", "ip_address": "192.168.1.15"},
        {
            "logicalnetwork": "net1",
            "id": "lp3",
            "subnet": "sub1",
            "mac_address": lport["mac_address"],
        },
    ]
    v.fails(409, f"{vf}/createlogicalports", "mac", ports=literal(ports))
    assert [p["id"] for p in v.ok(f"{vf}/listlogicalports")] == ["lp1"]
    v.ok(f"{vf}/createlogicalports", ports=literal(ports[:1]))
    v.ok(f"{vf}/updatelogicalport", id="lp1", hostname="vm1")
    v.ok(f"{vf}/updatelogicalports", ports=literal([{"id": "lp2", "hostname": "vm2"}]))
    assert [p["hostname"] for p in v.ok(f"{vf}/listlogicalports", logicalnetwork="net1")] == [
        "vm1",
        "vm2",
    ]

    v.fails(409, f"{vf}/deletelogicalnetwork", "net1 still has 2 ports (lp1, lp2)", id="net1")
    assert v.ok(f"{vf}/deletelogicalport", id="lp1") == {"status": "OK"}
    assert v.ok(f"{vf}/deletelogicalports", ports=literal([{"id": "lp2"}])) == {"status": "OK"}
    assert v.ok(f"{vf}/deletesubnet", id="sub1") == {"status": "OK"}
    v.ok(f"{vf}/deletesubnets", subnets=literal([{"id": "sub2"}]))
    v.ok(f"{vf}/deletelogicalnetwork", id="net3")
    v.ok(f"{vf}/deletelogicalnetworks", networks=literal([{"id": "net1"}, {"id": "net2"}]))
    v.ok(f"{vf}/deletephysicalport", name="eth1", bridge="br1")
    v.ok(f"{vf}/deletephysicalports", ports=literal([{"name": "vx0"}]))
    v.ok(f"{vf}/updatephysicalnetwork", id="vlan", vlanrange="`[[1000, 1200]]`")
    v.ok(f"{vf}/updatephysicalnetworks", networks=literal([{"id": "vx", "vnirange": [[5, 50]]}]))
    v.ok(f"{vf}/deletephysicalnetwork", id="vlan")
    v.ok(f"{vf}/deletephysicalnetworks", networks=literal([{"id": "vx"}]))
    assert v.ok(f"{vf}/listphysicalnetworks") == []


def test_routers_and_interfaces(api: ApiServer) -> None:
    v = Vlcp(api)
    v.ok("viperflow/createphysicalnetwork", id="pn", type="vlan", vlanrange="`[[1, 100]]`")
    v.ok("viperflow/createlogicalnetwork", id="ln", physicalnetwork="pn")
    v.ok("viperflow/createlogicalnetwork", id="ln2", physicalnetwork="pn")
    v.ok(
        "viperflow/createsubnet",
        id="s1",
        logicalnetwork="ln",
        cidr="10.0.1.0/24",
        gateway="10.0.1.1",
    )
    v.ok("viperflow/createsubnet", id="s2", logicalnetwork="ln2", cidr="10.0.2.0/24")
    routes = literal([["0.0.0.0/0", "10.0.1.254"]])
    assert v.ok("vrouterapi/createvirtualrouter", id="r1", routes=routes)[0]["routes"]
    v.ok("vrouterapi/createvirtualrouters", routers=literal([{"id": "r2"}, {"id": "r3"}]))
    v.ok("vrouterapi/updatevirtualrouter", id="r2", routes="`[]`")
    v.ok("vrouterapi/updatevirtualrouters", routers=literal([{"id": "r3", "routes": []}]))
    assert [r["id"] for r in v.ok("vrouterapi/listvirtualrouters")] == ["r1", "r2", "r3"]
    assert [r["id"] for r in v.ok("vrouterapi/listvirtualrouters", id="r2")] == ["r2"]

    added = v.ok("vrouterapi/addrouterinterface", router="r1", subnet="s1")[0]
    assert added["ip_address"] == "10.0.1.1"
    interfaces = [{"router": "r1", "subnet": "s2", "ip_address": "10.0.2.1"}]
    v.ok("vrouterapi/addrouterinterfaces", interfaces=literal(interfaces))
    v.fails(409, "vrouterapi/addrouterinterface", "s1", router="r2", subnet="s1")
    listed = v.ok("vrouterapi/listrouterinterfaces", id="r1")
    assert sorted(i["subnet"] for i in listed) == ["s1", "s2"]
    v.fails(409, "vrouterapi/deletevirtualrouter", id="r1")
    assert v.ok("vrouterapi/removerouterinterface", router="r1", subnet="s1") == {"status": "OK"}
    v.ok(
        "vrouterapi/removerouterinterfaces", interfaces=literal([{"router": "r1", "subnet": "s2"}])
    )
    assert v.ok("vrouterapi/listrouterinterfaces", id="r1") == []
    v.ok("vrouterapi/deletevirtualrouter", id="r1")
    v.ok("vrouterapi/deletevirtualrouters", routers=literal([{"id": "r2"}, {"id": "r3"}]))
    assert v.ok("vrouterapi/listvirtualrouters") == []


def test_failures_are_4xx_with_an_error_text(api: ApiServer) -> None:
    v = Vlcp(api)
    v.fails(400, "viperflow/createphysicalnetwork", "function call", id="`__import__('os')`")
    v.fails(400, "viperflow/createphysicalnetwork", "nested", id="`" + "[" * 60 + "]" * 60 + "`")
    v.fails(422, "viperflow/createphysicalnetwork", "vlanrange", type="vlan")
    v.fails(404, "viperflow/updatelogicalnetwork", "nope", id="nope", mtu="`1500`")
    v.fails(404, "viperflow/deletelogicalport", "nope", id="nope")
    v.fails(400, "viperflow/updatelogicalnetwork", "'id'", mtu="`1500`")
    v.fails(422, "viperflow/createlogicalnetwork", "physicalnetwork", id="x")
    v.fails(400, "viperflow/createlogicalnetworks", "'networks'", networks="`5`")
    status, _ = v.call("viperflow/nosuchmethod")
    assert status == 404
