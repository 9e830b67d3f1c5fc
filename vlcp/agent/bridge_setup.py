"""Creates or adjusts the integration bridge and its tunnel port through OVSDB.

The bridge runs in `fail_mode=secure`, so if vlcp is gone the switch keeps forwarding
with the flows it has instead of falling back to a learning switch.
"""

from __future__ import annotations

from typing import Any

from vlcp.southbound.ovsdb import ops
from vlcp.southbound.ovsdb.client import OvsdbClient
from vlcp.southbound.ovsdb.monitor import Monitor
from vlcp.southbound.ovsdb.values import NamedUuid
from vlcp.southbound.ovsdb.vswitch import DB, add_port, configure_bridge

from .view_builder import TUNNEL_PORT

PROTOCOLS = ("OpenFlow13", "OpenFlow14")


CONTROLLER_OPTIONS = {"max_backoff": 1000, "inactivity_probe": 5000}
"""Reconnect within a second of a controller restart (TCP targets); probe every 5 s."""


async def ensure_bridge(
    client: OvsdbClient,
    monitor: Monitor,
    bridge: str,
    datapath_type: str,
    vtep: str | None,
    controllers: list[str],
) -> None:
    """Make `bridge` exist, secure, OpenFlow 1.3/1.4, with a flow-based VXLAN port if `vtep`.

    Its controller targets become exactly `controllers` (none when vlcp dials the bridge's
    management socket), so a target left by an earlier configuration does not linger.
    """
    if not monitor.find("Bridge", name=bridge):
        await _create_bridge(client, bridge, datapath_type)
        await monitor.wait_for(lambda: bool(monitor.find("Bridge", name=bridge)), timeout=10)
    await configure_bridge(
        client,
        bridge,
        fail_mode="secure",
        protocols=PROTOCOLS,
        controllers=controllers,
        controller_options=CONTROLLER_OPTIONS,
    )
    if vtep and not monitor.find("Interface", name=TUNNEL_PORT):
        options = {"remote_ip": "flow", "key": "flow"}
        await add_port(client, bridge, TUNNEL_PORT, type="vxlan", options=options)


async def _create_bridge(client: OvsdbClient, bridge: str, datapath_type: str) -> None:
    row: dict[str, Any] = {
        "name": bridge,
        "ports": {NamedUuid("port")},
        "fail_mode": "secure",
        "protocols": frozenset(PROTOCOLS),
    }
    if datapath_type:
        row["datapath_type"] = datapath_type
    await client.transact(
        DB,
        [
            ops.insert("Interface", {"name": bridge, "type": "internal"}, "iface"),
            ops.insert("Port", {"name": bridge, "interfaces": {NamedUuid("iface")}}, "port"),
            ops.insert("Bridge", row, "bridge"),
            ops.mutate("Open_vSwitch", [], [("bridges", "insert", {NamedUuid("bridge")})]),
        ],
    )
