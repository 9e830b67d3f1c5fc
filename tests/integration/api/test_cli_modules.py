"""`vlcp module list|load|unload|reload` end to end, against a real `vlcp api` process."""

from __future__ import annotations

import json

from tests.unit.module_reports import status
from vlcp.layout import module_status

from .server import ApiServer


def ok(api: ApiServer, *args: str) -> str:
    out = api.vlcp(*args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_list_load_unload_reload(api: ApiServer) -> None:
    api.put(module_status("hv1"), status(loaded=["ingress", "l2_forward"], errors={"vlan": "bad"}))
    listing = ok(api, "module", "list").splitlines()
    assert listing[0].split() == [
        "server",
        "running",
        "set",
        "module",
        "loaded",
        "wanted",
        "pending",
        "error",
    ]
    rows = {line.split()[3]: line.split() for line in listing[2:] if line.startswith("hv1")}
    assert rows["l2_forward"][4:6] == ["yes", "yes"]
    assert rows["vxlan"][4:7] == ["no", "yes", "load"]
    assert rows["vlan"][4:] == ["no", "no", "bad"]
    assert listing[-1] == "modules-all: not set (servers without their own set run their default)"

    loaded = ok(api, "module", "load", "arp_responder", "--server", "hv1").splitlines()
    assert loaded[2].startswith("hv1") and "arp_responder, ingress" in loaded[2]
    refused = api.vlcp("module", "unload", "l2_forward", "--server", "hv1")
    assert refused.returncode == 1 and "error 409: cannot unload l2_forward" in refused.stderr
    assert "vxlan need it" in refused.stderr
    ok(api, "module", "unload", "l2_forward", "--server", "hv1", "--dependents")
    shown = json.loads(ok(api, "module", "list", "--server", "hv1", "--json"))
    (entry,) = shown["servers"]
    assert entry["wanted"] == ["arp_responder", "ingress", "port_security"]
    assert entry["wanted_from"] == "server"

    everywhere = json.loads(ok(api, "module", "reload", "ingress", "--json"))
    assert everywhere["all"]["reload"] == {"ingress": 1}
    assert everywhere["servers"]["hv1"]["reload"] == {"ingress": 1}
    assert "modules-all: ingress, l2_forward, port_security, vxlan" in ok(api, "module", "list")
    unknown = api.vlcp("module", "load", "dhcp")
    assert unknown.returncode == 1 and "dhcp unknown to server hv1" in unknown.stderr


def test_configure(api: ApiServer) -> None:
    api.put(module_status("hv1"), status(configurable=["port_security"]))
    settings = '{"macs": ["02:00:00:00:00:09"]}'
    written = json.loads(
        ok(api, "module", "configure", "port_security", "--settings", settings, "--json")
    )
    assert written["all"]["settings"] == {"port_security": json.loads(settings)}
    shown = ok(api, "module", "configure", "port_security", "--defaults", "--server", "hv1")
    rows = {line.split()[0]: line for line in shown.splitlines()[2:]}
    assert rows["all"].endswith('{"port_security":{"macs":["02:00:00:00:00:09"]}}')
    assert rows["hv1"].rstrip().endswith("port_security, vxlan")  # no settings of its own
    assert json.loads(ok(api, "module", "list", "--json"))["servers"][0]["wanted_settings"] == {}
    both = api.vlcp("module", "configure", "port_security")
    assert both.returncode == 2 and "exactly one of --settings JSON and --defaults" in both.stderr
    bad = api.vlcp("module", "configure", "port_security", "--settings", "[1]")
    assert bad.returncode == 2 and "expected a JSON object" in bad.stderr
    refused = api.vlcp("module", "configure", "vxlan", "--settings", "{}")
    assert refused.returncode == 1 and "vxlan takes no settings" in refused.stderr
