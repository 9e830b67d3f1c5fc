"""The model's invariants, checked on a whole-store snapshot.

Every derived key (state documents, allocation and uniqueness keys) is recomputed from the
objects alone and compared with what the store holds, so any lost update, orphan or
double allocation shows up as a difference. Allocation hints are free to be anything.
VNIs are global: no two vxlan physical networks' ranges overlap, and no two logical
networks share a VNI, whatever their physical networks.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections import Counter, defaultdict
from typing import Any

DERIVED = ("physnet-tag/", "physnet-port/", "physport-key/", "lognet-mac/", "subnet-ip/")
STATES = ("physnet-state/", "lognet-state/", "subnet-state/")
OBJECTS = ("physnet/", "physport/", "lognet/", "lport/", "subnet/", "router/")
VNI_RANGES = "physnet-vni-ranges"
REPORTED = ("lport-status/", "netports/")
"""Written by controllers about the ports they bind (durable, unlike `LIVE`)."""
LIVE = ("chassis/", "servers/")
"""Presence keys of running processes."""
MODULES = ("modules-all", "modules/", "module-status/")
"""The modules each server should run (operators) and runs (controllers)."""
VTEP = ("vtep-binding/", "vtep-switch/", "vtep-macs/")
"""Hardware VTEP bindings (operators) and what switches report (their controllers)."""


BOUND = "vtep_bindings"
"""A logical network's count of hardware switch bindings, in its state document."""


