"""What a hardware VTEP switch should hold, from the store, and what the store should hold
of the MACs the switch learned, from its rows. Pure: the same inputs give the same answer,
so a controller that reconnects or takes over computes what its predecessor wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vlcp.layout import LOGNET, PHYSNET, split_vtep_binding, vtep_bindings, vtep_flood, vtep_mac

Tables = Mapping[str, Mapping[uuid.UUID, Mapping[str, Any]]]
"""The switch's rows as the OVSDB monitor caches them: {table: {uuid: row}}."""

MARK = "vlcp"
"""`Logical_Switch.description` of the logical switches vlcp owns: the only ones it ever
changes or deletes, so an operator's own logical switches on the same switch are safe."""
UNKNOWN_DST = "unknown-dst"
"""The `Mcast_Macs_Remote` MAC of the flood (BUM) destinations of a logical switch."""
ENCAPSULATION = "vxlan_over_ipv4"


@dataclass(frozen=True)
class Endpoint:
    """A MAC of a logical network behind a tunnel endpoint (a server or another switch)."""

    ip: str | None
    vtep: str


@dataclass
class Wanted:
    """The vlcp part of one switch's `hardware_vtep` database."""

    switches: dict[str, int] = field(default_factory=dict)
    """Logical switch name (the logical network id) -> VNI (`tunnel_key`)."""
    bindings: dict[tuple[str, int], str] = field(default_factory=dict)
    """(physical port, VLAN) -> logical network."""
    ucast: dict[tuple[str, str], Endpoint] = field(default_factory=dict)
    """(logical network, MAC) -> where that MAC is (`Ucast_Macs_Remote`)."""
    flood: dict[str, frozenset[str]] = field(default_factory=dict)
    """Logical network -> the tunnel endpoints that get its floods (`Mcast_Macs_Remote`)."""


def vxlan_vni(values: Mapping[str, Any], network: str) -> int | None:
    """A logical network's VNI if it is a vxlan network, else None (a hardware VTEP
    carries only vxlan networks: a vlan network has no tunnel to the switch)."""
    lognet = values.get(f"{LOGNET}{network}")
    if not isinstance(lognet, Mapping):
        return None
    physnet = values.get(f"{PHYSNET}{lognet.get('physicalnetwork')}")
    if not isinstance(physnet, Mapping) or physnet.get("type") != "vxlan":
        return None
    vni = lognet.get("vni")
    return vni if isinstance(vni, int) else None


def wanted(
    values: Mapping[str, Any], remotes: Mapping[str, Mapping[str, Any]], switch: str
) -> Wanted:
    """The switch's wanted state: its bindings whose network is a vxlan network, and for
    each such network every endpoint announced in it (`remotes`: the mirror's index of
    `netports/` and `vtep-macs/` entries by network) except the switch's own MACs."""
    result = Wanted()
    prefix = vtep_bindings(switch)
    for key, binding in values.items():
        if not key.startswith(prefix):
            continue
        _, port, vlan = split_vtep_binding(key)
        network = binding.get("logicalnetwork")
        vni = vxlan_vni(values, network)
        if vni is None:
            continue  # the network went (or is not vxlan): nothing of it on the switch
        result.switches[network] = vni
        result.bindings[(port, vlan)] = network
    for network in result.switches:
        vteps = set()
        for entry in remotes.get(network, {}).values():
            if entry.get("switch") == switch or not entry.get("vtep"):
                continue
            vteps.add(entry["vtep"])
            if entry.get("mac"):  # (another switch's flood entry has none)
                mac = entry["mac"].lower()
                result.ucast[(network, mac)] = Endpoint(entry.get("ip"), entry["vtep"])
        if vteps:
            result.flood[network] = frozenset(vteps)
    return result


def learned(tables: Tables, switch: str) -> dict[str, dict[str, Any]]:
    """The store entries (`vtep-macs/...`) for the MACs the switch learned in vlcp's
    logical switches (`Ucast_Macs_Local`), with the switch's tunnel IP as their VTEP, and
    the switch itself as a flood endpoint of each of those networks."""
    ours = owned_switches(tables)
    locators = tables.get("Physical_Locator", {})
    entries = {}
    tunnel_ip = _tunnel_ip(tables, switch)
    if tunnel_ip is not None:
        for network in ours.values():
            entries[vtep_flood(network, switch)] = {"vtep": tunnel_ip, "switch": switch}
    for row in tables.get("Ucast_Macs_Local", {}).values():
        network = ours.get(row.get("logical_switch"))  # type: ignore[arg-type]
        locator = locators.get(row.get("locator"))  # type: ignore[arg-type]
        if network is None or locator is None:
            continue
        mac = str(row["MAC"]).lower()
        entry = {"mac": mac, "vtep": locator["dst_ip"], "switch": switch}
        if row.get("ipaddr"):
            entry["ip"] = row["ipaddr"]
        entries[vtep_mac(network, switch, mac)] = entry
    return entries


def _tunnel_ip(tables: Tables, switch: str) -> str | None:
    """The switch's tunnel IP (the first, when it has several: one is what it sends from)."""
    for row in tables.get("Physical_Switch", {}).values():
        if row.get("name") == switch:
            ips = sorted(row.get("tunnel_ips") or ())
            return str(ips[0]) if ips else None
    return None


def owned_switches(tables: Tables) -> dict[uuid.UUID, str]:
    """vlcp's logical switches: uuid -> name (its logical network)."""
    return {
        row_uuid: str(row["name"])
        for row_uuid, row in tables.get("Logical_Switch", {}).items()
        if row.get("description") == MARK
    }
