"""Builds the pipeline's `View` from the store mirror and the bridge's ports (pure).

Only this server's endpoints pull things in: a logical port is local when an interface
of the integration bridge carries its id; its network comes with it, and so do the other
ports of that network that other servers announce under `netports/<network>/`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vlcp.pipeline.view import LocalPort, Network, RemotePort, View, network_numbers

from .binding import OvsPort, bound_ports

log = logging.getLogger(__name__)

TUNNEL_PORT = "vxlan0"
"""The VXLAN port the agent keeps on its bridge (remote_ip=flow, key=flow)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who this server is in the store and on the underlay."""

    system_id: str
    bridge: str
    vtep: str | None


def netports_key(network: str, port: str) -> str:
    """Where the server that binds `port` announces it (a session key: gone with the server)."""
    return f"netports/{network}/{port}"


def build_view(values: Mapping[str, Any], ports: Mapping[str, OvsPort], me: Identity) -> View:
    """The view of one server, from mirrored store values and its bridge's ports."""
    local: dict[str, LocalPort] = {}
    for port_id, ovs_port in bound_ports(ports).items():
        lport = values.get(f"lport/{port_id}")
        if lport is None:
            continue  # the interface appeared first; the logical port will follow
        local[port_id] = LocalPort(
            id=port_id,
            network=lport["logicalnetwork"],
            ofport=ovs_port.ofport,
            mac=lport["mac_address"],
            ip=lport.get("ip_address"),
        )
    wanted = {p.network for p in local.values()}
    numbers = network_numbers(wanted)
    networks: dict[str, Network] = {}
    physnets: set[str] = set()
    for network_id in sorted(wanted):
        network = _network(values, network_id, numbers[network_id])
        if network is not None:
            networks[network_id] = network
            if network.physnet:
                physnets.add(network.physnet)
    remotes = _remotes(values, networks, me)
    return View(
        networks=networks,
        ports={p.id: p for p in local.values() if p.network in networks},
        remotes=remotes,
        physical_ports=_physical_ports(values, physnets, ports, me),
        tunnel_ofport=ports[TUNNEL_PORT].ofport if TUNNEL_PORT in ports else None,
    )


def _network(values: Mapping[str, Any], network_id: str, number: int) -> Network | None:
    lognet = values.get(f"lognet/{network_id}")
    if lognet is None:
        return None
    physnet = values.get(f"physnet/{lognet['physicalnetwork']}")
    if physnet is None:
        return None
    kind = physnet["type"]
    tag = {"vlan": lognet.get("vlanid"), "vxlan": lognet.get("vni")}.get(kind)
    return Network(network_id, kind, number, tag=tag, physnet=lognet["physicalnetwork"])


def _remotes(
    values: Mapping[str, Any], networks: Mapping[str, Network], me: Identity
) -> dict[str, RemotePort]:
    remotes: dict[str, RemotePort] = {}
    for key, entry in values.items():  # one pass over the mirror, whatever the networks
        if not key.startswith("netports/"):
            continue
        _, network_id, port_id = key.split("/", 2)
        if network_id not in networks or entry.get("host") == me.system_id:
            continue
        if not entry.get("vtep"):
            continue  # a server without a tunnel endpoint (vlan only) needs no tunnel
        remotes[port_id] = RemotePort(
            port_id, network_id, entry["mac"], entry["vtep"], entry.get("ip")
        )
    return remotes


def _physical_ports(
    values: Mapping[str, Any], physnets: set[str], ports: Mapping[str, OvsPort], me: Identity
) -> dict[str, int]:
    """Physical network -> ofport, by the most specific physical-port object that applies."""
    found: dict[str, int] = {}
    candidates = [v for k, v in values.items() if k.startswith("physport/")]
    for physnet in physnets:
        best = _most_specific(candidates, physnet, me)
        if best is not None and best["name"] in ports:
            found[physnet] = ports[best["name"]].ofport
    return found


def _most_specific(candidates: list[dict], physnet: str, me: Identity) -> dict | None:
    order = [(me.system_id, me.bridge), (me.system_id, "%"), ("%", me.bridge), ("%", "%")]
    for systemid, bridge in order:
        for port in candidates:
            if (
                port.get("physicalnetwork") == physnet
                and port.get("systemid", "%") == systemid
                and port.get("bridge", "%") == bridge
            ):
                return port
    return None