def _ip_key(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    return address.exploded if address.version == 6 else str(address)


def _sel(value: str) -> str:
    return "_~" if value in ("", "%") else value


def _objects(values: dict[str, Any], prefix: str) -> dict[str, dict]:
    return {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}


def check(values: dict[str, Any]) -> None:
    """Raise AssertionError naming the first broken invariant."""
    unknown = [
        k
        for k in values
        if k != VNI_RANGES
        and not k.startswith((*DERIVED, *STATES, *OBJECTS, *REPORTED, *LIVE, *MODULES, *VTEP))
    ]
    assert not unknown, f"unexpected keys {unknown}"
    _check_reports(values)
    physnets = _objects(values, "physnet/")
    physports = _objects(values, "physport/")
    lognets = _objects(values, "lognet/")
    lports = _objects(values, "lport/")
    subnets = _objects(values, "subnet/")
    routers = _objects(values, "router/")

    derived: dict[str, Any] = {}
    states: dict[str, dict] = {}
    vni_ranges: dict[str, list[list[int]]] = {}
    for id, net in physnets.items():
        assert net["id"] == id
        states[f"physnet-state/{id}"] = {"lognets": 0, "physports": 0}
        if net["type"] == "vxlan":
            vni_ranges[id] = net["vnirange"]
    vxlan_spans = sorted((a, b, id) for id, spans in vni_ranges.items() for a, b in spans)
    for (_, end, one), (start, _, other) in itertools.pairwise(vxlan_spans):
        assert start > end, f"the vniranges of {one} and {other} overlap"
    assert values.get(VNI_RANGES) == (vni_ranges or None), _diff(
        "VNI ranges", vni_ranges, values.get(VNI_RANGES) or {}
    )
    vni_users: dict[int, str] = {}
    for id, port in physports.items():
        pn = port["physicalnetwork"]
        assert pn in physnets, f"physical port {id} on missing {pn}"
        assert physnets[pn]["type"] != "local", f"physical port {id} on local network {pn}"
        states[f"physnet-state/{pn}"]["physports"] += 1
        sel = "/".join(_sel(port[f]) for f in ("vhost", "systemid", "bridge"))
        derived[f"physport-key/{sel}/{port['name']}"] = id
        derived[f"physnet-port/{pn}/{sel}"] = id
    for id, net in lognets.items():
        pn = net["physicalnetwork"]
        assert pn in physnets, f"logical network {id} on missing {pn}"
        physnet = physnets[pn]
        states[f"physnet-state/{pn}"]["lognets"] += 1
        states[f"lognet-state/{id}"] = {"ports": 0, "subnets": 0, "cidrs": {}}
        kind = physnet["type"]
        if kind == "vlan":
            tag, spans = net["vlanid"], physnet["vlanrange"]
            assert net["vni"] is None
        elif kind == "vxlan":
            tag, spans = net["vni"], physnet["vnirange"]
            assert net["vlanid"] is None
            assert tag not in vni_users, f"VNI {tag} used by {vni_users.get(tag)} and {id}"
            vni_users[tag] = id
        else:
            assert net["vlanid"] is None and net["vni"] is None
            tag, spans = (0, [[0, 0]]) if kind == "native" else (None, None)
        if tag is not None:
            assert any(a <= tag <= b for a, b in spans), f"{id}: tag {tag} outside {spans}"
            key = f"physnet-tag/{pn}/{tag}"
            assert key not in derived, f"tag {tag} of {pn} allocated twice"
            derived[key] = id
    for id, sub in subnets.items():
        ln = sub["logicalnetwork"]
        assert ln in lognets, f"subnet {id} in missing {ln}"
        state = states[f"lognet-state/{ln}"]
        state["subnets"] += 1
        state["cidrs"][id] = sub["cidr"]
        states[f"subnet-state/{id}"] = {"allocated": 0, "routers": []}
    for ln in lognets:
        nets = [ipaddress.ip_network(c) for c in states[f"lognet-state/{ln}"]["cidrs"].values()]
        for i, a in enumerate(nets):
            for b in nets[i + 1 :]:
                assert a.version != b.version or not a.overlaps(b), f"{ln}: {a} overlaps {b}"
    for key, binding in _objects(values, "vtep-binding/").items():
        ln = binding["logicalnetwork"]
        assert ln in lognets, f"vtep-binding/{key} binds missing {ln}"
        state = states[f"lognet-state/{ln}"]
        state["vtep_bindings"] = state.get("vtep_bindings", 0) + 1
    seen_mac: dict[str, set[str]] = defaultdict(set)
    seen_ip: dict[str, set[str]] = defaultdict(set)
    for id, port in lports.items():
        ln = port["logicalnetwork"]
        assert ln in lognets, f"port {id} in missing {ln}"
        states[f"lognet-state/{ln}"]["ports"] += 1
        mac = port["mac_address"]
        assert mac not in seen_mac[ln], f"MAC {mac} twice in {ln}"
        assert not int(mac[:2], 16) & 1, f"multicast MAC {mac}"
        seen_mac[ln].add(mac)
        derived[f"lognet-mac/{ln}/{mac}"] = id
        if port["ip_address"] is not None:
            sub = subnets[port["subnet"]]
            assert sub["logicalnetwork"] == ln
            ip = ipaddress.ip_address(port["ip_address"])
            assert ip in ipaddress.ip_network(sub["cidr"]), f"{id}: {ip} outside {sub['cidr']}"
            assert port["ip_address"] != sub["gateway"], f"port {id} holds the gateway"
            assert ip not in seen_ip[ln], f"IP {ip} twice in {ln}"
            seen_ip[ln].add(ip)
            derived[f"subnet-ip/{sub['id']}/{_ip_key(port['ip_address'])}"] = id
            states[f"subnet-state/{sub['id']}"]["allocated"] += 1
        else:
            assert port["subnet"] is None, f"port {id} in a subnet without an address"
    for id, router in routers.items():
        subs = Counter(i["subnet"] for i in router["interfaces"])
        assert all(n == 1 for n in subs.values()), f"router {id}: two interfaces on a subnet"
        for interface in router["interfaces"]:
            sid = interface["subnet"]
            assert sid in subnets, f"router {id} on missing subnet {sid}"
            key = f"subnet-ip/{sid}/{_ip_key(interface['ip_address'])}"
            assert key not in derived, f"{key} held twice"
            derived[key] = f"router:{id}"
            states[f"subnet-state/{sid}"]["routers"].append(id)
    for sid, sub in subnets.items():
        attached = states[f"subnet-state/{sid}"]["routers"]
        attached.sort()
        assert sub["isexternal"] or len(attached) <= 1, f"internal {sid} on routers {attached}"

    actual_derived = {k: v for k, v in values.items() if k.startswith(DERIVED)}
    assert actual_derived == derived, _diff("derived keys", derived, actual_derived)
    actual_states = {  # allocation hints are free; no binding left is as none ever made
        k: {f: x for f, x in v.items() if f not in ("next", "next_tag") and (f, x) != (BOUND, 0)}
        for k, v in values.items()
        if k.startswith(STATES)
    }
    assert actual_states == states, _diff("state documents", states, actual_states)


def _check_reports(values: dict[str, Any]) -> None:
    """What controllers report is about ports that exist, in their own network, and a
    port is located (netports) on the server its "up" status names."""
    lports = _objects(values, "lport/")
    located: dict[str, str] = {}
    for key, entry in values.items():
        if key.startswith("netports/"):
            network, _, port = key.removeprefix("netports/").partition("/")
            assert port in lports, f"{key}: announces a port that does not exist"
            assert lports[port]["logicalnetwork"] == network, f"{key}: in the wrong network"
            located[port] = entry["host"]
    for port, status in _objects(values, "lport-status/").items():
        assert port in lports, f"lport-status/{port}: the status of a port that does not exist"
        if status["state"] == "up":
            assert located.get(port) == status["host"], (
                f"lport-status/{port}: up on {status['host']}, located on {located.get(port)}"
            )


def _diff(what: str, expected: dict, actual: dict) -> str:
    missing = {k: v for k, v in expected.items() if actual.get(k) != v}
    extra = {k: v for k, v in actual.items() if expected.get(k) != v}
    return f"{what}: expected but not found {missing}; found but not expected {extra}"
